"""curate dedup minhash: near duplicates by MinHash LSH, joined into clusters.

Phases:
  signature  (per shard)      simple-normalise, shingle, MinHash (C kernel), band keys; write
                              (key, gid) partitioned by key, and (gid, priority, id) per shard
  edges      (per partition)  group equal band keys; each member -> the group's smallest gid
  [verify]   (per shard)      with --verify: keep an edge only if the true Jaccard of the two
                              documents' shingle sets reaches the threshold
  components (one task)       union-find over the edges; per cluster the kept document by --keep
  apply      (per shard)      drop or annotate rows
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

from curate import _native
from curate.errors import UsageError
from curate.io.arrays import from_numpy, unique, unique_pairs
from curate.run.executor import Phase, Task, TaskContext
from curate.stages.dedup_common import (
    GlobalDedup,
    gids,
    part_of,
    priority,
    reduce_groups,
    shard_of,
    spill_dir,
    write_partitioned,
    write_work,
)
from curate.text.arrow import buffers, normalize

SEED = 0x5EED  # fixed: the permutations are part of the method, not of the run


@dataclass(frozen=True)
class MinhashParams:
    ngram: int = 5
    char_ngrams: int | None = None
    threshold: float = 0.8
    num_perm: int = 128
    bands: int | None = None
    rows: int | None = None
    verify: bool = True
    mode: str = "drop"
    keep: str = "first"


GRID = 201  # points per integral: picks the same (b, r) as datasketch's quad integration
COARSE, SHORTLIST = 41, 96  # a rough pass over every (b, r), then GRID points for the best few


def _areas(pairs: np.ndarray, threshold: float, points: int) -> tuple[np.ndarray, np.ndarray]:
    """False positive and false negative areas of each (bands, rows) row, by the trapezoid rule."""
    lo = np.linspace(0.0, threshold, points)
    hi = np.linspace(threshold, 1.0, points)
    b, r = pairs[:, :1], pairs[:, 1:]  # every (bands, rows) at once, against the grid of similarities
    fp = np.trapezoid(1 - (1 - lo**r) ** b, lo, axis=1)
    fn = np.trapezoid((1 - hi**r) ** b, hi, axis=1)
    return fp, fn


@lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """Bands x rows minimising the weighted false positive + false negative areas of the
    S-curve (the same criterion as datasketch's MinHashLSH).

    The full grid over all ~700 (b, r) at 128 permutations cost ~15 ms per process: a coarse grid
    shortlists candidates, and only those get the fine one (tests compare with the full search)."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)], np.float64)
    fp, fn = _areas(pairs, threshold, COARSE)
    short = np.sort(np.argsort(fp * fp_weight + fn * fn_weight, kind="stable")[:SHORTLIST])  # in (b, r) order
    fp, fn = _areas(pairs[short], threshold, GRID)
    best = int(short[np.argmin(fp * fp_weight + fn * fn_weight)])  # first minimum: the same as a loop
    return int(pairs[best, 0]), int(pairs[best, 1])


@lru_cache(maxsize=8)
def permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """rng = np.random.default_rng(SEED); a = rng.integers(1, 2**63, num_perm) * 2 + 1 (odd);
    b = rng.integers(0, 2**63, num_perm), both uint64 (curate.text.pcg: without numpy.random)."""
    from curate.text.pcg import PCG64

    rng = PCG64(SEED)
    a = np.array(rng.integers(1, 2**63, num_perm), np.uint64) * np.uint64(2) + np.uint64(1)
    b = np.array(rng.integers(0, 2**63, num_perm), np.uint64)
    return a, b


def signatures(text, ngram: int, char_ngrams: int | None, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """(signatures uint32 (n, num_perm), shingle counts) of a string array; see _native.minhash."""
    norm = normalize(text, "simple")
    offsets, data, wide = buffers(norm)
    n = len(norm)
    sig = np.empty((n, num_perm), np.uint32)
    cnt = np.empty(n, np.int64)
    a, b = permutations(num_perm)
    _native.minhash(offsets, data, wide, char_ngrams is not None, char_ngrams or ngram, a, b, sig, cnt, SEED)
    return sig, cnt


def shingle_set(text: str, ngram: int, char_ngrams: int | None) -> np.ndarray:
    """Sorted distinct shingle hashes of one text (for exact Jaccard checks)."""
    norm = normalize(pa.array([text]), "simple")
    offsets, data, wide = buffers(norm)
    values, _ = _native.shingle_sets(offsets, data, wide, char_ngrams is not None, char_ngrams or ngram, SEED)
    return np.frombuffer(values, np.uint64)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 and len(b) == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class DedupMinhash(GlobalDedup):
    name = "dedup_minhash"
    reason = "near_duplicate"
    bytes_per_row = 16

    def __init__(self, dataset, params: MinhashParams, memory_per_task: int):
        p = params
        if not 0.0 < p.threshold <= 1.0:
            raise UsageError(f"--threshold {p.threshold}: must be in (0, 1]")
        if (p.bands is None) != (p.rows is None):
            raise UsageError("--bands and --rows go together", hint="give both, or neither to derive them from --threshold")
        if p.bands is not None and p.bands * p.rows > p.num_perm:
            raise UsageError(f"--bands {p.bands} x --rows {p.rows} needs {p.bands * p.rows} permutations, more than --num-perm {p.num_perm}")
        if p.ngram < 1 or (p.char_ngrams is not None and p.char_ngrams < 1):
            raise UsageError("n-gram sizes must be at least 1")
        super().__init__(dataset, params, memory_per_task)
        # Verified (the default), false positives are caught later, so the banding favours recall
        # (false negatives weighted 0.95). With --no-verify every candidate pair is believed: balance
        # false positives and negatives (datasketch's criterion).
        weights = (0.05, 0.95) if p.verify else (0.5, 0.5)
        self.bands, self.rows = (p.bands, p.rows) if p.bands is not None else optimal_bands(p.threshold, p.num_perm, *weights)

    def manifest_params(self) -> dict:
        return super().manifest_params() | {"lsh_bands": self.bands, "lsh_rows": self.rows}

    def rows_per_doc(self) -> int:
        return self.bands

    def middle_phases(self, groups: list[Task]) -> list[Phase]:
        phases = [Phase("edges", groups, "run_edges")]
        if self.params.verify:
            shards = [Task(f"s{i:06d}", i) for i in range(len(self.dataset.shards))]
            phases.append(Phase("fetch", shards, "run_fetch"))
            phases.append(Phase("verify", shards, "run_verify"))
        phases.append(Phase("components", [Task("all", None)], "run_components"))
        return phases

    # -- signature -------------------------------------------------------------------------
    def run_signature(self, task: Task, ctx: TaskContext) -> None:
        shard = self.shard_index(task)
        keys, nodes = [], []
        for row, b in self.read_shard(task, self.columns_needed()):
            sig, cnt = signatures(b.column("text"), self.params.ngram, self.params.char_ngrams, self.params.num_perm)
            g = gids(shard, row, b.num_rows)
            bk = np.empty((b.num_rows, self.bands), np.uint64)
            _native.band_keys(sig, self.params.num_perm, self.bands, self.rows, bk)
            has = cnt > 0  # a document with no shingle (empty after normalising) is nobody's duplicate
            keys.append(pa.table({"key": from_numpy(bk[has].ravel()), "gid": from_numpy(np.repeat(g[has], self.bands))}))
            nodes.append(pa.table({"gid": from_numpy(g), "prio": from_numpy(priority(b, self.keep)), "id": b.column("id")}))
            ctx.result.count("no_shingles", int((~has).sum()))
            ctx.progress(b.num_rows, 0)
        t = pa.concat_tables(keys) if keys else pa.table({"key": pa.array([], pa.uint64()), "gid": pa.array([], pa.uint64())})
        write_partitioned(self.work(ctx, f"bands/{shard:06d}.arrow"), t, part_of(t.column("key").to_numpy(), self.parts))
        nt = pa.concat_tables(nodes) if nodes else pa.table({"gid": pa.array([], pa.uint64()), "prio": pa.array([], pa.float64()), "id": pa.array([], pa.string())})
        write_work(self.work(ctx, f"nodes/{shard:06d}.arrow"), [(0, nt)], nt.schema)

    # -- edges -----------------------------------------------------------------------------
    def run_edges(self, task: Task, ctx: TaskContext) -> None:
        p = task.spec
        sources = [(self.work(ctx, f"bands/{i:06d}.arrow"), p) for i in range(len(self.dataset.shards))]
        found: list[np.ndarray] = []

        def emit(t, rep_t, rep_idx, size):
            g = t.column("gid").to_numpy()
            rep = rep_t.column("gid").to_numpy()[rep_idx]
            m = (size > 1) & (g != rep)
            if m.any():
                found.append(np.stack([rep[m], g[m]], axis=1))

        reduce_groups(sources, ["key", "gid"], ["key"], ["gid"], self.memory_per_task,
                      spill_dir(ctx.out, "edges", task.name), emit,
                      used_bits=int(self.parts).bit_length() - 1, counters=ctx.result.counters)
        e = unique_pairs(*np.concatenate(found).T) if found else np.empty((0, 2), np.uint64)
        t = pa.table({"a": from_numpy(e[:, 0]), "b": from_numpy(e[:, 1])})
        loc = self.work(ctx, f"edges/p{p:05d}.arrow")
        # labelled by the shard of b, so that verify (per shard) reads only its own edges
        write_partitioned(loc, t, shard_of(e[:, 1]) if len(e) else np.empty(0, np.int64))
        if self.params.verify:  # and the first endpoints by their shard, for the fetch phase
            loc = self.work(ctx, f"edges_a/p{p:05d}.arrow")
            a = unique(e[:, 0])
            write_partitioned(loc, pa.table({"a": from_numpy(a)}), shard_of(a))
        ctx.result.count("candidate_pairs", len(e))

    # -- verify ----------------------------------------------------------------------------
    def run_fetch(self, task: Task, ctx: TaskContext) -> None:
        from curate.stages.dedup_verify import fetch_shard

        ctx.result.count("shingle_sets", fetch_shard(self, task.spec, ctx))

    def run_verify(self, task: Task, ctx: TaskContext) -> None:
        from curate.stages.dedup_verify import verify_shard

        kept, checked = verify_shard(self, task.spec, ctx)
        ctx.result.count("pairs_checked", checked)
        ctx.result.count("pairs_confirmed", kept)

    # -- components ------------------------------------------------------------------------
    def edge_files(self, ctx: TaskContext) -> list:
        if self.params.verify:
            return [self.work(ctx, f"verified/{i:06d}.arrow") for i in range(len(self.dataset.shards))]
        return [self.work(ctx, f"edges/p{p:05d}.arrow") for p in range(self.parts)]

    def run_components(self, task: Task, ctx: TaskContext) -> None:
        from curate.stages.dedup_components import run_components

        run_components(self, ctx)

    # -- apply -----------------------------------------------------------------------------
    def load_decisions(self, ctx: TaskContext, shard: int) -> pa.Table:
        from curate.stages.dedup_components import load_decisions

        return load_decisions(self, ctx, shard)
