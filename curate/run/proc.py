"""Process set-up shared by the CLI and every worker; imports nothing heavy, so `curate --help`
starts without pyarrow."""

from __future__ import annotations

import gc
import os


def tune_malloc() -> None:
    """Let glibc keep freed multi-MB blocks for reuse: ingest cycles 16 MB buffers, and handing
    each back to the OS (its default above 128 KB) costs a page fault per 4 KB next time."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 64 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):
        pass  # not glibc: keep its defaults


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def imports_done() -> None:
    """The CLI imports with the cyclic GC off (cli.main); a long command turns it back on here,
    once the start-up objects are frozen so later collections never rescan them."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def exit_with_driver(pid: int) -> None:
    """In a pool worker: end this process when the driver `pid` does (a daemon thread waits)."""
    import threading

    threading.Thread(target=_exit_with, args=(pid,), daemon=True).start()


def _exit_with(pid: int) -> None:
    """A worker ends when the driver does, even by kill -9 or the OOM killer: nothing else would
    stop it (its task queue's pipe stays open in the worker itself)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # already gone, or no pidfd (Linux < 5.3): poll instead
        fd = None
    if fd is not None:
        import select

        select.select([fd], [], [])  # readable once the process has exited
    else:
        import time

        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except PermissionError:  # pid reused by another user's process: ours is gone
                break
            time.sleep(1)
    os._exit(1)
