"""Document weights for resampling, as natural logs (a zero weight is -inf).

Modes (--weights):
  uniform              every document 1
  softdedup            SoftDedup from `commonness` (curate score --commonness): K quantile segments of
                       commonness, segment weight (1 / mean commonness of the segment)^power, weights
                       interpolated between segment means (so weight falls strictly with commonness),
                       the least common tail capped at the --floor-quantile's weight
  softdedup:dup_count  1 / dup_count^power (curate dedup ... --mode annotate)
  column:NAME          the values of a numeric column (>= 0)
  dsir                 exp(dsir_logratio) (DSIR importance weights)
  expr:EXPR            a numeric expression of the filter language, e.g. expr:'n_tokens / 100'
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError, UsageError

MODES = ("uniform", "softdedup", "softdedup:dup_count", "column:NAME", "dsir", "expr:EXPR")
SEGMENTS = 100
FLOOR_QUANTILE = 0.01
POWER = 1.0  # 1/commonness, as in SoftDedup; 100 copies get <= 1/3 of uniform exposure (README)
SEGMENTS_MAX = 2048  # curate.filter.quantiles.K: the boundaries' quantile summaries resolve no finer
EXPR_SOURCE = "--weights expr"  # an ExprError renders "SOURCE: message"


@dataclass(frozen=True)
class WeightSpec:
    kind: str  # uniform | commonness | dup_count | column | dsir | expr
    arg: str | None = None  # column name or expression
    power: float = POWER
    segments: int = SEGMENTS
    floor_quantile: float = FLOOR_QUANTILE

    @property
    def label(self) -> str:
        return {"commonness": "softdedup", "dup_count": "softdedup:dup_count", "column": f"column:{self.arg}",
                "expr": f"expr:{self.arg}"}.get(self.kind, self.kind)

    def columns(self) -> list[str]:
        if self.kind == "commonness":
            return ["commonness"]
        if self.kind == "dup_count":
            return ["dup_count"]
        if self.kind == "column":
            return [self.arg]
        if self.kind == "dsir":
            return ["dsir_logratio"]
        if self.kind == "expr":
            from curate.filter.nodes import columns

            return list(dict.fromkeys(columns(_parse(self.arg))))
        return []


def parse_weights(value: str, power: float | None = None, segments: int = SEGMENTS,
                  floor_quantile: float = FLOOR_QUANTILE) -> WeightSpec:
    v = value.strip()
    if power is None:
        power = 1.0 if v == "softdedup:dup_count" else POWER
    if not (power > 0 and math.isfinite(power)):
        raise UsageError(f"--power {power}: must be a positive number")
    if not 1 <= segments <= SEGMENTS_MAX:
        raise UsageError(f"--segments {segments}: must be from 1 to {SEGMENTS_MAX}")
    if not 0 <= floor_quantile < 1:
        raise UsageError(f"--floor-quantile {floor_quantile}: must be in [0, 1)")
    if v in ("uniform", "dsir"):
        return WeightSpec(v, power=power)
    if v in ("softdedup", "softdedup:commonness"):
        return WeightSpec("commonness", None, power, segments, floor_quantile)
    if v == "softdedup:dup_count":
        return WeightSpec("dup_count", None, power)
    if v.startswith("column:") and len(v) > 7:
        return WeightSpec("column", v[7:], power)
    if v.startswith("expr:") and len(v) > 5:
        _parse(v[5:])  # syntax errors now, with a caret
        return WeightSpec("expr", v[5:], power)
    raise UsageError(f"--weights {value!r}: expected one of {', '.join(MODES)}")


def _parse(expr: str):
    from curate.filter.errors import ExprError
    from curate.filter.parser import parse

    try:
        return parse(expr)
    except ExprError as e:
        raise e.locate(expr, EXPR_SOURCE) from None


def check_schema(spec: WeightSpec, schema: pa.Schema, where: str) -> None:
    """A missing or non-numeric weight column: a clear error before any work."""
    if spec.kind == "expr":
        from curate.filter.compiler import NUM, compile_expr
        from curate.filter.errors import ExprError
        from curate.filter.rules import schema_context

        try:
            c, qs = compile_expr(_parse(spec.arg), schema, allow_quantile=False)
            if c.kind != NUM:
                raise ExprError(f"a weight must be a number, but this is a {c.kind}", 0, len(spec.arg),
                                hint="e.g. expr:'n_tokens / 1000' or expr:'abs(score)'")
        except ExprError as e:
            e.locate(spec.arg, EXPR_SOURCE)
            e.context = schema_context(schema)
            raise
        return
    hints = {"commonness": "curate score IN OUT --commonness MODEL adds it (a model from `curate ngram train`)",
             "dup_count": "curate dedup exact|minhash IN OUT --mode annotate adds it",
             "dsir_logratio": "curate score IN OUT --dsir-target TARGET adds it"}
    for col in spec.columns():
        if col not in schema.names:
            raise InputError(f"--weights {spec.label}: no {col!r} column; the columns are: {', '.join(schema.names)}",
                             where=where, hint=hints.get(col, "choose a numeric column of the input"))
        t = schema.field(col).type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise InputError(f"--weights {spec.label}: column {col!r} is {t}, not a number", where=where)


def _f64(arr) -> np.ndarray:
    return pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)  # nulls -> nan


def _bad(spec: WeightSpec, what: str, mask: np.ndarray, row0: int, where: str, values=None) -> InputError:
    i = int(np.flatnonzero(mask)[0])
    shown = "" if values is None else f" ({_plain(values[i])})"
    hint = {"dup_count": "dup_count is 1 for a unique document and N for each of N copies: rerun dedup --mode annotate",
            "commonness": "score every row: curate score IN OUT --commonness MODEL"}.get(spec.kind,
                                                                                          "fix or filter those rows first")
    return InputError(f"--weights {spec.label}: {int(mask.sum()):,} row(s) have {what}; the first is row "
                      f"{row0 + i}{shown}", where=where, hint=hint)


def _plain(x) -> str:
    """A number as a user wrote it: -1, 0.5, inf (not np.float64(-1.0))."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def raw_values(spec: WeightSpec, batch: pa.RecordBatch) -> np.ndarray:
    """The signal the weights come from (commonness, dup_count, the column, the expression)."""
    if spec.kind == "expr":
        from curate.filter.compiler import Env, compile_expr

        c, _ = compile_expr(_parse(spec.arg), batch.schema, allow_quantile=False)
        v = c.fn(Env(batch))
        if isinstance(v, pa.Scalar):
            return np.full(batch.num_rows, np.nan if not v.is_valid else float(v.as_py()), np.float64)
        return _f64(v)
    return _f64(batch.column(spec.columns()[0]))


