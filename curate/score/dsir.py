"""DSIR importance weights (Xie et al. 2023, "Data Selection for Language Models via Importance
Resampling"), with data-selection's HashedNgramDSIR features: the lower-cased text cut by nltk's
WordPunctTokenizer, every unigram and bigram hashed (SHA-256 mod buckets) into a bag of buckets.

  raw, target   bucket counts over IN and over TARGET (all their tokens)
  p = counts / counts.sum()
  dsir_logratio = dot(log(p_target + 1e-8) - log(p_raw + 1e-8), features(doc))

exactly as data-selection computes log importance weights (its fit_importance_estimator with
num_tokens_to_fit='all'). The features are computed in C (curate/_dsir.c). Fitting is a first
phase of `curate score`: each raw shard and target file's counts go to OUT/_work/dsir/, then they
are summed (integers: the same for any -j or --task split). The estimator file (--dsir-save,
--dsir-load) holds both count vectors and what they were computed with.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from curate import log
from curate.errors import InputError, UsageError
from curate.io.atomic import write_bytes_atomic
from curate.io.location import Location, locate
from curate.io.manifest import digest
from curate.run.executor import Task, TaskContext
from curate.text.arrow import buffers

DEFAULT_BUCKETS = 10000
MAX_BUCKETS = 1 << 24
NGRAMS = 2  # unigrams and bigrams, data-selection's default
SMOOTH = 1e-8  # data-selection's additive constant inside the logs
MAGIC = b"CURATE-DSIR\n"
FORMAT = 1
WORK = "_work/dsir"
MERGED = f"{WORK}/estimator.bin"
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
COMPRESSED = (".gz", ".zst", ".zstd", ".bz2")


def features_identity() -> dict:
    from curate import _dsir

    return {"features": "hashed n-grams (data-selection HashedNgramDSIR)", "tokenizer": "nltk WordPunctTokenizer of str.lower()",
            "token_classes": _dsir.TABLES, "hash": "int(sha256(ngram).hexdigest(), 16) % buckets", "smoothing": SMOOTH}


# ---- features ------------------------------------------------------------------------------


def _strings(text) -> pa.Array:
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks() if text.num_chunks != 1 else text.chunk(0)
    if text.null_count:
        text = text.fill_null("")  # a null text has no features
    return text


def bucket_counts(text, buckets: int, ngrams: int = NGRAMS, into: np.ndarray | None = None) -> np.ndarray:
    """The summed bag of buckets of every document of a string array (int64[buckets])."""
    from curate import _dsir

    counts = np.zeros(buckets, np.int64) if into is None else into
    arr = _strings(text)
    offsets, data, wide = buffers(arr)
    _dsir.ngram_buckets(offsets, data, wide, buckets, ngrams, counts, None, None, None)
    return counts


def log_ratios(text, log_diff: np.ndarray, ngrams: int = NGRAMS) -> pa.Array:
    """dot(log_diff, features(doc)) of every document; null for a null text."""
    from curate import _dsir

    arr = _strings(text)
    offsets, data, wide = buffers(arr)
    out = np.zeros(len(arr), np.float64)
    _dsir.ngram_buckets(offsets, data, wide, len(log_diff), ngrams, None, log_diff, out, None)
    mask = text.is_null() if text.null_count else None
    return pa.array(out, pa.float64(), mask=mask.to_numpy(zero_copy_only=False) if mask is not None else None)


# ---- the estimator ---------------------------------------------------------------------------


@dataclass
class Estimator:
    raw: np.ndarray  # int64 bucket counts of the raw corpus (IN)
    target: np.ndarray  # int64 bucket counts of the target
    ngrams: int = NGRAMS
    meta: dict = field(default_factory=dict)  # corpora digests, features identity

    @property
    def buckets(self) -> int:
        return len(self.raw)

    def log_diff(self) -> np.ndarray:
        p_raw = self.raw / self.raw.sum()
        p_target = self.target / self.target.sum()
        return np.log(p_target + SMOOTH) - np.log(p_raw + SMOOTH)

    def header(self) -> dict:
        arrays = self.raw.astype("<i8").tobytes() + self.target.astype("<i8").tobytes()
        return {"format": FORMAT, "buckets": self.buckets, "ngrams": self.ngrams,
                "raw_tokens": int(self.raw.sum()), "target_tokens": int(self.target.sum()),
                "counts_sha256": hashlib.sha256(arrays).hexdigest(), **self.meta}

    def to_bytes(self) -> bytes:
        head = json.dumps(self.header(), sort_keys=True).encode()
        return (MAGIC + len(head).to_bytes(8, "little") + head + self.raw.astype("<i8").tobytes()
                + self.target.astype("<i8").tobytes())

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> Estimator:
        hint = "write it again with curate score ... --dsir-target TARGET --dsir-save FILE"
        if not data.startswith(MAGIC):
            raise InputError("not a curate DSIR estimator (no CURATE-DSIR header)", where=where, hint=hint)
        try:
            n = int.from_bytes(data[len(MAGIC):len(MAGIC) + 8], "little")
            start = len(MAGIC) + 8
            head = json.loads(data[start:start + n])
            b = int(head["buckets"])
            body = data[start + n:]
            if head.get("format") != FORMAT:
                raise InputError(f"estimator format {head.get('format')} is not {FORMAT}", where=where, hint=hint)
            if len(body) != 16 * b or hashlib.sha256(body).hexdigest() != head["counts_sha256"]:
                raise InputError("estimator file is truncated or corrupt (its counts do not match their checksum)",
                                 where=where, hint=hint)
        except (ValueError, KeyError, TypeError):
            raise InputError("estimator file has a corrupt header", where=where, hint=hint) from None
        raw = np.frombuffer(body[:8 * b], "<i8").astype(np.int64)
        target = np.frombuffer(body[8 * b:], "<i8").astype(np.int64)
        keys = ("format", "buckets", "ngrams", "raw_tokens", "target_tokens", "counts_sha256")
        return cls(raw, target, int(head.get("ngrams", NGRAMS)), {k: v for k, v in head.items() if k not in keys})


def load_estimator(path: str) -> tuple[Estimator, str]:
    """(estimator, sha256 of the file) for --dsir-load, with errors that say what to do."""
    loc = locate(path)
    try:
        with loc.fs.open_input_stream(loc.path) as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError("DSIR estimator not found", where=path,
                         hint="fit one first: curate score IN OUT --dsir-target TARGET --dsir-save FILE") from None
    except (OSError, pa.ArrowException) as e:
        raise InputError(f"cannot read the DSIR estimator ({e})", where=path) from None
    est = Estimator.from_bytes(data, path)
    ident = est.meta.get("features_identity")
    if ident is not None and ident != features_identity():
        raise InputError("the estimator was fitted with other features than this curate computes "
                         f"({ident.get('token_classes')} vs {features_identity()['token_classes']})", where=path,
                         hint="fit it again with this version: --dsir-target TARGET --dsir-save FILE")
    return est, hashlib.sha256(data).hexdigest()


# ---- the target dataset ----------------------------------------------------------------------


def _format_of(path: str) -> str | None:
    p = path
    for s in COMPRESSED:
        if p.endswith(s):
            p = p[: -len(s)]
    if p.endswith(".parquet"):
        return "parquet"
    return "jsonl" if p.endswith(JSONL_SUFFIXES) else None


@dataclass(frozen=True)
class TargetFile:
    loc: Location
    size: int
    format: str


def target_files(uri: str) -> tuple[list[TargetFile], str]:
    """The target's files (Parquet and/or JSON Lines, maybe compressed) and its identity digest."""
    from curate.io.dataset import open_dataset
    from curate.io.location import expand

    base, found = expand(uri)
    files = []
    for loc, size in found:
        name = loc.path.rsplit("/", 1)[-1]
        if name.startswith(("_", ".")):
            continue  # _manifest.json, _SUCCESS, hidden temporaries
        fmt = _format_of(loc.path)
        if fmt is None:
            raise InputError("--dsir-target: not a Parquet or JSON Lines file", where=loc.uri,
                             hint="give a dataset directory, Parquet shards, or .jsonl[.gz|.zst] files")
        files.append(TargetFile(loc, size, fmt))
    if not files:
        raise InputError("--dsir-target holds no Parquet or JSON Lines files", where=uri)
    ident = None
    if all(f.format == "parquet" for f in files):
        ident = digest(open_dataset(uri).manifest)  # also refuses an incomplete curate output
    if ident is None:
        ident = digest({"files": [[f.loc.path.rsplit("/", 1)[-1], f.size] for f in files]})
    return files, ident


