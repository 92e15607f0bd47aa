"""fastText classifiers as score columns: `<name>_label` (the top label, without `__label__`) and
`<name>_score` (its probability), for any supervised fastText model a user brings: language ID
(lid.176.bin), DCLM or FineWeb-Edu-style quality classifiers.

Text is prepared as those classifiers' own pipelines do (DCLM, datatrove's LanguageFilter and
FastTextClassifierFilter): newlines become spaces, because fastText reads one line per prediction
and stops at the first newline. As fastText's predict() does, a newline is then appended (its
end-of-sentence token is part of every trained line), so an empty document still gets the label
fastText gives it; a null text gets null label and score.

Predictions go through the model's native multilinePredict, one call per batch: the same numbers
as predict(), without the Python wrapper's np.array(..., copy=False), which numpy 2 refuses.
"""

from __future__ import annotations

import os
import re
import struct

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError, UsageError

FASTTEXT_MAGIC = 793712314  # first int32 of every fastText .bin model (FASTTEXT_FILEFORMAT_MAGIC_INT32)
HEADER_BYTES = 8 + 56 + 28  # magic and version, Args (12 int32 + a double), Dictionary counts
LABEL_PREFIX = "__label__"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_models: dict[tuple, object] = {}  # one loaded model per file and process


def default_name(path: str) -> str:
    """A column prefix from the model's file name: lid.176.bin -> lid_176."""
    stem = os.path.basename(path)
    for ext in (".bin", ".ftz"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    name = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_").lower() or "fasttext"
    return name if NAME_RE.match(name) else "ft_" + name


def pair_names(models: tuple[str, ...], names: tuple[str, ...]) -> list[tuple[str, str]]:
    """--fasttext and --fasttext-name pair in order; a model without a name gets its file's stem."""
    if len(names) > len(models):
        raise UsageError(f"{len(names)} --fasttext-name for {len(models)} --fasttext model(s)",
                         hint="give one --fasttext-name per --fasttext, in the same order (or fewer: the rest are named "
                              "after their files)")
    pairs = [(names[i] if i < len(names) else default_name(m), m) for i, m in enumerate(models)]
    seen = set()
    for name, _ in pairs:
        if not NAME_RE.match(name):
            raise UsageError(f"--fasttext-name {name!r} is not a plain column prefix",
                             hint="use letters, digits and '_', not starting with a digit (e.g. lang, edu)")
        if name in seen:
            raise UsageError(f"two fastText models would both write {name}_label and {name}_score",
                             hint="name each model with its own --fasttext-name")
        seen.add(name)
    return pairs


def check_model_file(path: str) -> None:
    """A fastText classifier file, or a clean error. fastText's loader trusts the file: a truncated
    or foreign one can make it allocate without bound, so its header is checked here first."""
    if not os.path.isfile(path):
        raise InputError("fastText model not found", where=path,
                         hint="train one with fastText (fasttext supervised ...) or download a published model "
                              "(e.g. lid.176.bin)")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(HEADER_BYTES)
    if len(head) < 4 or int.from_bytes(head[:4], "little") != FASTTEXT_MAGIC:
        raise InputError("not a fastText binary model (no fastText header)", where=path,
                         hint="pass the .bin (or .ftz) file that fastText's supervised training writes")
    bad = InputError("fastText model file is truncated or corrupt", where=path,
                     hint="download or train it again (its header does not fit the file)")
    if len(head) < HEADER_BYTES:
        raise bad
    version = struct.unpack_from("<i", head, 4)[0]
    dim, _, _, _, _, _, loss, model, bucket, minn, maxn, _ = struct.unpack_from("<12i", head, 8)
    nwords, nlabels, prune = struct.unpack_from("<3i", head, 64)[1:] + struct.unpack_from("<q", head, 84)
    entries = struct.unpack_from("<i", head, 64)[0]
    if (version not in (11, 12) or not 0 < dim <= 100_000 or loss not in (1, 2, 3, 4) or model not in (1, 2, 3)
            or bucket < 0 or not 0 <= minn <= maxn <= 1000 or nwords < 0 or nlabels < 0 or entries != nwords + nlabels
            or prune < -1 or HEADER_BYTES + 10 * entries + 8 * max(prune, 0) > size):
        raise bad
    if model != 3:
        raise InputError("this fastText model is a word-vector model (skipgram/cbow), not a classifier", where=path,
                         hint="--fasttext needs a supervised model, one that predicts __label__ classes")
    if nlabels == 0:
        raise bad


def load_model(path: str):
    """The native fastText model for a file, loaded once per process."""
    check_model_file(path)
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    m = _models.get(key)
    if m is None:
        try:
            import fasttext
        except ImportError:
            raise UsageError("--fasttext needs the fasttext package",
                             hint="pip install fasttext-wheel (or fasttext)") from None
        try:
            m = fasttext.FastText._FastText(model_path=path)  # load_model() minus its stderr notice
        except (ValueError, RuntimeError, MemoryError, OSError) as e:
            raise InputError(f"fastText cannot load this model: {str(e).splitlines()[0][:300]}", where=path,
                             hint="the file is truncated or corrupt: download or train it again") from None
        _check_loaded(m, path, st.st_size)
        _models[key] = m
    return m


def _check_loaded(m, path: str, size: int) -> None:
    """fastText loads a truncated file without a word (its reads just stop): check that the model's
    parts add up to the file's size (exact for unquantised models; a quantised one must have labels)."""
    bad = InputError("fastText model file is truncated or corrupt", where=path,
                     hint="download or train it again (its parts do not add up to the file's size)")
    try:
        labels = m.f.getLabels("strict")[0]
        if not m.is_quantized():
            words = m.f.getVocab("strict")[0]
            rows_in, rows_out = np.asarray(m.f.getInputMatrix()), np.asarray(m.f.getOutputMatrix())  # views, no copy
            # header 8, args 56, dictionary 28 + (bytes + NUL + int64 count + int8 type) per entry,
            # then a quant flag and each matrix's int64 shape and float32 values
            expect = (8 + 56 + 28 + sum(len(w.encode()) + 10 for w in words + labels) + 2 * (1 + 16)
                      + 4 * (rows_in.size + rows_out.size))
            if expect != size:
                raise bad
        elif not labels:
            raise bad
    except (ValueError, RuntimeError, UnicodeDecodeError, MemoryError):
        raise bad from None


def prepare_text(text) -> list[str]:
    """One line per document, as fastText's predict() wants it: newlines -> spaces, then one '\\n'."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    flat = pc.replace_substring(pc.fill_null(text, ""), "\n", " ")
    return pc.binary_join_element_wise(flat, "\n", "").to_pylist()


class FastTextScorer:
    kind = "fasttext"

    def __init__(self, name: str, model: str):
        check_model_file(model)
        self.name, self.model = name, str(model)

    def fields(self) -> list[pa.Field]:
        return [pa.field(f"{self.name}_label", pa.string()), pa.field(f"{self.name}_score", pa.float64())]

    def identity(self) -> dict:
        st = os.stat(self.model)
        return {"name": self.name, "model": self.model, "model_bytes": st.st_size, "model_mtime_ns": st.st_mtime_ns}

    def prepare(self) -> None:
        load_model(self.model)

    def score(self, text) -> dict[str, pa.Array]:
        n = len(text)
        if n == 0:
            return {f"{self.name}_label": pa.array([], pa.string()), f"{self.name}_score": pa.array([], pa.float64())}
        m = load_model(self.model)
        labels, probs = m.f.multilinePredict(prepare_text(text), 1, 0.0, "strict")
        has = np.fromiter((len(x) > 0 for x in labels), bool, n)
        if text.null_count:
            has &= ~text.is_null().to_numpy(zero_copy_only=False)
        top = [x[0] if len(x) else None for x in labels]
        score = np.fromiter((p[0] if len(p) else 0.0 for p in probs), np.float64, n)
        label = pa.array(top, pa.string(), mask=~has)
        label = pc.if_else(pc.starts_with(label, LABEL_PREFIX), pc.utf8_slice_codeunits(label, len(LABEL_PREFIX)), label)
        return {f"{self.name}_label": label, f"{self.name}_score": pa.array(score, pa.float64(), mask=~has)}
