"""Mergeable summaries with bounded memory. Each shard task fills its own; the parent merges them in
shard order, so the result is the same for any -j."""

from __future__ import annotations

import numpy as np

MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def row_keys(gids: np.ndarray, seed: int) -> np.ndarray:
    """A uniform 64-bit key per global row (splitmix64 of gid + seed): the rows with the k smallest
    keys are a seeded uniform sample of k rows, the same whichever process sees them."""
    with np.errstate(over="ignore"):
        z = gids.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def sum_by_key(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct keys sorted, their counts summed). The sketches merge sorted runs (their own keys
    and each new or merged sketch's): numpy's stable sort (timsort) merges them ~3x faster than
    np.unique's inverse with a weighted bincount."""
    o = np.argsort(keys, kind="stable")
    keys, counts = keys[o], counts[o].astype(np.int64)
    if not len(keys):
        return keys, counts
    first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
    return keys[first], np.add.reduceat(counts, first)


class BottomK:
    """The k smallest keys seen, without their rows: the key threshold of a uniform sample of k."""

    def __init__(self, k: int):
        self.k = k
        self.keys = np.empty(0, np.uint64)

    def add(self, keys: np.ndarray) -> None:
        keys = np.concatenate([self.keys, keys])
        if len(keys) > self.k:
            keys = np.partition(keys, self.k - 1)[: self.k]
        self.keys = keys

    def threshold(self) -> int:
        """Rows with key <= this are the sample (all rows when there are fewer than k)."""
        return int(self.keys.max()) if len(self.keys) == self.k and self.k > 0 else (2**64 - 1 if self.k else -1)


class ExactDup:
    """Counts per document hash, over a hash-defined subset: every copy of a document has the same
    hash, so keeping hashes below a threshold keeps whole duplicate clusters. When more than
    `capacity` distinct hashes are held the threshold halves (adaptive distinct sampling, Gibbons
    2001); while level == 0 the counts are exact."""

    def __init__(self, capacity: int = 1 << 21):
        self.capacity = capacity
        self.level = 0
        self.keys = np.empty(0, np.uint64)
        self.counts = np.empty(0, np.int64)
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._later: tuple[ExactDup, ...] = ()

    def _limit(self) -> np.uint64:
        return MASK64 >> np.uint64(self.level) if self.level < 64 else np.uint64(0)

    def add(self, h: np.ndarray) -> None:
        h = h[h <= self._limit()]
        self._pending.append(h)
        self._pending_n += len(h)
        if self._pending_n > self.capacity:
            self.compact()

    def compact(self) -> None:
        """Count the pending hashes into the sorted keys (a worker does this before it returns)."""
        if self._later:
            others, self._later = self._later, ()
            self.merge(*others)
        if self._pending:
            k, c = np.unique(np.concatenate(self._pending), return_counts=True)
            self._merge(k, c.astype(np.int64))
            self._pending, self._pending_n = [], 0

    def _merge(self, k: np.ndarray, c: np.ndarray) -> None:
        self.keys, self.counts = sum_by_key(np.concatenate([self.keys, k]), np.concatenate([self.counts, c]))
        while len(self.keys) > self.capacity:
            self.level += 1
            keep = self.keys <= self._limit()
            self.keys, self.counts = self.keys[keep], self.counts[keep]

    def merge(self, *others: ExactDup, later: bool = False) -> None:
        """Merge any number at once: one sort over all of them, not one per merge. later: at the
        next compact() (the parent's last merge runs beside the near-duplicate check)."""
        if later:
            self._later += others
            return
        for o in (self, *others):
            o.compact()
        self.level = max(o.level for o in (self, *others))
        keys, counts = [], []
        for o in (self, *others):
            keep = o.keys <= self._limit()
            keys.append(o.keys[keep])
            counts.append(o.counts[keep])
        self.keys, self.counts = np.empty(0, np.uint64), np.empty(0, np.int64)
        self._merge(np.concatenate(keys), np.concatenate(counts))

    def summary(self) -> dict:
        self.compact()
        c = self.counts
        docs, distinct = int(c.sum()), len(c)
        f = 2.0 ** -self.level
        rate = (docs - distinct) / docs if docs else 0.0
        # Ratio estimator over sampled clusters; its linearised variance (0 when nothing was dropped).
        d = (c - 1) - rate * c
        se = float(np.sqrt((1 - f) * np.sum(d.astype(np.float64) ** 2)) / docs) if docs else 0.0
        sizes, n = np.unique(c, return_counts=True) if len(c) else (np.empty(0, np.int64), np.empty(0, np.int64))
        return {
            "rate": rate, "ci95": [max(0.0, rate - 1.96 * se), min(1.0, rate + 1.96 * se)],
            "exact": self.level == 0, "hash_fraction": f, "docs_seen": docs,
            "distinct_docs_est": distinct / f, "duplicate_docs_est": (docs - distinct) / f,
            "cluster_sizes": [[int(s), round(float(k) / f)] for s, k in zip(sizes, n, strict=True)],
        }


class HeavyHitters:
    """Misra-Gries summary of weighted items (mergeable: Agarwal et al. 2012) with a sample text per
    item. Every count it reports is at most `error` below the true count (`error` is the total
    decrement, never more than N/(k+1)), and every item seen more than `error` times is kept."""

    def __init__(self, k: int = 4096, text_chars: int = 160):
        self.k = k
        self.text_chars = text_chars
        self.keys = np.empty(0, np.uint64)
        self.counts = np.empty(0, np.int64)
        self.texts: dict[int, str] = {}
        self.error = 0
        self.total = 0

    def add(self, keys: np.ndarray, counts: np.ndarray, texts) -> None:
        """keys unique within the call; texts: a callable i -> text of keys[i]. A text is kept once an
        item's count reaches 2: that happens in a call that holds the item, so it can be asked then."""
        self.total += int(counts.sum())
        self._combine(keys, counts)
        pos = np.minimum(np.searchsorted(self.keys, keys), max(len(self.keys) - 1, 0))
        live = (self.keys[pos] == keys) if len(self.keys) else np.zeros(len(keys), bool)
        for i in np.flatnonzero(live & (self.counts[pos] >= 2) if len(self.keys) else live):
            h = int(keys[i])
            if h not in self.texts:
                self.texts[h] = texts(int(i))[: self.text_chars]

    def _combine(self, keys: np.ndarray, counts: np.ndarray) -> None:
        u, c = sum_by_key(np.concatenate([self.keys, keys]), np.concatenate([self.counts, counts]))
        if len(u) > self.k:
            cut = int(np.partition(c, len(c) - self.k - 1)[len(c) - self.k - 1])  # the (k+1)-th largest
            c = c - cut
            self.error += cut
            keep = c > 0
            u, c = u[keep], c[keep]
        self.keys, self.counts = u, c
        if len(self.texts) > 4 * self.k:  # drop texts of items no longer counted, now and then
            live = set(self.keys.tolist())
            self.texts = {h: t for h, t in self.texts.items() if h in live}

    def merge(self, other: HeavyHitters) -> None:
        self.total += other.total
        for h, t in other.texts.items():
            self.texts.setdefault(h, t)
        self.error += other.error
        self._combine(other.keys, other.counts)

    def top(self, n: int, min_count: int = 2) -> list[dict]:
        order = np.lexsort((self.keys, -self.counts))[:n]
        return [{"count": int(self.counts[i]), "text": self.texts.get(int(self.keys[i]), "")}
                for i in order if self.counts[i] >= min_count]


# HLL over 32-bit hashes, the registers filled in numpy and read by datasketch's HyperLogLog: its
# update() takes one value per Python call (~1 µs); this is the same register rule in bulk.
HLL_P = 14


def hll_registers(hashes32: np.ndarray, p: int = HLL_P, reg: np.ndarray | None = None) -> np.ndarray:
    reg = np.zeros(1 << p, np.int8) if reg is None else reg
    if len(hashes32) == 0:
        return reg
    h = hashes32.astype(np.uint32)
    idx = (h & np.uint32((1 << p) - 1)).astype(np.int64)
    bits = h >> np.uint32(p)
    max_rank = 32 - p
    # datasketch: rank = max_rank - bit_length(bits) + 1
    bl = np.zeros(len(bits), np.int8)
    nz = bits > 0
    bl[nz] = np.floor(np.log2(bits[nz].astype(np.float64))).astype(np.int8) + 1
    rank = (max_rank - bl + 1).astype(np.int8)
    np.maximum.at(reg, idx, rank)
    return reg


def _datasketch_hll():
    """datasketch's HyperLogLog class. Its package __init__ imports MinHashLSH and through it scipy
    (~1 s); when datasketch is not loaded yet, load the hyperloglog module alone."""
    import importlib
    import importlib.util
    import sys
    import types

    if "datasketch" in sys.modules:
        return importlib.import_module("datasketch.hyperloglog").HyperLogLog
    spec = importlib.util.find_spec("datasketch")
    pkg = types.ModuleType("datasketch")
    pkg.__path__, pkg.__spec__ = list(spec.submodule_search_locations), spec
    sys.modules["datasketch"] = pkg
    try:
        return importlib.import_module("datasketch.hyperloglog").HyperLogLog
    finally:
        del sys.modules["datasketch"]  # a later `import datasketch` runs the real __init__


def hll_count(reg: np.ndarray) -> float:
    import warnings

    HyperLogLog = _datasketch_hll()  # noqa: N806

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(HyperLogLog(reg=reg.copy()).count())


def log_bins(lo: float = 1.0, hi: float = 2.0**40, per_octave: int = 4) -> np.ndarray:
    return lo * 2.0 ** (np.arange(0, int(np.log2(hi / lo)) * per_octave + 1) / per_octave)


class LogHist:
    """Exact counts of non-negative values in log-spaced bins (4 per octave); 0 in its own bin."""

    EDGES = log_bins()

    def __init__(self):
        self.zero = 0
        self.counts = np.zeros(len(self.EDGES), np.int64)  # counts[i]: EDGES[i] <= v < EDGES[i+1]

    def add(self, v: np.ndarray) -> None:
        v = v[~np.isnan(v)] if v.dtype.kind == "f" else v
        self.zero += int(np.count_nonzero(v < 1))
        pos = v[v >= 1].astype(np.float64)
        idx = np.minimum(np.searchsorted(self.EDGES, pos, side="right") - 1, len(self.EDGES) - 1)
        self.counts += np.bincount(idx, minlength=len(self.EDGES))

    def merge(self, other: LogHist) -> None:
        self.zero += other.zero
        self.counts += other.counts

    def bins(self) -> list[list]:
        """[[lo, hi, count], ...] from the first to the last non-empty bin."""
        nz = np.flatnonzero(self.counts)
        out = [[0, 1, self.zero]] if self.zero else []
        if len(nz):
            for i in range(nz[0], nz[-1] + 1):
                out.append([float(self.EDGES[i]), float(self.EDGES[i] * 2 ** 0.25), int(self.counts[i])])
        return out
