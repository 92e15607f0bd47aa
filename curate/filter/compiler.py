"""Type-check a syntax tree against a schema and compile it into a function of a record batch that
calls pyarrow.compute kernels on whole columns (no per-row Python).

Types: number, string, boolean, list; a column of another Arrow type (timestamp, binary, struct)
can only be tested with `is null`. Nulls propagate as in SQL: an operator or function with a null
operand gives null, `and`/`or` use Kleene logic (false and null = false, true or null = true),
`x in [...]` is null when x is null, and division by zero gives null. Arithmetic is float64.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from curate.filter.errors import ExprError
from curate.filter.nodes import (
    ARITHMETIC,
    Binary,
    Bool,
    Call,
    Col,
    In,
    IsNull,
    Logic,
    Num,
    Str,
    Unary,
    unparse,
    walk,
)

NUM, STR, BOOL, LIST, OTHER = "number", "string", "boolean", "list", "other"

FUNCTIONS = {
    "len": "len(x): characters of a string, items of a list",
    "lower": "lower(s), upper(s): the string in lower / upper case",
    "upper": "",
    "contains": "contains(s, 'x'), startswith(s, 'x'), endswith(s, 'x'): substring tests",
    "startswith": "",
    "endswith": "",
    "regex": "regex(s, 'pattern'): the RE2 pattern matches somewhere in s (anchor it with ^...$)",
    "abs": "abs(x)",
    "coalesce": "coalesce(x, y, ...): the first value that is not null",
    "quantile": "quantile(x, q): the q-quantile of x over the whole input (0 <= q <= 1), computed in a first pass",
}
_F64 = pa.float64()
_NULL_BOOL = pa.scalar(None, pa.bool_())
_NULL_F64 = pa.scalar(None, _F64)


def kind_of(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return kind_of(t.value_type)
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return NUM
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return STR
    if pa.types.is_boolean(t):
        return BOOL
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return LIST
    return OTHER


def _load(arr, t: pa.DataType):
    """A column as the kernels want it: numbers as int64 or float64, strings decoded."""
    if pa.types.is_dictionary(t):
        arr, t = arr.dictionary_decode(), t.value_type
    if pa.types.is_string_view(t):
        return pc.cast(arr, pa.large_string())
    if pa.types.is_integer(t) and t != pa.int64():
        return pc.cast(arr, _F64 if t == pa.uint64() else pa.int64())
    if (pa.types.is_floating(t) and t != _F64) or pa.types.is_decimal(t):
        return pc.cast(arr, _F64)
    return arr


class Env:
    """One batch being evaluated: columns loaded once, shared sub-expressions computed once."""

    __slots__ = ("batch", "memo", "quantiles")

    def __init__(self, batch: pa.RecordBatch, quantiles: dict[tuple[str, str], float] | None = None):
        self.batch = batch
        self.memo: dict[str, object] = {}
        self.quantiles = quantiles or {}


@dataclass(frozen=True)
class Compiled:
    kind: str
    fn: Callable[[Env], object]  # -> pa.Array or pa.Scalar
    node: object


@dataclass(frozen=True)
class QuantileRef:
    key: str  # unparse(arg): one summary per distinct argument
    arg: object
    q: str  # as written
    span: tuple[int, int]


class _Ctx:
    def __init__(self, schema: pa.Schema, allow_quantile: bool = True):
        self.schema = schema
        self.allow_quantile = allow_quantile
        self.quantiles: list[QuantileRef] = []


def compile_expr(node, schema: pa.Schema, allow_quantile: bool = True) -> tuple[Compiled, list[QuantileRef]]:
    ctx = _Ctx(schema, allow_quantile)
    return _compile(node, ctx), ctx.quantiles


def _memo(key: str, fn):
    def run(env: Env):
        v = env.memo.get(key)
        if v is None:
            v = env.memo[key] = fn(env)
        return v
    return run


def _compile(node, ctx: _Ctx) -> Compiled:
    if isinstance(node, Num):
        s = pa.scalar(node.value, pa.int64() if isinstance(node.value, int) else _F64)
        return Compiled(NUM, lambda env: s, node)
    if isinstance(node, Str):
        s = pa.scalar(node.value, pa.string())
        return Compiled(STR, lambda env: s, node)
    if isinstance(node, Bool):
        s = pa.scalar(node.value, pa.bool_())
        return Compiled(BOOL, lambda env: s, node)
    if isinstance(node, Col):
        return _column(node, ctx)
    key = "e:" + unparse(node)
    if isinstance(node, Unary):
        c, fn = _unary(node, ctx)
    elif isinstance(node, Binary):
        c, fn = (_arith if node.op in ARITHMETIC else _compare)(node, ctx)
    elif isinstance(node, Logic):
        c, fn = _logic(node, ctx)
    elif isinstance(node, IsNull):
        inner = _compile(node.operand, ctx)
        f = pc.is_valid if node.negated else pc.is_null
        c, fn = BOOL, (lambda env: f(inner.fn(env)))
    elif isinstance(node, In):
        c, fn = _in(node, ctx)
    elif isinstance(node, Call):
        c, fn = _call(node, ctx)
    else:  # pragma: no cover - the parser makes nothing else
        raise ExprError(f"unsupported syntax {type(node).__name__}", 0)
    return Compiled(c, _memo(key, fn), node)


def _column(node: Col, ctx: _Ctx) -> Compiled:
    i = ctx.schema.get_field_index(node.name)
    if i < 0:
        close = difflib.get_close_matches(node.name, ctx.schema.names, n=3, cutoff=0.6)
        close += [n for n in ctx.schema.names if n.lower() == node.name.lower() and n not in close]
        hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None
        if node.name in FUNCTIONS:
            hint = f"{node.name} is a function: call it, e.g. {node.name}(text)"
        raise ExprError(f"no column named {node.name!r}", *node.span, hint=hint)
    t = ctx.schema.field(i).type
    name = node.name

    key = "c:" + name  # columns and expressions have separate keys: a column may be named "len(text)"

    def load(env: Env):
        v = env.memo.get(key)
        if v is None:
            v = env.memo[key] = _load(env.batch.column(name), t)
        return v
    return Compiled(kind_of(t), load, node)


def _need(c: Compiled, kinds: tuple[str, ...], what: str) -> None:
    if c.kind not in kinds:
        need = " or ".join(_a(k) for k in kinds)
        raise ExprError(f"{what} needs {need}, but {_show(c)} is {_a(c.kind)}", *c.node.span)


def _a(kind: str) -> str:
    return {NUM: "a number", STR: "a string", BOOL: "a condition (true/false)", LIST: "a list",
            OTHER: "a value of an unsupported type"}[kind]


def _show(c: Compiled) -> str:
    s = unparse(c.node)
    return s if len(s) <= 40 else s[:37] + "..."


def _float(v):
    return pc.cast(v, _F64) if v.type != _F64 else v


def _unary(node: Unary, ctx: _Ctx):
    inner = _compile(node.operand, ctx)
    if node.op == "not":
        _need(inner, (BOOL,), "`not`")
        return BOOL, lambda env: pc.invert(inner.fn(env))
    _need(inner, (NUM,), "unary minus")
    return NUM, lambda env: pc.negate(_float(inner.fn(env)))


def _arith(node: Binary, ctx: _Ctx):
    a, b = _compile(node.left, ctx), _compile(node.right, ctx)
    for c in (a, b):
        _need(c, (NUM,), f"`{node.op}`")
    if node.op == "/":
        def div(env):
            x, y = _float(a.fn(env)), _float(b.fn(env))
            return pc.if_else(pc.equal(y, 0.0), _NULL_F64, pc.divide(x, y))  # x / 0 is null, as in SQLite
        return NUM, div
    f = {"+": pc.add, "-": pc.subtract, "*": pc.multiply}[node.op]
    return NUM, lambda env: f(_float(a.fn(env)), _float(b.fn(env)))


_CMP = {"==": pc.equal, "!=": pc.not_equal, "<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal}


def _compare(node: Binary, ctx: _Ctx):
    a, b = _compile(node.left, ctx), _compile(node.right, ctx)
    ok = a.kind == b.kind and a.kind in (NUM, STR) or (a.kind == b.kind == BOOL and node.op in ("==", "!="))
    if not ok:
        if a.kind == b.kind == BOOL:
            msg = f"`{node.op}` does not order conditions; only == and != compare true/false"
        elif OTHER in (a.kind, b.kind) or LIST in (a.kind, b.kind):
            bad = a if a.kind in (OTHER, LIST) else b
            msg = f"{_show(bad)} is {_a(bad.kind)}: it cannot be compared (only `is null` applies to it)"
        else:
            msg = f"cannot compare {_show(a)} ({a.kind}) with {_show(b)} ({b.kind})"
        raise ExprError(msg, *node.span, hint=_cmp_hint(a, b))
    f = _CMP[node.op]
    return BOOL, lambda env: f(a.fn(env), b.fn(env))


def _cmp_hint(a: Compiled, b: Compiled) -> str | None:
    kinds = {a.kind, b.kind}
    if kinds == {STR, NUM}:
        return "strings compare with strings and numbers with numbers; len(s) is a string's length"
    return None


def _logic(node: Logic, ctx: _Ctx):
    parts = [_compile(o, ctx) for o in node.operands]
    for c in parts:
        _need(c, (BOOL,), f"`{node.op}`")
    f = pc.and_kleene if node.op == "and" else pc.or_kleene

    def run(env):
        v = parts[0].fn(env)
        for c in parts[1:]:
            v = f(v, c.fn(env))
        return v
    return BOOL, run


def _in(node: In, ctx: _Ctx):
    x = _compile(node.operand, ctx)
    _need(x, (NUM, STR, BOOL), "`in`")
    kinds = {NUM: (Num,), STR: (Str,), BOOL: (Bool,)}[x.kind]
    for v in node.values:
        if not isinstance(v, kinds):
            raise ExprError(f"the list holds {_a(_kind_of_literal(v))} but {_show(x)} is {_a(x.kind)}", *v.span)
    if x.kind == NUM:
        vs = pa.array([float(v.value) + 0.0 for v in node.values], _F64)
        get = lambda env: pc.add(_float(x.fn(env)), 0.0)  # noqa: E731  (-0.0 + 0.0 is 0.0: set lookups hash bits)
    else:
        vs = pa.array([v.value for v in node.values], pa.string() if x.kind == STR else pa.bool_())
        get = x.fn
    sets: dict = {}

    def run(env):
        v = get(env)
        s = sets.get(v.type)
        if s is None:
            s = sets[v.type] = vs.cast(v.type)
        r = pc.is_in(v, value_set=s)
        r = pc.if_else(pc.is_null(v), _NULL_BOOL, r)  # null in [...] is null, not false
        return pc.invert(r) if node.negated else r
    return BOOL, run


def _kind_of_literal(v) -> str:
    return NUM if isinstance(v, Num) else STR if isinstance(v, Str) else BOOL


def _arity(node: Call, lo: int, hi: int | None = None) -> None:
    n = len(node.args)
    hi = lo if hi is None else hi
    if n < lo or (hi >= 0 and n > hi):
        want = f"{lo}" if lo == hi else f"at least {lo}" if hi < 0 else f"{lo} to {hi}"
        raise ExprError(f"{node.name}() takes {want} argument{'s' if want != '1' else ''}, got {n}", *node.span,
                        hint=FUNCTIONS[node.name] or None)


def _literal_string(node: Call, i: int) -> str:
    a = node.args[i]
    if not isinstance(a, Str):
        raise ExprError(f"the {'second' if i == 1 else 'pattern'} argument of {node.name}() must be a quoted string",
                        *a.span, hint=FUNCTIONS[node.name] or None)
    return a.value


def _call(node: Call, ctx: _Ctx):
    name = node.name
    if name not in FUNCTIONS:
        close = difflib.get_close_matches(name.lower(), list(FUNCTIONS), n=1, cutoff=0.6)
        raise ExprError(f"unknown function {name}()", node.span[0], node.span[0] + len(name),
                        hint=f"did you mean {close[0]}()?" if close else "only the functions below can be called")
    if name == "quantile":
        return _quantile(node, ctx)
    if name == "coalesce":
        _arity(node, 2, -1)
        parts = [_compile(a, ctx) for a in node.args]
        kind = parts[0].kind
        for c in parts:
            _need(c, (kind,) if kind in (NUM, STR, BOOL) else (NUM, STR, BOOL), "coalesce()")

        def co(env):
            vals = [p.fn(env) for p in parts]
            if kind == NUM:
                vals = [_float(v) for v in vals]
            elif kind == STR:
                vals = [pc.cast(v, pa.large_string()) for v in vals]
            return pc.coalesce(*vals)
        return kind, co
    if name in ("len", "lower", "upper", "abs"):
        _arity(node, 1)
        x = _compile(node.args[0], ctx)
        if name == "len":
            _need(x, (STR, LIST), "len()")
            f = pc.utf8_length if x.kind == STR else pc.list_value_length
            return NUM, lambda env: pc.cast(f(x.fn(env)), pa.int64())
        if name == "abs":
            _need(x, (NUM,), "abs()")
            return NUM, lambda env: pc.abs(_float(x.fn(env)))
        _need(x, (STR,), f"{name}()")
        f = pc.utf8_lower if name == "lower" else pc.utf8_upper
        return STR, lambda env: f(x.fn(env))
    _arity(node, 2)
    x = _compile(node.args[0], ctx)
    _need(x, (STR,), f"{name}()")
    pattern = _literal_string(node, 1)
    if name == "regex":
        try:
            pc.match_substring_regex(pa.array([""]), pattern=pattern)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise ExprError(f"not a valid RE2 regular expression: {str(e).split(':', 1)[-1].strip()}",
                            *node.args[1].span, hint="RE2 syntax: https://github.com/google/re2/wiki/Syntax") from None
    f = {"contains": pc.match_substring, "startswith": pc.starts_with, "endswith": pc.ends_with,
         "regex": pc.match_substring_regex}[name]
    return BOOL, lambda env: f(x.fn(env), pattern=pattern)


def _quantile(node: Call, ctx: _Ctx):
    _arity(node, 2)
    if not ctx.allow_quantile:
        raise ExprError("quantile() cannot be nested in another quantile()", *node.span)
    arg, q = node.args
    inner = _Ctx(ctx.schema, allow_quantile=False)
    x = _compile(arg, inner)
    _need(x, (NUM,), "quantile()")
    if not isinstance(q, Num) or not 0 <= q.value <= 1:
        raise ExprError("the second argument of quantile() must be a number from 0 to 1 (0.3 = 30th percentile)",
                        *q.span)
    if not any(isinstance(n, Col) for n in walk(arg)):
        raise ExprError("quantile() of a constant: its first argument must use a column", *arg.span)
    ref = QuantileRef(unparse(arg), arg, q.text, node.span)
    ctx.quantiles.append(ref)
    k = (ref.key, ref.q)

    def value(env):
        return pa.scalar(env.quantiles[k], _F64)
    return NUM, value
