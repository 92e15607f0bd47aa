"""A recursive-descent parser: tokens -> syntax tree, with nesting bounded so that no input can
exhaust the stack. Precedence, loosest first: or, and, not, comparisons (== != < <= > >=, is
[not] null, [not] in [...]), + -, * /, unary minus."""

from __future__ import annotations

from curate.filter.errors import ExprError
from curate.filter.lexer import Token, tokenize
from curate.filter.nodes import (
    COMPARISONS,
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
)

MAX_DEPTH = 64  # nesting levels of the tree (parentheses, operators, calls); a chain a + b + c ... is one


def parse(expr: str):
    """Parse one expression; raises ExprError pointing at the offending character."""
    p = _Parser(tokenize(expr))
    node = p.expr()
    t = p.peek()
    if t.kind != "end":
        raise ExprError(f"unexpected {_describe(t)} after a complete expression", t.start, t.end,
                        hint="combine conditions with `and` / `or`")
    return node


def _describe(t: Token) -> str:
    if t.kind == "end":
        return "end of the expression"
    if t.kind == "kw":
        return f"`{t.text}`"
    return f"{t.text!r}"


def _span(a, b) -> tuple[int, int]:
    return (a.span[0] if hasattr(a, "span") else a.start, b.span[1] if hasattr(b, "span") else b.end)


