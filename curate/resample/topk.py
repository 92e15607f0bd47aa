"""The global Gumbel top-k (sampling without replacement): the N_d documents of domain d with the
largest key log w + Gumbel noise, over the whole corpus, found exactly in bounded memory.

Each key is a float64, mapped to a uint64 of the same order. Two histogram passes narrow down the
64-bit keys: the first counts keys by their top 16 bits, and the bin holding the N_d-th largest
key is kept; the second counts the keys of that bin by their next 16 bits. The keys that share the
resulting 32-bit prefix (a bin 2^-20 of a key's magnitude wide: a handful of documents) are then
collected, and the N_d-th largest (ties broken by shard, then row) is the cut. A document is drawn
when its (key, shard, row) is at or above the cut. Every step is a function of the shards' files:
the same for any -j or --task split.
"""

from __future__ import annotations

import numpy as np

_SIGN = np.uint64(1 << 63)


def sortable(keys: np.ndarray) -> np.ndarray:
    """float64 -> uint64 with the same order (negative floats have all their bits flipped)."""
    u = np.ascontiguousarray(keys, np.float64).view(np.uint64)
    return np.where(u & _SIGN, ~u, u | _SIGN)


def level_bins(u: np.ndarray, level: int, prefix: int | None) -> np.ndarray:
    """The level's 16-bit bin of each key whose higher bits equal the prefix (level 0: the top 16)."""
    if level == 0:
        return (u >> np.uint64(48)).astype(np.int64)
    keep = (u >> np.uint64(48)) == np.uint64(prefix)
    return ((u[keep] >> np.uint64(32)) & np.uint64(0xFFFF)).astype(np.int64)


def histogram(bins: np.ndarray) -> list[list[int]]:
    b, c = np.unique(bins, return_counts=True)
    return [[int(x), int(y)] for x, y in zip(b, c, strict=True)]


def cut(hists: list[list[list[int]]], need: int) -> tuple[int, int]:
    """(the bin holding the need-th largest key, keys in higher bins) from per-shard histograms."""
    total: dict[int, int] = {}
    for h in hists:
        for b, c in h:
            total[b] = total.get(b, 0) + c
    above = 0
    for b in sorted(total, reverse=True):
        if above + total[b] >= need:
            return b, above
        above += total[b]
    raise ValueError(f"only {above} keys for {need} draws")


def threshold(cands: list[list[int]], need: int) -> list[int]:
    """The need-th largest (key, -shard, -row[, -ring]) among [key, shard, row(, ring)] candidates."""
    order = sorted(cands, key=lambda x: (-x[0], *x[1:]))
    return order[need - 1]


def selected(u: np.ndarray, shard: int, rows: np.ndarray, cut_at: list[int], ring: np.ndarray | None = None) -> np.ndarray:
    """Whether each (key, shard, row[, ring]) is at or above the cut (soft-cap keys carry the ring index)."""
    k, s, r = np.uint64(cut_at[0]), cut_at[1], cut_at[2]
    above = u > k
    tie = u == k
    if shard < s:
        return above | tie
    if shard > s:
        return above
    first = rows < r if ring is not None else rows <= r
    if ring is not None:
        first |= (rows == r) & (ring <= cut_at[3])
    return above | (tie & first)
