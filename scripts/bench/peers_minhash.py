#!/usr/bin/env python3
"""The MinHash dedup pipelines curate is measured against (run in scripts/bench/.venv-peers).

Each reads a curate dataset (Parquet shards with `id` and `text`), finds near duplicates at
Jaccard 0.8 with 128 permutations, and writes the kept rows as Parquet, like `curate dedup
minhash` does; bench_dedup.py times each as its own process.

  datasketch  curate's shingles (dedup_shingles.py: simple normalisation, word 5-grams) ->
              MinHash.generator(num_perm=128) -> MinHashLSH(threshold=0.8, num_perm=128), whose
              own banding is 9 bands x 13 rows; every document queries the index, then is
              inserted; each candidate pair joins two clusters (union-find); per cluster the
              first document is kept. OUT/part-NNNNN.parquet (kept rows), OUT/removed.parquet (ids).
  rensa       the same shingles -> RMinHash.from_token_sets(num_perm=128, seed=42) per batch ->
              RMinHashLSH(threshold=0.8, num_perm=128, num_bands=8: rensa's own default for
              0.8); then rensa's README dedup loop: each document not yet removed removes every
              LSH candidate whose estimated Jaccard (its sketch) is >= 0.8. Single-threaded
              (RAYON_NUM_THREADS=1 unless set). Outputs as datasketch.
  datatrove   datatrove's own 4-stage pipeline, its own text normalisation and word tokenizer
              (--tokenizer spacy: its default for English, a blank spaCy 'en'; --tokenizer split:
              str.split, ~10x faster) and hashing (xxhash64), 5-grams, 14 buckets x 8
              hashes = 112 permutations (its default MinhashConfig) unless --buckets/--rows:
              ParquetReader -> MinhashDedupSignature; MinhashDedupBuckets (14 tasks);
              MinhashDedupCluster; ParquetReader -> MinhashDedupFilter -> ParquetWriter, on a
              LocalPipelineExecutor with --tasks tasks and as many workers. OUT/output/*.parquet.

    peers_minhash.py datasketch DATASET OUT
    peers_minhash.py rensa DATASET OUT
    peers_minhash.py datatrove DATASET OUT --tasks 2
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

THRESHOLD = 0.8
NUM_PERM = 128


def shard_files(dataset: Path) -> list[Path]:
    return sorted(dataset.glob("part-*.parquet"))


def iter_docs(dataset: Path, batch_size: int = 4096):
    """(first document number, ids, texts) per batch, over all shards in order."""
    import pyarrow.parquet as pq

    n = 0
    for f in shard_files(dataset):
        for b in pq.ParquetFile(f).iter_batches(columns=["id", "text"], batch_size=batch_size, use_threads=False):
            texts = b.column("text").to_pylist()
            yield n, texts
            n += len(texts)


def write_kept(dataset: Path, out: Path, removed: set[int]) -> int:
    """Re-read each shard, drop the removed documents, write it (zstd) and the removed ids."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    rem = np.fromiter(sorted(removed), np.int64, len(removed))
    start, removed_ids = 0, []
    for i, f in enumerate(shard_files(dataset)):
        t = pq.read_table(f, use_threads=False)
        n = t.num_rows
        mine = rem[(rem >= start) & (rem < start + n)] - start
        mask = np.ones(n, bool)
        mask[mine] = False
        removed_ids.append(t.column("id").take(pa.array(mine)))
        pq.write_table(t.filter(pa.array(mask)), out / f"part-{i:05d}.parquet", compression="zstd")
        start += n
    ids = pa.chunked_array([c for x in removed_ids for c in x.chunks], pa.string()) if removed_ids else pa.chunked_array([], pa.string())
    pq.write_table(pa.table({"id": ids}), out / "removed.parquet")
    return len(rem)


class UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        p = self.parent
        root = x
        while p.get(root, root) != root:
            root = p[root]
        while p.get(x, x) != root:  # path compression
            p[x], x = root, p[x]
        return root

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:  # the smaller document number is the root: it is the one kept
            if rx < ry:
                self.parent[ry] = rx
            else:
                self.parent[rx] = ry

    def removed(self) -> set[int]:
        return {x for x in self.parent if self.find(x) != x}


def run_datasketch(dataset: Path, out: Path) -> dict:
    from datasketch import MinHash, MinHashLSH
    from dedup_shingles import shingles

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    uf = UnionFind()
    docs = candidates = empty = 0
    for start, texts in iter_docs(dataset):
        sets = [[s.encode() for s in set(shingles(t))] for t in texts]
        for k, (sh, m) in enumerate(zip(sets, MinHash.generator(sets, num_perm=NUM_PERM), strict=True)):
            if not sh:  # no word: nobody's duplicate (as in curate)
                empty += 1
                continue
            key = start + k
            for other in lsh.query(m):
                uf.union(key, other)
                candidates += 1
            lsh.insert(key, m)
        docs += len(texts)
    removed = uf.removed()
    write_kept(dataset, out, removed)
    return {"docs": docs, "removed": len(removed), "candidate_pairs": candidates, "bands": lsh.b, "rows": lsh.r, "empty": empty}


