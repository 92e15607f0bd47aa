#!/usr/bin/env python3
"""Resample benchmark, in one run: `curate resample --counts -j 1` with a domain mixture against a
plain pyarrow read + write of the same shards (zstd-3, curate's writer settings: the I/O limit);
the realised mixture against the requested one; byte-identical output for the same seed (every
repetition, and a -j 2 run, are compared with the first).

Contenders (repetitions interleaved, figures are medians):
  pyarrow read+write   pyarrow_limit.py export OUT SHARDS --curate-settings (one single-threaded process)
  curate resample      curate resample IN OUT --by domain --mixture M --tokens N --counts -j 1

Run from the repository root:
    python scripts/bench/bench_resample.py                 # corpus-2GB (1.65 GB of text), 3 repetitions
    python scripts/bench/bench_resample.py --corpus 200MB --reps 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import CURATE, DATA, PY, RESULTS, ROOT, corpus_stats, measure, run_meta  # noqa: E402

WORK = DATA / "_resample_runs"
MIXTURE = {"function": 0.4, "class": 0.3, "module": 0.2, "topic": 0.1}


def ensure_corpus(size: str) -> Path:
    p = DATA / f"corpus-{size}-s0" / "parquet"
    if not (p / "_SUCCESS").exists():
        subprocess.run([str(PY), str(HERE / "make_corpus.py"), "--size", size], check=True, cwd=ROOT)
    return p


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(out.glob("part-*.parquet")) + [out / "_selection.parquet"]:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", default="2GB")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=float, default=1e9, help="budget (characters: the corpus has no n_tokens)")
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    meta = run_meta()
    corpus = ensure_corpus(a.corpus)
    shards = sorted(str(f) for f in corpus.glob("part-*.parquet"))
    docs, text = corpus_stats(corpus)
    print(f"corpus {a.corpus}: {docs:,} docs, {len(shards)} shards, {text / 1e6:.1f} MB text", file=sys.stderr)
    mix = WORK / "mixture.toml"
    mix.write_text("".join(f"{k} = {v}\n" for k, v in MIXTURE.items()))
    args = ["--by", "domain", "--mixture", str(mix), "--tokens", str(int(a.tokens)), "--counts", "--seed", "1"]
    cont = {
        "pyarrow read+write": [str(PY), str(HERE / "pyarrow_limit.py"), "export", str(WORK / "pa"), *shards,
                               "--curate-settings"],
        "curate resample --counts": [str(CURATE), "resample", str(corpus), str(WORK / "rs"), *args, "-j", "1", "-q",
                                     "--overwrite", "--json"],
    }
    (WORK / "pa").mkdir(exist_ok=True)
    runs: dict[str, list[dict]] = {k: [] for k in cont}
    keys = list(cont)
    digests = []
    for rep in range(a.reps):
        for k in keys[rep % len(keys):] + keys[: rep % len(keys)]:
            r = measure(cont[k], WORK, ROOT)
            if r.get("returncode", 0):
                sys.exit(f"{k} failed: {r.get('stderr', '')}")
            runs[k].append(r)
            if k.startswith("curate"):
                digests.append(digest(WORK / "rs"))
                manifest = json.loads((WORK / "rs" / "_manifest.json").read_text())["resample"]
            print(f"  rep {rep} {k:26s} {r['wall_s']:7.2f} s  {text / r['wall_s'] / 1e6:7.1f} MB/s  "
                  f"RSS {r['rss_peak'] / 2**20:6.0f} MiB", file=sys.stderr)
    j2 = measure([str(CURATE), "resample", str(corpus), str(WORK / "rs2"), *args, "-j", "2", "-q", "--overwrite"],
                 WORK, ROOT)
    d2 = digest(WORK / "rs2")

    def med(k, f="wall_s"):
        return statistics.median(x[f] for x in runs[k])

    ratio = statistics.median(p["wall_s"] / x["wall_s"] for x, p in zip(runs[keys[1]], runs[keys[0]], strict=True))
    doms = manifest["domains"]
    worst = max(abs(x["realised_share"] - x["requested_share"]) for x in doms.values())
    res = {"meta": meta, "corpus": {"name": a.corpus, "docs": docs, "text_bytes": text, "shards": len(shards)},
           "args": args, "runs": runs, "digests": digests, "digest_j2": d2, "j2_wall_s": j2["wall_s"],
           "vs_pyarrow": ratio, "domains": doms, "worst_abs_error": worst}
    path = RESULTS / f"resample-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=1, default=float))
    print(f"\n{meta}\n{a.corpus} ({docs:,} docs, {text / 1e6:.0f} MB of text, {len(shards)} shards), median of {a.reps}:")
    print("| contender | wall s | CPU s | MB/s (text) | throughput vs pyarrow | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    for k in keys:
        print(f"| {k} | {med(k):.2f} | {med(k, 'cpu_s'):.2f} | {text / med(k) / 1e6:.1f} | "
              f"{1.0 if k == keys[0] else ratio:.2f} | {med(k, 'rss_peak') / 2**20:.0f} |")
    print(f"\nmixture (budget {a.tokens:.0e} characters, seed 1):\n")
    print("| domain | requested | realised | abs. error | epochs |")
    print("|---|---:|---:|---:|---:|")
    for d, x in doms.items():
        print(f"| {d} | {x['requested_share']:.4f} | {x['realised_share']:.4f} | "
              f"{abs(x['realised_share'] - x['requested_share']):.5f} | {x['epochs']:.2f} |")
    same = len(set(digests)) == 1 and d2 == digests[0]
    print(f"\nworst absolute error {worst:.5f} (target <= 0.005); output digests of the {a.reps} -j 1 runs and the -j 2 "
          f"run ({j2['wall_s']:.1f} s): {sorted(set(digests + [d2]))} -> {'identical' if same else 'DIFFERENT'}")
    print(f"raw results: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
