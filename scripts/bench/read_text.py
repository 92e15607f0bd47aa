#!/usr/bin/env python3
"""The floor for `curate dedup exact`: read the text column of every shard of a dataset and
nothing else (pq.read_table(f, columns=['text'])), as its own process like the contenders.

    read_text.py DATASET [--threads 1]    # 1: pyarrow single-threaded (one core), as one curate worker
"""

import argparse
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ap = argparse.ArgumentParser()
ap.add_argument("dataset", type=Path)
ap.add_argument("--threads", type=int, default=0, help="1: no thread pool; 0: pyarrow's default [0]")
a = ap.parse_args()
if a.threads == 1:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
rows = nbytes = 0
for f in sorted(a.dataset.glob("part-*.parquet")):
    t = pq.read_table(f, columns=["text"], use_threads=a.threads != 1)
    rows += t.num_rows
    nbytes += sum(b.size for c in t.column("text").chunks for b in c.buffers() if b is not None)
    del t
print(f'{{"rows": {rows}, "bytes": {nbytes}}}')
sys.exit(0)
