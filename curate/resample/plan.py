"""Domain mixtures, budgets and epoch caps, and the exact allocation of draws to (shard, domain).

A budget B (tokens, rows, or a fraction of the input's tokens) is split over domains by the mixture p:
B_d = p_d B. Within domain d a document of weight w is drawn c = B_d w / sum_d(w u) times in
expectation (u its tokens, or 1 for a row budget), so the domain gets B_d in expectation. The number of
draws N_d is fixed (largest remainder, so the total is exact), and split over shards: multinomially by
the shards' weight sums with replacement (the result is exactly a multinomial over the whole domain;
FLYT's soft-cap uses them only to bound its global cut, curate/resample/rings.py).
Without replacement these quotas (largest remainder, capped at each shard's documents) are not used
for drawing: the global Gumbel top-k decides (curate/resample/topk.py).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curate import log
from curate.errors import InputError, UsageError
from curate.resample.sampling import COUNT_MAX, largest_remainder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ALL = ""  # the one domain when there is no --by
# The most draws of one run, a budget needing more is refused: draw counts are float64 until
# allocated, and this far below 2^53 their largest-remainder split over domains is exact (past 2^63
# it would overflow int64); 10^12 is ~50x the documents of the largest open corpora (~2 x 10^10).
MAX_DRAWS = 10**12


@dataclass(frozen=True)
class Budget:
    kind: str  # tokens | rows | fraction
    value: float

    @property
    def in_rows(self) -> bool:
        return self.kind == "rows"


def load_mixture(path: str) -> dict[str, float]:
    """TOML (domain = weight, at the top level or under [mixture]) or JSON ({domain: weight}, or DoReMi's
    {"train_domain_weights": {...}}); weights are normalised to sum to 1."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise UsageError(f"--mixture {path}: cannot read it ({e.strerror})") from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise UsageError(f"--mixture {path}: not valid {'JSON' if p.suffix.lower() == '.json' else 'TOML'} ({e})",
                         hint='TOML: one line per domain, e.g. web = 0.6; JSON: {"train_domain_weights": {"web": 0.6}}') from None
    for key in ("train_domain_weights", "mixture", "weights"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
            break
    if not isinstance(data, dict) or not data:
        raise UsageError(f"--mixture {path}: expected a table of domain = weight")
    out = {}
    for k, v in data.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise UsageError(f"--mixture {path}: domain {k!r} has weight {v!r}; weights are numbers >= 0")
        out[str(k)] = float(v)
    total = sum(out.values())
    if total <= 0:
        raise UsageError(f"--mixture {path}: every weight is 0")
    return {k: v / total for k, v in sorted(out.items())}


def temperature_mixture(sizes: dict[str, float], t: float) -> dict[str, float]:
    """q_d proportional to n_d^(1/T): T = 1 keeps the natural proportions, larger T flattens them,
    and as T -> 0 the largest domain takes everything."""
    try:  # the plain powers when they fit a float: the very shares (and samples) of earlier versions
        q = {d: (n ** (1.0 / t) if n > 0 else 0.0) for d, n in sizes.items()}
        s = sum(q.values())
        if sys.float_info.min <= s < math.inf:
            return {d: v / s for d, v in q.items()}
    except OverflowError:
        pass
    return _temperature_logspace(sizes, t)


def _temperature_logspace(sizes: dict[str, float], t: float) -> dict[str, float]:
    """The same shares as exp((log n_d - log n_max) / T), normalised: the exponent is <= 0, so any T > 0
    works (dividing the difference, not log n_d, by a tiny T gives -inf, never inf - inf)."""
    top = max(math.log(n) for n in sizes.values() if n > 0)
    q = {d: (math.exp((math.log(n) - top) / t) if n > 0 else 0.0) for d, n in sizes.items()}
    s = sum(q.values())
    return {d: v / s for d, v in q.items()}


def merge_domains(parts: list[dict]) -> dict[str, dict]:
    """Per-shard per-domain (rows, units, n_pos, m, s0, s1) -> totals, sums rescaled to a common max."""
    out: dict[str, dict] = {}
    for part in parts:
        for d, x in part.items():
            o = out.setdefault(d, {"rows": 0, "units": 0, "n_pos": 0, "m": -math.inf, "s0": 0.0, "s1": 0.0})
            o["rows"] += x["rows"]
            o["units"] += x["units"]
            o["n_pos"] += x["n_pos"]
            if x["n_pos"]:
                m = max(o["m"], x["m"])
                scale_o, scale_x = (math.exp(o["m"] - m) if o["n_pos"] - x["n_pos"] else 0.0), math.exp(x["m"] - m)
                o["s0"] = o["s0"] * scale_o + x["s0"] * scale_x
                o["s1"] = o["s1"] * scale_o + x["s1"] * scale_x
                o["m"] = m
    return dict(sorted(out.items()))


def allocate(shard_parts: list[dict], budget: Budget, mixture: dict[str, float] | None, temperature: float | None,
             by: str | None, replacement: bool, max_epochs: float, hard_max_epochs: float, seed: int,
             where: str) -> dict:
    """The plan every sample task reads: per domain the target and the draws, per shard its quotas."""
    doms = merge_domains(shard_parts)
    names = list(doms)
    unit = "rows" if budget.in_rows else "units"
    sizes = {d: float(doms[d][unit]) for d in names}
    if not names or sum(sizes.values()) <= 0:
        raise InputError("the input has no rows (or no tokens) to sample from", where=where)
    if mixture is not None:
        unknown = sorted(set(mixture) - set(names))
        missing = sorted(set(names) - set(mixture))
        if unknown:
            raise InputError(f"--mixture names domain(s) the --by {by} column does not have: {', '.join(unknown)}",
                             where=where, hint=f"the domains are: {', '.join(names)}")
        if missing:
            raise InputError(f"--mixture gives no weight for domain(s): {', '.join(missing)}", where=where,
                             hint="give every domain a weight (0 leaves a domain out)")
        p = {d: mixture[d] for d in names}
    elif temperature is not None:
        p = temperature_mixture(sizes, temperature)
    else:
        total = sum(sizes.values())
        p = {d: sizes[d] / total for d in names}
    total_size = sum(sizes.values())
    if budget.kind == "fraction":
        B = budget.value * total_size
    else:
        B = float(budget.value)
    targets = {d: p[d] * B for d in names}
    info = {}
    for d in names:
        x, t = doms[d], targets[d]
        label = d if by else "the input"
        if t <= 0:
            info[d] = {"target": 0.0, "expected_draws": 0.0, "epochs": 0.0, "max_expected_count": 0.0,
                       "positive_weight_docs": x["n_pos"]}
            continue
        if x["n_pos"] == 0 or (x["s1"] if not budget.in_rows else x["s0"]) <= 0:
            raise InputError(f"every weight in {('domain ' + repr(d)) if by else label} is zero (or it has no tokens), "
                             f"but the mixture gives it {p[d]:.4g} of the budget", where=where,
                             hint="check the weight signal, or give that domain 0 in --mixture")
        epochs = t / sizes[d]
        S = x["s0"] if budget.in_rows else x["s1"]
        lam = t / S  # expected draws of a document = lam * w / exp(m)
        expected = lam * x["s0"]
        info[d] = {"target": t, "expected_draws": expected, "epochs": epochs, "max_expected_count": lam,
                   "positive_weight_docs": x["n_pos"]}
        if epochs > hard_max_epochs:
            raise InputError(f"the budget needs {epochs:.3g} epochs of {('domain ' + repr(d)) if by else label} "
                             f"({t:,.0f} of its {sizes[d]:,.0f} {_unit_name(budget)}), more than --hard-max-epochs "
                             f"{hard_max_epochs:g}", where=where,
                             hint="lower the budget or that domain's share, or raise --hard-max-epochs")
        if not replacement and (epochs > 1 or expected > x["n_pos"]):
            raise InputError(f"without replacement the budget needs {expected:,.0f} documents of "
                             f"{('domain ' + repr(d)) if by else label}, which has {x['n_pos']:,} with a positive "
                             "weight", where=where, hint="lower the budget, or sample --replacement")
    total = sum(info[d]["expected_draws"] for d in names)
    _check_draws(total, budget, B)
    draws = largest_remainder(np.array([info[d]["expected_draws"] for d in names]), int(round(total)))
    for d, n in zip(names, draws, strict=True):
        info[d]["draws"] = int(n)
        if replacement:
            _check_count(info[d], budget, ("domain " + repr(d)) if by else "the input")
        info[d]["m"] = doms[d]["m"] if math.isfinite(doms[d]["m"]) else None  # the largest log-weight
        if info[d]["epochs"] > max_epochs:
            log.warn(f"resample: {('domain ' + repr(d)) if by else label} is repeated {info[d]['epochs']:.2f} epochs, "
                     f"more than --max-epochs {max_epochs:g} (repetition beyond ~4 epochs adds little: Muennighoff et al. 2023)")
        elif replacement and info[d]["max_expected_count"] > max_epochs:
            log.warn(f"resample: some documents of {('domain ' + repr(d)) if by else 'the input'} are expected "
                     f"{info[d]['max_expected_count']:.1f} times, more than --max-epochs {max_epochs:g}")
    quotas = np.zeros((len(shard_parts), len(names)), np.int64)
    for j, d in enumerate(names):
        n = info[d]["draws"]
        if n == 0:
            continue
        M = doms[d]["m"]
        W = np.array([part[d]["s0"] * math.exp(part[d]["m"] - M) if d in part and part[d]["n_pos"] else 0.0
                      for part in shard_parts])
        if replacement:
            rng = np.random.default_rng([seed, 0xA110C, j])
            quotas[:, j] = rng.multinomial(n, W / W.sum())
        else:
            caps = np.array([part[d]["n_pos"] if d in part else 0 for part in shard_parts])
            quotas[:, j] = largest_remainder(W, n, caps)
    return {"domains": names, "mixture": p, "unit": _unit_name(budget), "budget": B, "info": info,
            "sizes": sizes, "quotas": quotas.tolist()}


def _budget_option(budget: Budget) -> str:
    return f"--rows {int(budget.value)}" if budget.in_rows else f"--{budget.kind} {budget.value:g}"


def _check_draws(total: float, budget: Budget, B: float) -> None:
    """Refuse more than MAX_DRAWS draws (also a budget past float range: --fraction 1e300)."""
    if math.isfinite(B) and total <= MAX_DRAWS:
        return
    raise UsageError(f"{_budget_option(budget)} needs {total:.3g} draws, more than the {MAX_DRAWS:.0e} a resample "
                     "makes at most", hint="lower the budget")


def _check_count(x: dict, budget: Budget, label: str) -> None:
    """Refuse a budget that could draw one document more than COUNT_MAX times (sample_count, epoch and
    repeat_index are int32). A document's count is at most its domain's draws, and exceeds its
    expectation (at most max_expected_count) by 50 standard deviations with probability < e^-1000
    (Chernoff)."""
    lam = x["max_expected_count"]
    if x["draws"] <= COUNT_MAX or lam + 50 * math.sqrt(lam) <= COUNT_MAX:
        return
    raise UsageError(f"{_budget_option(budget)} draws some documents of {label} about {lam:.3g} times each, more "
                     f"than the {COUNT_MAX:,} draws of one document sample_count holds (int32)",
                     hint="lower the budget, or spread it over more documents (or more uniform weights)")


def _unit_name(budget: Budget) -> str:
    return "rows" if budget.in_rows else "tokens"
