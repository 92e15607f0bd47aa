#!/usr/bin/env python3
"""Foundation I/O benchmarks: curate ingest and export against the plain-pyarrow limit, side by
side in one run, plus the peak RSS of `curate export` on a small and a large corpus.

Three phases, each on corpora made by make_corpus.py (cached):
  throughput  the 200MB corpus, -j 1 and -j 2, --reps repetitions (default 3)
  scaling     the 2GB corpus (8 input tasks / 8 shards, so -j 2 has work to share), -j 1 and -j 2
  rss         `curate export -j 1` (parquet and jsonl.zst) on 200MB and 2GB: peak memory

Every contender is a subprocess timed on the wall clock (interpreter start-up included), on the
same data, with warm page cache; its output is deleted (and `sync` run) before the next one.
The machine is noisy, so the contenders are interleaved: each repetition runs every contender
of the phase once, in a rotated order, and the figures are medians over the repetitions.
Ratios are taken between contenders of the same repetition.

The pyarrow limit (pyarrow_limit.py) is one single-threaded process per worker: pj.read_json or
pq.read_table of each file, then pq.write_table(compression='zstd') with pyarrow's defaults;
"pyarrow (curate settings)" writes with curate's writer settings instead (zstd level 3, no
dictionary on text/id, ~64 MB row groups), which separates the cost of those choices from
curate's own overhead.

Memory: a thread polls /proc every 50 ms and sums the RSS of the process and all its
descendants (peak of that sum = "tree RSS"); the kernel's high-water mark of the largest
single process (wait4 ru_maxrss) is recorded too, as it sees spikes shorter than 50 ms.

    python scripts/bench/bench_io.py                       # what `make bench` runs (~13 min)
    python scripts/bench/bench_io.py --reps 5 --scaling-size "" --rss-sizes ""   # 200MB only
    python scripts/bench/bench_io.py --only rss --rss-reps 3

Raw results go to scripts/bench/results/io-<time>.json (and the tables to .md beside it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_corpus  # noqa: E402
from measure import measure as _measure  # noqa: E402

ROOT = make_corpus.ROOT
RESULTS = HERE / "results"
RUNS = make_corpus.DATA / "_runs"
PY = ROOT / ".venv" / "bin" / "python"
LIMIT = HERE / "pyarrow_limit.py"
PAGE = os.sysconf("SC_PAGE_SIZE")
INGEST_TARGET = 0.5  # curate >= 50% of pyarrow, per worker
RSS_GROWTH_TARGET = 0.20  # peak RSS on the big corpus <= 120% of the small one


def measure(argv: list[str]) -> dict:
    """Wall and CPU seconds and peak RSS of argv's process tree (scripts/bench/measure.py)."""
    try:
        return _measure(argv, RUNS, ROOT, interval=0.05)
    except RuntimeError as e:
        raise SystemExit(f"bench_io: {e}") from None


# ---- contenders --------------------------------------------------------------------------


@dataclass
class Contender:
    key: str  # unique
    op: str  # ingest | export-parquet | export-jsonl | rss
    who: str  # curate | pyarrow | pyarrow (curate settings)
    jobs: int
    argv: list[str]  # OUT is substituted for "{out}"
    nbytes: int  # the bytes that MB/s counts (input JSONL for ingest, text for export)
    corpus: str
    fmt: str = ""
    phase: str = ""
    runs: list[dict] = field(default_factory=list)

    def median(self, k: str) -> float:
        return statistics.median(r[k] for r in self.runs)

    def mbps(self) -> float:
        return self.nbytes / self.median("wall_s") / 1e6


def _corpus(size: str, seed: int) -> tuple[Path, dict]:
    cdir = make_corpus.build(size, seed, log=lambda m: print(m, file=sys.stderr))
    return cdir, json.loads((cdir / "corpus.json").read_text())


