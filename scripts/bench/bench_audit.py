"""Audit benchmark, in one run with repetitions interleaved, the order rotating (figures are
medians; a ratio is the median of the per-repetition ratios):

  read text          read_text.py DATASET: pq.read_table(columns=['text']) of every shard with
                     pyarrow's threads (the floor: reading the text column once)
  audit --sample     curate audit DATASET --sample 100000 -j 2 --json (target: <= 2x read text)
  audit (full)       curate audit DATASET -j 2 --json: every document through every sketch and
                     against the MinHash sample (the corpus-wide near-duplicate rate); wall time
                     and the peak RSS of the process tree, once per repetition, on the corpus and
                     on a 10x smaller one (memory must not grow with the corpus)
  audit (full, REF)  with --before REF: the same full audit by the code of git commit REF (its
                     curate/ package extracted beside the runs, with this tree's C extensions);
                     likewise `audit --sample (REF)`, also with --no-full

Run from the repository root:
    python scripts/bench/bench_audit.py                       # corpus-2GB-s0, 3 repetitions
    python scripts/bench/bench_audit.py --reps 1 --no-full
    python scripts/bench/bench_audit.py --reps 1 --before 8a20dfb --no-small
    python scripts/bench/bench_audit.py --reps 5 --no-full --before 4758005   # --sample, before/after
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import CURATE, DATA, PY, RESULTS, ROOT, measure  # noqa: E402

RUNS = DATA / "_audit_runs"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", type=Path, default=DATA / "corpus-2GB-s0" / "parquet")
    ap.add_argument("--small", type=Path, default=DATA / "corpus-200MB-s0" / "parquet")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sample", type=int, default=100_000)
    ap.add_argument("-j", "--workers", type=int, default=2)
    ap.add_argument("--no-full", action="store_true", help="skip the full streaming audits")
    ap.add_argument("--no-small", action="store_true", help="skip the full audit of the 10x smaller corpus")
    ap.add_argument("--before", metavar="REF", help="also the full audit by the code of git commit REF")
    ap.add_argument("--hll", action="store_true", help="only: datasketch HyperLogLog.update per value vs the bulk registers")
    a = ap.parse_args()
    if a.hll:
        return hll_bulk_vs_update()
    env = {"CURATE_PROGRESS": "none"}
    contenders = {
        "read text": [str(PY), str(HERE / "read_text.py"), str(a.dataset)],
        "audit --sample": [str(CURATE), "audit", str(a.dataset), "--sample", str(a.sample), "-j", str(a.workers), "--json", "-q"],
    }
    # the code of commit REF: its curate/ first on sys.path (PYTHONPATH would come after the
    # working directory's curate/)
    boot = f"import sys; sys.path.insert(0, {str(old_tree(a.before))!r}); from curate.cli import main; main()" if a.before else ""
    if a.before:
        contenders[f"audit --sample ({a.before})"] = [str(PY), "-c", boot, *contenders["audit --sample"][1:]]
    if not a.no_full:
        contenders["audit (full)"] = [str(CURATE), "audit", str(a.dataset), "-j", str(a.workers), "--json", "-q"]
        if a.before:
            contenders[f"audit (full, {a.before})"] = [str(PY), "-c", boot, "audit", str(a.dataset), "-j", str(a.workers), "--json", "-q"]
        if a.small.exists() and not a.no_small:
            contenders["audit (full, 10x smaller)"] = [str(CURATE), "audit", str(a.small), "-j", str(a.workers), "--json", "-q"]
    got: dict[str, list[dict]] = {k: [] for k in contenders}
    names = list(contenders)
    for rep in range(a.reps):
        for name in names[rep % len(names):] + names[: rep % len(names)]:  # the order rotates
            argv = contenders[name]
            r = measure(argv, RUNS, ROOT, env)
            got[name].append(r)
            print(f"rep {rep + 1} {name}: {r['wall_s']:.2f} s, cpu {r['cpu_s']:.1f} s, rss {r['rss_peak'] / 2**20:.0f} MiB",
                  file=sys.stderr, flush=True)
    summary = {}
    for name, rs in got.items():
        summary[name] = {"wall_s": statistics.median(r["wall_s"] for r in rs), "cpu_s": statistics.median(r["cpu_s"] for r in rs),
                         "rss_peak_mib": max(r["rss_peak"] for r in rs) / 2**20, "walls": [round(r["wall_s"], 2) for r in rs]}
    for name in summary:  # ratios within a repetition, then their median
        summary[name]["x_read"] = statistics.median(r["wall_s"] / q["wall_s"] for r, q in zip(got[name], got["read text"], strict=True))
    last = json.loads(got["audit --sample"][-1]["stdout"])
    out = {
        "dataset": str(a.dataset.relative_to(ROOT)) if a.dataset.is_relative_to(ROOT) else str(a.dataset),
        "rows": last["size"]["documents"], "text_bytes": last["text"]["bytes"], "reps": a.reps, "workers": a.workers,
        "cpus": os.cpu_count(), "load_at_end": os.getloadavg(), "python": platform.python_version(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": summary,
        "sample_near": {k: v for k, v in last["duplication"]["near"].items() if k != "cluster_sizes"},
    }
    if "audit (full)" in got:
        full = json.loads(got["audit (full)"][-1]["stdout"])
        out["full_near"] = {k: v for k, v in full["duplication"]["near"].items() if k != "cluster_sizes"}
        print("full audit, near duplicates:", json.dumps(out["full_near"]), file=sys.stderr)
    print("--sample, near duplicates:", json.dumps(out["sample_near"]), file=sys.stderr)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audit.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"{'contender':28} {'wall s':>8} {'x read':>7} {'cpu s':>7} {'peak RSS':>9}")
    for name, s in summary.items():
        print(f"{name:28} {s['wall_s']:8.2f} {s['x_read']:7.2f} {s['cpu_s']:7.1f} {s['rss_peak_mib']:7.0f} MiB")
    print(f"(medians of {a.reps}; target: audit --sample <= 2.00 x read text; load at the end {os.getloadavg()[0]:.1f})")


def old_tree(ref: str) -> Path:
    """The curate/ package of commit REF under RUNS, with this tree's built C extensions."""
    dest = RUNS / f"before-{ref}"
    if not (dest / "curate").exists():
        dest.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(["git", "archive", ref, "curate"], cwd=ROOT, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=tar, check=True)
        for so in (ROOT / "curate").glob("*.so"):
            shutil.copy2(so, dest / "curate" / so.name)
    return dest


