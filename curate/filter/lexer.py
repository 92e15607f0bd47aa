"""Tokens of the filter language. Anything outside it (attribute access, '&', ';', ...) is an error
at its character: the language has no way to name Python objects, so nothing here is ever eval'd."""

from __future__ import annotations

import re
from dataclasses import dataclass

from curate.filter.errors import ExprError

MAX_LENGTH = 65536  # characters of one expression (long `in [...]` lists are legitimate)
KEYWORDS = frozenset({"and", "or", "not", "in", "is", "null", "true", "false"})
OPERATORS = ("<=", ">=", "==", "!=", "<>", "(", ")", "[", "]", ",", "+", "-", "*", "/", "<", ">", "=")

_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[^\W\d]\w*")
_SPACE = re.compile(r"\s+")
_ESCAPES = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
_MISTAKES = {
    "&": "use `and`", "|": "use `or`", "!": "use `not` (or `!=` for 'not equal')",
    ".": "there is no attribute access: name a column, or call one of the functions",
    "%": "there is no modulo operator", ";": "one expression per --where; give several --where options",
    "{": "lists are written [a, b]", "}": "lists are written [a, b]", ":": "there is no ':' in the language",
    "@": "there are no decorators or matrix products", "~": "use `not`", "^": "there is no power operator",
}


@dataclass(frozen=True)
class Token:
    kind: str  # num | str | ident | kw | op | end
    text: str  # the source text (keywords lower-cased)
    value: object
    start: int
    end: int


def tokenize(expr: str) -> list[Token]:
    if len(expr) > MAX_LENGTH:
        raise ExprError(f"the expression is {len(expr):,} characters long; the limit is {MAX_LENGTH:,}", MAX_LENGTH)
    out: list[Token] = []
    i, n = 0, len(expr)
    while i < n:
        m = _SPACE.match(expr, i)
        if m:
            i = m.end()
            continue
        c = expr[i]
        if c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            m = _NUMBER.match(expr, i)
            out.append(_number(m.group(), i, m.end()))
            i = m.end()
            if i < n and (expr[i].isalpha() or expr[i] == "_"):
                raise ExprError(f"a number cannot run into a name ({expr[m.start():i + 1]!r}...)", i)
            continue
        m = _IDENT.match(expr, i)
        if m:
            word = m.group()
            if word.lower() in KEYWORDS:
                out.append(Token("kw", word.lower(), None, i, m.end()))
            else:
                out.append(Token("ident", word, word, i, m.end()))
            i = m.end()
            continue
        if c in "'\"":
            tok = _string(expr, i)
            out.append(tok)
            i = tok.end
            continue
        if c == "`":
            j = expr.find("`", i + 1)
            if j < 0:
                raise ExprError("unterminated `quoted column name`", i, n)
            if j == i + 1:
                raise ExprError("empty `quoted column name`", i, j + 1)
            out.append(Token("ident", expr[i:j + 1], expr[i + 1:j], i, j + 1))
            i = j + 1
            continue
        for op in OPERATORS:
            if expr.startswith(op, i):
                out.append(Token("op", op, op, i, i + len(op)))
                i += len(op)
                break
        else:
            raise ExprError(f"unexpected character {c!r}", i, hint=_MISTAKES.get(c))
    out.append(Token("end", "", None, n, n))
    return out


def _number(text: str, start: int, end: int) -> Token:
    if re.fullmatch(r"\d+", text):
        v: object = int(text)
        if v > 2**63 - 1:
            raise ExprError("integer too large (the limit is 2**63 - 1)", start, end)
    else:
        v = float(text)
        if v in (float("inf"), float("-inf")):
            raise ExprError("number too large for a 64-bit float", start, end)
    return Token("num", text, v, start, end)


def _string(expr: str, i: int) -> Token:
    quote, j, parts = expr[i], i + 1, []
    while j < len(expr):
        c = expr[j]
        if c == quote:
            return Token("str", expr[i:j + 1], "".join(parts), i, j + 1)
        if c == "\\" and j + 1 < len(expr):
            nxt = expr[j + 1]
            parts.append(_ESCAPES.get(nxt, "\\" + nxt))  # unknown escapes (regex \d, \b) stay as written
            j += 2
            continue
        parts.append(c)
        j += 1
    raise ExprError("unterminated string", i, len(expr), hint=f"close it with {quote}")
