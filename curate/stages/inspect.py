"""What `curate head` and `curate info` show: first rows, schema, sizes, the manifest chain."""

from __future__ import annotations

import pyarrow as pa

from curate.io.dataset import Dataset, open_stdin_stream, stream_manifest
from curate.io.manifest import digest
from curate.io.parquet import iter_batches, open_parquet


def head(ds: Dataset, n: int, columns: list[str] | None = None) -> pa.Table:
    """The first n rows, reading no more row groups than needed."""
    batches, have = [], 0
    if ds.stdin:
        source = iter(open_stdin_stream())
        sources = [source]
    else:
        sources = (iter_batches(s.loc, columns=columns, batch_rows=max(n, 1)) for s in ds.shards)
    schema = None
    for it in sources:
        for b in it:
            if columns and ds.stdin:
                b = b.select(columns)
            schema = b.schema
            batches.append(b.slice(0, n - have))
            have += batches[-1].num_rows
            if have >= n:
                return pa.Table.from_batches(batches)
    if schema is None:
        if ds.stdin or not ds.shards:
            return pa.table({})
        schema = open_parquet(ds.shards[0].loc).schema_arrow
        if columns:
            schema = pa.schema([schema.field(c) for c in columns])
        return schema.empty_table()
    return pa.Table.from_batches(batches, schema)


def info(ds: Dataset) -> dict:
    """Schema, rows, bytes and shards from the footers (no data read), plus the manifest chain."""
    shards, rows, nbytes, schema = [], 0, 0, None
    for s in ds.shards:
        md = open_parquet(s.loc).metadata
        shards.append({"name": s.name, "rows": md.num_rows, "bytes": s.size, "row_groups": md.num_row_groups})
        rows += md.num_rows
        nbytes += s.size
        if schema is None:
            schema = md.schema.to_arrow_schema()
    m = ds.manifest
    chain = []
    if m is not None:
        for a in list(m.get("lineage", [])) + [{**m, "digest": digest(m)}]:
            t = a.get("totals") or {}
            chain.append({
                "stage": a.get("stage"), "curate_version": a.get("curate_version"), "output": a.get("output"),
                "rows_in": t.get("rows_in"), "rows_out": t.get("rows_out"), "rows_rejected": t.get("rows_rejected"),
                "counters": a.get("counters") or {}, "params": a.get("params") or {}, "seed": a.get("seed"),
                "finished": a.get("finished"), "digest": a.get("digest"),
            })
    return {
        "dataset": ds.uri,
        "complete": m is not None,
        "shards": len(shards),
        "rows": rows,
        "bytes": nbytes,
        "schema": [{"name": f.name, "type": str(f.type)} for f in (schema or [])],
        "shard_list": shards,
        "lineage": chain,
    }


def stdin_info() -> dict:
    reader = open_stdin_stream()
    rows = nbytes = 0
    for b in reader:
        rows += b.num_rows
        nbytes += b.nbytes
    m = stream_manifest(reader.schema)
    return {"dataset": "-", "complete": True, "shards": 1, "rows": rows, "bytes": nbytes,
            "schema": [{"name": f.name, "type": str(f.type)} for f in reader.schema], "shard_list": [],
            "lineage": [{"stage": a.get("stage"), "params": a.get("params")} for a in ((m or {}).get("lineage", []) + ([m] if m else []))]}
