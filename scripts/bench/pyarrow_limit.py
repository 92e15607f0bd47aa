#!/usr/bin/env python3
"""The plain-pyarrow limits that bench_io.py compares curate with, run as their own process so
that interpreter start-up and imports are counted the same way as for the `curate` command.

    pyarrow_limit.py ingest OUT FILE.jsonl ...      pj.read_json + pq.write_table(zstd), per file
    pyarrow_limit.py export OUT FILE.parquet ...    pq.read_table + pq.write_table(zstd), per file

One worker is one single-threaded process (pa.set_cpu_count(1), use_threads=False), as a curate
worker is; --procs N runs N such processes over the files. --curate-settings writes with
curate's own writer settings (zstd level 3, no dictionary on text/id, one row group per
~64 MB) instead of pyarrow's defaults (zstd level 1, dictionary on every column).
"""

from __future__ import annotations

import argparse
import os
import sys

import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

CURATE_LIKE = False


def _setup() -> None:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)


def _write(table: pa.Table, path: str) -> None:
    if CURATE_LIKE:
        rows_per_group = max(1, int(table.num_rows * (64 << 20) / max(table.nbytes, 1)))
        pq.write_table(table, path, compression="zstd", compression_level=3, row_group_size=rows_per_group,
                       use_dictionary=[n for n in table.column_names if n not in ("text", "id", "doc_id")],
                       write_statistics=[n for n in table.column_names if n != "text"])
    else:
        pq.write_table(table, path, compression="zstd")


def one(job: tuple[str, str, str]) -> int:
    mode, src, out = job
    name = os.path.basename(src).split(".")[0] + ".parquet"
    if mode == "ingest":
        table = pj.read_json(src, read_options=pj.ReadOptions(use_threads=False))
    else:
        table = pq.read_table(src, use_threads=False)
    _write(table, os.path.join(out, name))
    return table.num_rows


def main() -> None:
    global CURATE_LIKE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["ingest", "export"])
    ap.add_argument("out")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--curate-settings", action="store_true")
    a = ap.parse_args()
    CURATE_LIKE = a.curate_settings
    os.makedirs(a.out, exist_ok=True)
    jobs = [(a.mode, f, a.out) for f in a.files]
    if a.procs <= 1:
        _setup()
        rows = sum(one(j) for j in jobs)
    else:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(a.procs, initializer=_setup) as pool:
            rows = sum(pool.imap_unordered(one, jobs, chunksize=1))
    print(rows, file=sys.stderr)


if __name__ == "__main__":
    main()
