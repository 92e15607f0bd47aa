"""Progress: a rich bar on a terminal, a plain line every few seconds in cron, nothing with --quiet."""

from __future__ import annotations

import os
import time

from curate import log


def _interval() -> float:
    try:
        return float(os.environ.get("CURATE_LOG_INTERVAL", "30"))
    except ValueError:
        return 30.0


class Reporter:
    """Counts documents and input bytes; shows docs/s, MB/s and ETA (from bytes)."""

    def __init__(self, label: str, total_tasks: int, total_bytes: int, mode: str = "auto"):
        if mode == "auto":
            mode = "none" if log.is_quiet() else ("bar" if log.stderr_is_tty() else "plain")
        self.mode = mode
        self.label = label
        self.total_tasks = total_tasks
        self.total_bytes = max(total_bytes, 1)
        self.tasks_done = 0
        self.rows = 0
        self.nbytes = 0
        self.start = time.monotonic()
        self._last_line = self.start
        self._bar = None
        if mode == "bar":
            self._start_bar()

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[tasks]}"),
            TextColumn("{task.fields[docs]} docs"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._id = self._bar.add_task(self.label, total=self.total_bytes, tasks="", docs="0", rate="")

    def _rates(self) -> tuple[float, float]:
        dt = max(time.monotonic() - self.start, 1e-6)
        return self.rows / dt, self.nbytes / dt

    def advance(self, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.nbytes += nbytes
        self._show()

    def task_done(self, top_up_bytes: int = 0) -> None:
        self.tasks_done += 1
        self.nbytes += max(top_up_bytes, 0)
        self._show(force=self.mode == "bar")

    def _show(self, force: bool = False) -> None:
        docs_s, bytes_s = self._rates()
        if self.mode == "bar" and self._bar is not None:
            self._bar.update(
                self._id,
                completed=min(self.nbytes, self.total_bytes),
                tasks=f"{self.tasks_done}/{self.total_tasks} shards",
                docs=log.human_count(self.rows),
                rate=f"{docs_s:,.0f} docs/s {bytes_s / 1e6:,.1f} MB/s",
            )
        elif self.mode == "plain":
            now = time.monotonic()
            if force or now - self._last_line >= _interval():
                self._last_line = now
                eta = (self.total_bytes - self.nbytes) / bytes_s if bytes_s > 0 else 0
                log.info(
                    f"{self.label}: {self.tasks_done}/{self.total_tasks} shards, {log.human_count(self.rows)} docs, "
                    f"{docs_s:,.0f} docs/s, {bytes_s / 1e6:,.1f} MB/s, ETA {max(eta, 0):.0f}s"
                )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.update(self._id, completed=self.total_bytes)
            self._bar.stop()
            self._bar = None
