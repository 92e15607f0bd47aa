"""DSIR benchmark: `curate score --dsir-target` against data-selection's HashedNgramDSIR, per
worker (one process each), fit + score, side by side in one run, repetitions interleaved.

Contenders:
  pyarrow read      read_text.py --threads 1: the text column of every shard, nothing else (the I/O floor)
  curate -j1        curate score RAW OUT --dsir-target TARGET -j 1 (end to end: fit phase over RAW and
                    TARGET, scoring phase, output shards written)
  data-selection    HashedNgramDSIR(num_proc=1, 10000 buckets, wordpunct): fit_importance_estimator('all')
                    + compute_importance_weights(), the raw shards read with pyarrow (its loader gets
                    each row's dict), the target from JSON Lines (its default loader)
Fidelity on the same corpus: Spearman (and max |difference|) between curate's dsir_logratio and
data-selection's log importance weights.

    python scripts/bench/bench_dsir.py                 # 20 MB of text from corpus-200MB-s0
    python scripts/bench/bench_dsir.py --mb 5 --reps 1 # quick
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import CURATE, DATA, PY, RESULTS, ROOT, interleaved, ratio, save, timing  # noqa: E402

WORK = DATA / "_dsir_runs"
PEERS = HERE / ".venv-peers" / "bin" / "python"
SOURCE = DATA / "corpus-200MB-s0" / "parquet"

PEER = r'''
import sys, time, json, numpy as np, pyarrow.parquet as pq
from pathlib import Path
from data_selection import HashedNgramDSIR
raw, target, cache = sys.argv[1], sys.argv[2], sys.argv[3]
def load_parquet(path):
    for b in pq.ParquetFile(path).iter_batches(columns=["text"], batch_size=4096):
        yield from b.to_pylist()
shards = sorted(str(p) for p in Path(raw).glob("part-*.parquet"))
t0 = time.perf_counter()
d = HashedNgramDSIR(shards, [target], cache_dir=cache, raw_load_dataset_fn=load_parquet, num_proc=1,
                    num_buckets=10000, ngrams=2, tokenizer="wordpunct")
d.fit_importance_estimator(num_tokens_to_fit="all")
t1 = time.perf_counter()
d.compute_importance_weights()
t2 = time.perf_counter()
w = np.concatenate([np.load(f"{cache}/log_importance_weights/{i}.npy") for i in range(len(shards))])
np.save(f"{cache}/all.npy", w)
print(json.dumps({"fit_s": t1 - t0, "score_s": t2 - t1, "rows": int(len(w))}))
'''


def make_inputs(mb: int) -> tuple[Path, Path]:
    """RAW: the first `mb` MB of text of the 200MB corpus in 4 shards; TARGET: the sample corpus's
    module docstrings as JSON Lines (a target that differs from RAW)."""
    raw = WORK / f"raw-{mb}MB"
    target = WORK / "target.jsonl"
    if not (raw / "_SUCCESS").exists():
        if not (SOURCE / "_SUCCESS").exists():
            raise SystemExit(f"{SOURCE} is missing: python scripts/bench/make_corpus.py --size 200MB")
        shutil.rmtree(raw, ignore_errors=True)
        raw.mkdir(parents=True)
        batches, size = [], 0
        for f in sorted(SOURCE.glob("part-*.parquet")):
            for b in pq.ParquetFile(f).iter_batches(columns=["id", "text"], batch_size=2048):
                batches.append(b)
                size += sum(len(t) for t in b.column(1).to_pylist())
                if size >= mb << 20:
                    break
            if size >= mb << 20:
                break
        t = pa.Table.from_batches(batches)
        n = t.num_rows
        for i in range(4):
            pq.write_table(t.slice(i * n // 4, (i + 1) * n // 4 - i * n // 4), raw / f"part-{i:05d}.parquet",
                           compression="zstd")
        (raw / "_SUCCESS").write_text("")
    if not target.exists():
        with open(target, "w") as out:
            for f in sorted((ROOT / "data" / "sample" / "raw").glob("*.jsonl.gz")):
                for line in gzip.open(f, "rt"):
                    d = json.loads(line)
                    if d.get("domain") == "module":
                        out.write(json.dumps({"text": d["text"]}) + "\n")
    return raw, target


def spearman(a, b) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def prepare() -> tuple[argparse.Namespace, Path, Path, int]:
    """This bench's and bench_fasttext's arguments and inputs: (args, raw dataset, target JSONL,
    text bytes of the raw dataset)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=20)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    if not PEERS.exists():
        raise SystemExit("peers venv missing: bash scripts/bench/setup_peers.sh")
    raw, target = make_inputs(a.mb)
    import pyarrow.compute as pc

    text_bytes = sum(pc.sum(pc.binary_length(pq.read_table(f, columns=["text"]).column(0))).as_py()
                     for f in raw.glob("part-*.parquet"))
    return a, raw, target, text_bytes


def main() -> None:
    a, raw, target, text_bytes = prepare()
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in raw.glob("part-*.parquet"))
    runs = WORK / "runs"
    peer_py = WORK / "peer_dsir.py"
    peer_py.write_text(PEER)
    cmds = {
        "pyarrow read": [str(PY), str(HERE / "read_text.py"), str(raw), "--threads", "1"],
        "curate -j1": [str(CURATE), "score", str(raw), str(runs / "curate"), "--dsir-target", str(target), "-j", "1",
                       "--overwrite", "-q", "--progress", "none"],
        "data-selection": [str(PEERS), str(peer_py), str(raw), str(target), str(runs / "ds-cache")],
    }
    def before(name: str) -> None:
        if name == "data-selection":
            shutil.rmtree(runs / "ds-cache", ignore_errors=True)  # it would reuse its weights

    times = interleaved(cmds, a.reps, runs, ROOT, before)
    ours = pq.read_table(runs / "curate", columns=["dsir_logratio"]).column(0).to_numpy()
    theirs = np.load(runs / "ds-cache" / "all.npy")
    peer_split = json.loads(times["data-selection"][-1]["stdout"])
    report = {
        "corpus": str(raw.relative_to(ROOT)), "rows": rows, "text_mb": round(text_bytes / 1e6, 1),
        "target": str(target.relative_to(ROOT)), "reps": a.reps, "machine": platform.processor() or platform.machine(),
        **timing(times, text_bytes),
        "speedup_vs_data_selection": ratio(times, "data-selection", "curate -j1"),
        "speedup_vs_data_selection_cpu": ratio(times, "data-selection", "curate -j1", "cpu_s"),
        "curate_vs_read": ratio(times, "pyarrow read", "curate -j1"),
        "data_selection_fit_score_s": {k: round(v, 2) for k, v in peer_split.items() if k.endswith("_s")},
        "spearman": round(spearman(ours, theirs), 6), "max_abs_diff": float(np.max(np.abs(ours - theirs))),
    }
    save(RESULTS, "dsir", report)


if __name__ == "__main__":
    main()
