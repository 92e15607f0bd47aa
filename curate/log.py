"""Logs go to stderr: plain timestamped lines off a terminal (cron), short lines on one."""

from __future__ import annotations

import sys
import time

_quiet = False


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def is_quiet() -> bool:
    return _quiet


def stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def info(msg: str) -> None:
    if not _quiet:
        _emit(msg)


def warn(msg: str) -> None:
    _emit(f"warning: {msg}")  # warnings print even with --quiet: they are about the data


def _emit(msg: str) -> None:
    if stderr_is_tty():
        line = f"curate: {msg}"
    else:
        line = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + f" curate: {msg}"
    try:
        print(line, file=sys.stderr, flush=True)
    except (BrokenPipeError, ValueError):
        pass


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"


def human_count(n: float) -> str:
    return f"{int(n):,}"


def stdout_console(width: int | None = None):
    """A rich console for data on stdout: a reader that leaves early (`| head`) is a clean exit 0
    (the CLI's BrokenPipeError handler), not rich's own silent exit 1."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            raise BrokenPipeError

    return _Console(width=None if sys.stdout.isatty() else width)
