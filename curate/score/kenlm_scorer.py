"""KenLM scorers: CCNet perplexity and SoftDedup data commonness.

- ppl (CCNet, Wenzek et al. 2020): every line of a document is a sentence (<s> ... </s>);
  ppl = 10^(-sum of log10 p over the lines / sum of (tokens + 1) over the lines).
- commonness (SoftDedup, He et al. 2024): logprob = log10 p(document) = the sum over its lines
  (each with <s> ... </s>, the unit the model is trained on), commonness = 10^(logprob / sum of
  (tokens + 1)), the geometric-mean token probability. Common (often repeated) text gets a high
  value. Scored as one sequence, a document would ask about n-grams across line breaks that the
  model never saw, and a 100-copy multi-line document stayed as "rare" as unique text.

A document without any token gets null, never NaN (which would sort silently).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate import log
from curate.errors import UsageError
from curate.score.lm import check_model_file, load_model, read_model_manifest
from curate.text.tokenize import Tokenizer

KINDS = {
    "ppl": [pa.field("ppl", pa.float64()), pa.field("n_tokens", pa.int64())],
    "commonness": [pa.field("commonness", pa.float64()), pa.field("logprob", pa.float64()), pa.field("n_tokens", pa.int64())],
}


def resolve_tokenizer(model: str, tokenizer: str | None, option: str) -> str:
    """The tokeniser to score a model with: the one its manifest records, and never another."""
    manifest = read_model_manifest(model)
    trained = (manifest or {}).get("tokenizer")
    if trained is None:
        if tokenizer is None:
            log.info(f"{model}: no curate manifest beside the model; assuming it was trained with the built-in "
                     "ccnet tokeniser (pass --tokenizer if not)")
        return tokenizer or "ccnet"
    if tokenizer is None:
        return trained["spec"]
    given = Tokenizer(tokenizer).identity()
    if {k: v for k, v in trained.items() if k != "spec"} != given:
        raise UsageError(f"{option} {model} was trained with tokeniser {trained['spec']!r} "
                         f"({trained.get('sha256', 'built in')}), not {tokenizer!r}",
                         hint="drop --tokenizer to use the model's own, or score with a model trained with this tokeniser")
    return tokenizer


_LAST = None  # (model and tokeniser, the text array, its sums): the last batch scored in this process


class KenLMScorer:
    def __init__(self, kind: str, model: str, tokenizer: str | None = None, option: str = "--kenlm"):
        if kind not in KINDS:
            raise ValueError(kind)
        check_model_file(model)
        self.kind, self.model = kind, str(model)
        self.tokenizer = Tokenizer(resolve_tokenizer(self.model, tokenizer, option))
        self._tok_key = repr(sorted(self.tokenizer.identity().items()))

    def fields(self) -> list[pa.Field]:
        return KINDS[self.kind]

    def identity(self) -> dict:
        m = read_model_manifest(self.model) or {}
        st = __import__("os").stat(self.model)
        return {"model": self.model, "model_bytes": st.st_size, "model_mtime_ns": st.st_mtime_ns,
                "model_trained_on": m.get("corpus_digest"), "tokenizer": self.tokenizer.identity()}

    def prepare(self) -> None:
        load_model(self.model)

    def tokenize(self, text):
        """The tokenised lines score() needs: one per line of each document, the unit the model was
        trained on (`curate ngram train` feeds lmplz one line per sentence)."""
        return self.tokenizer.lines(text, per_line=True)

    def _sums(self, text) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per document: sum of log10 p over its lines, sum of (tokens + 1), tokens."""
        global _LAST
        key = (self.model, self._tok_key)
        if _LAST is not None and _LAST[0] == key and _LAST[1] is text:
            return _LAST[2]  # --kenlm and --commonness with the same model: one query per line
        n = len(text)
        lines = self.tokenize(text)
        lp = np.fromiter(map(load_model(self.model).score, lines.text.to_pylist()), np.float64, len(lines.text))
        # float64 even with no lines at all: numpy's bincount of nothing is int64 whatever the weights
        sums = (np.bincount(lines.doc, weights=lp, minlength=n).astype(np.float64, copy=False),
                np.bincount(lines.doc, weights=lines.ntok + 1, minlength=n).astype(np.float64, copy=False),
                np.bincount(lines.doc, weights=lines.ntok, minlength=n).astype(np.int64))
        _LAST = (key, text, sums)
        return sums

    def score(self, text) -> dict[str, pa.Array]:
        n = len(text)
        total, length, ntok = self._sums(text)
        has = ntok > 0
        mean = np.divide(total, length, out=np.zeros(n), where=has)  # mean log10 p per token (and </s>)
        if self.kind == "ppl":
            return {"ppl": pa.array(np.power(10.0, -mean), mask=~has), "n_tokens": pa.array(ntok)}
        return {"commonness": pa.array(np.power(10.0, mean), mask=~has), "logprob": pa.array(total, mask=~has),
                "n_tokens": pa.array(ntok)}
