"""The syntax tree of a filter expression. Plain data: it pickles, and tests evaluate it in Python."""

from __future__ import annotations

from dataclasses import dataclass

Span = tuple[int, int]


@dataclass(frozen=True)
class Num:
    value: int | float
    text: str  # as written: quantile() reads q from it exactly (0.1 is 1/10, not a binary fraction)
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class Str:
    value: str
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class Col:
    name: str
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class Unary:
    op: str  # '-' | 'not'
    operand: object
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class Binary:
    op: str  # + - * / (arithmetic) or == != < <= > >= (comparison)
    left: object
    right: object
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class Chain:
    """operands[0] ops[0] operands[1] ops[1] ... evaluated left to right: `a + b - c` (three or more
    operands of + and -, or of * and /). One flat node, so a long sum stays shallow."""

    ops: tuple  # of str, one fewer than operands, all of one precedence
    operands: tuple
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class Logic:
    op: str  # 'and' | 'or'; chains are one node, so `a and b and c ...` stays shallow
    operands: tuple
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class IsNull:
    operand: object
    negated: bool
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class In:
    operand: object
    values: tuple  # of Num / Str / Bool
    negated: bool
    span: Span
    depth: int = 1


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple
    span: Span
    depth: int = 1


COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
ARITHMETIC = ("+", "-", "*", "/")
_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}


def children(node) -> tuple:
    if isinstance(node, Unary | IsNull):
        return (node.operand,)
    if isinstance(node, Binary):
        return (node.left, node.right)
    if isinstance(node, Logic | Chain):
        return node.operands
    if isinstance(node, In):
        return (node.operand, *node.values)
    if isinstance(node, Call):
        return node.args
    return ()


def walk(node):
    yield node
    for c in children(node):
        yield from walk(c)


def columns(node) -> list[str]:
    return list(dict.fromkeys(n.name for n in walk(node) if isinstance(n, Col)))


def _prec(node) -> int:
    if isinstance(node, Logic):
        return _PREC[node.op]
    if isinstance(node, Unary):
        return _PREC["not" if node.op == "not" else "neg"]
    if isinstance(node, Binary):
        return _PREC["cmp"] if node.op in COMPARISONS else _PREC[node.op]
    if isinstance(node, Chain):
        return _PREC[node.ops[0]]
    if isinstance(node, IsNull | In):
        return _PREC["cmp"]
    return 99


def _quote_name(name: str) -> str:
    import re

    from curate.filter.lexer import KEYWORDS

    return name if re.fullmatch(r"[^\W\d]\w*", name) and name.lower() not in KEYWORDS else f"`{name}`"


def unparse(node) -> str:
    """Canonical text of a node: the key of shared sub-expressions and quantile summaries."""
    def sub(child, min_prec: int) -> str:
        s = unparse(child)
        return f"({s})" if _prec(child) < min_prec else s

    if isinstance(node, Num):
        return node.text
    if isinstance(node, Str):
        return "'" + node.value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(node, Bool):
        return "true" if node.value else "false"
    if isinstance(node, Col):
        return _quote_name(node.name)
    if isinstance(node, Unary):
        return f"not {sub(node.operand, _PREC['not'])}" if node.op == "not" else f"-{sub(node.operand, _PREC['neg'])}"
    if isinstance(node, Binary):
        p = _prec(node)
        # arithmetic is left-associative (a - (b - c) keeps its parentheses, (a - b) - c loses them);
        # comparisons do not chain, so an operand that is itself a comparison is parenthesised
        return f"{sub(node.left, p + (node.op in COMPARISONS))} {node.op} {sub(node.right, p + 1)}"
    if isinstance(node, Chain):
        p = _prec(node)
        rest = "".join(f" {op} {sub(o, p + 1)}" for op, o in zip(node.ops, node.operands[1:], strict=True))
        return sub(node.operands[0], p) + rest
    if isinstance(node, Logic):
        return f" {node.op} ".join(sub(o, _PREC[node.op] + 1) for o in node.operands)
    if isinstance(node, IsNull):
        return f"{sub(node.operand, _PREC['cmp'] + 1)} is {'not ' if node.negated else ''}null"
    if isinstance(node, In):
        vals = ", ".join(unparse(v) for v in node.values)
        return f"{sub(node.operand, _PREC['cmp'] + 1)} {'not ' if node.negated else ''}in [{vals}]"
    if isinstance(node, Call):
        return f"{node.name}({', '.join(unparse(a) for a in node.args)})"
    raise TypeError(node)
