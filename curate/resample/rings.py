"""FLYT's soft-cap sampling over a whole domain, exactly: ring times of exponential clocks.

Document i's j-th ring (j = 0, 1, ...) comes E_ij e^(lambda j) / w_i after its previous one, E_ij a
standard exponential; the first n rings over all (document, j) of the domain are the n picks of the
sequential process (each pick lowers the document's logit by lambda; competing exponentials are
memoryless). E_ij is a hash of (stream key, row, j), the key from (seed, shard, domain, method): a
ring's time is the same whichever pass, task or bound asks for it, so passes can stop at any time.

The stage finds the n-th smallest ring time of a domain across shards like the Gumbel top-k
(curate/resample/topk.py) with key = -time: each shard first finds the time of its own q_s-th ring
(q_s its share of the draws, sum q_s = n); T = max over shards is then a bound (at least n rings of
the domain come at or before it), and every pass generates the rings up to T only.
"""

from __future__ import annotations

import numpy as np

from curate.resample import sampling as sm

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLD = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads every input bit."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def stream_key(seed: int, shard: int, domain: int) -> int:
    return int(sm.rng_for(seed, shard, domain, "softcap").integers(0, 1 << 63))


def exponentials(key: int, rows: np.ndarray, j: int) -> np.ndarray:
    """E_(row, j) for each row: -log of a uniform in (0, 1) from 53 bits of the hash."""
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(rows, np.uint64) * _GOLD + np.uint64(key))
        h = _mix(h + np.uint64(j + 1) * _GOLD)
    return -np.log(((h >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53))


def step_scale(lam: float, j: int) -> float:
    """e^(lambda j): the j-th waiting time's stretch (inf past float range: that ring never comes)."""
    if j == 0:  # the first ring is never stretched, even by lambda = inf (inf * 0 is NaN)
        return 1.0
    with np.errstate(over="ignore"):
        return float(np.exp(np.float64(lam * j)))


def rings(w: np.ndarray, rows: np.ndarray, key: int, lam: float, upto: float):
    """(document index, ring index j, time) arrays of every ring at or before `upto`, in rounds of j."""
    last = np.zeros(len(w))
    active = np.flatnonzero(w > 0)
    docs, js, times = [], [], []
    j = 0
    while len(active):
        with np.errstate(over="ignore", divide="ignore"):
            t = last[active] + exponentials(key, rows[active], j) * step_scale(lam, j) / w[active]
        ok = t <= upto
        active = active[ok]
        last[active] = t[ok]
        docs.append(active)
        js.append(np.full(len(active), j, np.int64))
        times.append(t[ok])
        j += 1
    if not docs:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    return np.concatenate(docs), np.concatenate(js), np.concatenate(times)


def nth_time(w: np.ndarray, rows: np.ndarray, key: int, lam: float, q: int) -> float:
    """The time of the q-th ring of these documents (q >= 1): rings are generated while they can
    still come before the q-th smallest found so far, keeping only those. inf when fewer than q rings
    ever come (later waits past float range): the stage's bound phase says so to the user."""
    last = np.zeros(len(w))
    active = np.flatnonzero(w > 0)
    kept = np.empty(0)
    tau = np.inf
    j = 0
    while len(active):
        with np.errstate(over="ignore", divide="ignore"):
            t = last[active] + exponentials(key, rows[active], j) * step_scale(lam, j) / w[active]
        t = np.where(np.isfinite(t), t, np.inf)
        last[active] = t
        kept = np.concatenate([kept, t[t <= tau]])
        if len(kept) >= q:
            tau = float(np.partition(kept, q - 1)[q - 1])
            kept = kept[kept <= tau]
        active = active[np.isfinite(t) & (t <= tau)]
        j += 1
    return tau
