"""Corpus-wide near-duplicate rate (full audit). The MinHash sample S (the --near-sample rows with
the smallest row keys, fixed by the row counts before any text is read) is signed in a first, light
pass; the main pass then signs every document of the corpus and looks its LSH band keys up in S's
(sorted arrays, one per band). A candidate (document x, sampled s), x != s, counts when the
signatures agree on >= threshold x num_perm values (the MinHash estimate of Jaccard, as in the
in-sample check). A sampled document "has a near duplicate" when any x in the corpus counts, so
the share of S that has one is an unbiased estimate of the corpus rate: a binomial proportion,
Wilson interval with the finite-population correction.

Each shard marks the sampled documents it found a partner for; the parent ORs the marks, which is
the same set for any -j (the property is per pair; skipping an already marked s only saves work).
Memory per process: S's signatures and band tables (m x 128 x 4 + m x bands x 16 bytes).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pyarrow as pa

from curate import _native
from curate.audit.sketches import row_keys
from curate.io.parquet import iter_batches, open_parquet

NEAR_ROWS = 6  # LSH rows per band: 21 bands of 6 catch a pair at 0.8 with probability 0.998
BITMAP_BITS = 27  # 16 MB
MAX_PAIRS = 1 << 21  # candidate pairs checked at once (bounds memory on heavily duplicated text)
Z = 1.96


def signatures(text: pa.Array, ngram: int, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    from curate.stages.dedup_minhash import signatures as sign

    return sign(text, ngram, None, num_perm)


@functools.lru_cache(maxsize=4)
def permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray, int]:
    """`dedup minhash`'s (a, b) and shingle seed: for _native.minhash_hll, signatures equal to
    signatures()' (tested)."""
    from curate.stages.dedup_minhash import SEED
    from curate.stages.dedup_minhash import permutations as perms

    return (*perms(num_perm), SEED)


def sample_signatures(loc, first_gid: int, text: str, t_near: int, seed: int, ngram: int, num_perm: int):
    """(row keys, signatures) of one shard's rows in S; row groups without one are not read. Empty
    texts (no shingle, no signature) are left out of S, as in the in-sample check."""
    pf = open_parquet(loc)
    keys_out, sigs_out = [], []
    start = first_gid
    for rg in range(pf.num_row_groups):
        n = pf.metadata.row_group(rg).num_rows
        keys = row_keys(np.arange(start, start + n, dtype=np.uint64), seed)
        start += n
        if not (keys <= np.uint64(t_near)).any():
            continue
        off = 0
        for b in iter_batches(loc, columns=[text], pf=pf, row_groups=[rg]):
            k = keys[off:off + b.num_rows]
            off += b.num_rows
            sel = k <= np.uint64(t_near)
            if not sel.any():
                continue
            sig, cnt = signatures(b.column(0).filter(pa.array(sel)), ngram, num_perm)
            ok = cnt > 0
            keys_out.append(k[sel][ok])
            sigs_out.append(sig[ok])
    if not keys_out:
        return np.empty(0, np.uint64), np.empty((0, num_perm), np.uint32)
    return np.concatenate(keys_out), np.concatenate(sigs_out)


