"""One error family. Library code raises these; the CLI turns them into one clean message."""

from __future__ import annotations

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_DATA = 1  # bad input data, a failed task, an output conflict
EXIT_USAGE = 2  # bad options (click's own code for usage errors)
EXIT_INTERNAL = 70  # a bug in curate (EX_SOFTWARE): a traceback is printed
EXIT_INTERRUPTED = 130  # Ctrl-C / SIGTERM


class CurateError(Exception):
    """A user-facing error: what is wrong, where, and what to do."""

    exit_code = EXIT_DATA

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def render(self) -> str:
        head = f"{self.where}: {self.message}" if self.where else self.message
        return f"{head}\n  hint: {self.hint}" if self.hint else head

    def __str__(self) -> str:
        return self.render()


class InputError(CurateError):
    """The input data is missing, unreadable or not what the stage needs."""


class OutputError(CurateError):
    """The output location conflicts with the request (exists, is the input, differs in params)."""


class UsageError(CurateError):
    """Options that cannot work together; found after click's own parsing."""

    exit_code = EXIT_USAGE


class TaskFailed(CurateError):
    """A worker task failed with a CurateError; carries the worker's message."""
