"""N-gram benchmark: `curate score` against its limit, a bare loop calling kenlm.Model.score, and
`curate ngram train` (lmplz + build_binary) against bare lmplz over a pre-tokenised file.

Contenders, in one run, repetitions interleaved (figures are medians):
  bare loop     bare_score.py: the pre-tokenised lines of the corpus in a Python list, then
                `for s in lines: score(s)` timed alone (no I/O, no tokenising: the limit)
  curate -j1    curate score IN OUT --kenlm MODEL -j 1 (end to end: start-up, read, tokenise,
                score, write)
  curate -j2    the same with -j 2
  bare -j2      two bare loops at once, each over half of the lines (what 2 cores can do)
and, for training (one repetition each, peak RSS includes lmplz):
  curate ngram train CORPUS MODEL --order 4 --memory 4G
  bare lmplz    lmplz -o 4 -S 4G over the same tokenised text read from a file, plus build_binary

Run from the repository root:
    python scripts/bench/bench_score.py                         # 100MB scoring, sample + 1GB training
    python scripts/bench/bench_score.py --train-corpora sample  # quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from measure import CURATE, DATA, PY, RESULTS, ROOT, measure, run_meta  # noqa: E402

WORK = DATA / "_score_runs"
BIN = ROOT / ".venv" / "bin"
CORPORA = {"sample": DATA / "dup-sample" / "parquet", "100MB": DATA / "dup-100MB-s0" / "parquet",
           "1GB": DATA / "dup-1GB-s0" / "parquet"}


def ensure_corpus(name: str) -> Path:
    p = CORPORA[name]
    if not (p / "_SUCCESS").exists():
        arg = ["--sample"] if name == "sample" else ["--size", name]
        subprocess.run([str(PY), str(HERE / "make_dup_corpus.py"), *arg], check=True, cwd=ROOT)
    return p


def tokenised_file(corpus: Path, dest: Path) -> tuple[int, int, int]:
    """Write the corpus's tokenised lines (curate's tokeniser), one per line; (docs, lines, bytes)."""
    from curate.text.tokenize import Tokenizer

    tok, docs, lines = Tokenizer(), 0, 0
    with open(dest, "wb") as f:
        for shard in sorted(corpus.glob("part-*.parquet")):
            for b in pq.ParquetFile(shard).iter_batches(columns=["text"], batch_size=4096):
                ln = tok.lines(b.column("text"), per_line=True)
                docs += b.num_rows
                lines += len(ln.text)
                f.write(("\n".join(ln.text.to_pylist()) + "\n").encode())
    return docs, lines, dest.stat().st_size


def text_bytes(corpus: Path) -> int:
    return sum(pc.sum(pc.binary_length(pq.read_table(f, columns=["text"]).column("text"))).as_py()
               for f in sorted(corpus.glob("part-*.parquet")))


def train_contenders(name: str, corpus: Path) -> list[dict]:
    out = []
    model = WORK / f"train-{name}.bin"
    r = measure([str(CURATE), "ngram", "train", str(corpus), str(model), "--order", "4", "--memory", "4G", "--overwrite",
                 "-q", "--json"], WORK, ROOT)
    m = json.loads(r["stdout"])
    out.append({"corpus": name, "who": "curate ngram train", "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                "rss_peak": r["rss_peak"], "tokens": m["tokens"], "ngrams": m["ngrams"], "model_bytes": m["model_bytes"]})
    tok = WORK / f"tok-{name}.txt"
    tokenised_file(corpus, tok)
    arpa, binary = WORK / f"bare-{name}.arpa", WORK / f"bare-{name}.bin"
    script = (f"{BIN / 'lmplz'} -o 4 -S 4G -T {WORK} --discount_fallback --skip_symbols < {tok} > {arpa} 2>/dev/null && "
              f"{BIN / 'build_binary'} {arpa} {binary} >/dev/null 2>&1")
    r = measure(["bash", "-c", script], WORK, ROOT)
    out.append({"corpus": name, "who": "bare lmplz + build_binary", "wall_s": r["wall_s"], "cpu_s": r["cpu_s"],
                "rss_peak": r["rss_peak"], "model_bytes": binary.stat().st_size,
                "same_model": binary.read_bytes() == model.read_bytes()})
    for p in (tok, arpa, binary):
        p.unlink(missing_ok=True)
    return out


BARE = HERE / "bare_score.py"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--score-corpus", default="100MB")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--train-corpora", default="sample,1GB")
    a = ap.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    meta = run_meta()

    corpus = ensure_corpus(a.score_corpus)
    model = WORK / f"score-{a.score_corpus}.bin"
    if not model.exists():
        subprocess.run([str(CURATE), "ngram", "train", str(corpus), str(model), "--order", "4", "-q"], check=True)
    tok = WORK / f"tok-score-{a.score_corpus}.txt"
    docs, nlines, tbytes = tokenised_file(corpus, tok)
    raw_bytes = text_bytes(corpus)
    print(f"corpus {a.score_corpus}: {docs:,} docs, {nlines:,} lines, {raw_bytes / 1e6:.1f} MB text", file=sys.stderr)

    cont = {
        "bare loop": [str(PY), str(BARE), str(model), str(tok)],
        "bare -j2": [str(PY), str(BARE), str(model), str(tok), "--procs", "2"],
        "curate -j1": [str(CURATE), "score", str(corpus), str(WORK / "out"), "--kenlm", str(model), "-j", "1", "-q",
                       "--overwrite", "--json"],
        "curate -j2": [str(CURATE), "score", str(corpus), str(WORK / "out"), "--kenlm", str(model), "-j", "2", "-q",
                       "--overwrite", "--json"],
    }
    runs: dict[str, list[dict]] = {k: [] for k in cont}
    keys = list(cont)
    for rep in range(a.reps):
        for k in keys[rep % len(keys):] + keys[: rep % len(keys)]:
            r = measure(cont[k], WORK, ROOT)
            if k.startswith("bare"):
                r["wall_s_total"], r["wall_s"] = r["wall_s"], json.loads(r["stdout"])["loop_s"]
            runs[k].append(r)
            print(f"  rep {rep} {k:12s} {r['wall_s']:7.2f} s  {docs / r['wall_s']:8.0f} docs/s  "
                  f"RSS {r['rss_peak'] / 2**20:6.0f} MiB", file=sys.stderr)

    def med(k, f="wall_s"):
        return statistics.median(x[f] for x in runs[k])

    def ratio(a_, b_):  # median over repetitions of a/b
        return statistics.median(x["wall_s"] / y["wall_s"] for x, y in zip(runs[a_], runs[b_], strict=True))

    score_rows = [{"who": k, "wall_s": med(k), "docs_per_s": docs / med(k), "mb_per_s": raw_bytes / med(k) / 1e6,
                   "rss_peak": med(k, "rss_peak")} for k in keys]
    summary = {"curate -j1 / bare loop throughput": ratio("bare loop", "curate -j1"),
               "curate -j2 / curate -j1 speed-up": ratio("curate -j1", "curate -j2"),
               "bare -j2 / bare loop speed-up": ratio("bare loop", "bare -j2")}
    train = []
    for name in filter(None, a.train_corpora.split(",")):
        train += train_contenders(name, ensure_corpus(name))
        print(f"  train {name}: {train[-2]['wall_s']:.1f} s curate, {train[-1]['wall_s']:.1f} s bare", file=sys.stderr)
    res = {"meta": meta, "score_corpus": {"name": a.score_corpus, "docs": docs, "lines": nlines, "text_bytes": raw_bytes},
           "score": score_rows, "ratios": summary, "train": train, "runs": runs}
    path = RESULTS / f"score-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(res, indent=1, default=float))
    print(f"\n{meta}\nscoring {a.score_corpus} ({docs:,} docs, {raw_bytes / 1e6:.0f} MB), median of {a.reps}:")
    print("| contender | wall s | docs/s | MB/s | peak RSS MiB |\n|---|---:|---:|---:|---:|")
    for r in score_rows:
        print(f"| {r['who']} | {r['wall_s']:.2f} | {r['docs_per_s']:,.0f} | {r['mb_per_s']:.2f} | {r['rss_peak'] / 2**20:.0f} |")
    for k, v in summary.items():
        print(f"- {k}: {v:.3f}")
    print("\n| corpus | who | wall s | CPU s | peak RSS MiB | model MB |\n|---|---|---:|---:|---:|---:|")
    for t in train:
        print(f"| {t['corpus']} | {t['who']} | {t['wall_s']:.1f} | {t['cpu_s']:.1f} | {t['rss_peak'] / 2**20:.0f} | "
              f"{t['model_bytes'] / 1e6:.1f} |")
    print(f"\nraw results: {path.relative_to(ROOT)}")
    tok.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
