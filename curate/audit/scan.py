"""One streaming pass over the shards (a process per shard with -j), each filling the sketches of
curate.audit.sketches; the parent merges them in shard order and derives the figures.

Every row gets a uniform key from its global row number and the seed (sketches.row_keys). The
rows with the smallest keys are, nested: the quantile sample (ROW_SAMPLE rows), the MinHash
sample (--near-sample), the audited sample (--sample). Cheap exact figures (rows, bytes,
exact-duplicate hashes, column stats and mixes) cover every row in both modes; the costlier ones
(characters, words, 5-grams, repeated lines, MinHash) cover the audited rows.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import _native, log
from curate.audit.near import Probe, permutations, signatures
from curate.audit.sketches import HLL_P, BottomK, ExactDup, HeavyHitters, LogHist, row_keys
from curate.io.parquet import iter_batches, open_parquet
from curate.text.arrow import as_string_array, buffers, normalize, normalize_hash128

ROW_SAMPLE = 20_000  # values per numeric column for quantiles and histograms
MAX_CATEGORIES = 1_000  # a string column with more distinct values is not a "mix"
BATCH_ROWS = 8192
SHINGLE_SEED = 0x5EED  # dedup minhash's seed: the same 5-gram hashes as `curate dedup minhash`
_PROBE: Probe | None = None  # the MinHash sample's tables, set by scan() before the workers fork


@dataclass(frozen=True)
class AuditParams:
    sample: int | None = None
    seed: int = 0
    near_sample: int = 100_000
    threshold: float = 0.8
    num_perm: int = 128
    ngram: int = 5
    top: int = 20
    workers: int = 1


@dataclass(frozen=True)
class ShardSpec:
    index: int
    loc: object
    first_gid: int
    text: str | None
    numeric: tuple[str, ...]
    strings: tuple[str, ...]
    tokens: bool
    t_sample: int
    t_near: int
    t_rows: int
    params: AuditParams
    probe: bool = False  # full audit: every document against the MinHash sample (curate.audit.near)


@dataclass
class NumStats:
    """count: the values that are neither null nor NaN, infinities included (count + nulls + nans =
    rows); pos_infs/neg_infs: how many of them are +inf/-inf; total: the sum of the finite ones."""

    count: int = 0
    nulls: int = 0
    nans: int = 0
    pos_infs: int = 0
    neg_infs: int = 0
    total: float = 0.0
    lo: float = float("inf")
    hi: float = float("-inf")

    def add(self, arr: pa.Array) -> None:
        self.nulls += arr.null_count
        v = arr.drop_null().to_numpy(zero_copy_only=False).astype(np.float64)
        nan = np.isnan(v)
        self.nans += int(nan.sum())
        v = v[~nan]
        self.count += len(v)
        if len(v):
            self.lo, self.hi = min(self.lo, float(v.min())), max(self.hi, float(v.max()))
            inf = np.isinf(v)
            if inf.any():
                self.pos_infs += int(np.count_nonzero(v[inf] > 0))
                self.neg_infs += int(np.count_nonzero(v[inf] < 0))
                v = v[~inf]
            self.total += float(v.sum())

    def merge(self, o: NumStats) -> None:
        for k in ("count", "nulls", "nans", "pos_infs", "neg_infs", "total"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.lo, self.hi = min(self.lo, o.lo), max(self.hi, o.hi)

    @property
    def finite(self) -> int:
        return self.count - self.pos_infs - self.neg_infs

    def mean(self) -> float | None:
        """The mean of the values: infinite when they hold infinities of one sign, undefined (None)
        with both signs or no values."""
        if (self.pos_infs and self.neg_infs) or not self.count:
            return None
        if self.pos_infs or self.neg_infs:
            return math.inf if self.pos_infs else -math.inf
        return self.total / self.count

    def sum(self) -> float | None:
        if self.pos_infs and self.neg_infs:
            return None
        return math.inf if self.pos_infs else -math.inf if self.neg_infs else self.total


@dataclass
class Partial:
    rows: int = 0
    audited: int = 0
    text_bytes: int = 0
    chars: int = 0
    words: int = 0
    empty: int = 0
    chars_hist: LogHist = field(default_factory=LogHist)
    words_hist: LogHist = field(default_factory=LogHist)
    exact: ExactDup = field(default_factory=ExactDup)
    lines: HeavyHitters = field(default_factory=HeavyHitters)
    paragraphs: HeavyHitters = field(default_factory=HeavyHitters)
    hll: np.ndarray | None = None
    shingles: int = 0
    near_keys: list = field(default_factory=list)
    near_sigs: list = field(default_factory=list)
    near_found: np.ndarray | None = None  # sampled documents with a near duplicate in this work
    signed: int = 0  # documents with a MinHash signature (non-empty shingle set)
    sample_keys: list = field(default_factory=list)
    sample_cols: dict = field(default_factory=dict)
    numeric: dict = field(default_factory=dict)
    categories: dict = field(default_factory=dict)
    words_moments: list = field(default_factory=lambda: [0, 0.0, 0.0])  # n, sum, sum of squares (audited)
    chars_moments: list = field(default_factory=lambda: [0, 0.0, 0.0])

    def merge(self, o: Partial, exact: bool = True) -> None:
        for k in ("rows", "audited", "text_bytes", "chars", "words", "empty", "shingles", "signed"):
            setattr(self, k, getattr(self, k) + getattr(o, k))
        self.chars_hist.merge(o.chars_hist)
        self.words_hist.merge(o.words_hist)
        if exact:
            self.exact.merge(o.exact)
        self.lines.merge(o.lines)
        self.paragraphs.merge(o.paragraphs)
        if o.hll is not None:
            self.hll = o.hll.copy() if self.hll is None else np.maximum(self.hll, o.hll)
        self.near_keys += o.near_keys
        if o.near_found is not None:
            self.near_found = o.near_found.copy() if self.near_found is None else self.near_found | o.near_found
        self.near_sigs += o.near_sigs
        self.sample_keys += o.sample_keys
        for k, v in o.sample_cols.items():
            self.sample_cols.setdefault(k, []).extend(v)
        for k, v in o.numeric.items():
            self.numeric.setdefault(k, NumStats()).merge(v)
        for k, v in o.categories.items():
            mine = self.categories.setdefault(k, {})
            if mine is None or v is None:
                self.categories[k] = None
                continue
            for val, n in v.items():
                mine[val] = mine.get(val, 0) + n
            if len(mine) > MAX_CATEGORIES:
                self.categories[k] = None
        for a, b in ((self.words_moments, o.words_moments), (self.chars_moments, o.chars_moments)):
            for i in range(3):
                a[i] += b[i]


def _moments(m: list, v: np.ndarray) -> None:
    m[0] += len(v)
    m[1] += float(v.sum())
    m[2] += float((v.astype(np.float64) ** 2).sum())


def _count_units(hh: HeavyHitters, text: pa.Array, sep: str) -> None:
    parts = pc.list_flatten(pc.split_pattern(text, sep))
    keep = pc.and_(pc.greater(pc.binary_length(parts), 0), pc.invert(pc.utf8_is_space(parts)))
    parts = as_string_array(parts.filter(keep))
    if len(parts) == 0:
        return
    h = normalize_hash128(parts, "whitespace")[:, 0]
    keys, first, counts = np.unique(h, return_index=True, return_counts=True)
    hh.add(keys, counts.astype(np.int64), lambda i: parts[int(first[i])].as_py().strip())


def _text_work(p: Partial, spec: ShardSpec, text: pa.Array, keys: np.ndarray) -> tuple[pa.Array, np.ndarray]:
    """The exact figures over every row; returns the audited rows and their keys."""
    text = as_string_array(text)
    nbytes = pc.binary_length(text).to_numpy(zero_copy_only=False)
    p.text_bytes += int(nbytes.sum())
    p.empty += int(np.count_nonzero(nbytes == 0))
    p.exact.add(normalize_hash128(text, "whitespace")[:, 0])
    audited = keys <= np.uint64(spec.t_sample)
    if audited.all():
        return text, keys
    return text.filter(pa.array(audited)), keys[audited]


def _sample_work(p: Partial, spec: ShardSpec, sub: pa.Array, keys: np.ndarray) -> None:
    """The costly figures over audited rows (a chunk of them, in row order); the row sample's
    characters and words (nested in the audited rows) go to the quantile columns."""
    prm = spec.params
    in_rows = keys <= np.uint64(spec.t_rows)
    chars = pc.utf8_length(sub).to_numpy(zero_copy_only=False)
    p.chars += int(chars.sum())
    p.chars_hist.add(chars)
    _moments(p.chars_moments, chars)
    if in_rows.any():
        p.sample_cols.setdefault("_chars", []).append(chars[in_rows].astype(np.float64))
    if not len(sub):
        return
    simple = normalize(sub, "simple")
    if not spec.tokens:
        words = _words(sub)
        p.words += int(words.sum())
        p.words_hist.add(words)
        _moments(p.words_moments, words)
        if in_rows.any():
            p.sample_cols.setdefault("_words", []).append(words[in_rows].astype(np.float64))
    off, data, wide = buffers(simple)
    if p.hll is None:
        p.hll = np.zeros(1 << HLL_P, np.int8)
    near = keys <= np.uint64(spec.t_near)
    # every row signed (a full audit: each document against the MinHash sample, every row
    # audited) or every row in the MinHash sample: the signatures and the HLL in one 5-gram pass
    if spec.probe or near.all():
        sig, cnt = np.empty((len(sub), prm.num_perm), np.uint32), np.empty(len(sub), np.int64)
        a, b, seed = permutations(prm.num_perm)
        p.shingles += _native.minhash_hll(off, data, wide, prm.ngram, a, b, sig, cnt, seed, HLL_P, p.hll)
        near_keys = keys
    else:
        p.shingles += _native.shingle_hll(off, data, wide, False, prm.ngram, SHINGLE_SEED, HLL_P, p.hll)
        if near.any():
            sig, cnt = signatures(sub.filter(pa.array(near)), prm.ngram, prm.num_perm)
            near_keys = keys[near]
    if spec.probe:
        ok = cnt > 0  # an empty text has no shingles and no signature
        p.signed += int(ok.sum())
        _PROBE.add(keys[ok], sig[ok])
    elif near.any():
        ok = cnt > 0
        p.near_keys.append(near_keys[ok])
        p.near_sigs.append(sig[ok])
    _count_units(p.lines, sub, "\n")
    _count_units(p.paragraphs, sub, "\n\n")


def _words(text: pa.Array) -> np.ndarray:
    """Words per string: the spaces of its whitespace normal form, plus one unless it is empty
    (the spaces found once in the whole buffer, then counted per string by their offsets)."""
    off, data, _ = buffers(normalize(text, "whitespace"))
    o = off - off[0]
    spaces = np.flatnonzero(np.frombuffer(data, np.uint8)[off[0]:off[-1]] == 32)
    return (np.diff(np.searchsorted(spaces, o)) + (o[1:] > o[:-1])).astype(np.int64)


class _Queue:
    """Audited rows waiting for _sample_work: with --sample few rows of a batch are audited, and
    the costly figures are worked out BATCH_ROWS audited rows at a time (fewer, larger calls)."""

    def __init__(self, p: Partial, spec: ShardSpec):
        self.p, self.spec, self.texts, self.keys, self.n = p, spec, [], [], 0

    def put(self, sub: pa.Array, keys: np.ndarray, flush: bool) -> None:
        self.texts.append(sub)
        self.keys.append(keys)
        self.n += len(keys)
        if flush or self.n >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.texts:
            sub = self.texts[0] if len(self.texts) == 1 else pa.concat_arrays(self.texts)
            _sample_work(self.p, self.spec, sub, np.concatenate(self.keys))
            self.texts, self.keys, self.n = [], [], 0


def _batches(spec: ShardSpec, pf, p: Partial):
    """Batches row group by row group; a string column found not to be a mix (an id, a URL) is no
    longer read."""
    for rg in range(pf.num_row_groups):
        strings = [c for c in spec.strings if p.categories.get(c, {}) is not None]
        cols = ([spec.text] if spec.text else []) + list(spec.numeric) + strings
        yield from iter_batches(spec.loc, columns=cols, batch_rows=BATCH_ROWS, pf=pf, row_groups=[rg])


def scan_shard(spec: ShardSpec) -> Partial:
    p = Partial()
    pf = open_parquet(spec.loc)
    queue = _Queue(p, spec)
    every = spec.t_sample == 2**64 - 1  # every row audited: each batch at once, as read
    start = spec.first_gid
    for b in _batches(spec, pf, p):
        n = b.num_rows
        keys = row_keys(np.arange(start, start + n, dtype=np.uint64), spec.params.seed)
        start += n
        p.rows += n
        p.audited += int(np.count_nonzero(keys <= np.uint64(spec.t_sample)))
        in_rows = keys <= np.uint64(spec.t_rows)
        if spec.text:
            sub, sub_keys = _text_work(p, spec, b.column(spec.text), keys)
            queue.put(sub, sub_keys, every)
        if in_rows.any():
            p.sample_keys.append(keys[in_rows])
            sel = pa.array(in_rows)
            for c in spec.numeric:
                p.sample_cols.setdefault(c, []).append(pc.filter(b.column(c), sel).to_numpy(zero_copy_only=False).astype(np.float64))
        for c in spec.numeric:
            p.numeric.setdefault(c, NumStats()).add(b.column(c))
        for c in spec.strings:
            cur = p.categories.get(c, {})
            if cur is None or c not in b.schema.names:
                continue
            col = b.column(c)
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            vc = pc.value_counts(col.cast(pa.string()) if not pa.types.is_string(col.type) else col)
            for v, k in zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True):
                key = "(null)" if v is None else v
                cur[key] = cur.get(key, 0) + k
            p.categories[c] = cur if len(cur) <= MAX_CATEGORIES else None
    queue.flush()
    p.exact.compact()  # the sort in the worker, not in the parent's merge
    if spec.probe:
        p.near_found = _PROBE.found.copy()
    return p


def thresholds(row_counts: list[int], params: AuditParams) -> tuple[int, int, int]:
    """Key thresholds of the audited sample, the MinHash sample and the quantile sample (nested)."""
    total = sum(row_counts)
    n = total if params.sample is None else min(params.sample, total)
    ks = [BottomK(n), BottomK(min(params.near_sample, n)), BottomK(min(ROW_SAMPLE, n))]
    start = 0
    for rows in row_counts:
        for lo in range(0, rows, 1 << 20):
            keys = row_keys(np.arange(start + lo, start + min(rows, lo + (1 << 20)), dtype=np.uint64), params.seed)
            for k in ks:
                if k.k and k.k < total:
                    k.add(keys)
        start += rows
    return tuple(2**64 - 1 if (k.k >= total) else k.threshold() for k in ks)


def _set_probe(probe: Probe | None) -> None:
    global _PROBE
    _PROBE = probe


def _init_worker(probe: Probe | None, driver: int) -> None:
    from curate.run.proc import exit_with_driver

    exit_with_driver(driver)  # no orphans after kill -9 of the driver
    _set_probe(probe)


def map_shards(fn, items: list, workers: int, probe: Probe | None = None):
    """fn over items in order, in a pool of processes with -j (each gets the probe once)."""
    _set_probe(probe)
    if workers <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork") if os.name == "posix" else None
    with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx,
                             initializer=_init_worker, initargs=(probe, os.getpid())) as pool:
        yield from pool.map(fn, items)


def scan(specs: list[ShardSpec], workers: int, probe: Probe | None = None) -> Partial:
    total, exact = Partial(), []

    def take(i: int, p: Partial) -> None:
        total.merge(p, exact=False)
        exact.append(p.exact)
        if len(exact) > 8:  # merge in groups: one sort per 8 shards, and memory bounded however many
            exact[0].merge(*exact[1:])
            del exact[1:]
        log.info(f"audit: shard {i + 1}/{len(specs)}")

    for i, p in enumerate(map_shards(scan_shard, specs, workers, probe)):
        take(i, p)
    total.exact = exact[0] if exact else total.exact
    if len(exact) > 1:
        total.exact.merge(*exact[1:], later=True)
    return total
