"""The samplers: how many times each document of one (shard, domain) is drawn, given its log-weights
and the exact number of draws n allotted to it. Every one is a function of (log-weights, n, rng).

- multinomial (with replacement): n independent draws with probability proportional to the weight.
- gumbel (without replacement): the n largest log w + Gumbel noise (Efraimidis-Spirakis / Gumbel top-k,
  as DSIR samples): a weighted sample without replacement. The stage runs it over a whole domain
  (curate/resample/topk.py); draw() does it for one array.
- softcap (FLYT's soft-cap sampling): n sequential draws, each pick of a document lowering its logit by
  lambda. Drawn exactly, without n sequential steps: give document i exponential clocks, the j-th
  waiting time with rate w_i * exp(-lambda * (j - 1)); the first n rings across all documents are the
  n picks of the sequential process (competing exponentials are memoryless). lambda = 0 is multinomial,
  lambda -> inf the Gumbel top-k (-log E is Gumbel). draw() does it for one array; the stage runs it
  over a whole domain across shards (curate/resample/rings.py).
"""

from __future__ import annotations

import numpy as np

METHODS = ("multinomial", "gumbel", "softcap")
COUNT_MAX = 2**31 - 1  # the most draws of one document: sample_count, epoch and repeat_index are int32
_CODE = {"multinomial": 1, "gumbel": 2, "softcap": 3}


def rng_for(seed: int, shard: int, domain: int, method: str) -> np.random.Generator:
    """One stream per (seed, shard, domain, method): the same whatever -j or --task ran the shard."""
    return np.random.default_rng([seed, shard, domain, _CODE[method]])


def draw(method: str, logw: np.ndarray, n: int, rng: np.random.Generator, softcap: float = 0.0) -> np.ndarray:
    counts = np.zeros(len(logw), np.int64)
    if n <= 0:
        return counts
    pos = np.flatnonzero(np.isfinite(logw))
    if len(pos) == 0:
        raise ValueError("no document with a positive weight")
    lw = logw[pos] - logw[pos].max()
    if method == "multinomial":
        p = np.exp(lw)
        counts[pos] = rng.multinomial(n, p / p.sum())
    elif method == "gumbel":
        if n > len(pos):
            raise ValueError(f"{n} draws without replacement from {len(pos)} documents")
        keys = lw + rng.gumbel(size=len(pos))
        top = np.argpartition(-keys, n - 1)[:n] if n < len(pos) else np.arange(len(pos))
        counts[pos[top]] = 1
    elif method == "softcap":
        counts[pos] = _softcap(np.exp(lw), n, rng, softcap)
    else:
        raise ValueError(method)
    if n > COUNT_MAX and counts.max() > COUNT_MAX:  # plan.allocate refuses such budgets: never silently wrap
        raise ValueError(f"a document drawn {counts.max()} times, more than an int32 count holds")
    return counts


def _softcap(w: np.ndarray, n: int, rng: np.random.Generator, lam: float) -> np.ndarray:
    m = len(w)
    last = rng.exponential(size=m) / w  # each document's first ring
    made = np.ones(m, np.int64)
    times, docs = [last.copy()], [np.arange(m)]
    total = m
    while True:
        allt = np.concatenate(times)
        tau = np.partition(allt, n - 1)[n - 1] if total >= n else np.inf
        active = np.flatnonzero(last <= tau)  # may still ring again before tau
        if len(active) == 0:
            break
        with np.errstate(over="ignore"):
            step = rng.exponential(size=len(active)) * np.exp(lam * made[active]) / w[active]
        last[active] = last[active] + step
        made[active] += 1
        times.append(last[active].copy())
        docs.append(active)
        total += len(active)
    allt, alld = np.concatenate(times), np.concatenate(docs)
    first = np.argpartition(allt, n - 1)[:n] if n < len(allt) else np.arange(len(allt))
    return np.bincount(alld[first], minlength=m)


def largest_remainder(shares: np.ndarray, total: int, caps: np.ndarray | None = None) -> np.ndarray:
    """Integers proportional to `shares` summing to `total` (Hamilton's method), each <= its cap; a
    capped share's excess goes to the others. Ties go to the lower index: deterministic."""
    if total > 2**53:  # float64 shares of more would not count exactly (and past 2^63 never end)
        raise ValueError(f"largest_remainder of {total} is beyond float64's exact integers")
    shares = np.asarray(shares, np.float64)
    out = np.zeros(len(shares), np.int64)
    caps = np.full(len(shares), np.iinfo(np.int64).max) if caps is None else np.asarray(caps, np.int64)
    left, free = int(total), (shares > 0) & (caps > 0)
    while left > 0 and free.any():
        s = np.where(free, shares, 0.0)
        exact = left * s / s.sum()
        add = np.minimum(np.floor(exact).astype(np.int64), caps - out)
        rem = left - int(add.sum())
        frac = np.where(free & (out + add < caps), exact - np.floor(exact), -1.0)
        order = np.lexsort((np.arange(len(s)), -frac))
        for i in order[:rem]:
            if frac[i] < 0:
                break
            add[i] += 1
        out += add
        left -= int(add.sum())
        free &= out < caps
        if int(add.sum()) == 0:
            break
    return out