class _Parser:
    def __init__(self, tokens: list[Token]):
        self.toks = tokens
        self.i = 0
        self.level = 0

    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def is_op(self, *ops: str) -> bool:
        t = self.peek()
        return t.kind == "op" and t.text in ops

    def is_kw(self, *kws: str) -> bool:
        t = self.peek()
        return t.kind == "kw" and t.text in kws

    def expect_op(self, op: str, what: str, opener: Token | None = None) -> Token:
        if not self.is_op(op):
            t = self.peek()
            extra = f" to close the {opener.text!r} at character {opener.start + 1}" if opener else ""
            what = f" {what}" if what else ""
            raise ExprError(f"expected {op!r}{extra}{what}, found {_describe(t)}", t.start, t.end)
        return self.take()

    def make(self, cls, *args, span):
        kids = [a for a in args if hasattr(a, "depth")] + [x for a in args if isinstance(a, tuple) for x in a
                                                           if hasattr(x, "depth")]
        depth = 1 + max((k.depth for k in kids), default=0)
        if depth > MAX_DEPTH:
            raise ExprError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)", span[0], span[1])
        return cls(*args, span=span, depth=depth)

    def enter(self, t: Token) -> None:
        self.level += 1
        if self.level > MAX_DEPTH:
            raise ExprError(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)", t.start, t.end)

    # -- grammar, loosest first ----------------------------------------------------------------
    def expr(self):
        return self.logic("or", self.and_)

    def and_(self):
        return self.logic("and", self.not_)

    def logic(self, op: str, operand):
        first = operand()
        items = [first]
        while self.is_kw(op):
            self.take()
            items.append(operand())
        if len(items) == 1:
            return first
        return self.make(Logic, op, tuple(items), span=_span(items[0], items[-1]))

    def not_(self):
        if self.is_kw("not"):
            t = self.take()
            self.enter(t)
            operand = self.not_()
            self.level -= 1
            return self.make(Unary, "not", operand, span=_span(t, operand))
        return self.comparison()

    def comparison(self):
        left = self.sum()
        t = self.peek()
        if t.kind == "op" and t.text in COMPARISONS + ("=", "<>"):
            self.take()
            right = self.sum()
            op = {"=": "==", "<>": "!="}.get(t.text, t.text)
            node = self.make(Binary, op, left, right, span=_span(left, right))
            nxt = self.peek()
            if nxt.kind == "op" and nxt.text in COMPARISONS + ("=", "<>"):
                raise ExprError("comparisons do not chain", nxt.start, nxt.end,
                                hint="write `a < b and b < c` instead of `a < b < c`")
            return node
        if self.is_kw("is"):
            self.take()
            negated = self.is_kw("not")
            if negated:
                self.take()
            n = self.peek()
            if not self.is_kw("null"):
                raise ExprError(f"expected `null` after `is{' not' if negated else ''}`, found {_describe(n)}",
                                n.start, n.end, hint="`is` only tests for missing values: x is null, x is not null")
            self.take()
            return self.make(IsNull, left, negated, span=_span(left, n))
        if self.is_kw("in") or (self.is_kw("not") and self.peek(1).kind == "kw" and self.peek(1).text == "in"):
            negated = self.is_kw("not")
            if negated:
                self.take()
            self.take()
            values, close = self.literal_list()
            return self.make(In, left, values, negated, span=_span(left, close))
        return left

    def literal_list(self) -> tuple[tuple, Token]:
        t = self.peek()
        if not self.is_op("[", "("):
            raise ExprError(f"expected a list such as ['a', 'b'] after `in`, found {_describe(t)}", t.start, t.end)
        opener = self.take()
        closer = "]" if opener.text == "[" else ")"
        values = []
        while not self.is_op(closer):
            values.append(self.literal())
            if not self.is_op(","):
                break
            self.take()
        return tuple(values), self.expect_op(closer, "after the list", opener)

    def literal(self):
        t = self.peek()
        neg = None
        if self.is_op("-") and self.peek(1).kind == "num":
            neg = self.take()
            t = self.peek()
        if t.kind == "num":
            self.take()
            if neg is not None:
                return Num(-t.value, "-" + t.text, (neg.start, t.end))
            return Num(t.value, t.text, (t.start, t.end))
        if t.kind == "str":
            self.take()
            return Str(t.value, (t.start, t.end))
        if self.is_kw("true", "false"):
            self.take()
            return Bool(t.text == "true", (t.start, t.end))
        if self.is_kw("null"):
            raise ExprError("null cannot be in a list", t.start, t.end, hint="test for it with `x is null`")
        raise ExprError(f"a list holds only literal numbers, strings, true or false; found {_describe(t)}",
                        t.start, t.end)

    def sum(self):
        return self.chain(("+", "-"), self.product)

    def product(self):
        return self.chain(("*", "/"), self.unary)

    def chain(self, ops: tuple[str, ...], operand):
        """`a + b - c ...`: two operands are a Binary, more are one Chain, so that a long sum is
        one level deep (it is evaluated in a loop, not by recursion)."""
        items, seen = [operand()], []
        while self.is_op(*ops):
            seen.append(self.take().text)
            items.append(operand())
        if len(items) == 1:
            return items[0]
        if len(items) == 2:
            return self.make(Binary, seen[0], items[0], items[1], span=_span(items[0], items[1]))
        return self.make(Chain, tuple(seen), tuple(items), span=_span(items[0], items[-1]))

    def unary(self):
        if self.is_op("-"):
            t = self.take()
            if self.peek().kind == "num":  # a negative literal stays a literal
                n = self.take()
                return Num(-n.value, "-" + n.text, (t.start, n.end))
            self.enter(t)
            operand = self.unary()
            self.level -= 1
            return self.make(Unary, "-", operand, span=_span(t, operand))
        return self.primary()

    def primary(self):
        t = self.peek()
        if t.kind == "num":
            self.take()
            return Num(t.value, t.text, (t.start, t.end))
        if t.kind == "str":
            self.take()
            return Str(t.value, (t.start, t.end))
        if t.kind == "kw" and t.text in ("true", "false"):
            self.take()
            return Bool(t.text == "true", (t.start, t.end))
        if t.kind == "kw" and t.text == "null":
            raise ExprError("null is not a value here", t.start, t.end,
                            hint="test for missing values with `x is null` / `x is not null`; a comparison with "
                                 "null is never true")
        if t.kind == "ident":
            self.take()
            if self.is_op("("):
                return self.call(t)
            return Col(t.value, (t.start, t.end))
        if self.is_op("("):
            opener = self.take()
            self.enter(opener)
            node = self.expr()
            self.expect_op(")", "", opener)
            self.level -= 1
            return node
        raise ExprError(f"expected a value (a column, number, string or function call), found {_describe(t)}",
                        t.start, t.end)

    def call(self, name: Token):
        opener = self.take()
        self.enter(opener)
        args = []
        while not self.is_op(")"):
            args.append(self.expr())
            if not self.is_op(","):
                break
            self.take()
        close = self.expect_op(")", f"after the arguments of {name.value}()", opener)
        self.level -= 1
        return self.make(Call, name.value, tuple(args), span=_span(name, close))