def throughput_contenders(phase: str, size: str, seed: int, jobs: list[int], only: set[str], curate: str,
                          variants: bool = True) -> list[Contender]:
    """ingest and export, curate against the pyarrow limit; variants: also pyarrow with curate's writer settings."""
    cdir, meta = _corpus(size, seed)
    jsonl = [str(cdir / "jsonl" / f) for f in meta["files"]]
    shards = sorted(str(p) for p in (cdir / "parquet").glob("part-*.parquet"))
    lim = [str(PY), str(LIMIT)]
    out: list[Contender] = []

    def add(key, op, who, j, argv, nbytes, fmt=""):
        out.append(Contender(f"{phase}:{key}-j{j}", op, who, j, argv, nbytes, size, fmt, phase))

    for j in jobs:
        if "ingest" in only:
            add("ingest-curate", "ingest", "curate", j, [curate, "ingest", str(cdir / "jsonl"), "{out}", "-j", str(j), "-q"], meta["jsonl_bytes"])
            add("ingest-pyarrow", "ingest", "pyarrow", j, [*lim, "ingest", "{out}", *jsonl, "--procs", str(j)], meta["jsonl_bytes"])
            if variants and j == 1:
                add("ingest-pyarrow-cs", "ingest", "pyarrow (curate settings)", j,
                    [*lim, "ingest", "{out}", *jsonl, "--procs", str(j), "--curate-settings"], meta["jsonl_bytes"])
        if "export" in only:
            for fmt in ("parquet", "jsonl"):
                add(f"export-{fmt}-curate", f"export-{fmt}", "curate", j,
                    [curate, "export", str(cdir / "parquet"), "{out}", "--format", fmt, "-j", str(j), "-q"], meta["text_bytes"], fmt)
            add("export-pyarrow", "export-parquet", "pyarrow", j, [*lim, "export", "{out}", *shards, "--procs", str(j)],
                meta["text_bytes"], "parquet")
            if variants and j == 1:
                add("export-pyarrow-cs", "export-parquet", "pyarrow (curate settings)", j,
                    [*lim, "export", "{out}", *shards, "--procs", str(j), "--curate-settings"], meta["text_bytes"], "parquet")
    return out


def rss_contenders(sizes: list[str], seed: int, curate: str) -> list[Contender]:
    out = []
    for size in sizes:
        cdir, meta = _corpus(size, seed)
        for fmt in ("parquet", "jsonl.zst"):
            out.append(Contender(f"rss:{fmt}-{size}", "rss", "curate", 1,
                                 [curate, "export", str(cdir / "parquet"), "{out}", "--format", fmt, "-j", "1", "-q"],
                                 meta["text_bytes"], size, fmt, "rss"))
    return out


def warm_cache(paths: list[Path]) -> None:
    for p in paths:
        for f in sorted(p.rglob("*")):
            if f.is_file():
                with open(f, "rb") as fh:
                    while fh.read(16 << 20):
                        pass


def run_interleaved(contenders: list[Contender], reps: int, label: str) -> None:
    n = len(contenders)
    for rep in range(reps):
        order = contenders[rep % n:] + contenders[: rep % n]  # rotate: no contender always goes first
        for c in order:
            out = RUNS / c.key.replace(":", "-")
            if out.exists():
                shutil.rmtree(out)
            argv = [a.replace("{out}", str(out)) for a in c.argv]
            r = measure(argv)
            r["rep"], r["load1"] = rep, os.getloadavg()[0]
            c.runs.append(r)
            shutil.rmtree(out, ignore_errors=True)
            os.sync()  # settle write-back now, outside the timed region of the next contender
            print(f"  {label} rep {rep + 1}/{reps}  {c.key:34s} {r['wall_s']:7.2f} s  "
                  f"{c.nbytes / r['wall_s'] / 1e6:7.1f} MB/s  tree RSS {r['rss_peak'] / 2**20:6.0f} MiB  load {r['load1']:.1f}",
                  file=sys.stderr, flush=True)


# ---- reporting ---------------------------------------------------------------------------


def _mib(b: float) -> str:
    return f"{b / 2**20:.0f}"


def paired_ratio(a: Contender, b: Contender) -> float:
    """Median over repetitions of b.wall / a.wall (= a's speed relative to b), same repetition."""
    return statistics.median(rb["wall_s"] / ra["wall_s"] for ra, rb in zip(a.runs, b.runs, strict=True))


_WHAT = {"ingest": "ingest JSONL -> Parquet", "export-parquet": "export -> Parquet", "export-jsonl": "export -> JSONL"}


def _ref_key(c: Contender) -> str:
    return f"{c.phase}:{'ingest' if c.op == 'ingest' else 'export'}-pyarrow-j{c.jobs}"