def _jsonl_texts(tf: TargetFile, text_field: str):
    import pyarrow.json as pj

    from curate.io import jsonl

    schema = pa.schema([(text_field, pa.string())])
    po = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    try:
        stream = tf.loc.fs.open_input_stream(tf.loc.path, compression=jsonl.compression_of(tf.loc.path))
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"cannot open ({e})", where=tf.loc.uri) from None
    with stream:
        for block in jsonl.iter_line_blocks(stream, tf.loc.uri):
            data = block.raw
            try:
                ro = pj.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 16))
                table = pj.read_json(pa.BufferReader(pa.py_buffer(data)), read_options=ro, parse_options=po)
                table.validate(full=True)
            except (pa.ArrowInvalid, UnicodeDecodeError):
                bad = jsonl.explain_bad_lines(block, schema, text_field)
                line, why = (bad[0][0], bad[0][1]) if bad else (block.first_line, "cannot be parsed")
                raise InputError(f"line {line}: {why}", where=tf.loc.uri,
                                 hint=f"--dsir-target reads field {text_field!r} of each JSON object "
                                      "(--dsir-target-field names another)") from None
            yield table.column(text_field), len(data)


def target_texts(tf: TargetFile, text_field: str):
    """(text array, bytes read) batches of one target file."""
    if tf.format == "jsonl":
        yield from _jsonl_texts(tf, text_field)
        return
    from curate.io.parquet import iter_batches, open_parquet

    pf = open_parquet(tf.loc)
    if text_field not in pf.schema_arrow.names:
        raise InputError(f"--dsir-target has no column {text_field!r}; the columns are: {', '.join(pf.schema_arrow.names)}",
                         where=tf.loc.uri, hint="name the text column with --dsir-target-field")
    t = pf.schema_arrow.field(text_field).type
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise InputError(f"--dsir-target column {text_field!r} has type {t}, expected a string", where=tf.loc.uri)
    total = max(pf.metadata.num_rows, 1)
    for b in iter_batches(tf.loc, columns=[text_field], pf=pf):
        yield b.column(0), int(tf.size * b.num_rows / total)


