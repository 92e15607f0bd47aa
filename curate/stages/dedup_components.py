"""The components phase of MinHash dedup, in bounded memory.

Documents get dense numbers (shard offsets + row) and one int64 parent each, in a plain array
when 3 x 8 bytes per document fit the task's share of --memory, else in a memory-mapped file
under _work/ (the kernel pages it; the process holds only chunks). Edges stream through the C
union-find one row group at a time; then each shard in turn yields its decisions. Only the
cluster representatives' ids are held at once.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate import _native
from curate.io.arrays import cast, from_numpy, take, unique
from curate.stages.dedup_common import (
    DECISION_SCHEMA,
    GID_SHIFT,
    WorkFile,
    read_work,
    row_of,
    shard_of,
    write_work,
)

CHUNK = 1 << 22  # documents per step of the sequential passes


def _array(stage, ctx, name: str, n: int, dtype, fill) -> np.ndarray:
    """An n-element array: in memory when small enough, else a file-backed memory map."""
    if 3 * 8 * n <= stage.memory_per_task:
        a = np.empty(n, dtype)
    else:
        loc = ctx.out.child(f"_work/components/{name}.bin")
        loc.fs.create_dir(ctx.out.child("_work/components").path, recursive=True)
        a = np.memmap(loc.path, dtype=dtype, mode="w+", shape=(max(n, 1),))[:n]
        ctx.result.count("memory_mapped_arrays")
    for lo in range(0, n, CHUNK):
        a[lo : lo + CHUNK] = fill(lo, min(n, lo + CHUNK)) if callable(fill) else fill
    return a


def run_components(stage, ctx) -> None:
    start = np.concatenate([[0], np.cumsum(stage.shard_rows)]).astype(np.int64)
    n = int(start[-1])

    def dense(g: np.ndarray) -> np.ndarray:
        return start[shard_of(g)] + row_of(g)

    parent = _array(stage, ctx, "parent", n, np.int64, lambda lo, hi: np.arange(lo, hi, dtype=np.int64))
    edges = 0
    for loc in stage.edge_files(ctx):
        f = WorkFile(loc)
        for g in f.groups(None):
            t = f.batch(g, ["a", "b"])
            a, b = dense(t.column("a").to_numpy()), dense(t.column("b").to_numpy())
            _native.union_find(a, b, parent, False, False)
            edges += len(a)
    _native.union_find(np.empty(0, np.int64), np.empty(0, np.int64), parent, False, True)  # flatten

    # component sizes (a root is the smallest member, so sizes land at or before each member)
    size = _array(stage, ctx, "size", n, np.int64, 0)
    for lo in range(0, n, CHUNK):
        np.add.at(size, parent[lo : lo + CHUNK], 1)

    best = _representatives(stage, ctx, parent, size, start)
    _decisions(stage, ctx, parent, size, start, best)
    ctx.result.count("candidate_edges", edges)


def _node_files(stage, ctx, s: int) -> pa.Table:
    loc = stage.work(ctx, f"nodes/{s:06d}.arrow")
    return read_work(loc)


def _representatives(stage, ctx, parent, size, start) -> np.ndarray:
    """best[root] = dense number of the member kept: the smallest (priority, number)."""
    n = len(parent)
    best = _array(stage, ctx, "best", n, np.int64, lambda lo, hi: np.arange(lo, hi, dtype=np.int64))
    if stage.keep.kind == "first":
        return best  # the root is the smallest number, hence the first document
    best_prio = _array(stage, ctx, "best_prio", n, np.float64, np.inf)
    for s in range(len(stage.dataset.shards)):
        lo, hi = int(start[s]), int(start[s + 1])
        if hi == lo:
            continue
        root = np.asarray(parent[lo:hi])
        member = np.asarray(size[root]) > 1
        if not member.any():
            continue
        prio = _node_files(stage, ctx, s).column("prio").to_numpy()[member]
        idx = np.arange(lo, hi, dtype=np.int64)[member]
        r = root[member]
        order = np.lexsort((idx, prio, r))  # per root: smallest priority, then smallest number
        first = np.ones(len(order), bool)
        first[1:] = r[order][1:] != r[order][:-1]
        cand_root, cand_prio, cand_idx = r[order][first], prio[order][first], idx[order][first]
        better = (cand_prio < best_prio[cand_root]) | (cand_prio == best_prio[cand_root]) & (cand_idx < best[cand_root])
        # shards are visited in order, so a tie on priority already favours the earlier number
        best_prio[cand_root[better]] = cand_prio[better]
        best[cand_root[better]] = cand_idx[better]
    return best


def _decisions(stage, ctx, parent, size, start, best) -> None:
    """Per shard: (gid, rep_gid, rep_id, size) of every row in a cluster of two or more."""
    shards = len(stage.dataset.shards)
    # the representatives' ids: one per cluster, fetched shard by shard
    reps = []
    for s in range(shards):
        lo, hi = int(start[s]), int(start[s + 1])
        root = np.asarray(parent[lo:hi])
        is_root = (root == np.arange(lo, hi)) & (np.asarray(size[lo:hi]) > 1)
        reps.append(np.asarray(best[lo:hi])[is_root])
    rep_dense = unique(np.concatenate(reps)) if reps else np.empty(0, np.int64)
    rep_shard = np.searchsorted(start, rep_dense, side="right") - 1
    rep_ids: list[pa.Array] = []
    for s in unique(rep_shard):
        mine = rep_dense[rep_shard == s] - start[s]
        rep_ids.append(take(_node_files(stage, ctx, int(s)).column("id").combine_chunks(), mine))
    rep_id_all = pa.concat_arrays(rep_ids) if rep_ids else pa.array([], pa.string())
    rep_gid_all = (rep_shard.astype(np.uint64) << np.uint64(GID_SHIFT)) + (rep_dense - start[rep_shard]).astype(np.uint64)

    clusters = members = 0
    for s in range(shards):
        lo, hi = int(start[s]), int(start[s + 1])
        root = np.asarray(parent[lo:hi])
        sz = np.asarray(size[root]) if hi > lo else np.empty(0, np.int64)
        m = sz > 1
        rep = np.asarray(best[root[m]])
        k = np.searchsorted(rep_dense, rep)
        t = cast(pa.table({
            "gid": from_numpy((np.uint64(s) << np.uint64(GID_SHIFT)) + np.flatnonzero(m).astype(np.uint64)),
            "rep_gid": from_numpy(rep_gid_all[k].astype(np.uint64)),
            "rep_id": take(rep_id_all, k) if len(k) else pa.array([], pa.string()),
            "size": from_numpy(sz[m].astype(np.int64)),
        }), DECISION_SCHEMA)
        write_work(stage.work(ctx, f"decide/{s:06d}.arrow"), [(0, t)], DECISION_SCHEMA)
        members += int(m.sum())
        clusters += int((root[m] == np.arange(lo, hi)[m]).sum())
    ctx.result.count("clusters", clusters)
    ctx.result.count("duplicated_documents", members)


def load_decisions(stage, ctx, shard: int) -> pa.Table:
    loc = stage.work(ctx, f"decide/{shard:06d}.arrow")
    return read_work(loc)  # written in row order already
