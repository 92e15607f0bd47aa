"""The map stage: each input shard becomes the output shard of the same name, batch by batch."""

from __future__ import annotations

import pyarrow as pa

from curate.io.dataset import (
    Dataset,
    check_same_schema,
    check_text_column,
    open_stdin_stream,
    reference_schema,
    shard_output_name,
    stream_manifest,
)
from curate.io.location import is_glob, locate
from curate.io.manifest import digest
from curate.io.parquet import iter_batches, open_parquet
from curate.run.executor import Stage, Task, TaskContext

REJECT_REASON = "reject_reason"


def put_column(batch, name: str, values):
    """Set a column, replacing one of the same name: rejects of rejects stay well-formed."""
    i = batch.schema.get_field_index(name)
    return batch.set_column(i, name, values) if i >= 0 else batch.append_column(name, values)


def mark_rejected(batch, reason: str, **extra):
    """Rejected rows: the row as it came, plus reject_reason and stage-specific columns."""
    out = put_column(batch, REJECT_REASON, pa.array([reason] * batch.num_rows, pa.string()))
    for name, values in extra.items():
        out = put_column(out, name, values)
    return out
STDIN_SHARD = "part-00000.parquet"


class DatasetInput:
    """Identity and lineage of a stage whose input is a Dataset (or '-')."""

    dataset: Dataset
    _stdin_manifest: dict | None = None

    def input_manifest(self) -> dict | None:
        return self.dataset.manifest if not self.dataset.stdin else self._stdin_manifest

    def input_identity(self) -> str | None:
        if self.dataset.manifest is not None:
            return digest(self.dataset.manifest)
        if self.dataset.stdin:
            return "stdin"
        return digest({"files": [[s.name, s.size] for s in self.dataset.shards]})

    def input_uri(self) -> str:
        return self.dataset.uri


class MapStage(DatasetInput, Stage):
    """Subclasses implement transform(batch) -> (kept, rejected or None) and may add counters.

    `rejected` rows carry a `reject_reason` column; kept + rejected must equal the batch's rows.
    A map stage never drops a column it did not create.
    """

    needs_text = True

    def __init__(self, dataset: Dataset, params):
        self.dataset = dataset
        self.params = params
        self._schema: pa.Schema | None = None
        self._stream_schema: pa.Schema | None = None  # of a '-' input, once read
        self._stdin_manifest: dict | None = None

    # -- planning -------------------------------------------------------------------------
    def plan(self) -> list[Task]:
        if self.dataset.stdin:
            return [Task(STDIN_SHARD, None, 0)]
        self._schema = reference_schema(self.dataset)
        if self.needs_text:
            check_text_column(self._schema, self.dataset.shards[0].loc.uri)
        return [Task(shard_output_name(s), i, s.size) for i, s in enumerate(self.dataset.shards)]

    # -- one task ---------------------------------------------------------------------------
    def transform(self, batch: pa.RecordBatch, result) -> tuple[pa.RecordBatch, pa.RecordBatch | None]:
        raise NotImplementedError

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        from curate.run.executor import TaskResult

        kept, _ = self.transform(pa.RecordBatch.from_pylist([], schema=schema), TaskResult("schema"))
        return kept.schema

    def _batches(self, task: Task, ctx: TaskContext):
        if task.spec is None:
            reader = open_stdin_stream()
            self._stdin_manifest = stream_manifest(reader.schema)
            self._stream_schema = reader.schema  # a stream of no batches still says its columns
            if self.needs_text:
                check_text_column(reader.schema, "stdin")
            for batch in reader:
                yield batch, batch.nbytes
            return
        shard = self.dataset.shards[task.spec]
        pf = open_parquet(shard.loc)
        schema = pf.schema_arrow
        if self._schema is not None and task.spec != 0:
            check_same_schema(self._schema, self.dataset.shards[0].loc.uri, schema, shard.loc.uri)
        total = max(pf.metadata.num_rows, 1)
        for batch in iter_batches(shard.loc, pf=pf):
            yield batch, int(shard.size * batch.num_rows / total)

    def begin_task(self, task: Task, ctx: TaskContext) -> None:
        """Called before a shard's first batch (global stages load their decisions here)."""

    def end_task(self, task: Task, ctx: TaskContext) -> None:
        """Called after a shard's output is published."""

    def run_task(self, task: Task, ctx: TaskContext) -> None:
        res = ctx.result
        out = rej = None
        self.begin_task(task, ctx)
        try:
            for batch, nbytes in self._batches(task, ctx):
                kept, rejected = self.transform(batch, res)
                res.rows_in += batch.num_rows
                res.bytes_in += nbytes
                if out is None:
                    out = ctx.open_output(task.name, kept.schema)
                out.write(kept)
                res.rows_out += kept.num_rows
                if rejected is not None and rejected.num_rows:
                    if rej is None:
                        rej = ctx.open_rejects(task.name, rejected.schema)
                    if rej is not None:
                        rej.write(rejected)
                    res.rows_rejected += rejected.num_rows
                ctx.progress(batch.num_rows, nbytes)
            if out is None:  # empty shard: still publish an empty file with the right schema
                schema = self._schema or self._stream_schema or pa.schema([("id", pa.string()), ("text", pa.string())])
                out = ctx.open_output(task.name, self.output_schema(schema))
            res.bytes_out += out.close()
            res.outputs.append(task.name)
            if rej is not None:
                rej.close()
            self.end_task(task, ctx)
        except BaseException:
            for w in (out, rej):
                if w is not None:
                    w.abort()
            raise


def input_locations(dataset: Dataset) -> list:
    if dataset.stdin:
        return []
    return [s.loc for s in dataset.shards] if is_glob(dataset.uri) else [locate(dataset.uri)]

