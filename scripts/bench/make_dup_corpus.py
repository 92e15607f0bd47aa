#!/usr/bin/env python3
"""Build a seeded corpus with known exact and near duplicates for the dedup benchmark.

Background documents are recombined from the sample corpus's real text (data/sample/raw:
CPython docstrings and help topics): each is a run of paragraphs whose sentences are drawn at
random from the whole sample (so neighbouring sentences come from different docstrings), and in
every sentence one word is swapped for a random word of the sample's vocabulary. Lengths are
log-normal (median 250 words). Two background documents therefore share only the odd sentence
fragment (word 5-gram Jaccard ~0): most documents are unique, as in a web crawl.

A fraction of the background documents (--source-rate) are the source of a duplicate cluster,
whose copies are scattered at random later positions (so across shards):

  exact   1-3 copies, byte-identical (70%) or differing only in whitespace (30%)
  near    1-3 copies, each edited (words replaced, deleted or inserted; a sentence added at the
          start or end) until its word 5-gram Jaccard with its parent falls to a target drawn
          uniformly from [0.70, 1.00); a second or third copy is made from the previous copy
          (a chain) with probability 0.3
  far     1 copy edited down to a Jaccard in [0.50, 0.70): must NOT be removed at 0.8, and is
          not a true partner at 0.7 either (bait for precision)

Every copy is recorded in truth.jsonl (doc_id, original, parent, kind, jaccard5 to its parent
and to the original), with Jaccard computed on exactly curate's shingles (dedup_shingles.py).
The scoring in bench_dedup.py does not trust this file: it uses exact_jaccard.py's all-pairs
join; truth.jsonl is how that join is checked.

Output (git-ignored), cached by a stamp of the parameters:

    scripts/bench/data/dup-<SIZE>-s<SEED>/jsonl/part-NNNNN.jsonl   ~64 MiB each
    scripts/bench/data/dup-<SIZE>-s<SEED>/parquet/                 `curate ingest --id-field doc_id`
    scripts/bench/data/dup-<SIZE>-s<SEED>/truth.jsonl
    scripts/bench/data/dup-<SIZE>-s<SEED>/corpus.json              parameters and counts

    python scripts/bench/make_dup_corpus.py --size 100MB
    python scripts/bench/make_dup_corpus.py --size 1GB --shard-size 256MB
    python scripts/bench/make_dup_corpus.py --sample     # data/sample itself, ingested likewise
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import heapq
import json
import math
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from dedup_shingles import jaccard, shingles  # noqa: E402

GENERATOR_VERSION = 1
ROOT = HERE.parents[1]
DATA = HERE / "data"
SAMPLE = ROOT / "data" / "sample"
CURATE = ROOT / ".venv" / "bin" / "curate"
FILE_BYTES = 64 << 20
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SENTENCE = re.compile(r"(?<=[.!?:])\s+")
_WORD = re.compile(r"^[A-Za-z]{3,}$")
_SPLIT = re.compile(r"(\s+)")


def parse_size(s: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", s)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{s!r}: expected a size such as 100MB, 1GB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def load_sample(sample: Path = SAMPLE) -> tuple[list[dict], str]:
    """The sample's original documents (its own injected copies left out), and a digest."""
    injected = {json.loads(x)["doc_id"] for x in (sample / "truth.jsonl").read_text().splitlines() if x.strip()}
    files = sorted(p for p in (sample / "raw").iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
    if not files:
        sys.exit(f"make_dup_corpus: no sample corpus in {sample}; run `make sample` first")
    docs, h = [], hashlib.sha256()
    for p in files:
        data = (gzip.open if p.name.endswith(".gz") else open)(p, "rb").read()
        h.update(p.name.encode() + b"\0" + data)
        docs.extend(d for d in (json.loads(x) for x in data.splitlines() if x.strip()) if d["doc_id"] not in injected)
    return docs, h.hexdigest()[:16]


class Generator:
    def __init__(self, docs: list[dict], seed: int, source_rate: float):
        self.rng = random.Random(seed)
        self.seed = seed
        self.source_rate = source_rate
        sents, vocab = [], set()
        for d in docs:
            for para in re.split(r"\n\s*\n", d["text"]):
                for s in _SENTENCE.split(para.strip()):
                    toks = s.split()
                    if toks:
                        sents.append(toks)
                        vocab.update(t for t in toks if _WORD.match(t))
        self.sents = sents
        self.vocab = sorted(vocab)
        self.domains = sorted({d["domain"] for d in docs})

    # -- background documents ----------------------------------------------------------------
    def sentence(self) -> str:
        rng = self.rng
        toks = list(self.sents[rng.randrange(len(self.sents))])
        toks[rng.randrange(len(toks))] = self.vocab[rng.randrange(len(self.vocab))]
        return " ".join(toks)

    def background(self) -> str:
        rng = self.rng
        target = min(6000, max(15, int(rng.lognormvariate(math.log(250), 0.9))))
        paras, n = [], 0
        while n < target:
            k = min(1 + int(rng.expovariate(1 / 2.5)), 12)
            ss = [self.sentence() for _ in range(k)]
            n += sum(s.count(" ") + 1 for s in ss)
            paras.append(" ".join(ss))
        return "\n\n".join(paras)

    # -- copies --------------------------------------------------------------------------------
    def edit_to(self, text: str, target: float) -> tuple[str, float]:
        """Edit `text` step by step until its Jaccard with the original is <= target."""
        rng = self.rng
        base = set(shingles(text))
        parts = _SPLIT.split(text)
        ntok = (len(parts) + 1) // 2
        # an edit changes about 5 shingles, and J drops by about 2/|S| per changed shingle: take
        # 70% of the estimated remaining edits, recompute, repeat (single edits near the target)
        j, guard = 1.0, 0
        while j > target and guard < 10_000:
            todo = max(1, int(0.7 * (j - target) * len(base) / 10))
            for _ in range(todo):
                op = rng.random()
                t = 2 * rng.randrange(ntok)
                w = self.vocab[rng.randrange(len(self.vocab))]
                if op < 0.5:
                    parts[t] = w
                elif op < 0.7:
                    parts[t] = ""
                elif op < 0.92 or todo < 6:
                    parts[t] = f"{parts[t]} {w}"
                elif op < 0.96:  # a sentence added at the start or the end (a big step: only far from the target)
                    parts[0] = f"{self.sentence()} {parts[0]}"
                else:
                    parts[-1] = f"{parts[-1]} {self.sentence()}"
            j = jaccard(base, set(shingles("".join(parts))))
            guard += 1
        return "".join(parts), j

    def cluster(self, src_id: str, text: str) -> list[dict]:
        """The copies of one source document (without positions)."""
        rng = self.rng
        nwords = text.count(" ") + 1
        r = rng.random()
        kind = "exact" if r < 0.35 or nwords < 60 else ("near" if r < 0.9 else "far")
        ncopies = 1 if kind == "far" else rng.choice((1, 1, 1, 1, 2, 2, 3))
        out, prev_text, prev_id = [], text, src_id
        src_set = set(shingles(text)) if kind != "exact" else None
        for k in range(1, ncopies + 1):
            if kind == "exact":
                t = text
                if rng.random() < 0.3:  # whitespace-only variant: still Jaccard 1
                    t = text.replace(" ", "  ", 3) + "\n"
                out.append({"doc_id": f"{src_id}#dup{k}", "text": t, "kind": "exact", "original": src_id,
                            "parent": src_id, "jaccard5": 1.0, "jaccard5_original": 1.0})
                continue
            chain = k > 1 and rng.random() < 0.3
            parent_text, parent_id = (prev_text, prev_id) if chain else (text, src_id)
            target = rng.uniform(0.70, 1.0) if kind == "near" else rng.uniform(0.50, 0.70)
            lo, hi = (0.70, 1.0) if kind == "near" else (0.50, 0.70)
            for _ in range(8):  # short documents move in big steps: retry until inside the band
                t, j = self.edit_to(parent_text, target)
                if lo <= j < hi:
                    break
            cid = f"{src_id}#{kind}{k}"
            j0 = j if parent_id == src_id else jaccard(src_set, set(shingles(t)))
            out.append({"doc_id": cid, "text": t, "kind": kind, "original": src_id, "parent": parent_id,
                        "jaccard5": round(j, 6), "jaccard5_original": round(j0, 6), "target": round(target, 4)})
            prev_text, prev_id = t, cid
        return out

    # -- the whole corpus ----------------------------------------------------------------------
    def write(self, out: Path, target_bytes: int, file_bytes: int = FILE_BYTES) -> dict:
        rng = self.rng
        (out / "jsonl").mkdir(parents=True)
        truth = open(out / "truth.jsonl", "w")  # noqa: SIM115
        files, f, fbytes, buf = [], None, 0, []
        total = text_bytes = n = n_base = 0
        counts = {"exact": 0, "near": 0, "far": 0}
        pending: list[tuple[int, int, dict]] = []  # (position, tie, record) heap of scheduled copies
        tie = 0
        spread = max(1000, target_bytes // 2000)  # ~ the corpus's document count: copies anywhere later

        def emit(rec: dict) -> None:
            nonlocal f, fbytes, total, text_bytes, n, buf
            if f is None:
                files.append(f"part-{len(files):05d}.jsonl")
                f = open(out / "jsonl" / files[-1], "wb")  # noqa: SIM115
            line = (json.dumps(rec, ensure_ascii=False) + "\n").encode()
            buf.append(line)
            fbytes += len(line)
            total += len(line)
            text_bytes += len(rec["text"].encode())
            n += 1
            if len(buf) >= 2048 or fbytes >= file_bytes:
                f.write(b"".join(buf))
                buf = []
            if fbytes >= file_bytes:
                f.close()
                f, fbytes = None, 0

        while total < target_bytes:
            while pending and pending[0][0] <= n:
                emit(heapq.heappop(pending)[2])
            doc_id = f"g{self.seed}-{n_base:08d}"
            n_base += 1
            text = self.background()
            dom = self.domains[rng.randrange(len(self.domains))]
            emit({"doc_id": doc_id, "text": text, "domain": dom, "source": "bench-dup"})
            if rng.random() < self.source_rate:
                for c in self.cluster(doc_id, text):
                    counts[c["kind"]] += 1
                    truth.write(json.dumps({k: v for k, v in c.items() if k != "text"}) + "\n")
                    tie += 1
                    heapq.heappush(pending, (n + rng.randrange(1, spread), tie,
                                             {"doc_id": c["doc_id"], "text": c["text"], "domain": dom, "source": "bench-dup"}))
        while pending:  # copies scheduled past the end: append them
            emit(heapq.heappop(pending)[2])
        if f is not None:
            f.write(b"".join(buf))
            f.close()
        truth.close()
        return {"docs": n, "background_docs": n_base, "copies": counts, "jsonl_bytes": total,
                "text_bytes": text_bytes, "files": files, "sentences": len(self.sents), "vocabulary": len(self.vocab)}


def ingest(jsonl: Path, parquet: Path, shard_size: str, workers: int, curate: Path = CURATE) -> dict:
    cmd = [str(curate), "ingest", str(jsonl), str(parquet), "--id-field", "doc_id", "--shard-size", shard_size,
           "-j", str(workers), "-q", "--json"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"make_dup_corpus: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    s = json.loads(p.stdout.strip().splitlines()[-1])
    shards = sorted(parquet.glob("part-*.parquet"))
    return {"command": " ".join(cmd), "seconds": round(time.monotonic() - t0, 1), "rows": s["rows_out"],
            "shards": len(shards), "parquet_bytes": sum(x.stat().st_size for x in shards)}


def auto_shard_size(target: int) -> str:
    """256MB of text per shard, but at least 4 shards on small corpora (so -j 2 has work to share)."""
    b = min(256 * 10**6, max(256 * 10**3, target // 5))
    return f"{b // 1000}KB"


def build(size: str, seed: int = 0, shard_size: str | None = None, source_rate: float = 0.08, workers: int = 2,
          data: Path = DATA, force: bool = False, log=print) -> Path:
    if size == "sample":
        return build_sample(data, shard_size or "500KB", workers, force, log)
    target = parse_size(size)
    shard_size = shard_size or auto_shard_size(target)
    cdir = data / f"dup-{size.strip()}-s{seed}"
    docs, digest = load_sample()
    key = {"generator_version": GENERATOR_VERSION, "target_bytes": target, "seed": seed, "source_rate": source_rate,
           "sample": digest, "file_bytes": FILE_BYTES}
    stamp = cdir / "corpus.json"
    meta = json.loads(stamp.read_text()) if stamp.exists() and not force else None
    if meta is not None and meta.get("key") == key and (cdir / "truth.jsonl").exists() and all(
            (cdir / "jsonl" / x).exists() for x in meta["files"]):
        log(f"make_dup_corpus: {cdir.name}: JSON Lines cached ({meta['docs']:,} docs)")
    else:
        tmp = data / f".tmp-{cdir.name}"
        for d in (cdir, tmp):
            if d.exists():
                shutil.rmtree(d)
        t0 = time.monotonic()
        gen = Generator(docs, seed, source_rate)
        counts = gen.write(tmp, target)
        tmp.rename(cdir)
        meta = {"key": key, "size": size, **counts, "generate_seconds": round(time.monotonic() - t0, 1)}
        stamp.write_text(json.dumps(meta, indent=1))
        log(f"make_dup_corpus: wrote {cdir.name}: {counts['jsonl_bytes'] / 1e6:.0f} MB, {counts['docs']:,} docs "
            f"({counts['copies']}) in {meta['generate_seconds']} s")
    parquet = cdir / "parquet"
    if meta.get("parquet", {}).get("shard_size") == shard_size and (parquet / "_SUCCESS").exists():
        log(f"make_dup_corpus: {cdir.name}/parquet cached ({meta['parquet']['shards']} shards)")
    else:
        if parquet.exists():
            shutil.rmtree(parquet)
        meta["parquet"] = {"shard_size": shard_size, **ingest(cdir / "jsonl", parquet, shard_size, workers)}
        stamp.write_text(json.dumps(meta, indent=1))
        log(f"make_dup_corpus: ingested {cdir.name}: {meta['parquet']['shards']} shards ({meta['parquet']['seconds']} s)")
    return cdir


def build_sample(data: Path, shard_size: str, workers: int, force: bool, log) -> Path:
    """data/sample as a benchmark corpus: the same layout, its own truth.jsonl."""
    cdir = data / "dup-sample"
    parquet = cdir / "parquet"
    _, digest = load_sample()
    stamp = cdir / "corpus.json"
    meta = json.loads(stamp.read_text()) if stamp.exists() and not force else {}
    if meta.get("sample") == digest and meta.get("parquet", {}).get("shard_size") == shard_size and (parquet / "_SUCCESS").exists():
        log("make_dup_corpus: dup-sample cached")
        return cdir
    if cdir.exists():
        shutil.rmtree(cdir)
    cdir.mkdir(parents=True)
    shutil.copy(SAMPLE / "truth.jsonl", cdir / "truth.jsonl")
    meta = {"size": "sample", "sample": digest, "parquet": {"shard_size": shard_size, **ingest(SAMPLE / "raw", parquet, shard_size, workers)}}
    meta["docs"] = meta["parquet"]["rows"]
    stamp.write_text(json.dumps(meta, indent=1))
    log(f"make_dup_corpus: ingested data/sample into {cdir.name}: {meta['parquet']['shards']} shards")
    return cdir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", help="Total JSON Lines bytes (100MB, 1GB); 'sample' for data/sample itself.")
    ap.add_argument("--sample", action="store_true", help="Same as --size sample.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shard-size", default=None, help="curate ingest --shard-size [256MB, or size/5 when smaller]")
    ap.add_argument("--source-rate", type=float, default=0.08, help="Fraction of background documents that get copies.")
    ap.add_argument("-j", "--workers", type=int, default=2)
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    size = "sample" if a.sample else a.size
    if not size:
        ap.error("give --size or --sample")
    DATA.mkdir(parents=True, exist_ok=True)
    print(build(size, a.seed, a.shard_size, a.source_rate, a.workers, force=a.force, log=lambda m: print(m, file=sys.stderr)))


if __name__ == "__main__":
    main()
