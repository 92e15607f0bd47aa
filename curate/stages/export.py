"""curate export: a dataset -> JSON Lines (plain, .gz, .zst) or Parquet, optionally re-sharded.

Re-sharding is planned from the Parquet footers (row counts and sizes), so output shard k always
holds the same rows whatever the worker count; each task reads only the row groups it needs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pyarrow as pa

from curate.errors import UsageError
from curate.io.atomic import commit, needs_rename, tmp_sibling
from curate.io.dataset import Dataset, check_same_schema, open_stdin_stream, stream_manifest
from curate.io.jsonl import encode_jsonl
from curate.io.location import Location
from curate.io.parquet import iter_batches, open_parquet, read_schema
from curate.run.executor import Stage, Task, TaskContext
from curate.stages.base import DatasetInput

FORMATS = ("jsonl", "jsonl.gz", "jsonl.zst", "parquet")
_CODEC = {"jsonl": None, "jsonl.gz": "gzip", "jsonl.zst": "zstd"}


@dataclass(frozen=True)
class ExportParams:
    format: str = "jsonl.zst"
    shard_rows: int | None = None
    shard_bytes: int | None = None
    columns: tuple[str, ...] | None = None


class Export(DatasetInput, Stage):
    name = "export"

    def __init__(self, dataset: Dataset, params: ExportParams):
        if params.format not in FORMATS:
            raise UsageError(f"unknown format {params.format!r}", hint=f"choose one of {', '.join(FORMATS)}")
        self.dataset = dataset
        self.params = params
        self._stdin_manifest = None

    def plan(self) -> list[Task]:
        ext = self.params.format
        if self.dataset.stdin:
            return [Task(f"part-00000.{ext}", None)]
        shards = self.dataset.shards
        self._check_schemas()
        if not (self.params.shard_rows or self.params.shard_bytes):
            return [Task(_stem(s.name) + f".{ext}", ((i, 0, None),), s.size) for i, s in enumerate(shards)]
        counts, nbytes = [], 0
        for s in shards:
            md = open_parquet(s.loc).metadata
            counts.append(md.num_rows)
            nbytes += sum(md.row_group(g).total_byte_size for g in range(md.num_row_groups))
        total = sum(counts)
        per = self.params.shard_rows or max(1, int(self.params.shard_bytes * total / max(nbytes, 1)))
        tasks, seg, have, k = [], [], 0, 0
        for i, n in enumerate(counts):
            start = 0
            while start < n:
                take = min(n - start, per - have)
                seg.append((i, start, start + take))
                have += take
                start += take
                if have == per:
                    tasks.append(Task(f"part-{k:05d}.{ext}", tuple(seg), 0))
                    seg, have, k = [], 0, k + 1
        if seg or not tasks:
            tasks.append(Task(f"part-{k:05d}.{ext}", tuple(seg), 0))
        avg = sum(s.size for s in shards) / max(total, 1)
        return [Task(t.name, t.spec, int(avg * sum(b - a for _, a, b in t.spec))) for t in tasks]

    def _check_schemas(self) -> None:
        """Shards that disagree would give JSON Lines whose fields change type midway (and a Parquet
        writer error in a worker): name the first odd shard and column before any task runs."""
        shards, cols = self.dataset.shards, self.params.columns
        ref = None
        for s in shards:
            schema = read_schema(s.loc)
            if cols:
                schema = pa.schema([schema.field(c) for c in cols if c in schema.names])
            if ref is None:
                ref = schema
            else:
                check_same_schema(ref, shards[0].loc.uri, schema, s.loc.uri)

    def _batches(self, spec):
        cols = list(self.params.columns) if self.params.columns else None
        if spec is None:
            reader = open_stdin_stream()
            self._stdin_manifest = stream_manifest(reader.schema)
            for b in reader:
                yield b.select(cols) if cols else b
            return
        for i, start, stop in spec:
            shard = self.dataset.shards[i]
            pf = open_parquet(shard.loc)
            md = pf.metadata
            groups, first_row, pos = [], None, 0
            for g in range(md.num_row_groups):
                n = md.row_group(g).num_rows
                if stop is None or (pos < stop and pos + n > start):
                    groups.append(g)
                    first_row = pos if first_row is None else first_row
                pos += n
            pos = first_row or 0
            for b in iter_batches(shard.loc, columns=cols, pf=pf, row_groups=groups):
                lo, hi = max(start - pos, 0), b.num_rows if stop is None else min(stop - pos, b.num_rows)
                pos += b.num_rows
                if hi > lo:
                    yield b.slice(lo, hi - lo)

    def _open(self, ctx: TaskContext, name: str, schema: pa.Schema):
        if ctx.stream is not None or self.params.format == "parquet":
            return ctx.open_output(name, schema)
        return JsonlWriter(ctx.out.child(name), _CODEC[self.params.format])

    def run_task(self, task: Task, ctx: TaskContext) -> None:
        res = ctx.result
        writer = None
        try:
            for b in self._batches(task.spec):
                if writer is None:
                    writer = self._open(ctx, task.name, b.schema)
                writer.write(b)
                res.rows_in += b.num_rows
                res.rows_out += b.num_rows
                res.bytes_in += b.nbytes
                ctx.progress(b.num_rows, b.nbytes)
            if writer is None:  # no rows: still publish an empty shard
                schema = pa.schema([]) if self.dataset.stdin else open_parquet(self.dataset.shards[0].loc).schema_arrow
                if self.params.columns and not self.dataset.stdin:
                    schema = pa.schema([schema.field(c) for c in self.params.columns])
                writer = self._open(ctx, task.name, schema)
            res.bytes_out += writer.close()
            if ctx.stream is None:
                res.outputs.append(task.name)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise

    def stdout_stream(self, lineage_head: dict):
        if self.params.format == "parquet":
            raise UsageError("Parquet cannot be streamed to stdout", hint="use --format jsonl with '-', or give an output directory")
        if self.params.format != "jsonl":
            raise UsageError(f"--format {self.params.format} to stdout: pipe plain jsonl into a compressor instead",
                             hint="curate export DATASET - --format jsonl | zstd > out.jsonl.zst")
        return JsonlStdout()


def _stem(name: str) -> str:
    base = name.replace("/", "__")
    return base[: -len(".parquet")] if base.endswith(".parquet") else base


class JsonlWriter:
    """One JSON Lines file, optionally compressed, published atomically."""

    def __init__(self, loc: Location, codec: str | None):
        self.loc = loc
        self.target = tmp_sibling(loc) if needs_rename(loc) else loc
        self._raw = loc.fs.open_output_stream(self.target.path)
        self._out = pa.CompressedOutputStream(self._raw, codec) if codec else self._raw

    def write(self, batch: pa.RecordBatch) -> None:
        self._out.write(encode_jsonl(batch))

    def close(self) -> int:
        self._out.close()
        if self._out is not self._raw and not self._raw.closed:
            self._raw.close()
        if self.target is not self.loc:
            commit(self.target, self.loc)
        return self.loc.fs.get_file_info(self.loc.path).size

    def abort(self) -> None:
        try:
            self._out.close()
        except Exception:
            pass
        try:
            self.loc.fs.delete_file(self.target.path)
        except Exception:
            pass


class JsonlStdout:
    """The '-' output of export: JSON Lines on stdout."""

    def ensure_schema(self, schema: pa.Schema) -> None:
        pass

    def write(self, batch: pa.RecordBatch) -> None:
        sys.stdout.buffer.write(encode_jsonl(batch))

    def close(self) -> None:
        sys.stdout.buffer.flush()
