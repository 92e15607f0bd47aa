"""KenLM scorers: CCNet perplexity and SoftDedup data commonness.

- ppl (CCNet, Wenzek et al. 2020): every line of a document is a sentence (<s> ... </s>);
  ppl = 10^(-sum of log10 p over the lines / sum of (tokens + 1) over the lines).
- commonness (SoftDedup, He et al. 2024): the document is one sequence x of n tokens;
  logprob = log10 p(x) with <s> and </s>, commonness = 10^(logprob / (n + 1)), the geometric
  mean token probability. Common (often repeated) text gets a high value.

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


class KenLMScorer:
    def __init__(self, kind: str, model: str, tokenizer: str | None = None, option: str = "--kenlm"):
        if kind not in KINDS:
            raise ValueError(kind)
        check_model_file(model)
        self.kind, self.model = kind, str(model)
        self.tokenizer = Tokenizer(resolve_tokenizer(self.model, tokenizer, option))

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
        """The tokenised lines score() needs: per line for ppl, per document for commonness."""
        return self.tokenizer.lines(text, per_line=self.kind == "ppl")

    def score(self, text, lines=None) -> dict[str, pa.Array]:
        n = len(text)
        score = load_model(self.model).score
        if lines is None:
            lines = self.tokenize(text)
        if self.kind == "ppl":
            lp = np.fromiter(map(score, lines.text.to_pylist()), np.float64, len(lines.text))
            total = np.bincount(lines.doc, weights=lp, minlength=n)
            length = np.bincount(lines.doc, weights=lines.ntok + 1, minlength=n)
            ntok = np.bincount(lines.doc, weights=lines.ntok, minlength=n).astype(np.int64)
            has = ntok > 0
            ppl = np.power(10.0, -np.divide(total, length, out=np.zeros(n), where=has))
            return {"ppl": pa.array(ppl, mask=~has), "n_tokens": pa.array(ntok)}
        docs = lines
        lp = np.fromiter(map(score, docs.text.to_pylist()), np.float64, n)
        has = docs.ntok > 0
        common = np.power(10.0, lp / (docs.ntok + 1))
        return {"commonness": pa.array(common, mask=~has), "logprob": pa.array(lp, mask=~has),
                "n_tokens": pa.array(docs.ntok)}
