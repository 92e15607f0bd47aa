"""--verify for MinHash dedup: keep a candidate edge only when the true Jaccard similarity of the
two documents' shingle sets reaches the threshold (LSH alone lets false positives chain clusters).

One task per shard s checks the edges whose second document lives in s. The first document of
an edge may live in any shard; its text is fetched by row from that shard's text column.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate import _native
from curate.io.parquet import iter_batches
from curate.stages.dedup_common import _write_table_atomic, read_label, row_of, shard_of
from curate.text.arrow import buffers, normalize


def _texts(stage, shard: int, rows: np.ndarray) -> pa.Array:
    """Normalised texts of the given rows (sorted, unique) of one input shard."""
    want = np.sort(rows)
    out, start = [], 0
    for b in iter_batches(stage.dataset.shards[shard].loc, columns=["text"]):
        lo, hi = np.searchsorted(want, [start, start + b.num_rows])
        if hi > lo:
            out.append(b.column("text").take(pa.array(want[lo:hi] - start)))
        start += b.num_rows
    arr = pa.concat_arrays(out) if out else pa.array([], pa.string())
    return normalize(arr, "simple")


def _shingles(norm: pa.Array, ngram: int, char_ngrams: int | None) -> list[np.ndarray]:
    offsets, data, wide = buffers(norm)
    from curate.stages.dedup_minhash import SEED

    return [np.frombuffer(_native.shingle_hashes(offsets, data, wide, char_ngrams is not None, char_ngrams or ngram, i, SEED), np.uint64)
            for i in range(len(norm))]


def _shingle_map(stage, gids: np.ndarray) -> dict[int, np.ndarray]:
    gids = np.unique(gids)
    out: dict[int, np.ndarray] = {}
    p = stage.params
    for s in np.unique(shard_of(gids)):
        mine = gids[shard_of(gids) == s]
        sets = _shingles(_texts(stage, int(s), row_of(mine)), p.ngram, p.char_ngrams)
        out.update(zip(mine.tolist(), sets, strict=True))
    return out


def verify_shard(stage, shard: int, ctx) -> tuple[int, int]:
    tables = []
    for p in range(stage.parts):
        t = read_label(stage.work(ctx, f"edges/p{p:05d}.parquet"), shard)
        if t is not None:
            tables.append(t)
    edges = pa.concat_tables(tables) if tables else pa.table({"a": pa.array([], pa.uint64()), "b": pa.array([], pa.uint64())})
    if edges.num_rows:  # the same pair comes from several bands (and partitions): check it once
        e = np.unique(np.stack([edges.column("a").to_numpy(), edges.column("b").to_numpy()], axis=1), axis=0)
        edges = pa.table({"a": pa.array(e[:, 0], pa.uint64()), "b": pa.array(e[:, 1], pa.uint64())})
    a, b = edges.column("a").to_numpy(), edges.column("b").to_numpy()
    sets = _shingle_map(stage, np.concatenate([a, b]))
    ok = np.zeros(len(a), bool)
    th = stage.params.threshold
    for i, (x, y) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
        sx, sy = sets[x], sets[y]
        inter = len(np.intersect1d(sx, sy, assume_unique=True))
        union = len(sx) + len(sy) - inter
        ok[i] = union > 0 and inter / union >= th
    kept = edges.filter(pa.array(ok))
    loc = stage.work(ctx, f"verified/{shard:06d}.parquet")
    loc.fs.create_dir(stage.work(ctx, "verified").path, recursive=True)
    _write_table_atomic(loc, [(0, kept)], kept.schema)
    return int(ok.sum()), len(a)
