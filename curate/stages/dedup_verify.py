"""--verify for MinHash dedup: keep a candidate edge (a, b) only when the true Jaccard similarity
of the two documents' shingle sets reaches the threshold (LSH alone lets false positives chain
clusters together).

Edges are labelled by the shard of b (edges-p*) and their a ends by the shard of a (edges_a-p*).
  fetch  (per shard t): the shingle sets of every edge end that lives in t (a ends and b ends)
                        -> shingles-t, sorted by gid, in small batches with their gid ranges
  verify (per shard s): the edges whose b lives in s; both ends' sets read from the shingles
                        files, only the batches that hold them
Each shard's text is read once (by fetch); nothing holds more than its own shard's candidates.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate import _native
from curate.io.arrays import from_numpy, take, unique, unique_pairs
from curate.stages.dedup_common import WorkFile, read_label, row_of, shard_of, write_work
from curate.text.arrow import buffers, normalize

SET_ROW_GROUP = 1024


def _labelled(stage, ctx, folder: str, shard: int, columns: list[str]) -> pa.Table | None:
    tables = [t for p in range(stage.parts) if (t := read_label(stage.work(ctx, f"{folder}/p{p:05d}.arrow"), shard, columns)) is not None]
    return pa.concat_tables(tables) if tables else None


def _sets(stage, shard: int, rows: np.ndarray) -> pa.ListArray:
    """Shingle sets (sorted distinct uint64) of the given sorted rows of one input shard."""
    from curate.stages.dedup_minhash import SEED

    texts, start = [], 0
    for b in stage.shard_batches(shard, ["text"]):
        lo, hi = np.searchsorted(rows, [start, start + b.num_rows])
        if hi > lo:
            texts.append(take(b.column("text"), rows[lo:hi] - start))
        start += b.num_rows
    norm = normalize(pa.concat_arrays(texts) if texts else pa.array([], pa.string()), "simple")
    offsets, data, wide = buffers(norm)
    p = stage.params
    values, lens = _native.shingle_sets(offsets, data, wide, p.char_ngrams is not None, p.char_ngrams or p.ngram, SEED)
    offs = np.concatenate([[0], np.cumsum(np.frombuffer(lens, np.int64))])
    return pa.LargeListArray.from_arrays(from_numpy(offs.astype(np.int64)), from_numpy(np.frombuffer(values, np.uint64)))


def fetch_shard(stage, shard: int, ctx) -> int:
    ends = [t.column(c).to_numpy() for folder, c in (("edges_a", "a"), ("edges", "b"))
            if (t := _labelled(stage, ctx, folder, shard, [c])) is not None]
    gids = unique(np.concatenate(ends)) if ends else np.empty(0, np.uint64)
    sets = _sets(stage, shard, row_of(gids))
    out = pa.table({"gid": from_numpy(gids), "shingles": sets})
    loc = stage.work(ctx, f"shingles/{shard:06d}.arrow")
    chunks = [(i, out.slice(i, SET_ROW_GROUP)) for i in range(0, max(out.num_rows, 1), SET_ROW_GROUP)]
    write_work(loc, chunks, out.schema, ranges="gid")
    return len(gids)


def _remote_sets(stage, ctx, gids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted gids, their sets' values, offsets) from the shingles files, reading only the
    batches that hold them."""
    found_g, found_v, found_len = [], [], []
    for s in unique(shard_of(gids)):
        want = gids[shard_of(gids) == s]
        loc = stage.work(ctx, f"shingles/{int(s):06d}.arrow")
        f = WorkFile(loc)
        for g, (gmin, gmax) in enumerate(f.meta["ranges"]):
            lo, hi = np.searchsorted(want, [np.uint64(gmin), np.uint64(gmax) + np.uint64(1)])
            if hi == lo:
                continue
            t = f.batch(g)
            tg = t.column("gid").to_numpy()
            w = want[lo:hi]  # sorted, distinct
            at = np.minimum(np.searchsorted(w, tg), len(w) - 1)
            pick = np.flatnonzero(w[at] == tg)
            col = t.column("shingles")
            offs = col.offsets.to_numpy()  # no null lists; into col.values, which a slice does not cut
            lens = offs[pick + 1] - offs[pick]
            found_g.append(tg[pick])
            found_v.append(_gather(col.values.to_numpy(), offs[pick], lens))
            found_len.append(lens)
    if not found_g:
        return np.empty(0, np.uint64), np.empty(0, np.uint64), np.zeros(1, np.int64)
    g, v, lens = np.concatenate(found_g), np.concatenate(found_v), np.concatenate(found_len)
    starts = np.concatenate([[0], np.cumsum(lens)])[:-1]
    order = np.argsort(g)  # reorder the sets by gid without a Python loop
    return g[order], _gather(v, starts[order], lens[order]), np.concatenate([[0], np.cumsum(lens[order])]).astype(np.int64)


def _gather(values: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """values[starts[0]:starts[0]+lens[0]], then the next run, ... concatenated, in one gather."""
    ends = np.cumsum(lens)
    return values[np.repeat(starts - (ends - lens), lens) + np.arange(ends[-1] if len(ends) else 0)]


def verify_shard(stage, shard: int, ctx) -> tuple[int, int]:
    t = _labelled(stage, ctx, "edges", shard, ["a", "b"])
    if t is not None and t.num_rows:  # the same pair comes from several bands: check it once
        e = unique_pairs(t.column("a").to_numpy(), t.column("b").to_numpy())
    else:
        e = np.empty((0, 2), np.uint64)
    a, b = e[:, 0], e[:, 1]
    g, v, o = _remote_sets(stage, ctx, unique(np.concatenate([a, b])))  # b's sets too: fetch made them
    ia, ib = np.searchsorted(g, a).astype(np.int64), np.searchsorted(g, b).astype(np.int64)
    v = np.ascontiguousarray(v, np.uint64)
    jac = np.empty(len(a), np.float64)
    _native.jaccard_pairs(v, o, ia, v, o, ib, jac)
    ok = jac >= stage.params.threshold
    kept = pa.table({"a": from_numpy(a[ok]), "b": from_numpy(b[ok])})
    loc = stage.work(ctx, f"verified/{shard:06d}.arrow")
    write_work(loc, [(0, kept)], kept.schema)
    return int(ok.sum()), len(a)