def throughput_table(cs: list[Contender], by: dict, title: str) -> list[str]:
    lines = [title, "",
             "| operation | contender | -j | wall s | MB/s | CPU s | vs pyarrow, same -j | tree RSS MiB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for c in sorted(cs, key=lambda c: (list(_WHAT).index(c.op), c.jobs, c.who != "curate", c.who)):
        ref = by.get(_ref_key(c))
        ratio = f"{paired_ratio(c, ref):.2f}" if ref is not None else "-"
        cpu = f"{c.median('cpu_s'):.1f}" if c.jobs == 1 else "-"
        lines.append(f"| {_WHAT[c.op]} | {c.who} | {c.jobs} | {c.median('wall_s'):.2f} | {c.mbps():.1f} | {cpu} | {ratio} | "
                     f"{_mib(c.median('rss_peak'))} |")
    lines.append("")
    phase = cs[0].phase
    for op in _WHAT:
        scal = []
        for who in ("curate", "pyarrow"):
            stem = f"{phase}:{op}-curate" if who == "curate" else f"{phase}:{'ingest' if op == 'ingest' else 'export'}-pyarrow"
            if who == "pyarrow" and op == "export-jsonl":
                continue
            a, b = by.get(f"{stem}-j1"), by.get(f"{stem}-j2")
            if a and b:
                scal.append(f"{who} x{b.mbps() / a.mbps():.2f}")
        if scal:
            lines.append(f"- speed-up from -j 1 to -j 2, {_WHAT[op]}: " + ", ".join(scal))
    lines.append("")
    return lines


def report(thr: list[Contender], rss: list[Contender], meta: dict) -> tuple[str, dict]:
    by = {c.key: c for c in thr + rss}
    lines: list[str] = []
    verdict: dict = {}
    for ph in meta["phases"]:
        cs = [c for c in thr if c.phase == ph["phase"]]
        if not cs:
            continue
        lines += throughput_table(cs, by, f"**{ph['phase']}**: the {ph['size']} corpus, {ph['reps']} interleaved repetition(s), medians")
        for op, stem in (("ingest", "ingest-curate"), ("export-parquet", "export-parquet-curate")):
            for j in ph["jobs"]:
                a = by.get(f"{ph['phase']}:{stem}-j{j}")
                if a is None or _ref_key(a) not in by:
                    continue
                ref = by[_ref_key(a)]
                r = paired_ratio(a, ref)
                verdict[f"{op} {ph['size']} -j {j}"] = {"ratio": round(r, 3), "ratio_of_medians": round(a.mbps() / ref.mbps(), 3),
                                                       "target": INGEST_TARGET, "met": r >= INGEST_TARGET}
    if thr:
        lines += ["MB/s counts input JSONL bytes for ingest and text bytes (the `text` column, UTF-8) for export. "
                  "'vs pyarrow' is the median over repetitions of pyarrow's wall time / curate's in the same repetition "
                  "(1.00 = as fast as the limit; for export -> JSONL the reference is the Parquet limit). "
                  "CPU s (user+sys) is shown for single-process runs only.", ""]
    if rss:
        lines += [f"**rss**: peak memory of `curate export -j 1`, {meta['rss_reps']} interleaved repetition(s), medians", "",
                  "| format | corpus | shards | text MB | wall s | MB/s | tree RSS peak MiB | kernel maxrss MiB |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for c in rss:
            lines.append(f"| {c.fmt} | {c.corpus} | {meta['shards'].get(c.corpus, '?')} | {c.nbytes / 1e6:.0f} | {c.median('wall_s'):.1f} | "
                         f"{c.mbps():.1f} | {_mib(c.median('rss_peak'))} | {_mib(c.median('maxrss_kernel'))} |")
        lines.append("")
        sizes = meta["rss_sizes"]
        if len(sizes) >= 2:
            for fmt in ("parquet", "jsonl.zst"):
                small, big = by[f"rss:{fmt}-{sizes[0]}"], by[f"rss:{fmt}-{sizes[-1]}"]
                g = big.median("rss_peak") / small.median("rss_peak") - 1
                gk = big.median("maxrss_kernel") / small.median("maxrss_kernel") - 1
                verdict[f"rss {fmt} {sizes[0]} -> {sizes[-1]}"] = {"growth": round(g, 3), "growth_kernel_maxrss": round(gk, 3),
                                                                  "target": RSS_GROWTH_TARGET, "met": g <= RSS_GROWTH_TARGET}
    lines.append("Targets:")
    lines.append("")
    for k, v in verdict.items():
        if "ratio" in v:
            lines.append(f"- {k}: curate at {v['ratio']:.0%} of pyarrow (target >= {v['target']:.0%}): {'met' if v['met'] else 'MISSED'}")
        else:
            lines.append(f"- {k}: peak tree RSS {v['growth']:+.0%} (kernel maxrss {v['growth_kernel_maxrss']:+.0%}), "
                         f"target <= +{v['target']:.0%}: {'met' if v['met'] else 'MISSED'}")
    return "\n".join(lines) + "\n", verdict


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import pyarrow

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    if subprocess.run(["git", "status", "--porcelain", "--", "curate"], capture_output=True, text=True, cwd=ROOT).stdout.strip():
        rev += "+uncommitted changes in curate/"
    return {"cpus": os.cpu_count(), "cpu": cpu, "mem_gib": round(os.sysconf("SC_PHYS_PAGES") * PAGE / 2**30, 1),
            "python": platform.python_version(), "pyarrow": pyarrow.__version__, "git": rev}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="200MB", help="Corpus for the throughput runs [200MB].")
    ap.add_argument("--reps", type=int, default=3, help="Repetitions of the throughput runs [3].")
    ap.add_argument("--scaling-size", default="2GB", help="Corpus for the -j 1 vs -j 2 scaling runs [2GB]; '' skips.")
    ap.add_argument("--scaling-reps", type=int, default=2, help="Repetitions of the scaling runs [2].")
    ap.add_argument("--rss-sizes", default="200MB,2GB", help="Corpora for the peak-RSS runs, small first [200MB,2GB]; '' skips.")
    ap.add_argument("--rss-reps", type=int, default=2, help="Repetitions of the peak-RSS runs [2].")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", default="1,2", help="Worker counts for the throughput and scaling runs [1,2].")
    ap.add_argument("--only", default="ingest,export,rss", help="Which parts to run [ingest,export,rss].")
    ap.add_argument("--curate", default=str(ROOT / ".venv" / "bin" / "curate"))
    a = ap.parse_args()
    only = {s.strip() for s in a.only.split(",") if s.strip()}
    jobs = [int(j) for j in a.jobs.split(",") if j.strip()]
    rss_sizes = [s.strip() for s in a.rss_sizes.split(",") if s.strip()] if "rss" in only else []
    cmd = " ".join(["python", "scripts/bench/bench_io.py", *sys.argv[1:]])
    RUNS.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)

    phases = []
    if only & {"ingest", "export"}:
        phases.append({"phase": "throughput", "size": a.size, "jobs": jobs, "reps": a.reps, "variants": True})
        if a.scaling_size.strip() and len(jobs) > 1:
            phases.append({"phase": "scaling", "size": a.scaling_size.strip(), "jobs": jobs, "reps": a.scaling_reps, "variants": True})
    thr = [c for ph in phases for c in throughput_contenders(ph["phase"], ph["size"], a.seed, ph["jobs"], only, a.curate, ph["variants"])]
    rss = rss_contenders(rss_sizes, a.seed, a.curate) if rss_sizes else []
    sizes = sorted({ph["size"] for ph in phases} | set(rss_sizes), key=make_corpus.parse_size)
    corpora = {s: json.loads((make_corpus.corpus_dir(s, a.seed) / "corpus.json").read_text()) for s in sizes}
    meta = {"command": cmd, "phases": phases, "rss_sizes": rss_sizes, "rss_reps": a.rss_reps, "seed": a.seed,
            "shards": {s: m["parquet"]["shards"] for s, m in corpora.items()},
            "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "load_before": os.getloadavg()}
    t0 = time.monotonic()
    for ph in phases:
        cdir = make_corpus.corpus_dir(ph["size"], a.seed)
        warm_cache([cdir / "jsonl", cdir / "parquet"])
        run_interleaved([c for c in thr if c.phase == ph["phase"]], ph["reps"], ph["phase"])
    if rss:
        warm_cache([make_corpus.corpus_dir(s, a.seed) / "parquet" for s in rss_sizes])
        run_interleaved(rss, a.rss_reps, "rss")
    meta["seconds"] = round(time.monotonic() - t0, 1)
    meta["load_after"] = os.getloadavg()
    table, verdict = report(thr, rss, meta)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for m in corpora.values():
        m.pop("files", None)
    raw = {"meta": meta, "corpora": corpora, "verdict": verdict, "contenders": [dict(c.__dict__) for c in thr + rss]}
    (RESULTS / f"io-{stamp}.json").write_text(json.dumps(raw, indent=1))
    (RESULTS / f"io-{stamp}.md").write_text(f"`{cmd}`\n\n{table}")
    shutil.rmtree(RUNS, ignore_errors=True)
    print(table)
    print(f"bench_io: {meta['seconds']:.0f} s; raw results: {(RESULTS / f'io-{stamp}.json').relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
