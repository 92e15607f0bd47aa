"""The real KenLM toolchain that the n-gram stages build on: lmplz and build_binary built from the
kenlm source distribution (scripts/build_kenlm.sh), and the kenlm module querying their model."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import kenlm

BIN = Path(sys.prefix) / "bin"


def test_lmplz_trains_a_model_that_kenlm_queries(tmp_path):
    lmplz, build_binary = BIN / "lmplz", BIN / "build_binary"
    assert lmplz.exists() and build_binary.exists(), "run scripts/build_kenlm.sh (make test does)"
    corpus = "\n".join(["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 20)
    arpa, binary = tmp_path / "m.arpa", tmp_path / "m.bin"
    with open(arpa, "wb") as out:
        subprocess.run([str(lmplz), "-o", "3", "--discount_fallback", "-S", "5%", "-T", str(tmp_path)],
                       input=corpus.encode(), stdout=out, stderr=subprocess.DEVNULL, check=True)
    subprocess.run([str(build_binary), str(arpa), str(binary)], stdout=subprocess.DEVNULL, check=True)
    m = kenlm.Model(str(binary))
    assert m.order == 3
    seen, unseen = m.score("the cat sat on the mat"), m.score("mat the on sat cat the")
    assert seen > unseen  # a sentence from the corpus beats its reversal
    words = "the cat sat on the mat".split()
    # perplexity is 10^(-log10 p / (words + 1)), the formula the score stage will use
    assert math.isclose(m.perplexity("the cat sat on the mat"), 10 ** (-seen / (len(words) + 1)), rel_tol=1e-9)