def log_weights(spec: WeightSpec, batch: pa.RecordBatch, units: np.ndarray, segmodel: dict | None, row0: int,
                where: str) -> np.ndarray:
    """Natural-log weight of every row; bad values are an InputError naming the first bad row."""
    n = batch.num_rows
    if spec.kind == "uniform":
        return np.zeros(n, np.float64)
    v = raw_values(spec, batch)
    if spec.kind == "commonness":
        # A document with no tokens has no commonness: it weighs nothing (and adds no tokens).
        empty = np.isnan(v) & (units == 0)
        bad = np.isnan(v) & ~empty
        if bad.any():
            raise _bad(spec, "no commonness (null or NaN) but some text", bad, row0, where)
        bad = ~np.isnan(v) & ((v <= 0) | (v > 1))
        if bad.any():
            raise _bad(spec, "a commonness outside (0, 1]", bad, row0, where, v)
        out = np.full(n, -np.inf)
        if segmodel is not None:
            out[~empty] = np.log(softdedup_weight(v[~empty], segmodel))
        return out
    nan = np.isnan(v)
    if nan.any():
        raise _bad(spec, "a null or NaN weight", nan, row0, where)
    if spec.kind == "dsir":
        bad = np.isposinf(v)
        if bad.any():
            raise _bad(spec, "an infinite dsir_logratio", bad, row0, where, v)
        return v
    if spec.kind == "dup_count":
        bad = v < 1
        if bad.any():
            raise _bad(spec, "a dup_count below 1", bad, row0, where, v)
        return -spec.power * np.log(v)
    bad = v < 0
    if bad.any():
        raise _bad(spec, "a negative weight", bad, row0, where, v)
    bad = np.isinf(v)
    if bad.any():
        raise _bad(spec, "an infinite weight", bad, row0, where, v)
    with np.errstate(divide="ignore"):
        return np.log(v)


