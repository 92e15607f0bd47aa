"""'-' as output: one Arrow IPC stream on stdout, carrying the lineage in its schema metadata."""

from __future__ import annotations

import json
import sys

import pyarrow as pa

from curate.io.dataset import STREAM_MANIFEST_KEY


class StdoutStream:
    def __init__(self, lineage_head: dict):
        self._meta = {STREAM_MANIFEST_KEY: json.dumps(lineage_head, sort_keys=True).encode()}
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None

    def _open(self, schema: pa.Schema) -> None:
        self._schema = schema.with_metadata(self._meta)
        self._writer = pa.ipc.new_stream(sys.stdout.buffer, self._schema)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._open(batch.schema)
        if batch.num_rows:
            if not batch.schema.equals(self._schema, check_metadata=False):
                batch = batch.cast(self._schema.remove_metadata())
            self._writer.write_batch(batch)

    def ensure_schema(self, schema: pa.Schema) -> None:
        if self._writer is None:
            self._open(schema)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        sys.stdout.buffer.flush()


class StreamShard:
    """Looks like a ShardWriter to a task, writes into the shared stdout stream."""

    def __init__(self, stream: StdoutStream, schema: pa.Schema):
        self.stream = stream
        stream.ensure_schema(schema)
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        self.stream.write(batch)

    def close(self) -> int:
        return 0

    def abort(self) -> None:
        pass
