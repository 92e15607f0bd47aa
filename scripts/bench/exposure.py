#!/usr/bin/env python3
"""Exposure of duplicated documents under resampling: how often a whole cluster of k exact copies is
drawn, relative to a unique document, for uniform weights, SoftDedup from commonness (defaults,
--power 1.5 and 2) and SoftDedup from dup_count.

The corpus: --singletons unique documents plus, for every k in 1..100, clusters of k exact copies:
--clusters of each k, or with --zipf A max(--clusters, A / k^2) of them (cluster sizes fall as a
power law, as duplicate clusters in web crawls do). Three kinds of base text (--text):
  uniform each document is a word of its own (zq + a number in base 26) then --words words drawn
          uniformly from the --vocab commonest lowercase words of the sample corpus: every word is
          equally frequent across the corpus and no two base texts share an opening, so every
          unique text has the same expected commonness and its spread is small; only k moves it.
          This is the corpus that isolates k (the per-k figures are means over the k's clusters).
  words   --words words drawn from the sample corpus's word frequencies (Zipf law): some texts
          are built of commoner words than others, and at large k that moves a cluster's
          commonness more than one more copy does;
  sample  each base text a distinct document of the sample corpus (real prose and code).
Why the cluster law matters: lmplz estimates the Kneser-Ney discounts from the counts of n-grams
seen once, twice, three times. With a flat law (the same number of clusters of every k) those
counts are not Zipf-like, lmplz substitutes its fallback discounts D1 = 0.5, D2 = 1, D3+ = 1.5, and
the top order then gives a 4-gram seen 1, 2 or 3 times the same probability, (c - D_c) / c = 0.5:
1, 2 and 3 copies look alike. The script prints the order-4 discounts lmplz uses on the same text.
It then runs the real pipeline: curate ingest, ngram train (4-gram), score --commonness, dedup exact
--mode annotate, and resample (--keep-work) in each mode; the expected draws of a document are
lambda * w (w from the run's own segment model, or 1/dup_count), so the table is exact, not sampled.

    python scripts/bench/exposure.py                                    # uniform text, --zipf 1600
    python scripts/bench/exposure.py --text words --clusters 3 --zipf 0 --svg ''
Writes a Markdown table on stdout, JSON under scripts/bench/results/, and docs/exposure.svg.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CURATE = str(ROOT / ".venv" / "bin" / "curate")
DATA = ROOT / "scripts" / "bench" / "data"
RESULTS = ROOT / "scripts" / "bench" / "results"
KS = list(range(1, 101))
MODES = [("uniform", ["--weights", "uniform"]),
         ("softdedup (defaults: power 1)", ["--weights", "softdedup"]),
         ("softdedup --power 1.5", ["--weights", "softdedup", "--power", "1.5"]),
         ("softdedup --power 2", ["--weights", "softdedup", "--power", "2"]),
         ("softdedup:dup_count", ["--weights", "softdedup:dup_count"])]
WORD = re.compile(r"[A-Za-z][A-Za-z']+|[0-9]+|[.,;:()]")


def sample_docs() -> list[dict]:
    from scripts.bench.make_corpus import load_sample

    docs, _ = load_sample()
    truth = ROOT / "data" / "sample" / "truth.jsonl"
    injected = {json.loads(line)["doc_id"] for line in truth.read_text().splitlines()} if truth.exists() else set()
    seen, out = set(), []
    for d in docs:
        if d["doc_id"] in injected or d["text"] in seen or len(d["text"]) < 300:
            continue
        seen.add(d["text"])
        out.append(d)
    return out


def base_texts(kind: str, n: int, words: int, rng: random.Random, vocab_size: int = 5000) -> list[str]:
    docs = sample_docs()
    if kind == "sample":
        if len(docs) < n:
            sys.exit(f"exposure: the sample corpus has {len(docs)} usable documents, {n} needed; lower --singletons")
        rng.shuffle(docs)
        return [d["text"] for d in docs[:n]]
    freq = collections.Counter(w for d in docs for w in WORD.findall(d["text"]))
    vocab, counts = zip(*freq.most_common(), strict=True)
    p = np.array(counts, np.float64)
    if kind == "uniform":  # the commonest vocab_size lowercase words (one token each), equally likely
        vocab = list(dict.fromkeys(v.lower() for v in vocab if v.isalpha() and v.isascii() and len(v) > 1))
        vocab = vocab[:vocab_size]
        p = np.ones(len(vocab))
    p /= p.sum()
    g = np.random.default_rng(rng.randrange(1 << 30))
    out = []
    for i in range(n):
        idx = g.choice(len(vocab), size=words, p=p)
        text = " ".join(vocab[i] for i in idx)
        if kind == "uniform":  # a word of its own opens each base text: P(it | <s>) depends on k only
            text = opener(i) + " " + text
        out.append(text)
    return out


def opener(i: int) -> str:
    """A made-up lowercase word per number: zq + i in base 26."""
    s = ""
    while True:
        i, r = divmod(i, 26)
        s = chr(97 + r) + s
        if i == 0:
            return "zq" + s


def cluster_counts(clusters: int, zipf: float) -> dict[int, int]:
    """Clusters of each size k: `clusters`, or with --zipf A as many as max(clusters, A / k^2)."""
    return {k: max(clusters, round(zipf / k**2)) for k in KS}


def build_corpus(work: Path, kind: str, clusters: int, singletons: int, words: int, seed: int,
                 vocab_size: int, zipf: float) -> Path:
    rng = random.Random(seed)
    per_k = cluster_counts(clusters, zipf)
    n_base = singletons + sum(per_k.values())
    texts = base_texts(kind, n_base, words, rng, vocab_size)
    rows = []
    for i in range(singletons):
        rows.append({"doc_id": f"single-{i:05d}", "k": 1, "text": texts[i]})
    t = singletons
    for k in KS:
        for c in range(per_k[k]):
            for j in range(k):
                rows.append({"doc_id": f"k{k:03d}-c{c}-{j:03d}", "k": k, "text": texts[t]})
            t += 1
    rng.shuffle(rows)  # copies spread over shards, as duplicates are in a crawl
    raw = work / "raw.jsonl"
    with raw.open("w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return raw


def kn_discounts(raw: Path, work: Path) -> str:
    """The order-4 Kneser-Ney discounts lmplz uses on these texts (one line per line of text)."""
    lines = work / "lines.txt"
    with lines.open("w") as f:
        for row in raw.read_text().splitlines():
            f.write(json.loads(row)["text"].strip() + "\n")
    lmplz = ROOT / ".venv" / "bin" / "lmplz"
    with lines.open() as f:
        r = subprocess.run([str(lmplz), "-o", "4", "-S", "512M", "-T", str(work), "--discount_fallback"],
                           stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines.unlink()
    m = re.search(r"^4 \d+ (D1=\S+ D2=\S+ D3\+=\S+)", r.stderr, re.M)
    fallback = "Substituting fallback discounts for order 3" in r.stderr
    return (m.group(1) if m else "?") + (" (lmplz's fallback)" if fallback else " (estimated)")


def sh(*args) -> None:
    r = subprocess.run([CURATE, *map(str, args)], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"exposure: curate {' '.join(map(str, args))} failed:\n{r.stderr}")


def read(path: Path, columns: list[str]) -> dict:
    files = sorted(p for p in path.glob("part-*.parquet"))
    tables = [pq.read_table(f, columns=columns) for f in files]
    return {c: np.concatenate([t.column(c).to_numpy(zero_copy_only=False) for t in tables]) for c in columns}


def expected_weights(mode: str, run: Path, cols: dict) -> np.ndarray:
    from curate.resample import weights as wt

    if mode == "uniform":
        return np.ones(len(cols["k"]))
    if mode.startswith("softdedup:dup_count"):
        return 1.0 / cols["dup_count"].astype(np.float64)
    model = json.loads((run / "_work" / "model.json").read_text())
    return wt.softdedup_weight(cols["commonness"].astype(np.float64), model)


def exposure_table(cols: dict, w: np.ndarray, draws: np.ndarray) -> dict:
    """Per k: mean per-copy weight / a unique document's, whole-cluster exposure, realised draws."""
    k = cols["k"]
    single = (k == 1)
    w1, d1 = w[single].mean(), draws[single].mean()
    per_copy = {kk: float(w[k == kk].mean() / w1) for kk in KS}
    return {"per_copy": per_copy, "cluster": {kk: kk * per_copy[kk] for kk in KS},
            "realised": {kk: float(kk * draws[k == kk].mean() / d1) if d1 else None for kk in KS}}