def hll_bulk_vs_update(n: int = 1_000_000, reps: int = 3) -> None:
    """datasketch's HyperLogLog has no batch update: update() hashes and sets one register per
    Python call. curate fills the same registers in numpy and hands them to HyperLogLog(reg=...)."""
    import numpy as np
    from datasketch import HyperLogLog

    sys.path.insert(0, str(ROOT))
    from curate.audit.sketches import HLL_P, hll_registers

    h = np.random.default_rng(0).integers(0, 2**32, n, dtype=np.uint64)
    values = h.tolist()
    per, bulk = [], []
    for _ in range(reps):
        t = time.perf_counter()
        ref = HyperLogLog(p=HLL_P, hashfunc=lambda x: x)
        for x in values:
            ref.update(x)
        per.append(time.perf_counter() - t)
        t = time.perf_counter()
        reg = hll_registers(h)
        bulk.append(time.perf_counter() - t)
    assert np.array_equal(reg, ref.reg)
    p, b = statistics.median(per), statistics.median(bulk)
    print(f"{n:,} 32-bit hashes, p={HLL_P}: update() per value {p:.3f} s ({p / n * 1e9:.0f} ns each), "
          f"numpy registers {b:.3f} s: {p / b:.1f}x; registers identical")


if __name__ == "__main__":
    main()
