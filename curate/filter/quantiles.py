"""Corpus quantiles in one pass with a stated error bound, the same for any worker count.

Each shard sorts the non-null, non-NaN values of x (n of them) and keeps a summary of at most K
(value, weight) pairs: all n values when n <= K, else the largest value of each of K consecutive
blocks of ranks (block sizes floor(n/K) or ceil(n/K)), weighted by its block's size. Merging
the shards' summaries (in shard order) and walking the cumulative weights estimates, for any v,
the number of values <= v from below, and too low by at most sum(ceil(n_i/K) - 1) < N/K.

quantile(x, q) is the smallest v with at least ceil(q N) of the N values <= v (the "inverted
CDF" definition; q = 0 is the minimum, q = 1 the maximum). From the summaries it is always a true
value of x, found at some rank r of the sorted values with ceil(q N) <= r < ceil(q N) + N/K:
exact when no shard has more than K values, otherwise too high by less than N/K ranks (1/K of the
data, 0.05% at K = 2048).
"""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError

K = 2048


def values_of(arr) -> np.ndarray:
    """The non-null, non-NaN values of a numeric array (or scalar) as float64."""
    if isinstance(arr, pa.Scalar):
        return np.array([arr.as_py()], np.float64) if arr.is_valid else np.empty(0, np.float64)
    v = pc.drop_null(pc.cast(arr, pa.float64(), safe=False)).to_numpy()  # above 2**53: the nearest float
    return v[~np.isnan(v)]


def summarize(values: np.ndarray, k: int = K) -> dict:
    v = np.sort(values, kind="stable")
    n = len(v)
    if n <= k:
        return {"n": n, "values": v.tolist(), "weights": [1] * n}
    ends = (np.arange(1, k + 1, dtype=np.int64) * n) // k  # last rank (1-based) of each block
    weights = np.diff(np.concatenate([[0], ends]))
    return {"n": n, "values": v[ends - 1].tolist(), "weights": weights.tolist()}


def merge(summaries: list[dict], q: str | float) -> float | None:
    """The q-quantile from per-shard summaries (None when there is no value at all)."""
    vals = np.concatenate([np.asarray(s["values"], np.float64) for s in summaries] or [np.empty(0)])
    wts = np.concatenate([np.asarray(s["weights"], np.int64) for s in summaries] or [np.empty(0, np.int64)])
    total = int(wts.sum())
    if total == 0:
        return None
    order = np.argsort(vals, kind="stable")
    cum = np.cumsum(wts[order])
    t = max(1, math.ceil(Fraction(str(q)) * total))  # exact: 0.3 of 10 values is rank 3, not 4
    return float(vals[order][int(np.searchsorted(cum, t, side="left"))])


def error_bound(summaries: list[dict], k: int = K) -> int:
    """Upper bound on the rank error: the result's rank is in [ceil(qN), ceil(qN) + bound]."""
    return int(sum(max(0, -(-s["n"] // k) - 1) for s in summaries))


def resolve(summaries_by_key: dict[str, list[dict]], pairs: list[tuple[str, str]], where: str, k: int = K) -> dict:
    """{(key, q): value} for every quantile the rules read; an argument without values is an error."""
    out = {}
    for key, q in pairs:
        value = merge(summaries_by_key[key], q)
        if value is None:
            raise InputError(f"quantile({key}, {q}): {key} is null (or NaN) in every row, so it has no quantiles",
                             where=where, hint=_no_values_hint(key))
        out[(key, q)] = value
    return out


def _no_values_hint(key: str) -> str:
    """Where to look when an argument has no values: the columns it reads (head takes column names,
    not expressions). A guard such as `x is null or ...` cannot help: the quantile itself is missing."""
    import shlex

    from curate.filter.nodes import Col, columns
    from curate.filter.parser import parse

    tree = parse(key)
    cols = columns(tree)
    head = f"curate head IN --columns {shlex.quote(','.join(cols))}"
    if isinstance(tree, Col):
        return f"look at the column ({head}): fill it (was the step that writes it run?), or drop this rule"
    return (f"look at the columns it reads ({head}): arithmetic with a null is null, and x / 0 is null; "
            "fill them, or drop this rule")


def report(summaries_by_key: dict[str, list[dict]], values: dict, k: int = K) -> dict:
    """What the manifest and --dry-run say about each quantile."""
    out = {}
    for (key, q), v in values.items():
        s = summaries_by_key[key]
        n = sum(x["n"] for x in s)
        out[f"quantile({key}, {q})"] = {"value": v, "values": n, "rank_error_max": error_bound(s, k),
                                        "exact": error_bound(s, k) == 0}
    return out


def dumps(summaries: dict[str, dict]) -> bytes:
    return json.dumps(summaries, sort_keys=True).encode()


def loads(data: bytes) -> dict[str, dict]:
    return json.loads(data)