def run_rensa(dataset: Path, out: Path, bands: int = 8) -> dict:
    from dedup_shingles import shingles
    from rensa import RMinHash, RMinHashLSH

    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=bands)
    minhashes: list = []
    live: list[bool] = []
    for _start, texts in iter_docs(dataset):
        sets = [shingles(t) for t in texts]
        ms = RMinHash.from_token_sets(sets, num_perm=NUM_PERM, seed=42)
        for s, m in zip(sets, ms, strict=True):
            key = len(minhashes)
            minhashes.append(m)
            live.append(bool(s))
            if s:  # no word: nobody's duplicate (as in curate)
                lsh.insert(key, m)
    # rensa's README dedup loop: keep a document, remove its candidates that pass the sketch check
    removed: set[int] = set()
    candidates = 0
    for key, m in enumerate(minhashes):
        if key in removed or not live[key]:
            continue
        for c in lsh.query(m):
            if c != key and c not in removed:
                candidates += 1
                if m.jaccard(minhashes[c]) >= THRESHOLD:
                    removed.add(max(key, c))
    write_kept(dataset, out, removed)
    return {"docs": len(minhashes), "removed": len(removed), "candidate_pairs": candidates, "bands": bands, "rows": NUM_PERM // bands}


def _split_tokenizer():
    """A whitespace word tokenizer for datatrove (str.split): ~10x faster than its default for
    English (a spaCy 'en' tokenizer run inside a memory zone, i.e. with a cold cache per document)."""
    from datatrove.utils.word_tokenizers import WordTokenizer

    class SplitTokenizer(WordTokenizer):
        def word_tokenize(self, text: str) -> list[str]:
            return text.split()

        def sent_tokenize(self, text: str) -> list[str]:
            return [text]

        def span_tokenize(self, text: str) -> list[tuple[int, int]]:
            return [(0, len(text))]

    return SplitTokenizer()


def run_datatrove(dataset: Path, out: Path, tasks: int, buckets: int = 14, rows: int = 8, tokenizer: str = "spacy") -> dict:
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import ParquetReader
    from datatrove.pipeline.writers import ParquetWriter
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.typeshelper import Languages

    cfg = MinhashConfig(n_grams=5, num_buckets=buckets, hashes_per_bucket=rows, hash_config=HashConfig(precision=64))
    logs = out / "logs"

    def reader():
        return ParquetReader(str(dataset), glob_pattern="part-*.parquet", text_key="text", id_key="id")

    common = {"workers": tasks, "skip_completed": False}
    s1 = LocalPipelineExecutor(pipeline=[reader(), MinhashDedupSignature(output_folder=str(out / "signatures"), config=cfg,
                                                                         language=Languages.english if tokenizer == "spacy" else _split_tokenizer())],
                               tasks=tasks, logging_dir=str(logs / "s1"), **common)
    s2 = LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(input_folder=str(out / "signatures"), output_folder=str(out / "buckets"),
                                                             config=cfg)],
                               tasks=cfg.num_buckets, logging_dir=str(logs / "s2"), depends=s1, **common)
    s3 = LocalPipelineExecutor(pipeline=[MinhashDedupCluster(input_folder=str(out / "buckets"), output_folder=str(out / "remove_ids"),
                                                             config=cfg)],
                               tasks=1, logging_dir=str(logs / "s3"), depends=s2, skip_completed=False)
    s4 = LocalPipelineExecutor(pipeline=[reader(), MinhashDedupFilter(input_folder=str(out / "remove_ids")),
                                         ParquetWriter(str(out / "output"))],
                               tasks=tasks, logging_dir=str(logs / "s4"), depends=s3, **common)
    s4.run()
    return {"tasks": tasks, "bands": buckets, "rows": rows, "tokenizer": tokenizer}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("peer", choices=["datasketch", "rensa", "datatrove"])
    ap.add_argument("dataset", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tasks", type=int, default=1, help="datatrove: tasks (and workers) of the per-shard stages")
    ap.add_argument("--buckets", type=int, default=None, help="datatrove: buckets [14]; rensa: bands [8]")
    ap.add_argument("--rows", type=int, default=None, help="datatrove: hashes per bucket [8]")
    ap.add_argument("--tokenizer", choices=["spacy", "split"], default="spacy",
                    help="datatrove: its default English word tokenizer (spaCy) or str.split [spacy]")
    a = ap.parse_args()
    os.environ.setdefault("RAYON_NUM_THREADS", "1")
    t0 = time.monotonic()
    if a.peer == "datasketch":
        r = run_datasketch(a.dataset, a.out)
    elif a.peer == "rensa":
        r = run_rensa(a.dataset, a.out, a.buckets or 8)
    else:
        r = run_datatrove(a.dataset, a.out, a.tasks, a.buckets or 14, a.rows or 8, a.tokenizer)
    import json

    print(json.dumps({"peer": a.peer, "seconds": round(time.monotonic() - t0, 3), **r}))


if __name__ == "__main__":
    main()