# ---- SoftDedup segments ----------------------------------------------------------------------


def segment_model(summaries: list[dict], counts: np.ndarray | None, sums: np.ndarray | None, spec: WeightSpec) -> dict:
    """Boundaries from the merged quantile summaries; with the per-segment (count, sum) of commonness,
    the segment means and weights. Called twice: first for the boundaries, then for the weights."""
    from curate.filter import quantiles as qt

    k = spec.segments
    bounds = _quantiles(summaries, [j / k for j in range(1, k)])
    model: dict = {"segments": k, "boundaries": bounds, "power": spec.power, "floor_quantile": spec.floor_quantile,
                   "floor_value": qt.merge(summaries, spec.floor_quantile) if spec.floor_quantile > 0 else None}
    if counts is None:
        return model
    nz = counts > 0
    means = np.zeros(k)
    means[nz] = sums[nz] / counts[nz]
    # The largest weight: the cap's, or without one the least common segment's.
    _check_power(spec.power, model["floor_value"] if model["floor_value"] is not None else means[nz].min(initial=1.0))
    w = np.zeros(k)
    with np.errstate(over="ignore"):  # only below the floor, where the cap replaces them
        w[nz] = means[nz] ** -spec.power
    cap = None
    if model["floor_value"] is not None:
        cap = float(model["floor_value"]) ** -spec.power
        w[nz] = np.minimum(w[nz], cap)
    model.update(counts=counts.tolist(), means=means.tolist(), weights=w.tolist(), cap=cap)
    return model


def _quantiles(summaries: list[dict], qs: list[float]) -> list[float | None]:
    """curate.filter.quantiles.merge(summaries, q) for every q, the same values from one sort of the
    merged summaries instead of one per q (2048 segments: 2047 sorts)."""
    vals = np.concatenate([np.asarray(s["values"], np.float64) for s in summaries] or [np.empty(0)])
    wts = np.concatenate([np.asarray(s["weights"], np.int64) for s in summaries] or [np.empty(0, np.int64)])
    total = int(wts.sum())
    if total == 0:
        return [None] * len(qs)
    order = np.argsort(vals, kind="stable")
    cum = np.cumsum(wts[order])
    ranks = [max(1, math.ceil(Fraction(str(q)) * total)) for q in qs]  # exact, as merge() does
    return [float(v) for v in vals[order][np.searchsorted(cum, ranks, side="left")]]


def _check_power(power: float, smallest: float) -> None:
    """The weights (1/c)^power and the slopes between segment means, at most power w / c, must fit a
    float for the smallest commonness c that sets a weight (with a factor e to spare)."""
    room, rarity = math.log(sys.float_info.max) - 1, -math.log(float(smallest))
    if math.log(power) + (power + 1) * rarity <= room:
        return
    top = room / rarity if rarity else math.exp(room)
    for _ in range(4):  # the largest power that fits: a fixed point, near after a few steps
        top = (room - math.log(top)) / rarity - 1 if rarity else top
    raise UsageError(f"--power {power:g}: the softdedup weight (1/commonness)^power of commonness {smallest:.4g} is "
                     f"beyond float range; on this input --power can be at most {math.floor(top * 100) / 100:g}",
                     hint="at power p a document half as common weighs 2^p times more: a few is already steep")


def segment_of(values: np.ndarray, model: dict) -> np.ndarray:
    """Segment j holds the values in (boundary[j-1], boundary[j]]."""
    return np.searchsorted(np.asarray(model["boundaries"], np.float64), values, side="left")


def softdedup_weight(c: np.ndarray, model: dict) -> np.ndarray:
    """Linear between the (mean, weight) points of the non-empty segments; above the last mean the
    power law goes on ((mean/c)^power: the most common documents still fall); below the first, flat."""
    counts = np.asarray(model["counts"])
    nz = counts > 0
    m = np.asarray(model["means"])[nz]
    w = np.asarray(model["weights"])[nz]
    out = np.interp(c, m, w)
    hi = c > m[-1]
    out[hi] = w[-1] * (m[-1] / c[hi]) ** model["power"]
    if model.get("cap") is not None:
        out = np.minimum(out, model["cap"])
    return out