# ---- the scorer: fit phase, merge, score ------------------------------------------------------


@dataclass(frozen=True)
class DSIRParams:
    target: str | None = None
    buckets: int | None = None  # None: DEFAULT_BUCKETS, or the loaded estimator's
    load: str | None = None
    save: str | None = None
    target_field: str = "text"


class DSIRScorer:
    kind = "dsir"
    column = "dsir_logratio"

    def __init__(self, p: DSIRParams, stdin: bool = False):
        self.p = p
        self._est: Estimator | None = None
        self._log_diff: np.ndarray | None = None
        self.files: list[TargetFile] = []
        self.target_identity = self.load_sha = None
        if p.load:
            if p.target:
                raise UsageError("--dsir-load and --dsir-target exclude each other",
                                 hint="--dsir-load scores with a fitted estimator; --dsir-target fits a new one")
            if p.save:
                raise UsageError("--dsir-save writes a fitted estimator; with --dsir-load nothing is fitted")
            self._est, self.load_sha = load_estimator(p.load)
            if p.buckets is not None and p.buckets != self._est.buckets:
                raise UsageError(f"--dsir-buckets {p.buckets}, but the estimator {p.load} has {self._est.buckets} buckets",
                                 hint="drop --dsir-buckets: a loaded estimator brings its own")
            return
        if not p.target:
            raise UsageError("DSIR needs a target: --dsir-target TARGET (or a fitted estimator: --dsir-load FILE)")
        if not 1 <= self.buckets <= MAX_BUCKETS:
            raise UsageError(f"--dsir-buckets must be in 1..{MAX_BUCKETS:,}")
        if stdin:
            raise UsageError("--dsir-target fits the raw distribution over IN first, which needs a dataset, not '-'",
                             hint="give IN as a directory, or fit once with --dsir-save and score '-' with --dsir-load")
        if p.save:
            parent = os.path.dirname(os.path.abspath(p.save))
            if not os.path.isdir(parent) or os.path.isdir(p.save):
                raise UsageError(f"--dsir-save {p.save}: the folder {parent} does not exist or the path is a folder")
        self.files, self.target_identity = target_files(p.target)

    @property
    def buckets(self) -> int:
        if self._est is not None:
            return self._est.buckets
        return DEFAULT_BUCKETS if self.p.buckets is None else self.p.buckets

    @property
    def needs_fit(self) -> bool:
        return self.p.load is None

    def fields(self) -> list[pa.Field]:
        return [pa.field(self.column, pa.float64())]

    def identity(self) -> dict:
        if self.p.load:
            return {"load": self.p.load, "estimator_sha256": self.load_sha, "buckets": self.buckets,
                    "ngrams": self._est.ngrams, "fitted_on": self._est.meta.get("raw_corpus")}
        # save is part of the identity: a finished run asked again with another --dsir-save must not
        # say "nothing to do" without writing it (its fitted counts are gone with _work)
        return {"target": self.p.target, "target_identity": self.target_identity, "target_field": self.p.target_field,
                "buckets": self.buckets, "ngrams": NGRAMS, "features": features_identity(), "save": self.p.save}

    def prepare(self) -> None:
        from curate import _dsir  # noqa: F401  (a missing build fails here, once, not per batch)

    # -- fit phase ---------------------------------------------------------------------------
    def fit_tasks(self, stage, tag) -> list[Task]:
        """One task per raw shard and per target file; spec = (tag, which, index)."""
        from curate.io.dataset import shard_output_name

        if not self.needs_fit:
            return []
        raw = [Task(f"raw/{shard_output_name(s)}", (tag, "raw", i), s.size) for i, s in enumerate(stage.dataset.shards)]
        tgt = [Task(f"target/{i:05d}", (tag, "target", i), f.size) for i, f in enumerate(self.files)]
        return raw + tgt

    def run_fit(self, stage, spec, task: Task, ctx: TaskContext) -> None:
        _, which, i = spec
        counts = np.zeros(self.buckets, np.int64)
        if which == "raw":
            from curate.io.parquet import iter_batches, open_parquet

            shard = stage.dataset.shards[i]
            pf = open_parquet(shard.loc)
            total = max(pf.metadata.num_rows, 1)
            for b in iter_batches(shard.loc, columns=["text"], pf=pf):
                bucket_counts(b.column(0), self.buckets, NGRAMS, counts)
                ctx.progress(b.num_rows, int(shard.size * b.num_rows / total))
        else:
            for text, nbytes in target_texts(self.files[i], self.p.target_field):
                bucket_counts(text, self.buckets, NGRAMS, counts)
                ctx.progress(len(text), nbytes)
        loc = ctx.out.child(f"{WORK}/{task.name}.counts")
        loc.fs.create_dir(loc.path.rsplit("/", 1)[0], recursive=True)
        write_bytes_atomic(loc, counts.astype("<i8").tobytes())
        ctx.result.count(f"dsir_{which}_tokens", int(counts.sum()))

    def _merge(self, stage, out: Location) -> Estimator:
        """Sum the fit phase's counts once (any task may: integers, so every writer writes the same)."""
        loc = out.child(MERGED)
        try:
            with loc.fs.open_input_stream(loc.path) as f:
                return Estimator.from_bytes(f.read(), loc.uri)
        except (FileNotFoundError, OSError):
            pass
        sums = {"raw": np.zeros(self.buckets, np.int64), "target": np.zeros(self.buckets, np.int64)}
        for t in self.fit_tasks(stage, None):
            src = out.child(f"{WORK}/{t.name}.counts")
            with src.fs.open_input_stream(src.path) as f:
                sums[t.spec[1]] += np.frombuffer(f.read(), "<i8")
        if not sums["raw"].any():
            raise InputError("DSIR: the input has no tokens to fit the raw distribution on", where=stage.dataset.uri)
        if not sums["target"].any():
            raise InputError(f"DSIR: the target has no tokens in field {self.p.target_field!r}", where=self.p.target,
                             hint="name the target's text field with --dsir-target-field")
        est = Estimator(sums["raw"], sums["target"], NGRAMS,
                        {"raw_corpus": {"uri": stage.dataset.uri, "identity": stage.input_identity()},
                         "target_corpus": {"uri": self.p.target, "identity": self.target_identity,
                                           "field": self.p.target_field},
                         "features_identity": features_identity()})
        write_bytes_atomic(loc, est.to_bytes())
        return est

    def begin(self, stage, ctx: TaskContext) -> None:
        if self._est is None:
            self._est = self._merge(stage, ctx.out)
        if self._log_diff is None:
            self._log_diff = self._est.log_diff()

    def finalize(self, stage, out: Location) -> dict:
        est = self._est if self._est is not None else self._merge(stage, out)
        if self.p.save:
            write_bytes_atomic(locate(self.p.save), est.to_bytes())
            log.info(f"score: wrote the DSIR estimator to {self.p.save}")
        h = est.header()
        return {"dsir": {k: h[k] for k in ("buckets", "ngrams", "raw_tokens", "target_tokens", "counts_sha256")}
                | {"target": est.meta.get("target_corpus"), "saved_to": self.p.save, "loaded_from": self.p.load}}

    # -- scoring -----------------------------------------------------------------------------
    def score(self, text) -> dict[str, pa.Array]:
        if self._log_diff is None:
            if self._est is None:  # only an empty-schema probe gets here before begin()
                return {self.column: pa.nulls(len(text), pa.float64())}
            self._log_diff = self._est.log_diff()
        return {self.column: log_ratios(text, self._log_diff, self._est.ngrams)}