class Probe:
    """S's band keys, one sorted table per band, holding the sampled documents not yet marked."""

    def __init__(self, keys: np.ndarray, sigs: np.ndarray, threshold: float, num_perm: int):
        self.keys, self.sigs = keys, np.ascontiguousarray(sigs)
        self.need = math.ceil(threshold * num_perm - 1e-9)
        self.num_perm, self.bands = num_perm, num_perm // NEAR_ROWS
        self.bk = _band_keys(self.sigs, num_perm, self.bands)
        self.found = np.zeros(len(keys), bool)
        self._build()

    def _build(self) -> None:
        live = np.flatnonzero(~self.found)
        self._live_at_build = len(live)
        # a bitmap of the top 27 bits of every band key: a document whose keys all miss it (most
        # of them) skips the binary searches; at 100,000 x 21 keys ~1.6% of lookups pass falsely
        u = self.bk[live].ravel() >> np.uint64(64 - BITMAP_BITS)
        self.bitmap = np.zeros(1 << (BITMAP_BITS - 3), np.uint8)
        np.bitwise_or.at(self.bitmap, u >> np.uint64(3), (np.uint8(1) << (u & np.uint64(7)).astype(np.uint8)))
        self.tables = []
        for j in range(self.bands):
            col = self.bk[live, j]
            o = np.argsort(col, kind="stable")
            self.tables.append((col[o], live[o]))

    def add(self, keys: np.ndarray, sigs: np.ndarray) -> None:
        """Mark every sampled document that one of these documents (row keys, signatures; empty
        ones left out) is a near duplicate of."""
        if not len(keys) or not self._live_at_build:
            return
        bk = _band_keys(sigs, self.num_perm, self.bands)
        top = bk >> np.uint64(64 - BITMAP_BITS)
        maybe = (self.bitmap[top >> np.uint64(3)] >> (top & np.uint64(7)).astype(np.uint8)) & np.uint8(1)
        docs, samp = [], []
        for j, (tk, ts) in enumerate(self.tables):
            if not len(tk):
                break
            rows = np.flatnonzero(maybe[:, j])
            q = bk[rows, j]
            lo = np.searchsorted(tk, q, "left")
            hit = np.flatnonzero(tk[np.minimum(lo, len(tk) - 1)] == q)
            if not len(hit):
                continue
            q, lo, hit = q[hit], lo[hit], rows[hit]
            c = np.searchsorted(tk, q, "right") - lo
            d = np.repeat(hit, c)
            # positions lo..hi-1 of each hit, laid end to end
            pos = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c) + np.repeat(lo, c)
            docs.append(d)
            samp.append(ts[pos])
            if sum(map(len, docs)) > MAX_PAIRS:
                self._check(np.concatenate(docs), np.concatenate(samp), keys, sigs)
                docs, samp = [], []
        if docs:
            self._check(np.concatenate(docs), np.concatenate(samp), keys, sigs)
        if self._live_at_build - int((~self.found).sum()) > max(64, self._live_at_build // 3):
            self._build()  # marked ones out of the tables: a heavily duplicated S stops costing pairs

    def _check(self, d: np.ndarray, s: np.ndarray, keys: np.ndarray, sigs: np.ndarray) -> None:
        keep = (~self.found[s]) & (keys[d] != self.keys[s])  # not already marked, not itself
        d, s = d[keep], s[keep]
        if not len(d):
            return
        # a first look at 32 values drops clear misses (below half: a pair at 0.8 falls there with
        # probability ~1e-5), then a pair met in several bands is checked once (a sort: numpy's
        # hash-based unique is several times slower on these)
        first = np.empty(len(d), bool)
        for lo in range(0, len(d), 1 << 15):
            dd, ss = d[lo:lo + (1 << 15)], s[lo:lo + (1 << 15)]
            first[lo:lo + (1 << 15)] = (sigs[dd, :32] == self.sigs[ss, :32]).sum(1) >= 16
        m = np.int64(len(self.keys))
        code = np.sort(d[first].astype(np.int64) * m + s[first])
        code = code[np.concatenate(([True], code[1:] != code[:-1]))] if len(code) else code
        d, s = code // m, code % m
        for lo in range(0, len(d), 1 << 15):
            dd, ss = d[lo:lo + (1 << 15)], s[lo:lo + (1 << 15)]
            ok = (sigs[dd] == self.sigs[ss]).sum(1) >= self.need
            self.found[ss[ok]] = True


def _band_keys(sigs: np.ndarray, num_perm: int, bands: int) -> np.ndarray:
    out = np.empty((len(sigs), bands), np.uint64)
    if len(sigs):
        _native.band_keys(np.ascontiguousarray(sigs), num_perm, bands, NEAR_ROWS, out)
    return out


def wilson(k: int, n: int, population: int | None = None) -> list[float]:
    """95% Wilson interval of k successes in n draws; with the population size, the sampling
    variance shrinks by the finite-population correction (N - n) / (N - 1) (0 when n == N)."""
    if n == 0:
        return [0.0, 1.0]
    fpc = (population - n) / (population - 1) if population and population > 1 else 1.0
    if fpc <= 0:
        return [k / n, k / n]
    z2 = Z * Z * fpc
    p = k / n
    d = 1 + z2 / n
    c = (p + z2 / (2 * n)) / d
    h = math.sqrt(z2) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / d
    return [max(0.0, c - h), min(1.0, c + h)]
