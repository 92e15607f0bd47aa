# Two commands from nothing: `make demo` and `make test`. Everything else is a step they share.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE := data/sample
KENLM := $(BIN)/lmplz

.PHONY: demo test setup sample lint bench clean chromium

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py curate/_native.c curate/_unicode_tables.h curate/_tokenize.c curate/_ccnet_tables.h curate/_strings.h curate/_dsir.c curate/_dsir_tables.h curate/_signals.c curate/_signals_tables.h
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

sample: $(STAMP)
	$(BIN)/python scripts/make_sample_corpus.py --out $(SAMPLE)

# KenLM's lmplz/build_binary, built once from the kenlm sdist and cached in the venv
$(KENLM): scripts/build_kenlm.sh | $(STAMP)
	bash scripts/build_kenlm.sh $(VENV)

demo: sample $(KENLM)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

# headless Chromium renders the audit's HTML report in tests/test_audit.py (apt-get when root)
chromium:
	bash scripts/install_chromium.sh

test: sample $(KENLM) chromium
	$(BIN)/python -m pytest -q tests

lint: $(STAMP)
	$(BIN)/ruff check curate tests scripts

bench: $(STAMP)
	bash scripts/bench/run_all.sh

clean:
	rm -rf out data/sample .pytest_cache
