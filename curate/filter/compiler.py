"""Type-check a syntax tree against a schema and compile it into a function of a record batch that
calls pyarrow.compute kernels on whole columns (no per-row Python).

Types: number, string, boolean, list; a column of another Arrow type (timestamp, binary, struct)
can only be tested with `is null`. Nulls propagate as in SQL: an operator or function with a null
operand gives null, `and`/`or` use Kleene logic (false and null = false, true or null = true),
`x in [...]` is null when x is null, and division by zero gives null. Arithmetic is float64 (an
integer above 2**53 is rounded to the nearest float); comparisons and `in` between integers are
exact, in integers.
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
    Chain,
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
_DEC = pa.decimal128(20, 0)  # holds every int64 and every uint64: compares the two exactly


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
    """A column as the kernels want it: numbers as int64, uint64 or float64, strings decoded."""
    if pa.types.is_dictionary(t):
        arr, t = arr.dictionary_decode(), t.value_type
    if pa.types.is_string_view(t):
        return pc.cast(arr, pa.large_string())
    if pa.types.is_integer(t) and t not in (pa.int64(), pa.uint64()):
        return pc.cast(arr, pa.int64())
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
        self.in_quantile = False  # compiling a quantile()'s argument
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
    elif isinstance(node, Chain):
        c, fn = _chain(node, ctx)
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
        close = close_names(node.name, ctx.schema.names)
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


def close_names(name: str, names: list[str]) -> list[str]:
    """Names like `name`: a spelling slip, or the same name in another case (TEXT for text)."""
    same_case = [n for n in names if n.lower() == name.lower()]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return same_case + [n for n in close if n not in same_case]


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
    # unchecked: an integer above 2**53 rounds to the nearest float rather than failing
    return pc.cast(v, _F64, safe=False) if v.type != _F64 else v


def _comparable(x, y):
    """Two numbers in one type, so that the kernel casts nothing itself (its cast is checked and fails
    above 2**53): integers stay integers (exact), anything with a float is compared in float64."""
    if x.type == y.type:
        return x, y
    if pa.types.is_integer(x.type) and pa.types.is_integer(y.type):
        return pc.cast(x, _DEC), pc.cast(y, _DEC)  # int64 with uint64
    return _float(x), _float(y)


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
    return NUM, lambda env: _apply(node.op, a.fn(env), b.fn(env))


def _chain(node: Chain, ctx: _Ctx):
    parts = [_compile(o, ctx) for o in node.operands]
    for i, c in enumerate(parts):
        _need(c, (NUM,), f"`{node.ops[max(i - 1, 0)]}`")

    def run(env):
        v = parts[0].fn(env)
        for op, c in zip(node.ops, parts[1:], strict=True):
            v = _apply(op, v, c.fn(env))
        return v
    return NUM, run


def _apply(op: str, x, y):
    x, y = _float(x), _float(y)
    if op == "/":
        return pc.if_else(pc.equal(y, 0.0), _NULL_F64, pc.divide(x, y))  # x / 0 is null, as in SQLite
    return {"+": pc.add, "-": pc.subtract, "*": pc.multiply}[op](x, y)


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
    if a.kind == NUM:
        return BOOL, lambda env: f(*_comparable(a.fn(env), b.fn(env)))
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
        member = _number_member([v.value for v in node.values])
    else:
        vs = pa.array([v.value for v in node.values], pa.string() if x.kind == STR else pa.bool_())
        sets: dict = {}

        def member(v):
            s = sets.get(v.type)
            if s is None:
                s = sets[v.type] = vs.cast(v.type)
            return pc.is_in(v, value_set=s)

    def run(env):
        v = x.fn(env)
        r = pc.if_else(pc.is_null(v), _NULL_BOOL, member(v))  # null in [...] is null, not false
        return pc.invert(r) if node.negated else r
    return BOOL, run


def _number_member(values: list):
    """`x in [...]` as `x == v1 or x == v2 ...`: an integer x against an integer literal exactly, in
    integers; anything else in float64."""
    ints = [v for v in values if isinstance(v, int)]
    floats = pa.array([float(v) + 0.0 for v in values if not isinstance(v, int)], _F64)
    every = pa.array([float(v) + 0.0 for v in values], _F64)
    int_sets: dict = {}

    def member(v):
        if not pa.types.is_integer(v.type):
            return pc.is_in(pc.add(_float(v), 0.0), value_set=every)  # -0.0 + 0.0 is 0.0: set lookups hash bits
        s = int_sets.get(v.type)
        if s is None:
            lo, hi = (0, 2**64 - 1) if pa.types.is_unsigned_integer(v.type) else (-2**63, 2**63 - 1)
            s = int_sets[v.type] = pa.array([i for i in ints if lo <= i <= hi], v.type)  # others match nothing
        r = pc.is_in(v, value_set=s)
        return pc.or_(r, pc.is_in(_float(v), value_set=floats)) if len(floats) else r
    return member


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
    if ctx.in_quantile:
        raise ExprError("quantile() cannot be nested in another quantile()", *node.span)
    if not ctx.allow_quantile:
        raise ExprError("quantile() is not available here: only `curate filter` rules can use it (it needs a "
                        "first pass over the whole input)", *node.span,
                        hint="write the value as a number: `curate filter IN --dry-run --where 'x < quantile(x, "
                             "0.5)'` prints it")
    arg, q = node.args
    inner = _Ctx(ctx.schema, allow_quantile=False)
    inner.in_quantile = True
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
