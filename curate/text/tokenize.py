"""Tokenisers for the n-gram stages: text in, space-separated tokens out, whole Arrow arrays at once.

- `ccnet` (built in, the default): CCNet's normalisation (lower-case, accents stripped, digits to
  0, Unicode punctuation mapped, non-printing characters removed), then words split on whitespace
  with every punctuation or symbol character a token of its own. In C (curate/_tokenize.c).
- `spm:MODEL` (SentencePiece model file) and `hf:TOKENIZER.json` (Hugging Face `tokenizers`):
  CCNet's normalisation, then the user's tokeniser; its pieces become the tokens. Those packages
  are optional and imported only when asked for.

Documents are split into lines: KenLM models here are trained with one line per sentence, and
CCNet's perplexity scores each line as a sentence.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.errors import InputError, UsageError
from curate.text.arrow import as_string_array, buffers

BUILTIN = "ccnet"


@dataclass
class Lines:
    """Tokenised lines of a batch: `text` (one line per entry, tokens separated by one space),
    `doc` (the document each line came from) and `ntok` (tokens per line)."""

    text: pa.LargeStringArray
    doc: np.ndarray
    ntok: np.ndarray


def _ccnet(arr, per_line: bool, tokenize: bool = True) -> Lines:
    from curate import _tokenize

    arr = as_string_array(arr)  # nulls become empty texts
    offsets, data, wide = buffers(arr)
    text, offs, doc, ntok = _tokenize.ccnet_lines(offsets, data, wide, per_line, tokenize)
    n = len(offs) // 8 - 1
    return Lines(pa.LargeStringArray.from_buffers(n, pa.py_buffer(offs), pa.py_buffer(text)),
                 np.frombuffer(doc, np.int64), np.frombuffer(ntok, np.int64))


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


class Tokenizer:
    """A tokeniser named by a spec string; `identity()` goes into model manifests so a model is
    never scored with a tokeniser other than the one it was trained with."""

    def __init__(self, spec: str | None = None):
        spec = (spec or BUILTIN).strip()
        self.spec = spec
        kind, _, path = spec.partition(":")
        if kind == BUILTIN and not path:
            self.kind, self.path = BUILTIN, None
        elif kind in ("spm", "hf") and path:
            self.kind, self.path = kind, Path(path)
            if not self.path.is_file():
                raise InputError("tokeniser file not found", where=str(self.path),
                                 hint=f"--tokenizer {kind}:PATH names a {'SentencePiece .model' if kind == 'spm' else 'tokenizer.json'} file")
        else:
            raise UsageError(f"--tokenizer {spec!r}: expected 'ccnet', 'spm:MODEL' or 'hf:TOKENIZER.json'")
        self._impl = None

    def identity(self) -> dict:
        if self.kind == BUILTIN:
            return {"name": BUILTIN}
        return {"name": self.kind, "file": self.path.name, "sha256": _file_digest(self.path)}

    def _load(self):
        if self._impl is not None:
            return self._impl
        if self.kind == "spm":
            try:
                import sentencepiece
            except ImportError:
                raise UsageError("--tokenizer spm:... needs the sentencepiece package",
                                 hint="pip install 'curate[tokenizers]' (or pip install sentencepiece)") from None
            try:
                self._impl = sentencepiece.SentencePieceProcessor(model_file=str(self.path))
            except Exception as e:
                raise InputError(f"not a SentencePiece model ({e})", where=str(self.path)) from None
        elif self.kind == "hf":
            try:
                import tokenizers
            except ImportError:
                raise UsageError("--tokenizer hf:... needs the tokenizers package",
                                 hint="pip install 'curate[tokenizers]' (or pip install tokenizers)") from None
            try:
                self._impl = tokenizers.Tokenizer.from_file(str(self.path))
            except Exception as e:
                raise InputError(f"not a Hugging Face tokenizer.json ({e})", where=str(self.path)) from None
        return self._impl

    def lines(self, text, per_line: bool = True) -> Lines:
        """Tokenise an Arrow string array: one output line per non-empty input line (per_line),
        or exactly one line per document (all its tokens joined)."""
        if self.kind == BUILTIN:
            return _ccnet(text, per_line)
        norm = _ccnet(text, per_line, tokenize=False)
        raw = norm.text.to_pylist()
        if self.kind == "spm":
            pieces = self._load().encode(raw, out_type=str)
        else:
            pieces = [e.tokens for e in self._load().encode_batch(raw, add_special_tokens=False)]
        # a piece never contains a space: KenLM splits on whitespace
        joined = [" ".join(p).replace("\n", " ") if p else "" for p in pieces]
        ntok = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
        out = pa.array(joined, pa.large_string())
        if per_line:
            keep = ntok > 0
            if not keep.all():
                return Lines(out.filter(pa.array(keep)), norm.doc[keep], ntok[keep])
        return Lines(out, norm.doc, ntok)
