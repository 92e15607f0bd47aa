#!/usr/bin/env python3
"""Quality-signal benchmark: `curate score --signals` against datatrove 0.10.1's four filters and the
plain-pyarrow I/O limit, on the same documents, one worker each.

Contenders, in one run, repetitions interleaved (figures are medians):
  curate -j1     curate score IN OUT --signals gopher,gopher-repetition,c4,fineweb -j 1 (end to end:
                 start-up, read, all four signal sets, write)
  datatrove      one process: pyarrow reads the same Parquet files, and every document goes through
                 GopherQualityFilter, GopherRepetitionFilter, C4QualityFilter and FineWebQualityFilter
                 (defaults, English: spaCy's tokenizer; each filter gets its own Document, so C4's text
                 rewrite does not change what FineWeb sees; datatrove caches the word split between
                 filters as in a pipeline); nothing written
  pyarrow r+w    pyarrow_limit.py export: read + write the same files (the I/O limit)

Run from the repository root (the web corpus: scripts/bench/get_web_sample.py):
    .venv/bin/python scripts/bench/bench_signals.py --corpus web --reps 3
    .venv/bin/python scripts/bench/bench_signals.py --corpus sample --reps 3
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import CURATE, DATA, PY, RESULTS, ROOT, measure  # noqa: E402

WORK = DATA / "_signals_runs"
CORPORA = {"web": DATA / "web-sample", "sample": DATA / "dup-sample" / "parquet", "200MB": DATA / "corpus-200MB-s0" / "parquet"}
SETS = "gopher,gopher-repetition,c4,fineweb"


def run_datatrove(files: list[str]) -> None:
    """The datatrove contender, in this process (called with --datatrove)."""
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    filters = [GopherQualityFilter(), GopherRepetitionFilter(), C4QualityFilter(), FineWebQualityFilter()]
    kept = [0] * len(filters)
    n = 0
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(columns=["text"]):
            for t in batch.column(0).to_pylist():
                for i, flt in enumerate(filters):
                    kept[i] += flt.filter(Document(text=t, id=str(n))) is True
                n += 1
    print(json.dumps({"docs": n, "kept": kept}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="web", choices=sorted(CORPORA))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--datatrove", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.datatrove:
        return run_datatrove(args.datatrove)
    src = CORPORA[args.corpus]
    files = sorted(str(p) for p in src.glob("*.parquet"))
    if not files:
        sys.exit(f"no Parquet files in {src} (scripts/bench/get_web_sample.py, make_dup_corpus.py --sample)")
    docs = sum(pq.read_metadata(f).num_rows for f in files)
    text_bytes = sum(len(t.encode()) for f in files for t in pq.read_table(f, columns=["text"]).column(0).to_pylist())
    contenders = {
        "curate -j1": lambda out: [str(CURATE), "score", str(src), str(out), "--signals", SETS, "-j", "1", "-q", "--overwrite"],
        "datatrove": lambda out: [str(PY), str(Path(__file__).resolve()), "--datatrove", *files],
        "pyarrow r+w": lambda out: [str(PY), str(HERE / "pyarrow_limit.py"), "export", str(out), *files],
    }
    times: dict[str, list[dict]] = {k: [] for k in contenders}
    for rep in range(args.reps):
        for name, argv in contenders.items():
            out = WORK / name.replace(" ", "_").replace("+", "")
            shutil.rmtree(out, ignore_errors=True)
            r = measure(argv(out), WORK, ROOT)
            times[name].append(r)
            print(f"rep {rep} {name}: {r['wall_s']:.2f}s wall, {r['cpu_s']:.2f}s cpu", file=sys.stderr)
    report = {"corpus": args.corpus, "docs": docs, "text_mb": round(text_bytes / 1e6, 2), "reps": args.reps,
              "machine": platform.processor() or platform.machine(), "when": time.strftime("%Y-%m-%d %H:%M"), "runs": {}}
    for name, rs in times.items():
        wall = statistics.median(r["wall_s"] for r in rs)
        cpu = statistics.median(r["cpu_s"] for r in rs)
        report["runs"][name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "docs_per_s": round(docs / wall, 1),
                                "text_mb_per_s": round(text_bytes / 1e6 / wall, 2),
                                "peak_rss_mb": round(statistics.median(r["rss_peak"] for r in rs) / 1e6, 1)}
    runs = report["runs"]
    report["curate_vs_datatrove"] = round(runs["datatrove"]["wall_s"] / runs["curate -j1"]["wall_s"], 2)
    report["curate_vs_datatrove_cpu"] = round(runs["datatrove"]["cpu_s"] / runs["curate -j1"]["cpu_s"], 2)
    report["curate_share_of_io_limit"] = round(runs["pyarrow r+w"]["wall_s"] / runs["curate -j1"]["wall_s"], 2)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"signals-{args.corpus}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
