#!/usr/bin/env python3
"""Dedup benchmark: `curate dedup minhash` against datasketch, rensa and datatrove, and `curate dedup
exact` against a plain pyarrow read of the text column, side by side in one run; near-duplicate
quality scored against the exact all-pairs Jaccard join (exact_jaccard.py).

Corpora (make_dup_corpus.py, cached under scripts/bench/data/): `sample` (data/sample itself) and
generated ones of a given size (`100MB`, `1GB`). Every contender reads the same Parquet shards.

Contenders (each its own process, timed on the wall clock, interpreter start-up included):
  curate          curate dedup minhash IN OUT -j J [--no-verify]        (J = 1, 2)
  datasketch      peers_minhash.py datasketch: MinHash + MinHashLSH(0.8, 128) + union-find
  rensa           peers_minhash.py rensa: RMinHash + RMinHashLSH(8 bands) + README dedup loop
  datatrove       peers_minhash.py datatrove --tasks T: its 4-stage pipeline, T tasks = workers;
                  `datatrove` uses a str.split word tokenizer, `datatrove-spacy` its default
                  English tokenizer (spaCy, ~10x slower: on --spacy-corpora only)
  curate exact    curate dedup exact IN OUT -j J                          (J = 1, 2)
  read text       read_text.py: pq.read_table(f, columns=['text']) of every shard, 1 thread
                  (--threads 1) or pyarrow's default thread pool
  pyarrow copy    read_text.py --copy: read every column, write each shard again (zstd-3)
  --exact-codecs  the curate exact and copy runs again with other output codecs (zstd:1, lz4, none):
                  what the rewrite costs against the read

The machine is shared and noisy, so repetitions are interleaved (each repetition runs every
contender once, in a rotated order) and the figures are medians; ratios are medians of the
per-repetition ratios. Peak RSS is the peak of the summed RSS of the process tree, polled
from /proc every 0.1 s; CPU seconds likewise sum every process of the tree. docs/s/core = documents / wall seconds / cores given (-j, tasks).

Quality (on the first repetition; every pipeline here is deterministic): true duplicate groups =
connected components of the pairs with exact Jaccard >= 0.8; removable = sum over groups of
(size - 1); recall = removed documents of true groups, at most size - 1 per group, / removable;
precision = removed documents having a partner with Jaccard >= 0.7 / removed; lost groups =
groups all of whose members were removed / groups.

    python scripts/bench/bench_dedup.py --corpora sample:3,100MB:3,1GB:1 --skip "1GB=datatrove -t1"
    python scripts/bench/bench_dedup.py --corpora sample:1 --only curate,rensa

Raw results: scripts/bench/results/dedup-<time>.json, tables beside it in .md.
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

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import exact_jaccard  # noqa: E402
import make_dup_corpus  # noqa: E402
from measure import CURATE, PY, RESULTS, ROOT  # noqa: E402
from measure import measure as _measure  # noqa: E402

RUNS = HERE / "data" / "_dedup_runs"
PEERS_PY = HERE / ".venv-peers" / "bin" / "python"


def measure(argv: list[str], env: dict | None = None, interval: float = 0.1) -> dict:
    return _measure(argv, RUNS, ROOT, env, interval)


# ---- contenders ----------------------------------------------------------------------------


@dataclass
class Contender:
    key: str
    family: str  # minhash | exact
    who: str  # curate | datasketch | rensa | datatrove | pyarrow
    cores: int
    argv: list[str]  # "{in}" and "{out}" substituted
    env: dict = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)
    quality: dict | None = None
    extra: dict = field(default_factory=dict)

    def med(self, k: str) -> float:
        return statistics.median(r[k] for r in self.runs)


def contenders(only: set[str] | None, spacy: bool, corpus_docs: int, codecs: tuple[str, ...] = ()) -> list[Contender]:
    peers = [str(PEERS_PY), str(HERE / "peers_minhash.py")]
    one = {"RAYON_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    cs = [
        Contender("curate -j1", "minhash", "curate", 1, [str(CURATE), "dedup", "minhash", "{in}", "{out}", "-j", "1", "-q", "--json"]),
        Contender("curate -j2", "minhash", "curate", 2, [str(CURATE), "dedup", "minhash", "{in}", "{out}", "-j", "2", "-q", "--json"]),
        Contender("curate --no-verify -j1", "minhash", "curate", 1,
                  [str(CURATE), "dedup", "minhash", "{in}", "{out}", "--no-verify", "-j", "1", "-q", "--json"]),
        Contender("curate --no-verify -j2", "minhash", "curate", 2,
                  [str(CURATE), "dedup", "minhash", "{in}", "{out}", "--no-verify", "-j", "2", "-q", "--json"]),
        Contender("datasketch", "minhash", "datasketch", 1, [*peers, "datasketch", "{in}", "{out}"], one),
        Contender("rensa", "minhash", "rensa", 1, [*peers, "rensa", "{in}", "{out}"], one),
        Contender("datatrove -t1", "minhash", "datatrove", 1, [*peers, "datatrove", "{in}", "{out}", "--tasks", "1", "--tokenizer", "split"], one),
        Contender("datatrove -t2", "minhash", "datatrove", 2, [*peers, "datatrove", "{in}", "{out}", "--tasks", "2", "--tokenizer", "split"], one),
        Contender("curate exact -j1", "exact", "curate", 1, [str(CURATE), "dedup", "exact", "{in}", "{out}", "-j", "1", "-q", "--json"]),
        Contender("curate exact -j2", "exact", "curate", 2, [str(CURATE), "dedup", "exact", "{in}", "{out}", "-j", "2", "-q", "--json"]),
        Contender("read text 1 thread", "exact", "pyarrow", 1, [str(PY), str(HERE / "read_text.py"), "{in}", "--threads", "1"]),
        Contender("read text (threads)", "exact", "pyarrow", 2, [str(PY), str(HERE / "read_text.py"), "{in}"]),
        Contender("pyarrow copy 1 thread", "exact", "pyarrow", 1,
                  [str(PY), str(HERE / "read_text.py"), "{in}", "--threads", "1", "--copy", "{out}"]),
    ]
    for codec in codecs:  # the same runs writing another codec: what the write costs against the read
        cs += [
            Contender(f"curate exact -j1 @{codec}", "exact", "curate", 1,
                      [str(CURATE), "dedup", "exact", "{in}", "{out}", "-j", "1", "-q", "--json", "--compression", codec]),
            Contender(f"curate exact -j2 @{codec}", "exact", "curate", 2,
                      [str(CURATE), "dedup", "exact", "{in}", "{out}", "-j", "2", "-q", "--json", "--compression", codec]),
            Contender(f"pyarrow copy 1 thread @{codec}", "exact", "pyarrow", 1,
                      [str(PY), str(HERE / "read_text.py"), "{in}", "--threads", "1", "--copy", "{out}", "--codec", codec]),
        ]
    if spacy:
        cs += [
            Contender("datatrove-spacy -t1", "minhash", "datatrove", 1,
                      [*peers, "datatrove", "{in}", "{out}", "--tasks", "1", "--tokenizer", "spacy"], one),
            Contender("datatrove-spacy -t2", "minhash", "datatrove", 2,
                      [*peers, "datatrove", "{in}", "{out}", "--tasks", "2", "--tokenizer", "spacy"], one),
        ]
    if only:
        cs = [c for c in cs if c.who in only or c.key in only or c.family in only]
    return cs


def removed_ids(c: Contender, out: Path, all_ids: pa.Array) -> pa.Array:
    """The ids a contender removed, from its output."""
    if c.who == "curate":
        t = pq.read_table(out / "_clusters.parquet")
        return t.filter(pc.not_equal(t.column("id"), t.column("cluster"))).column("id").combine_chunks()
    if c.who in ("datasketch", "rensa"):
        return pq.read_table(out / "removed.parquet").column("id").combine_chunks()
    if c.who == "datatrove":
        kept = pa.concat_arrays([pq.read_table(f, columns=["id"]).column("id").combine_chunks().cast(pa.large_string())
                                 for f in sorted((out / "output").glob("*.parquet"))] or [pa.array([], pa.large_string())])
        return all_ids.filter(pc.invert(pc.is_in(all_ids, value_set=kept)))
    raise ValueError(c.who)


# ---- quality --------------------------------------------------------------------------------


class Truth:
    """Exact pairs of one corpus, and the duplicate groups at 0.8."""

    def __init__(self, exact_dir: Path):
        docs = pq.read_table(exact_dir / "docs.parquet")
        self.ids = docs.column("id").combine_chunks().cast(pa.large_string())
        self.n = len(self.ids)
        p = pq.read_table(exact_dir / "pairs.parquet")
        a, b = p.column("a").to_numpy(), p.column("b").to_numpy()
        inter, union = p.column("inter").to_numpy(), p.column("union").to_numpy()
        self.partner07 = np.zeros(self.n, bool)
        self.partner07[a] = self.partner07[b] = True
        hi = inter * 5 >= union * 4  # J >= 0.8, exactly
        self.partner08 = np.zeros(self.n, bool)
        self.partner08[a[hi]] = self.partner08[b[hi]] = True
        # components of the J >= 0.8 graph
        parent = np.arange(self.n)

        def find(x: int) -> int:
            r = x
            while parent[r] != r:
                r = parent[r]
            while parent[x] != r:
                parent[x], x = r, parent[x]
            return r

        for x, y in zip(a[hi].tolist(), b[hi].tolist(), strict=True):
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
        members = np.flatnonzero(self.partner08)
        self.group = np.full(self.n, -1, np.int64)
        self.group[members] = [find(int(x)) for x in members]
        g, size = np.unique(self.group[members], return_counts=True)
        self.groups = len(g)
        self.group_size = dict(zip(g.tolist(), size.tolist(), strict=True))
        self.removable = int((size - 1).sum())
        self.pairs07 = len(a)
        self.pairs08 = int(hi.sum())

    def score(self, removed: pa.Array) -> dict:
        pos = pc.index_in(removed.cast(pa.large_string()), value_set=self.ids)
        if pos.null_count:
            raise ValueError(f"{pos.null_count} removed ids are not in the corpus")
        idx = np.unique(pos.to_numpy().astype(np.int64))
        mask = np.zeros(self.n, bool)
        mask[idx] = True
        grp = self.group[idx]
        grp = grp[grp >= 0]
        g, k = np.unique(grp, return_counts=True)
        sizes = np.array([self.group_size[x] for x in g.tolist()], np.int64) if len(g) else np.zeros(0, np.int64)
        found = int(np.minimum(k, sizes - 1).sum())
        lost = int((k == sizes).sum())
        nrem = len(idx)
        return {
            "removed": nrem,
            "recall": found / self.removable if self.removable else 1.0,
            "precision": float(self.partner07[idx].mean()) if nrem else 1.0,
            "precision_0.8": float(self.partner08[idx].mean()) if nrem else 1.0,
            "false_removals": int((~self.partner07[idx]).sum()),
            "lost_groups": lost,
            "lost_groups_frac": lost / self.groups if self.groups else 0.0,
            "groups": self.groups,
            "removable": self.removable,
        }


# ---- one corpus ------------------------------------------------------------------------------


def run_corpus(size: str, reps: int, only: set[str] | None, spacy: bool, log, codecs: tuple[str, ...] = ()) -> dict:
    cdir = make_dup_corpus.build(size, log=log)
    meta = json.loads((cdir / "corpus.json").read_text())
    dataset = cdir / "parquet"
    t0 = time.monotonic()
    exact_dir = exact_jaccard.run(dataset)
    join = json.loads((exact_dir / "join.json").read_text())
    log(f"bench_dedup: {size}: exact join ready ({time.monotonic() - t0:.0f} s here; {join['seconds']} s when computed)")
    truth = Truth(exact_dir)
    truth_check = exact_jaccard.check_truth(exact_dir, cdir / "truth.jsonl") if (cdir / "truth.jsonl").exists() else None
    docs = truth.n
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in dataset.glob("part-*.parquet"))
    assert rows == docs, (rows, docs)
    cs = contenders(only, spacy, docs, codecs)
    for rep in range(reps):
        order = cs[rep % len(cs):] + cs[: rep % len(cs)]
        for c in order:
            out = RUNS / f"{size}-{c.key.replace(' ', '_').replace('/', '_')}"
            if out.exists():
                shutil.rmtree(out)
            argv = [a.replace("{in}", str(dataset)).replace("{out}", str(out)) for a in c.argv]
            try:
                r = measure(argv, c.env)
            except RuntimeError as e:
                log(f"bench_dedup: {size}: {c.key}: {e}")
                c.extra["error"] = str(e)[:2000]
                continue
            if c.family == "minhash":
                rem = removed_ids(c, out, truth.ids)
                r["removed"] = len(rem)
                if c.quality is None:
                    c.quality = truth.score(rem)
                if c.who == "curate":
                    m = json.loads((out / "_manifest.json").read_text())
                    r["phases"] = {k: v["task_seconds"] for k, v in m.get("phases", {}).items()}
                    r["counters"] = m.get("counters", {})
                    c.extra["bands"] = f"{m['params']['lsh_bands']} x {m['params']['lsh_rows']}"
                else:
                    try:
                        info = json.loads(r["stdout"].strip().splitlines()[-1])
                        c.extra["bands"] = f"{info.get('bands')} x {info.get('rows')}"
                        r["peer_info"] = info
                    except (ValueError, IndexError):
                        pass
            elif c.who == "pyarrow":
                r["loop_s"] = json.loads(r["stdout"].strip().splitlines()[-1])["loop_s"]
                if "copy" in c.key:
                    r["bytes_out"] = sum(f.stat().st_size for f in out.glob("part-*.parquet"))
            elif c.who == "curate":
                s = json.loads(r["stdout"].strip().splitlines()[-1])
                r["removed"] = s["rows_rejected"]
                r["bytes_out"] = s["bytes_out"]
                m = json.loads((out / "_manifest.json").read_text())
                r["phases"] = {k: v["task_seconds"] for k, v in m.get("phases", {}).items()}
            r.pop("stdout", None)
            c.runs.append(r)
            log(f"bench_dedup: {size} rep {rep + 1}/{reps}: {c.key:22s} {r['wall_s']:8.2f} s  cpu {r['cpu_s']:8.2f} s  "
                f"rss {r['rss_peak'] / 2**20:7.0f} MB  removed {r.get('removed', '-')}")
            if out.exists():
                shutil.rmtree(out)
            subprocess.run(["sync"], check=False)
    return {
        "size": size, "dir": str(cdir.relative_to(ROOT)), "docs": docs,
        "text_bytes": meta.get("text_bytes"), "jsonl_bytes": meta.get("jsonl_bytes"),
        "parquet_bytes": meta["parquet"]["parquet_bytes"], "shards": meta["parquet"]["shards"],
        "copies": meta.get("copies"), "reps": reps,
        "truth": {"pairs_0.7": truth.pairs07, "pairs_0.8": truth.pairs08, "groups_0.8": truth.groups,
                  "removable_0.8": truth.removable, "join": join, "truth_file_check": truth_check},
        "contenders": [{"key": c.key, "family": c.family, "who": c.who, "cores": c.cores, "runs": c.runs,
                        "quality": c.quality, **c.extra} for c in cs],
    }


# ---- reporting --------------------------------------------------------------------------------


def _med(c: dict, k: str) -> float | None:
    v = [r[k] for r in c["runs"] if k in r]
    return statistics.median(v) if v else None


def _ratio(a: dict, b: dict) -> float | None:
    """median over repetitions of wall(b) / wall(a): how many times faster a is than b."""
    n = min(len(a["runs"]), len(b["runs"]))
    if n == 0:
        return None
    return statistics.median(b["runs"][i]["wall_s"] / a["runs"][i]["wall_s"] for i in range(n))


def tables(res: dict) -> str:
    lines = []
    for corp in res["corpora"]:
        mb = (corp["text_bytes"] or 0) / 1e6
        t = corp["truth"]
        lines.append(f"\n#### Corpus `{corp['size']}`: {corp['docs']:,} documents, {corp['shards']} shards"
                     + (f", {mb:,.0f} MB of text" if mb else "") + f"; median of {corp['reps']} run(s)\n")
        lines.append(f"Exact join: {t['pairs_0.7']:,} pairs with J >= 0.7, {t['pairs_0.8']:,} with J >= 0.8, "
                     f"{t['groups_0.8']:,} true duplicate groups at 0.8, {t['removable_0.8']:,} removable documents "
                     f"(join: {t['join']['seconds']} s, {t['join']['candidate_pairs']:,} candidates verified)."
                     + (f" Injected copies found by the join: {t['truth_file_check']}." if t["truth_file_check"] else "") + "\n")
        lines.append("| contender | cores | bands x rows | wall s | docs/s/core | CPU s | peak RSS MB | removed | precision (J>=0.7) | recall (J>=0.8) | lost groups |")
        lines.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in corp["contenders"]:
            if c["family"] != "minhash" or not c["runs"]:
                continue
            w = _med(c, "wall_s")
            q = c["quality"] or {}
            lines.append(f"| {c['key']} | {c['cores']} | {c.get('bands', '')} | {w:.2f} | {corp['docs'] / w / c['cores']:,.0f} | "
                         f"{_med(c, 'cpu_s'):.1f} | {_med(c, 'rss_peak') / 2**20:,.0f} | {q.get('removed', '')} | "
                         f"{q.get('precision', 0):.4f} | {q.get('recall', 0):.4f} | {q.get('lost_groups', 0)} ({100 * q.get('lost_groups_frac', 0):.2f}%) |")
        by = {c["key"]: c for c in corp["contenders"]}
        cur = [k for k in by if by[k]["who"] == "curate" and by[k]["family"] == "minhash" and by[k]["runs"]]
        peers = [k for k in by if by[k]["who"] != "curate" and by[k]["family"] == "minhash" and by[k]["runs"]]
        if cur and peers:
            lines.append("\nWall-time ratios (peer / curate; > 1: curate is faster), median of per-repetition ratios:\n")
            lines.append("| | " + " | ".join(peers) + " |")
            lines.append("|---|" + "---:|" * len(peers))
            for k in cur:
                lines.append(f"| {k} | " + " | ".join(f"{_ratio(by[k], by[p]):.1f}x" for p in peers) + " |")
        ex = [c for c in corp["contenders"] if c["family"] == "exact" and c["runs"]]
        if ex:
            lines.append("\n| exact dedup vs reading the text | cores | wall s | docs/s/core | CPU s | peak RSS MB | removed |")
            lines.append("|---|---:|---:|---:|---:|---:|---:|")
            for c in ex:
                w = _med(c, "wall_s")
                lines.append(f"| {c['key']} | {c['cores']} | {w:.2f} | {corp['docs'] / w / c['cores']:,.0f} | {_med(c, 'cpu_s'):.1f} | "
                             f"{_med(c, 'rss_peak') / 2**20:,.0f} | {c['runs'][0].get('removed', '')} |")
            for a, b in (("curate exact -j1", "read text 1 thread"), ("curate exact -j2", "read text (threads)")):
                if a in by and b in by and by[a]["runs"] and by[b]["runs"]:
                    r = _ratio(by[b], by[a])
                    lines.append(f"\n{a} / {b}: {r:.2f}x the time, end to end (target: <= 2x)")
            a, b, cp = by.get("curate exact -j1"), by.get("read text 1 thread"), by.get("pyarrow copy 1 thread")
            if a and b and a["runs"] and b["runs"]:
                det = statistics.median(r["phases"]["signature"] + r["phases"]["group"] for r in a["runs"])
                rd = statistics.median(r["loop_s"] for r in b["runs"])
                lines.append(f"\ncurate exact -j1 detection (signature + group phases, {det:.2f} task-s) / the read loop "
                             f"({rd:.2f} s, start-up excluded on both sides): {det / rd:.2f}x")
            if a and cp and a["runs"] and cp["runs"]:
                lines.append(f"\ncurate exact -j1 / pyarrow copy 1 thread (read all columns, write zstd-3): "
                             f"{_ratio(cp, a):.2f}x the time, end to end")
            lines += _codec_table(by)
    return "\n".join(lines)


def _codec_table(by: dict) -> list[str]:
    """Exact dedup end to end per output codec, each as a multiple of the same runs' text read."""
    rd1, rdt = by.get("read text 1 thread"), by.get("read text (threads)")
    codecs = list(dict.fromkeys(["zstd:3"] + [k.partition("@")[2] for k in by if "@" in k]))
    if len(codecs) < 2 or not (rd1 and rd1["runs"]):
        return []

    def get(key: str, codec: str) -> dict | None:
        c = by.get(key if codec == "zstd:3" else f"{key} @{codec}")
        return c if c and c["runs"] else None

    def x(a: dict | None, b: dict | None) -> str:
        return f"{_ratio(b, a):.2f}x" if a and b else ""

    out = ["\nExact dedup end to end by output codec (`--compression`), as multiples of the time to read the text "
           "(median of per-repetition ratios; target <= 2x):\n",
           "| codec | output MB | -j1 / read 1 thread | -j2 / read 1 thread | -j2 / read (threads) | copy / read 1 thread | -j1 / copy |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for codec in codecs:
        j1, j2, cp = get("curate exact -j1", codec), get("curate exact -j2", codec), get("pyarrow copy 1 thread", codec)
        mb = j1["runs"][0].get("bytes_out", 0) / 1e6 if j1 else 0
        out.append(f"| {codec} | {mb:,.1f} | {x(j1, rd1)} | {x(j2, rd1)} | {x(j2, rdt if rdt and rdt['runs'] else None)} | "
                   f"{x(cp, rd1)} | {x(j1, cp)} |")
    return out


def curate_git() -> dict:
    """The commit measured, and the files under curate/ that differ from it (read-only git calls)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    return {"curate_git": git("rev-parse", "--short", "HEAD"),
            "curate_modified": [x[3:] for x in git("status", "--porcelain", "--", "curate").splitlines()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpora", default="sample:3,100MB:3,1GB:1", help="SIZE:REPS,... [sample:3,100MB:3,1GB:1]")
    ap.add_argument("--only", default="", help="comma-separated contender keys, families or who (curate, rensa, exact ...)")
    ap.add_argument("--spacy-corpora", default="sample", help="corpora that also run datatrove with its default spaCy tokenizer")
    ap.add_argument("--exact-codecs", default="",
                    help="output codecs besides zstd:3 to time exact dedup and the pyarrow copy with, e.g. 'zstd:1,lz4,none'")
    ap.add_argument("--skip", default="", help="SIZE=KEY;KEY,...: contenders left out on one corpus, e.g. '1GB=datatrove -t1'")
    a = ap.parse_args()
    for py in (PY, PEERS_PY):  # bytecode caches up front, as an installed package has them
        subprocess.run([str(py), "-m", "compileall", "-q", str(ROOT / "curate"), str(HERE)], check=False,
                       stdout=subprocess.DEVNULL, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})
    only = {x.strip() for x in a.only.split(",") if x.strip()} or None
    codecs = tuple(x.strip() for x in a.exact_codecs.split(",") if x.strip())
    spacy_on = {x.strip() for x in a.spacy_corpora.split(",") if x.strip()}
    skip: dict[str, set[str]] = {}
    for part in filter(None, a.skip.split(",")):
        k, _, v = part.partition("=")
        skip.setdefault(k, set()).update(x for x in v.split(";") if x)

    def log(m: str) -> None:
        print(m, file=sys.stderr, flush=True)

    RESULTS.mkdir(parents=True, exist_ok=True)
    res = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": platform.node(), "cpus": os.cpu_count(),
           "python": platform.python_version(), "argv": sys.argv, "corpora": [], **curate_git()}
    t_all = time.monotonic()
    for spec in a.corpora.split(","):
        size, _, reps = spec.partition(":")
        res_c = run_corpus(size, int(reps or 1), only, size in spacy_on, log, codecs) if size not in skip else None
        if res_c is None:
            cs_only = {c.key for c in contenders(only, size in spacy_on, 0, codecs)} - skip[size]
            res_c = run_corpus(size, int(reps or 1), cs_only, size in spacy_on, log, codecs)
        res["corpora"].append(res_c)
    res["seconds"] = round(time.monotonic() - t_all, 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"dedup-{stamp}.json").write_text(json.dumps(res, indent=1))
    md = tables(res)
    (RESULTS / f"dedup-{stamp}.md").write_text(md + "\n")
    print(md)
    log(f"bench_dedup: done in {res['seconds']} s; results/dedup-{stamp}.json")


if __name__ == "__main__":
    main()
