#!/usr/bin/env python3
"""--executor ray against the local executor, side by side in one run: the same stage on 1 and 2
workers each, so the table gives Ray's scaling efficiency and its fixed cost per run.

Contenders (each one `curate` process, timed on the wall clock, interpreter start-up included):
  local -jK   curate STAGE IN OUT -j K                                     (K = 1, 2)
  ray K       curate STAGE IN OUT --executor ray --ray-address A, against a cluster started
              beforehand with `ray start --head --num-cpus K` (its start is not timed: a cluster
              is up before jobs come; what a job pays is joining it and starting its workers)

Stages: dedup minhash (six phases, the global ones included) and score --kenlm, on cached
corpora under scripts/bench/data (make_dup_corpus.py; the model from bench_score.py), and a
tiny run (export of the sample, 10 shards) whose wall time is almost all fixed cost.

Every run's output is compared byte for byte with local -j1's. Repetitions are interleaved
(each repetition runs every contender once, order rotated) and the figures are medians.
Scaling efficiency = wall(K=1) / (2 x wall(K=2)); Ray's overhead = wall(ray K) - wall(local -jK).

    python scripts/bench/bench_ray.py                       # dedup 1GB x1, score 100MB x3, tiny x3
    python scripts/bench/bench_ray.py --jobs tiny:3

Raw results: scripts/bench/results/ray-<time>.json, the table beside it in .md.
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
import tempfile
import time
from pathlib import Path

from curate.run.ray_local import RAY_ENV, LocalRay

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = HERE / "data"
BIN = Path(sys.executable).parent

JOBS = {
    # name: (stage args before IN, input, stage args after OUT)
    "dedup": (["dedup", "minhash"], DATA / "dup-1GB-s0" / "parquet", []),
    "score": (["score"], DATA / "dup-100MB-s0" / "parquet",
              ["--kenlm", str(DATA / "_score_runs" / "score-100MB.bin")]),
    "tiny": (["export"], DATA / "_ray_runs" / "sample-raw", ["--format", "parquet"]),
}
DESCRIBE = {"dedup": "dedup minhash, 1GB corpus (381,063 docs, 9 shards)",
            "score": "score --kenlm (213 MB 4-gram), 100MB corpus (38,496 docs, 8 shards)",
            "tiny": "export, the sample (2,539 docs, 10 shards)"}


def _shards(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if not p.name.startswith(("_", "."))}


def _run(argv: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=dict(os.environ, **(env or {})), capture_output=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"failed: {' '.join(argv)}\n{r.stderr.decode()[-3000:]}")
    return wall


def _ensure_tiny() -> None:
    out = JOBS["tiny"][1]
    if not (out / "_SUCCESS").exists():
        subprocess.run([str(BIN / "curate"), "ingest", str(ROOT / "data" / "sample" / "raw"), str(out), "--id-field",
                        "doc_id", "--shard-size", "256", "-j", "1", "-q", "--overwrite"], check=True)


def bench(jobs: dict[str, int], work: Path) -> dict:
    contenders = ["local -j1", "local -j2", "ray 1", "ray 2"]
    walls: dict[str, dict[str, list[float]]] = {j: {c: [] for c in contenders} for j in jobs}
    clusters = {}
    try:
        for k in (1, 2):
            clusters[k] = LocalRay(k)
        for job, reps in jobs.items():
            pre, src, post = JOBS[job]
            ref = None
            for rep in range(reps):
                order = contenders[rep % 4:] + contenders[: rep % 4]
                for c in order:
                    out = work / f"{job}-{c.replace(' ', '_')}"
                    shutil.rmtree(out, ignore_errors=True)
                    k = int(c[-1])
                    if c.startswith("local"):
                        argv = [str(BIN / "curate"), *pre, str(src), str(out), *post, "-j", str(k), "-q"]
                        env = None
                    else:
                        argv = [str(BIN / "curate"), *pre, str(src), str(out), *post, "-q", "--executor", "ray",
                                "--ray-address", clusters[k].address]
                        env = RAY_ENV
                    w = _run(argv, env)
                    walls[job][c].append(w)
                    got = _shards(out)
                    if ref is None:
                        ref = got
                    elif got != ref:
                        raise RuntimeError(f"{job}: {c} wrote different bytes")
                    shutil.rmtree(out, ignore_errors=True)
                    print(f"{job} rep {rep + 1}/{reps} {c}: {w:.2f} s", file=sys.stderr, flush=True)
    finally:
        for cl in clusters.values():
            cl.stop()
    return {j: {c: {"walls": v, "median": statistics.median(v)} for c, v in d.items()} for j, d in walls.items()}


def table(res: dict, jobs: dict[str, int]) -> str:
    lines = ["| job | reps | local -j1 | local -j2 | ray 1 | ray 2 | local scaling | ray scaling | "
             "ray overhead K=1 | ray overhead K=2 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for job, d in res.items():
        m = {c: v["median"] for c, v in d.items()}
        eff_l = m["local -j1"] / (2 * m["local -j2"])
        eff_r = m["ray 1"] / (2 * m["ray 2"])
        lines.append(f"| {DESCRIBE[job]} | {jobs[job]} | {m['local -j1']:.2f} s | {m['local -j2']:.2f} s | "
                     f"{m['ray 1']:.2f} s | {m['ray 2']:.2f} s | {eff_l:.0%} | {eff_r:.0%} | "
                     f"{m['ray 1'] - m['local -j1']:+.2f} s | {m['ray 2'] - m['local -j2']:+.2f} s |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", default="dedup:1,score:3,tiny:3", help="NAME:REPS,... of " + ", ".join(JOBS))
    a = ap.parse_args()
    jobs = {j: int(n) for j, n in (x.split(":") for x in a.jobs.split(","))}
    if "tiny" in jobs:
        _ensure_tiny()
    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench_ray", dir=DATA))
    t0 = time.time()
    try:
        res = bench(jobs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    import ray

    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    meta = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "git": git, "ray": ray.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count(), "load_before": load,
            "minutes": round((time.time() - t0) / 60, 1)}
    md = table(res, jobs)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"ray-{stamp}.json").write_text(json.dumps({"meta": meta, "results": res}, indent=1))
    (HERE / "results" / f"ray-{stamp}.md").write_text(md + "\n")
    print(json.dumps(meta))
    print(md)


if __name__ == "__main__":
    main()
