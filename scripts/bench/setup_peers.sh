#!/usr/bin/env bash
# The peers curate is measured against, in their own git-ignored venv (never in curate's).
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv-peers
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
"$VENV/bin/python" -m pip install -q datasketch rensa datatrove 'xxhash<4' tokenizers nltk pyarrow numpy psutil
# datatrove's English word splitter is spaCy's blank "en" (scripts/gen_signal_tables.py reads its rules)
"$VENV/bin/python" -m pip install -q 'datatrove==0.10.1' 'spacy>=3.8,<3.9'
# DSIR and fastText (issue 5): data-selection (DSIR's reference code); fasttext-numpy2-wheel, the build whose
# predict(str) works with numpy 2, for the plain per-document loop curate's --fasttext is compared with
"$VENV/bin/python" -m pip install -q data-selection fasttext-numpy2-wheel
"$VENV/bin/python" -c "import datasketch, rensa, datatrove; print('peers:', 'datasketch', datasketch.__version__ if hasattr(datasketch,'__version__') else '?', 'datatrove', datatrove.__version__ if hasattr(datatrove,'__version__') else '?')"
