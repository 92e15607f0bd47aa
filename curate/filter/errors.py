"""Expression errors that show the expression with a caret under the offending characters."""

from __future__ import annotations

from curate.errors import UsageError


class ExprError(UsageError):
    """A bad expression: where it came from, what is wrong, and the span [start, end) to point at.

    `context` (the columns and their types, the functions) is filled in once the schema is known.
    """

    def __init__(self, message: str, start: int, end: int | None = None, *, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.start = start
        self.end = max(end if end is not None else start + 1, start + 1)
        self.expr: str | None = None
        self.source: str | None = None  # e.g. "--where", "--rule short", "preset x.toml: rule short"
        self.context: list[str] = []

    def locate(self, expr: str, source: str) -> ExprError:
        self.expr, self.source = expr, source
        return self

    def render(self) -> str:
        lines = [f"{self.source}: {self.message}" if self.source else self.message]
        if self.expr is not None:
            shown, offset = _window(self.expr, self.start)
            lines.append("    " + shown)
            width = max(1, min(self.end, self.start + len(shown) - (self.start - offset)) - self.start)
            lines.append("    " + " " * (self.start - offset) + "^" * width)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        lines.extend("  " + c for c in self.context)
        return "\n".join(lines)


def _window(expr: str, pos: int, width: int = 100) -> tuple[str, int]:
    """One line of at most `width` characters around pos (long expressions are cut), and its offset."""
    flat = expr.replace("\n", " ").replace("\t", " ")
    if len(flat) <= width:
        return flat, 0
    start = max(0, min(pos - width // 2, len(flat) - width))
    return flat[start:start + width], start
