"""fastText benchmark: `curate score --fasttext` against calling fastText directly in a loop, per
worker (one process each), side by side in one run, repetitions interleaved.

The model: a supervised classifier trained here on the sample corpus (label: docstring kind),
dim 16 with word bigrams, the shape of lid.176's (dim 16) and DCLM's quality classifier (bigrams).
Contenders:
  pyarrow read   read_text.py --threads 1: the text column of every shard (the I/O floor)
  direct loop    peers venv, fasttext-numpy2-wheel: the shards read with pyarrow, then
                 `for t in texts: model.predict(t.replace("\\n", " "))`, as datatrove's filters do
                 (read included, nothing written)
  curate -j1     curate score IN OUT --fasttext MODEL -j 1 (end to end: start-up, read, predict,
                 output shards written)
The labels of both are compared (agreement must be 1.0).

    python scripts/bench/bench_fasttext.py                  # 20 MB of text
    python scripts/bench/bench_fasttext.py --mb 5 --reps 1  # quick
"""

from __future__ import annotations

import gzip
import json
import platform
import sys
from pathlib import Path

import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_dsir import WORK, prepare  # noqa: E402
from measure import CURATE, PY, RESULTS, ROOT, interleaved, ratio, save, timing  # noqa: E402

PEERS = HERE / ".venv-peers" / "bin" / "python"

LOOP = r'''
import sys, time, json, fasttext, pyarrow.parquet as pq
from pathlib import Path
model = fasttext.FastText._FastText(model_path=sys.argv[2])
labels = []
t0 = time.perf_counter()
for f in sorted(Path(sys.argv[1]).glob("part-*.parquet")):
    for t in pq.read_table(f, columns=["text"]).column(0).to_pylist():
        labels.append(model.predict(t.replace("\n", " "))[0][0][len("__label__"):])
dt = time.perf_counter() - t0
Path(sys.argv[3]).write_text("\n".join(labels) + "\n")
print(json.dumps({"loop_s": dt, "rows": len(labels)}))
'''


def train_model(dest: Path) -> Path:
    if dest.exists():
        return dest
    import fasttext

    lines = []
    for f in sorted((ROOT / "data" / "sample" / "raw").glob("*.jsonl.gz")):
        for line in gzip.open(f, "rt"):
            d = json.loads(line)
            lines.append(f"__label__{d['domain']} " + d["text"].replace("\n", " "))
    data = dest.with_suffix(".txt")
    data.write_text("\n".join(lines) + "\n")
    fasttext.train_supervised(str(data), dim=16, wordNgrams=2, bucket=200000, epoch=10, thread=1,
                              verbose=0).save_model(str(dest))
    return dest


def main() -> None:
    a, raw, _, text_bytes = prepare()
    model = train_model(WORK / "domain.ft.bin")
    runs = WORK / "ft-runs"
    loop_py = WORK / "ft_loop.py"
    loop_py.write_text(LOOP)
    cmds = {
        "pyarrow read": [str(PY), str(HERE / "read_text.py"), str(raw), "--threads", "1"],
        "direct loop": [str(PEERS), str(loop_py), str(raw), str(model), str(runs / "loop-labels.txt")],
        "curate -j1": [str(CURATE), "score", str(raw), str(runs / "curate"), "--fasttext", str(model),
                       "--fasttext-name", "kind", "-j", "1", "--overwrite", "-q", "--progress", "none"],
    }
    times = interleaved(cmds, a.reps, runs, ROOT)
    ours = pq.read_table(runs / "curate", columns=["kind_label"]).column(0).to_pylist()
    theirs = (runs / "loop-labels.txt").read_text().split("\n")[:-1]
    report = {
        "corpus": str(raw.relative_to(ROOT)), "rows": len(ours), "text_mb": round(text_bytes / 1e6, 1),
        "model": {"dim": 16, "wordNgrams": 2, "bytes": model.stat().st_size}, "reps": a.reps,
        "machine": platform.processor() or platform.machine(),
        **timing(times, text_bytes),
        "curate_vs_direct_loop": ratio(times, "direct loop", "curate -j1"),
        "curate_vs_direct_loop_cpu": ratio(times, "direct loop", "curate -j1", "cpu_s"),
        "curate_vs_read": ratio(times, "pyarrow read", "curate -j1"),
        "label_agreement": sum(x == y for x, y in zip(ours, theirs, strict=True)) / max(len(ours), 1),
    }
    save(RESULTS, "fasttext", report)


if __name__ == "__main__":
    main()
