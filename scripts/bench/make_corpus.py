#!/usr/bin/env python3
"""Build a synthetic-but-realistic JSON Lines corpus of a target size for the I/O benchmarks.

The documents are the sample corpus's (data/sample/raw: real CPython docstrings and help
topics), repeated with deterministic variation so that no two are byte-identical: each copy
has its sentences in a seeded shuffled order and ends with a numbered suffix, and its doc_id
gets a '#N' copy number. Output, under scripts/bench/data/ (git-ignored)::

    corpus-<SIZE>-s<SEED>/jsonl/part-NNNNN.jsonl   uncompressed, ~64 MiB each
    corpus-<SIZE>-s<SEED>/parquet/                 the same corpus after `curate ingest`
    corpus-<SIZE>-s<SEED>/corpus.json              parameters and counts (the cache stamp)

Cached: when corpus.json says the same size, seed, file size and generator version, and the
files are all there, nothing is rebuilt.

    python scripts/bench/make_corpus.py --size 200MB
    python scripts/bench/make_corpus.py --size 2GB --seed 0
    python scripts/bench/make_corpus.py --size 200MB --print-dir   # just the directory
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

GENERATOR_VERSION = 1
ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "scripts" / "bench" / "data"
SAMPLE = ROOT / "data" / "sample" / "raw"
CURATE = ROOT / ".venv" / "bin" / "curate"
FILE_BYTES = 64 << 20

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_SENTENCE = re.compile(r"(?<=[.!?:])\s+")


def parse_size(s: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", s)
    if not m or m.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{s!r}: expected a size such as 200MB, 2GB, 512MiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def corpus_dir(size: str, seed: int, data: Path = DATA) -> Path:
    return data / f"corpus-{size.strip().replace(' ', '')}-s{seed}"


def load_sample(raw: Path = SAMPLE) -> tuple[list[dict], str]:
    files = sorted(p for p in raw.iterdir() if p.name.endswith((".jsonl", ".jsonl.gz")))
    if not files:
        sys.exit(f"make_corpus: no sample corpus in {raw}; run `make sample` first")
    docs, h = [], hashlib.sha256()
    for p in files:
        opener = gzip.open if p.name.endswith(".gz") else open
        with opener(p, "rb") as f:
            data = f.read()
        h.update(p.name.encode() + b"\0" + data)
        docs.extend(json.loads(line) for line in data.splitlines() if line.strip())
    return docs, h.hexdigest()[:16]


def _variant(doc: dict, n: int, rng: random.Random) -> dict:
    sentences = _SENTENCE.split(doc["text"].strip())
    if len(sentences) > 1:
        rng.shuffle(sentences)
    text = " ".join(sentences) + f"\n\n[bench copy {n}]"
    return {"doc_id": f"{doc['doc_id']}#{n}", "text": text, "domain": doc["domain"], "source": doc["source"]}


def generate(out: Path, target: int, seed: int, docs: list[dict], file_bytes: int = FILE_BYTES) -> dict:
    """Write JSON Lines files of ~file_bytes until target bytes; returns counts."""
    out.mkdir(parents=True)
    rng = random.Random(seed)
    order = list(range(len(docs)))
    total = text_bytes = n = 0
    files = []
    fidx, fbytes, buf, f = 0, 0, [], None
    while total < target:
        rng.shuffle(order)  # a new seeded document order on each pass over the sample
        for i in order:
            if f is None:
                files.append(f"part-{fidx:05d}.jsonl")
                f = open(out / files[-1], "wb")  # noqa: SIM115
            rec = _variant(docs[i], n, rng)
            line = (json.dumps(rec, ensure_ascii=False) + "\n").encode()
            text_bytes += len(rec["text"].encode())
            buf.append(line)
            fbytes += len(line)
            total += len(line)
            n += 1
            if len(buf) >= 4096:
                f.write(b"".join(buf))
                buf = []
            if fbytes >= file_bytes or total >= target:
                f.write(b"".join(buf))
                f.close()
                f, buf, fbytes, fidx = None, [], 0, fidx + 1
            if total >= target:
                break
    return {"docs": n, "jsonl_bytes": total, "text_bytes": text_bytes, "files": files}


def ingest(jsonl: Path, parquet: Path, curate: Path, workers: int) -> dict:
    cmd = [str(curate), "ingest", str(jsonl), str(parquet), "-j", str(workers), "-q", "--json"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"make_corpus: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    summary = json.loads(p.stdout.strip().splitlines()[-1])
    seconds = round(time.monotonic() - t0, 2)
    import pyarrow.parquet as pq

    shards = sorted(x.name for x in parquet.glob("part-*.parquet"))
    shape = []
    for s in shards:
        md = pq.ParquetFile(parquet / s).metadata
        shape.append({"name": s, "rows": md.num_rows, "row_groups": md.num_row_groups,
                      "max_row_group_bytes": max(md.row_group(g).total_byte_size for g in range(md.num_row_groups))})
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    return {"command": " ".join(cmd), "curate_git": rev, "seconds": seconds, "rows": summary["rows_out"],
            "shards": len(shards), "parquet_bytes": sum((parquet / s).stat().st_size for s in shards), "shard_list": shape}


def build(size: str, seed: int, data: Path = DATA, curate: Path = CURATE, workers: int = 2,
          file_bytes: int = FILE_BYTES, force: bool = False, log=print) -> Path:
    """Make (or reuse) the corpus and its Parquet version; returns its directory."""
    target = parse_size(size)
    cdir = corpus_dir(size, seed, data)
    stamp = cdir / "corpus.json"
    docs, sample_digest = load_sample()
    key = {"generator_version": GENERATOR_VERSION, "target_bytes": target, "seed": seed,
           "file_bytes": file_bytes, "sample": sample_digest}
    meta = json.loads(stamp.read_text()) if stamp.exists() and not force else None
    jsonl, parquet = cdir / "jsonl", cdir / "parquet"
    have_jsonl = meta is not None and meta.get("key") == key and all(
        (jsonl / f).exists() for f in meta["files"]) and sum((jsonl / f).stat().st_size for f in meta["files"]) == meta["jsonl_bytes"]
    if have_jsonl:
        log(f"make_corpus: {cdir.relative_to(ROOT)}: JSON Lines cached ({meta['jsonl_bytes'] / 1e6:.0f} MB, {len(meta['files'])} files)")
    else:
        if cdir.exists():
            shutil.rmtree(cdir)
        tmp = data / f".tmp-{cdir.name}"
        if tmp.exists():
            shutil.rmtree(tmp)
        t0 = time.monotonic()
        counts = generate(tmp / "jsonl", target, seed, docs, file_bytes)
        tmp.rename(cdir)
        meta = {"key": key, "size": size, **counts, "generate_seconds": round(time.monotonic() - t0, 1)}
        stamp.write_text(json.dumps(meta, indent=1))
        log(f"make_corpus: wrote {counts['jsonl_bytes'] / 1e6:.0f} MB in {len(counts['files'])} files, "
            f"{counts['docs']:,} docs ({meta['generate_seconds']} s)")
    if meta.get("parquet") and (parquet / "_SUCCESS").exists():
        log(f"make_corpus: {parquet.relative_to(ROOT)}: Parquet cached ({meta['parquet']['shards']} shards)")
    else:
        if parquet.exists():
            shutil.rmtree(parquet)
        meta["parquet"] = ingest(jsonl, parquet, curate, workers)
        stamp.write_text(json.dumps(meta, indent=1))
        log(f"make_corpus: ingested to {parquet.relative_to(ROOT)}: {meta['parquet']['shards']} shards, "
            f"{meta['parquet']['parquet_bytes'] / 1e6:.0f} MB ({meta['parquet']['seconds']} s)")
    return cdir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", required=True, help="Total JSON Lines bytes: 200MB, 2GB, 512MiB ...")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=DATA, help="Where corpora live [scripts/bench/data].")
    ap.add_argument("--curate", type=Path, default=CURATE, help="The curate executable used for the Parquet version.")
    ap.add_argument("-j", "--workers", type=int, default=2, help="Workers for the `curate ingest` that makes the Parquet version.")
    ap.add_argument("--force", action="store_true", help="Rebuild even if cached.")
    ap.add_argument("--print-dir", action="store_true", help="Only print the corpus directory.")
    a = ap.parse_args()
    parse_size(a.size)
    if a.print_dir:
        print(corpus_dir(a.size, a.seed, a.data))
        return
    os.makedirs(a.data, exist_ok=True)
    print(build(a.size, a.seed, a.data, a.curate, a.workers, force=a.force, log=lambda m: print(m, file=sys.stderr)))


if __name__ == "__main__":
    main()
