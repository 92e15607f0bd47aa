"""Measuring one benchmark command: wall and CPU seconds and the peak summed RSS of its whole
process tree (pool workers and child programs such as lmplz included), polled from /proc."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

# where every bench finds the repository, its cached corpora, its results and the curate under test
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "scripts" / "bench" / "data"
RESULTS = ROOT / "scripts" / "bench" / "results"
PY = ROOT / ".venv" / "bin" / "python"
CURATE = ROOT / ".venv" / "bin" / "curate"
PAGE = os.sysconf("SC_PAGE_SIZE")
TIMEOUT = 3600


def _tree(pid: int) -> tuple[int, dict[int, int]]:
    """(summed RSS bytes, {pid: own user+system clock ticks}) of pid and all its descendants."""
    kids: dict[int, list[int]] = {}
    stats: dict[int, bytes] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    st = f.read()
                rest = st[st.rindex(b")") + 2 :].split()
                kids.setdefault(int(rest[1]), []).append(int(name))
                stats[int(name)] = rest
            except (OSError, ValueError, IndexError):
                pass
    total, ticks, todo = 0, {}, [pid]
    while todo:
        p = todo.pop()
        todo.extend(kids.get(p, ()))
        try:
            with open(f"/proc/{p}/statm", "rb") as f:
                total += int(f.read().split()[1]) * PAGE
            rest = stats[p]
            ticks[p] = int(rest[11]) + int(rest[12])  # utime + stime of the process itself
        except (OSError, IndexError, ValueError, KeyError):
            pass
    return total, ticks


def measure(argv: list[str], runs: Path, cwd: Path, env: dict | None = None, interval: float = 0.1) -> dict:
    """Run argv; wall and CPU seconds, peak tree RSS, stdout; raises on failure."""
    runs.mkdir(parents=True, exist_ok=True)
    err = runs / ".stderr"
    e = dict(os.environ, **(env or {}))
    e.pop("PYTHONDONTWRITEBYTECODE", None)  # installed software runs from bytecode caches; so do all contenders
    with open(err, "wb") as ef:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=ef, cwd=cwd, env=e)
        peak = [0]
        ticks: dict[int, int] = {}
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                rss, t = _tree(p.pid)
                peak[0] = max(peak[0], rss)
                for k, v in t.items():
                    ticks[k] = max(ticks.get(k, 0), v)
                done.wait(interval)

        th = threading.Thread(target=poll, daemon=True)
        th.start()
        timer = threading.Timer(TIMEOUT, p.kill)
        timer.start()
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        done.set()
        th.join()
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise RuntimeError(f"failed ({rc}): {' '.join(argv)}\n{err.read_text()[-3000:]}")
    # CPU of the whole tree: worker processes of a pool are not always reaped by the process we
    # wait for, so sum each process's own CPU as last polled (misses < interval per process), and
    # take the kernel's figure when it is larger
    polled = sum(ticks.values()) / os.sysconf("SC_CLK_TCK")
    return {"wall_s": wall, "cpu_s": max(ru.ru_utime + ru.ru_stime, polled), "rss_peak": peak[0],
            "maxrss_kernel": ru.ru_maxrss * 1024, "stdout": out.decode(errors="replace")}


def interleaved(cmds: dict[str, list[str]], reps: int, runs: Path, cwd: Path, before=None) -> dict[str, list[dict]]:
    """Each repetition runs every command once, the order rotating (no contender always goes
    first); before(name), if given, runs ahead of each. Returns the results per command."""
    times: dict[str, list[dict]] = {k: [] for k in cmds}
    names = list(cmds)
    for rep in range(reps):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            if before:
                before(name)
            r = measure(cmds[name], runs, cwd)
            times[name].append(r)
            print(f"rep {rep} {name}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s cpu", file=sys.stderr)
    return times


def ratio(times: dict[str, list[dict]], slow: str, fast: str, key: str = "wall_s") -> float:
    """Median over repetitions of slow / fast within each repetition."""
    return round(statistics.median(s[key] / f[key] for s, f in zip(times[slow], times[fast], strict=True)), 2)


def timing(times: dict[str, list[dict]], text_bytes: int) -> dict:
    """Median wall and CPU seconds, MB of text per second, and every repetition's figures."""
    med = {k: statistics.median(r["wall_s"] for r in v) for k, v in times.items()}
    cpu = {k: statistics.median(r["cpu_s"] for r in v) for k, v in times.items()}
    return {"wall_s": {k: round(v, 2) for k, v in med.items()}, "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
            "mb_per_s": {k: round(text_bytes / 1e6 / v, 2) for k, v in med.items()},
            "per_rep": {k: [{"wall_s": round(r["wall_s"], 2), "cpu_s": round(r["cpu_s"], 2)} for r in v]
                        for k, v in times.items()}}


def save(results: Path, name: str, report: dict) -> None:
    """The report as results/NAME.json, and on stdout."""
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


def run_meta() -> dict:
    """When, where and at which commit a bench ran."""
    import platform

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(), "cpus": os.cpu_count(),
            "commit": commit.strip()}


def corpus_stats(corpus: Path) -> tuple[int, int]:
    """Documents and UTF-8 bytes of text of a dataset's shards."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    docs = text = 0
    for f in sorted(corpus.glob("part-*.parquet")):
        t = pq.read_table(f, columns=["text"])
        docs += t.num_rows
        text += pc.sum(pc.binary_length(t.column("text"))).as_py()
    return docs, text
