"""Filter benchmark: `curate filter -j1` with a 3-rule filter against a plain pyarrow read + write of
the same shards (zstd-3, curate's writer settings: the I/O limit), in one run, repetitions
interleaved (figures are medians).

Contenders:
  pyarrow read+write   pyarrow_limit.py export OUT SHARDS --curate-settings: pq.read_table +
                       pq.write_table per shard, one single-threaded process (what a worker does
                       at the least)
  curate filter        curate filter IN OUT -j 1 with three rules (lengths, and a domain rule)
  curate filter (q)    the same with one rule a corpus quantile: two passes over the input

Run from the repository root:
    python scripts/bench/bench_filter.py                  # the 100MB duplicate corpus, 5 repetitions
    python scripts/bench/bench_filter.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import CURATE, DATA, PY, RESULTS, ROOT, corpus_stats, measure, run_meta  # noqa: E402

WORK = DATA / "_filter_runs"
CORPORA = {"100MB": DATA / "dup-100MB-s0" / "parquet", "1GB": DATA / "dup-1GB-s0" / "parquet"}
RULES = ["--where", "len(text) >= 500", "--where", "len(text) <= 20000",
         "--where", "domain != 'topic' or len(text) >= 1000"]
RULES_Q = ["--where", "len(text) >= 500", "--where", "len(text) < quantile(len(text), 0.99)",
           "--where", "domain != 'topic' or len(text) >= 1000"]


def ensure_corpus(name: str) -> Path:
    p = CORPORA[name]
    if not (p / "_SUCCESS").exists():
        subprocess.run([str(PY), str(HERE / "make_dup_corpus.py"), "--size", name], check=True, cwd=ROOT)
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="100MB", choices=sorted(CORPORA))
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    meta = run_meta()
    corpus = ensure_corpus(a.corpus)
    shards = sorted(str(f) for f in corpus.glob("part-*.parquet"))
    docs, text = corpus_stats(corpus)
    print(f"corpus {a.corpus}: {docs:,} docs, {len(shards)} shards, {text / 1e6:.1f} MB text", file=sys.stderr)

    cont = {
        "pyarrow read+write": [str(PY), str(HERE / "pyarrow_limit.py"), "export", str(WORK / "pa"), *shards,
                               "--curate-settings"],
        "curate filter": [str(CURATE), "filter", str(corpus), str(WORK / "cf"), *RULES, "-j", "1", "-q",
                          "--overwrite", "--json"],
        "curate filter (q)": [str(CURATE), "filter", str(corpus), str(WORK / "cq"), *RULES_Q, "-j", "1", "-q",
                              "--overwrite", "--json"],
    }
    runs: dict[str, list[dict]] = {k: [] for k in cont}
    keys = list(cont)
    kept = {}
    for rep in range(a.reps):
        for k in keys[rep % len(keys):] + keys[: rep % len(keys)]:
            r = measure(cont[k], WORK, ROOT)
            if k.startswith("curate"):
                kept[k] = json.loads(r["stdout"])["rows_out"]
            runs[k].append(r)
            print(f"  rep {rep} {k:20s} {r['wall_s']:7.2f} s  {text / r['wall_s'] / 1e6:7.1f} MB/s  "
                  f"RSS {r['rss_peak'] / 2**20:6.0f} MiB", file=sys.stderr)

    def med(k, f="wall_s"):
        return statistics.median(x[f] for x in runs[k])

    def ratio(k, f="wall_s"):  # median over repetitions of throughput(k) / throughput(pyarrow)
        return statistics.median(p[f] / x[f] for x, p in zip(runs[k], runs[keys[0]], strict=True))

    rows = [{"who": k, "wall_s": med(k), "cpu_s": med(k, "cpu_s"), "docs_per_s": docs / med(k),
             "mb_per_s": text / med(k) / 1e6, "rss_peak": med(k, "rss_peak"), "kept": kept.get(k, docs),
             "vs_pyarrow": 1.0 if k == keys[0] else ratio(k),
             "vs_pyarrow_cpu": 1.0 if k == keys[0] else ratio(k, "cpu_s")} for k in keys]
    res = {"meta": meta, "corpus": {"name": a.corpus, "docs": docs, "text_bytes": text, "shards": len(shards)},
           "rules": RULES, "rules_quantile": RULES_Q, "table": rows, "runs": runs}
    path = RESULTS / f"filter-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=1, default=float))
    print(f"\n{meta}\n{a.corpus} ({docs:,} docs, {text / 1e6:.0f} MB of text, {len(shards)} shards), "
          f"median of {a.reps}:")
    print("| contender | wall s | CPU s | docs/s | MB/s (text) | kept | throughput vs pyarrow (wall) | (CPU) "
          "| peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['who']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['docs_per_s']:,.0f} | {r['mb_per_s']:.1f} | "
              f"{r['kept']:,} | {r['vs_pyarrow']:.2f} | {r['vs_pyarrow_cpu']:.2f} | {r['rss_peak'] / 2**20:.0f} |")
    print(f"\nraw results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