def strictly_decreasing(per_copy: dict) -> tuple[bool, list[int]]:
    bad = [kk for kk in KS[1:] if not per_copy[kk] < per_copy[kk - 1]]
    return not bad, bad


def svg(results: dict, path: Path, title: str) -> None:
    """A hand-made line chart (no plotting dependency): cluster exposure against k."""
    W, H, L, R, T, B = 720, 440, 70, 210, 40, 50
    xs = lambda k: L + (k - 1) / 99 * (W - L - R)  # noqa: E731
    ymax = 100.0
    ys = lambda v: T + (1 - min(v, ymax) / ymax) * (H - T - B)  # noqa: E731
    colours = ["#888888", "#1f77b4", "#9467bd", "#d62728", "#2ca02c"]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2 - R / 2}" y="22" text-anchor="middle" font-size="14">{title}</text>']
    for v in range(0, 101, 20):
        out.append(f'<line x1="{L}" x2="{W - R}" y1="{ys(v):.1f}" y2="{ys(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{L - 6}" y="{ys(v) + 4:.1f}" text-anchor="end">{v}</text>')
    for k in (1, 20, 40, 60, 80, 100):
        out.append(f'<text x="{xs(k):.1f}" y="{H - B + 18}" text-anchor="middle">{k}</text>')
    out.append(f'<line x1="{L}" x2="{W - R}" y1="{H - B}" y2="{H - B}" stroke="black"/>')
    out.append(f'<line x1="{L}" x2="{L}" y1="{T}" y2="{H - B}" stroke="black"/>')
    out.append(f'<text x="{(L + W - R) / 2}" y="{H - 12}" text-anchor="middle">k: copies in the cluster</text>')
    out.append(f'<text transform="translate(18,{(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
               'expected draws of the cluster / a unique document</text>')
    for i, (name, r) in enumerate(results.items()):
        pts = " ".join(f"{xs(k):.1f},{ys(r['cluster'][k]):.1f}" for k in KS)
        c = colours[i % len(colours)]
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{pts}"/>')
        y = T + 20 + 22 * i
        out.append(f'<line x1="{W - R + 12}" x2="{W - R + 36}" y1="{y}" y2="{y}" stroke="{c}" stroke-width="2"/>')
        out.append(f'<text x="{W - R + 42}" y="{y + 4}">{name}</text>')
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", choices=["uniform", "words", "sample"], default="uniform")
    ap.add_argument("--clusters", type=int, default=1, help="clusters of each size k (at least)")
    ap.add_argument("--singletons", type=int, default=1000, help="unique documents besides the k = 1 clusters")
    ap.add_argument("--words", type=int, default=200, help="words per document (--text words)")
    ap.add_argument("--zipf", type=float, default=1600.0,
                    help="clusters of size k: max(--clusters, A / k^2), a power law as in web crawls (0: flat)")
    ap.add_argument("--vocab", type=int, default=5000, help="vocabulary size (--text uniform)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--svg", default=str(ROOT / "docs" / "exposure.svg"), help="where to write the plot ('' for none)")
    args = ap.parse_args()
    work = DATA / f"exposure-{args.text}-c{args.clusters}-z{args.zipf:g}-v{args.vocab}-s{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    raw = build_corpus(work, args.text, args.clusters, args.singletons, args.words, args.seed, args.vocab,
                       args.zipf)
    sh("ingest", raw, work / "raw", "--id-field", "doc_id", "--shard-size", "5000", "--overwrite", "-q")
    sh("ngram", "train", work / "raw", work / "model.bin", "--order", "4", "--memory", "1G", "--overwrite", "-q")
    sh("score", work / "raw", work / "scored", "--commonness", work / "model.bin", "--overwrite", "-q")
    sh("dedup", "exact", work / "scored", work / "dd", "--mode", "annotate", "--overwrite", "-q")
    cols = read(work / "dd", ["k", "commonness", "dup_count", "id"])
    discounts = kn_discounts(raw, work)
    results, checks = {}, {}
    for name, opts in MODES:
        run = work / ("rs-" + re.sub(r"[^a-z0-9]+", "-", name).strip("-"))
        sh("resample", work / "dd", run, *opts, "--fraction", "1", "--keep-work", "--overwrite", "-q")
        draws = read(run, ["sample_count"])["sample_count"].astype(np.float64)
        results[name] = exposure_table(cols, expected_weights(name, run, cols), draws)
        checks[name] = strictly_decreasing(results[name]["per_copy"])
    k = cols["k"]
    common = {kk: float(cols["commonness"][k == kk].mean()) for kk in KS}
    shown = [1, 2, 3, 5, 10, 20, 50, 100]
    law = f"max({args.clusters}, {args.zipf:g} / k^2)" if args.zipf else f"{args.clusters}"
    print(f"Exposure ({args.text} text, {law} clusters of k copies, {len(k):,} documents; order-4 discounts "
          f"{discounts}; {time.time() - t0:.0f} s)\n")
    print("| k | mean commonness | " + " | ".join(results) + " |")
    print("|---|---|" + "---|" * len(results))
    for kk in shown:
        print(f"| {kk} | {common[kk]:.3f} | " + " | ".join(f"{r['cluster'][kk]:.2f}" for r in results.values()) + " |")
    print("\nwhole-cluster exposure / a unique document's (expected; uniform is k)\n")
    for name, (ok, bad) in checks.items():
        if name == "uniform":
            continue
        pc = results[name]["per_copy"]
        bands = [(1, 1), (2, 5), (6, 20), (21, 50), (51, 100)]
        means = [float(np.mean([pc[kk] for kk in range(a, b + 1)])) for a, b in bands]
        print(f"- {name}: per-copy weight strictly decreasing in k: "
              f"{'yes' if ok else f'no: {len(bad)} of 99 steps are not (first: k = {bad[:8]})'}; mean per-copy weight "
              f"over k in {bands}: {', '.join(f'{m:.3f}' for m in means)}")
    dc = results["softdedup:dup_count"]["cluster"]
    sd = results["softdedup (defaults: power 1)"]["cluster"]
    print(f"- dup_count: every cluster within [{min(dc.values()):.3f}, {max(dc.values()):.3f}] of a unique document")
    print(f"- softdedup defaults: the 100-copy cluster gets {sd[100] / 100:.3f} of uniform's exposure "
          f"(power 1.5: {results['softdedup --power 1.5']['cluster'][100] / 100:.3f}, "
          f"power 2: {results['softdedup --power 2']['cluster'][100] / 100:.3f})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"exposure-{args.text}-{stamp}.json").write_text(json.dumps(
        {"args": vars(args), "discounts": discounts, "commonness": common, "results": results,
         "strictly_decreasing": {n: c[0] for n, c in checks.items()}}, indent=1))
    if args.svg:
        svg(results, Path(args.svg), f"Exposure of k-copy clusters ({args.text} text, 4-gram commonness)")


if __name__ == "__main__":
    main()
