"""Read Parquet shards as record batches, with errors that name the file and row group;
write shards atomically (zstd-3 unless --compression says otherwise), row groups sized in bytes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import InputError
from curate.io.atomic import commit, needs_rename, tmp_sibling
from curate.io.location import Location

BATCH_ROWS = 2048
ROW_GROUP_BYTES = 64 << 20  # DESIGN: row groups of ~64-128 MB of text
COMPRESSION = "zstd:3"  # the default of --compression: small files, ~150 MB/s per core to write
CODECS = ("zstd", "lz4", "snappy", "gzip", "brotli", "none")
CORRUPT_HINT = "the file is truncated or not Parquet: re-create it, or remove it from the input"


def parse_compression(spec: str) -> tuple[str, int | None]:
    """'zstd', 'zstd:1', 'gzip:6', 'snappy', 'none' -> (codec, level); ValueError if malformed."""
    codec, _, level = spec.strip().lower().partition(":")
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r} (choose from {', '.join(CODECS)}, optionally with :LEVEL)")
    if not level:
        return codec, None
    if codec in ("lz4", "snappy", "none") or not level.lstrip("-").isdigit():
        raise ValueError(f"{spec!r}: only zstd, gzip and brotli take a level, as an integer (zstd:1)")
    return codec, int(level)


def open_parquet(loc: Location) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(loc.fs.open_input_file(loc.path))
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"not a readable Parquet file ({_short(e)})", where=loc.uri, hint=CORRUPT_HINT) from None


def read_schema(loc: Location) -> pa.Schema:
    return open_parquet(loc).schema_arrow


def iter_batches(
    loc: Location,
    columns: list[str] | None = None,
    batch_rows: int = BATCH_ROWS,
    pf: pq.ParquetFile | None = None,
    row_groups: list[int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Stream one file's batches; a broken row group is reported by index."""
    pf = pf or open_parquet(loc)
    groups = range(pf.num_row_groups) if row_groups is None else row_groups
    for rg in groups:
        try:
            yield from pf.iter_batches(batch_size=batch_rows, row_groups=[rg], columns=columns, use_threads=False)
        except (pa.ArrowException, OSError) as e:
            raise InputError(f"row group {rg} cannot be read ({_short(e)})", where=loc.uri, hint=CORRUPT_HINT) from None


def _short(e: BaseException) -> str:
    return str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__


def _no_dictionary(schema: pa.Schema) -> list[str]:
    # Dictionary-encoding long free text wastes a pass; short columns (domain, lang) gain from it.
    return [f.name for f in schema if f.name not in ("text", "id")]


class ShardWriter:
    """Writes one Parquet shard under a hidden temporary name; close() renames it into place.

    A killed writer leaves only a hidden temp file that no reader lists and the next run deletes.
    """

    def __init__(self, loc: Location, schema: pa.Schema, row_group_bytes: int = ROW_GROUP_BYTES,
                 compression: str = COMPRESSION):
        self.loc = loc
        self.schema = schema
        self.row_group_bytes = row_group_bytes
        self.target = tmp_sibling(loc) if needs_rename(loc) else loc
        codec, level = parse_compression(compression)
        self._sink = loc.fs.open_output_stream(self.target.path)
        self._writer = pq.ParquetWriter(
            self._sink,
            schema,
            compression=codec,
            compression_level=level,
            use_dictionary=_no_dictionary(schema),
            write_statistics=[f.name for f in schema if f.name != "text"],  # min/max of free text prunes nothing; ~10% of the write
        )
        self._buf: list[pa.RecordBatch] = []
        self._buf_bytes = 0
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        if batch.schema != self.schema:
            batch = batch.cast(self.schema) if batch.schema.names == self.schema.names else batch.select(self.schema.names).cast(self.schema)
        self._buf.append(batch)
        self._buf_bytes += batch.nbytes
        self.rows += batch.num_rows
        if self._buf_bytes >= self.row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        if self._buf:
            table = pa.Table.from_batches(self._buf, self.schema)
            self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
            self._buf, self._buf_bytes = [], 0

    def close(self) -> int:
        """Finish the file and publish it; returns its size in bytes."""
        self._flush()
        self._writer.close()
        self._sink.close()
        if self.target.is_local:
            fd = os.open(self.target.path, os.O_RDONLY)
            try:
                os.fsync(fd)  # survive a power cut, not just kill -9
            finally:
                os.close(fd)
        if self.target is not self.loc:
            commit(self.target, self.loc)
        return self.loc.fs.get_file_info(self.loc.path).size

    def abort(self) -> None:
        try:
            self._writer.close()
            self._sink.close()
        except Exception:
            pass
        try:
            self.loc.fs.delete_file(self.target.path)
        except Exception:
            pass
