#!/usr/bin/env python3
"""The floors for `curate dedup exact`, each as its own process like the contenders:
- read the text column of every shard and nothing else (pq.read_table(f, columns=['text']));
- with --copy OUT: read every column and write each shard again as curate writes its output
  (zstd-3 unless --codec, the text column without dictionary), the I/O any stage that rewrites the data pays.

    read_text.py DATASET [--threads 1] [--copy OUT [--codec zstd:3]]   # 1: single-threaded (one core), as one curate worker
"""

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument("dataset", type=Path)
ap.add_argument("--threads", type=int, default=0, help="1: no thread pool; 0: pyarrow's default [0]")
ap.add_argument("--copy", type=Path, default=None, help="also write every shard (all columns) here")
ap.add_argument("--codec", default="zstd:3", help="the copy's codec, as curate's --compression [zstd:3]")
a = ap.parse_args()
if a.threads == 1:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
t0 = time.perf_counter()
rows = nbytes = 0
for f in sorted(a.dataset.glob("part-*.parquet")):
    t = pq.read_table(f, columns=None if a.copy else ["text"], use_threads=a.threads != 1)
    if a.copy:
        a.copy.mkdir(parents=True, exist_ok=True)
        codec, _, level = a.codec.partition(":")
        pq.write_table(t, a.copy / f.name, compression=codec, compression_level=int(level) if level else None, row_group_size=1 << 20,
                       use_dictionary=[c for c in t.column_names if c not in ("text", "id")],
                       write_statistics=[c for c in t.column_names if c != "text"])
    rows += t.num_rows
    nbytes += sum(b.size for c in t.column("text").chunks for b in c.buffers() if b is not None)
    del t
print(f'{{"rows": {rows}, "bytes": {nbytes}, "loop_s": {time.perf_counter() - t0:.4f}}}')
sys.exit(0)
