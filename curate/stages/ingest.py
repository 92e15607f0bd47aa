"""curate ingest: JSON Lines (plain, .gz, .zst, .bz2), plain text (a document per line or per file)
or Parquet -> a sharded Parquet dataset with a stable string `id` and a string `text` column.

Tasks are runs of consecutive input files; each writes numbered pieces under _work/ingest/, and
finalize renames them, in input order, to part-00000.parquet ... so names never depend on workers.
"""

from __future__ import annotations

import posixpath
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate import log
from curate.errors import InputError, UsageError
from curate.io import jsonl
from curate.io.location import STDIO, Location, expand, info, relative_name
from curate.io.manifest import MANIFEST, digest, is_complete
from curate.io.parquet import iter_batches, open_parquet
from curate.run.executor import Stage, Task, TaskContext, TaskResult

FORMATS = ("auto", "jsonl", "lines", "files", "parquet")
REJECT_REASON = "reject_reason"
PIECES = "_work/ingest"
# Files are grouped into tasks of about this many input bytes, so that many small files
# do not become many tiny shards.
TASK_BYTES = 256 << 20


@dataclass(frozen=True)
class IngestParams:
    format: str = "auto"
    text_field: str = "text"
    id_field: str | None = None
    fields: tuple[str, ...] | None = None  # extra fields to keep; None keeps all
    shard_rows: int | None = None
    shard_bytes: int | None = 256_000_000  # of text, before compression
    on_bad_record: str = "fail"  # fail | skip


def detect_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    p = path
    for suffix in jsonl.COMPRESSION_BY_SUFFIX:
        if p.endswith(suffix):
            p = p[: -len(suffix)]
    if p.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if p.endswith(".parquet"):
        return "parquet"
    if p.endswith(".txt"):
        return "lines"
    raise UsageError(
        f"cannot tell the format of {path} from its name",
        hint="pass --format jsonl|lines|files|parquet",
    )


@dataclass(frozen=True)
class FileRef:
    loc: Location | None  # None: stdin
    name: str  # relative to the input root: the prefix of generated ids
    size: int
    format: str


class Ingest(Stage):
    name = "ingest"

    def __init__(self, uri: str, params: IngestParams):
        self.uri = uri
        self.params = params
        if uri == STDIO:
            fmt = "jsonl" if params.format == "auto" else params.format
            if fmt in ("files", "parquet"):
                raise UsageError(f"--format {fmt} cannot read stdin", hint="stdin takes jsonl or lines")
            self.files = [FileRef(None, "stdin", 0, fmt)]
        else:
            base, found = expand(uri)
            _refuse_incomplete(base, uri)
            self.files = [FileRef(loc, relative_name(base, loc), size, detect_format(loc.path, params.format)) for loc, size in found]
            _refuse_mixed_formats(self.files, base, uri)
        self.format = self.files[0].format
        self.schema: pa.Schema | None = None  # output schema, decided in plan()
        self._id_type: pa.DataType | None = None
        self._replaced: tuple[str, ...] = ()  # input columns named id/text that ingest's own replace

    # -- identity ---------------------------------------------------------------------------
    def input_uri(self) -> str:
        return self.uri

    def input_identity(self) -> str | None:
        if self.uri == STDIO:
            return "stdin"
        return digest({"files": [[f.name, f.size] for f in self.files]})

    # -- planning ---------------------------------------------------------------------------
    def plan(self) -> list[Task]:
        self.schema = self._decide_schema()
        tasks, group, size = [], [], 0
        for i, f in enumerate(self.files):
            group.append(i)
            size += f.size
            if size >= TASK_BYTES:
                tasks.append(group)
                group, size = [], 0
        if group:
            tasks.append(group)
        return [Task(f"f{g[0]:05d}", tuple(g), sum(self.files[i].size for i in g)) for g in tasks]

    def _decide_schema(self) -> pa.Schema:
        p = self.params
        if self.format == "parquet":
            raw = _unify_parquet_schemas(self.files, (p.text_field, p.id_field))
            for name in (p.text_field,) + ((p.id_field,) if p.id_field else ()):
                if name not in raw.names:
                    raise InputError(
                        f"no column '{name}'; the columns are: {', '.join(raw.names)}",
                        where=self.files[0].loc.uri,
                        hint=f"pass --{'text' if name == p.text_field else 'id'}-field with one of them",
                    )
        elif self.format == "jsonl":
            raw = self._sniff_jsonl()
        else:
            raw = pa.schema([(p.text_field, pa.string())])
        return self._schema_from(raw)

    def _schema_from(self, raw: pa.Schema) -> pa.Schema:
        p = self.params
        self._warn_replaced(raw)
        self._id_type = raw.field(p.id_field).type if p.id_field and p.id_field in raw.names else None
        extras = [f for f in raw if f.name not in (p.text_field, p.id_field, "id", "text")]
        if p.fields is not None:
            missing = [n for n in p.fields if n not in raw.names]
            if missing and self.format == "parquet":
                raise InputError(f"--fields names unknown columns: {', '.join(missing)}", where=self.uri,
                                 hint=f"the columns are: {', '.join(raw.names)}")
            extras = [f for f in extras if f.name in p.fields]
        extras = [pa.field(f.name, pa.string() if pa.types.is_large_string(f.type) else f.type) for f in extras]
        return pa.schema([("id", pa.string()), ("text", pa.string())] + extras)

    def _warn_replaced(self, raw: pa.Schema) -> None:
        """Ingest writes its own `id` and `text`: an input column of that name that is not their source
        would vanish from the output unnoticed, so say so (once: the schema is decided once per run)."""
        p = self.params
        where = "stdin" if self.uri == STDIO else self.uri
        if "id" in raw.names and p.id_field != "id":
            hint = "pass --id-field id to use that column as the ids" if p.id_field is None else "rename the column to keep it"
            made = f"the ids come from '{p.id_field}'" if p.id_field else "ingest generates ids '<file>:<n>'"
            log.warn(f"{where}: the input's 'id' column is dropped: {made}; {hint}")
        if "text" in raw.names and p.text_field != "text":
            log.warn(f"{where}: the input's 'text' column is dropped: the text comes from '{p.text_field}'; "
                     "rename the column to keep it")
        self._replaced = tuple(n for n in ("id", "text") if n in raw.names)

    def _sniff_jsonl(self) -> pa.Schema:
        for f in self.files:
            if f.loc is None:
                break  # stdin: sniff happens in the task
            with _open_stream(f) as stream:
                first = next(jsonl.iter_line_blocks(stream, f.loc.uri, 8 << 20), None)
            if first is not None:  # an empty first file says nothing about the fields: look further
                return jsonl.sniff_schema(first.raw, f.loc.uri, self.params.text_field)
        return pa.schema([(self.params.text_field, pa.string())])

    # -- one task ---------------------------------------------------------------------------
    def run_task(self, task: Task, ctx: TaskContext) -> None:
        if self.schema is None:  # stdin run, planned in this process
            self.schema = self._decide_schema()
        roller = _Roller(ctx, task.name, self.schema, self.params)
        try:
            for i in task.spec:
                f = self.files[i]
                for kept, rejected, nbytes in self._read_file(f, ctx.result):
                    roller.write(kept, rejected)
                    ctx.result.bytes_in += nbytes
                    ctx.progress(kept.num_rows + (rejected.num_rows if rejected is not None else 0), nbytes)
            roller.close()
        except BaseException:
            roller.abort()
            raise

    def _read_file(self, f: FileRef, res: TaskResult) -> Iterator[tuple[pa.RecordBatch, pa.RecordBatch | None, int]]:
        reader = {"jsonl": self._jsonl, "lines": self._lines, "files": self._files, "parquet": self._parquet}[f.format]
        empty = True
        for table, first, nbytes, bad in reader(f, res):
            empty = False
            kept, rejected = self._normalise(table, f, first, res)
            if bad:
                rejected = _concat(rejected, self._bad_rows(bad, f, res))
            yield kept, rejected, nbytes
        if empty:
            log.warn(f"{_where(f)}: empty input file")
            res.count("empty_files")

    # Each reader yields (table with the raw field names, ordinal of its first record (or of each
    # record), input bytes read since the last yield, set-aside lines).
    def _jsonl(self, f: FileRef, res: TaskResult):
        p = self.params
        schema = self._raw_schema()
        ordinal = offset = 0
        with _open_stream(f) as stream:
            for block in jsonl.iter_line_blocks(stream, _where(f)):
                first = ordinal
                if f.loc is None and ordinal == 0:  # stdin: the schema comes from its first block
                    self.schema = self._schema_from(jsonl.sniff_schema(block.raw, "stdin", p.text_field))
                    schema = self._raw_schema()
                try:
                    table = jsonl.parse_block(block.data, schema)
                    bad = []
                except (pa.ArrowInvalid, UnicodeDecodeError):
                    bad = jsonl.explain_bad_lines(block, schema, p.text_field)
                    if not bad:
                        raise
                    if p.on_bad_record == "fail":
                        line, why, _ = bad[0]
                        raise InputError(
                            why,
                            where=f"{_where(f)}:{line}",
                            hint="fix the line, or pass --on-bad-record skip to set bad lines aside (counted, and kept in --rejects)",
                        ) from None
                    bad_set = {ln for ln, _, _ in bad}
                    lines = block.raw.split(b"\n")
                    good = b"\n".join(ln for i, ln in enumerate(lines) if block.first_line + i not in bad_set)
                    table = jsonl.parse_block(good, schema) if good.strip() else schema.empty_table()
                    # Bad lines keep their place in the numbering: ordinals count records in the file.
                    ords = _record_ordinals(lines, block.first_line, ordinal)
                    first = np.array([o for ln, o in ords.items() if ln not in bad_set], dtype=np.int64)
                    bad = [(ln, why, raw, ords[ln]) for ln, why, raw in bad]
                table = self._drop_unexpected(table, schema, f, res)
                yield table, first, block.end_offset - offset, bad
                offset = block.end_offset
                ordinal += table.num_rows + len(bad)

    def _bad_rows(self, bad, f: FileRef, res: TaskResult) -> pa.RecordBatch:
        """Set-aside lines become reject rows: a null text, the raw line, and why."""
        n = len(bad)
        res.count("bad_records", n)
        res.rows_in += n
        res.rows_rejected += n
        cols = {fld.name: pa.nulls(n, fld.type) for fld in self.schema}
        cols["id"] = _gen_ids(f.name, np.array([o for *_, o in bad], dtype=np.int64), n)
        cols[REJECT_REASON] = pa.array([f"bad_record: line {ln}: {why}" for ln, why, _, _ in bad], pa.string())
        cols["raw"] = pa.array([r.decode("utf-8", "replace") for _, _, r, _ in bad], pa.string())
        return pa.RecordBatch.from_pydict(cols, schema=_reject_schema(self.schema))

    def _drop_unexpected(self, table: pa.Table, schema: pa.Schema, f: FileRef, res: TaskResult) -> pa.Table:
        extra = [n for n in table.column_names if n not in schema.names and n != self.params.id_field]
        for n in extra:
            if n in self._replaced:  # warned about once, when the schema was decided
                continue
            if self.params.fields is None or n in self.params.fields:  # not left out on purpose
                res.count(f"dropped_field:{n}")
        if extra:
            table = table.drop_columns(extra)
        return table

    def _raw_schema(self) -> pa.Schema:
        p = self.params
        fields = [pa.field(p.text_field, pa.string())]
        for f in self.schema:
            if f.name in ("id", "text"):
                continue
            fields.append(f)
        if p.id_field and p.id_field != p.text_field and self._id_type is not None:
            fields.append(pa.field(p.id_field, self._id_type))
        return pa.schema(fields)

    def _lines(self, f: FileRef, res: TaskResult):
        ordinal = offset = 0
        with _open_stream(f) as stream:
            for block in jsonl.iter_line_blocks(stream, _where(f)):
                # Split, strip CR and drop blank lines in Arrow; Python sees lines only on bad UTF-8.
                whole = pa.BinaryArray.from_buffers(pa.binary(), 1, [None, pa.py_buffer(np.array([0, len(block.data)], np.int32)), pa.py_buffer(block.data)])
                lines = pc.list_flatten(pc.split_pattern(whole, "\n"))
                lines = _rstrip_cr(lines)
                nonblank = pc.greater(pc.binary_length(lines), 0)
                res.count("blank_lines", len(lines) - pc.sum(nonblank).as_py())
                arr = lines.filter(nonblank)
                try:
                    text = pc.cast(arr, pa.string())
                except pa.ArrowInvalid:
                    py_lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in block.raw.split(b"\n")]
                    res.count("utf8_replaced", self._raise_or_skip_utf8(f, block, py_lines))
                    text = pa.array([ln.decode("utf-8", "replace") for ln in py_lines if ln], pa.string())
                yield pa.table({self.params.text_field: text}), ordinal, block.end_offset - offset, None
                offset = block.end_offset
                ordinal += len(text)

    def _raise_or_skip_utf8(self, f: FileRef, block, lines) -> int:
        """Raise for the first bad line, or (skip mode) return how many lines hold bad bytes."""
        bad = 0
        for i, ln in enumerate(lines):
            try:
                ln.decode("utf-8")
            except UnicodeDecodeError as e:
                bad += 1
                if self.params.on_bad_record == "fail":
                    raise InputError(
                        f"invalid UTF-8 at byte {e.start}",
                        where=f"{_where(f)}:{block.first_line + i}",
                        hint="convert the file to UTF-8 (iconv), or pass --on-bad-record skip to replace bad bytes with U+FFFD",
                    ) from None
        # skip mode for plain text: bad bytes become U+FFFD, the line is kept (counted).
        return bad

    def _files(self, f: FileRef, res: TaskResult):
        with f.loc.fs.open_input_stream(f.loc.path, compression=jsonl.compression_of(f.loc.path)) as s:
            data = s.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            if self.params.on_bad_record == "fail":
                raise InputError(f"invalid UTF-8 at byte {e.start}", where=_where(f),
                                 hint="convert the file to UTF-8, or pass --on-bad-record skip to replace bad bytes with U+FFFD") from None
            res.count("utf8_replaced")
            text = data.decode("utf-8", "replace")
        yield pa.table({self.params.text_field: pa.array([text], pa.string())}), 0, f.size, None

    def _parquet(self, f: FileRef, res: TaskResult):
        pf = open_parquet(f.loc)
        total = max(pf.metadata.num_rows, 1)
        ordinal = 0
        for rg in range(pf.num_row_groups):
            row = 0  # in the row group: errors name (row group, row) as Parquet tools count them
            for batch in iter_batches(f.loc, pf=pf, row_groups=[rg]):
                table = self._parquet_text(pa.Table.from_batches([batch]), f, rg, row, ordinal)
                yield table, ordinal, int(f.size * batch.num_rows / total), None
                row += batch.num_rows
                ordinal += batch.num_rows

    def _parquet_text(self, table: pa.Table, f: FileRef, rg: int, row: int, ordinal: int) -> pa.Table:
        """Text (and text-like ids) as string, here where a bad value can be named by row group and row."""
        p = self.params
        for field in dict.fromkeys((p.text_field, p.id_field)):
            if field not in table.column_names:
                continue
            i = table.column_names.index(field)
            if field != p.text_field and not _holds_text(table.schema.field(i).type):
                continue  # numeric ids: cast in _normalise
            col = _as_string(table.column(i), f, field, table.schema,
                             locate=lambda k: f"row group {rg}, row {row + k} (row {ordinal + k} of the file)")
            table = table.set_column(i, field, col)
        return table

    # -- normalise to (id, text, extras) ----------------------------------------------------
    def _normalise(self, table, f: FileRef, first: int | np.ndarray, res: TaskResult):
        p = self.params
        n = table.num_rows
        res.rows_in += n
        text = table.column(p.text_field) if p.text_field in table.column_names else pa.nulls(n, pa.string())
        text = _as_string(text, f, p.text_field, table.schema)
        if p.id_field:
            if p.id_field not in table.column_names:
                raise InputError(f"no field '{p.id_field}' in this file", where=_where(f), hint="check --id-field")
            ids = _ids_as_string(table.column(p.id_field), f, p.id_field)
            if ids.null_count:
                i = pc.index(pc.is_null(ids), True).as_py()
                row = int(first[i]) if isinstance(first, np.ndarray) else first + i
                raise InputError(f"record {row} has no '{p.id_field}'", where=_where(f),
                                 hint="every record needs an id when --id-field is given; drop --id-field to generate ids")
        else:
            ids = _gen_ids(f.name, first, n)
        cols = {"id": ids, "text": text}
        for fld in self.schema:
            if fld.name in cols:
                continue
            if fld.name in table.column_names:
                col = table.column(fld.name)
                if col.type != fld.type:
                    try:
                        col = pc.cast(col, fld.type)
                    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                        raise InputError(f"field '{fld.name}' has type {col.type}, not {fld.type} as in the first file ({e})",
                                         where=_where(f), hint="pass --fields to choose the fields to keep") from None
                cols[fld.name] = col
            else:
                cols[fld.name] = pa.nulls(n, fld.type)
        out = pa.table(cols, schema=self.schema).combine_chunks()
        empty = pc.or_kleene(pc.is_null(out.column("text")), pc.match_substring_regex(out.column("text"), r"^\s*$"))
        empty = pc.fill_null(empty, True)
        n_empty = pc.sum(empty).as_py() or 0
        if not n_empty:
            res.rows_out += n
            return _one_batch(out, self.schema), None
        res.count("empty_text", n_empty)
        res.rows_out += n - n_empty
        res.rows_rejected += n_empty
        rej = out.filter(empty)
        rej = rej.append_column(REJECT_REASON, pa.array(["empty_text"] * n_empty, pa.string()))
        rej = rej.append_column("raw", pa.nulls(n_empty, pa.string()))
        return _one_batch(out.filter(pc.invert(empty)), self.schema), _one_batch(rej, rej.schema)

    # -- finalize: pieces -> part-NNNNN.parquet --------------------------------------------
    def finalize(self, out: Location, results: list[TaskResult]) -> dict:
        n = 0
        for r in results:  # results arrive in plan order, pieces in write order
            final = []
            for piece in r.outputs:
                dst = f"part-{n:05d}.parquet"
                src_loc, dst_loc = out.child(piece), out.child(dst)
                if piece != dst:
                    if out.fs.get_file_info(src_loc.path).type.name == "File":
                        out.fs.move(src_loc.path, dst_loc.path)
                    elif out.fs.get_file_info(dst_loc.path).type.name != "File":
                        raise RuntimeError(f"ingest: lost piece {piece}")
                final.append(dst)
                n += 1
            r.outputs = final
        if n == 0 and self.schema is not None:  # all input empty: still a valid, empty dataset
            from curate.io.parquet import ShardWriter

            ShardWriter(out.child("part-00000.parquet"), self.schema).close()
            results[0].outputs = ["part-00000.parquet"] if results else []
        return {"schema": [f"{f.name}: {f.type}" for f in self.schema] if self.schema is not None else []}


def _one_batch(table: pa.Table, schema: pa.Schema) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else pa.RecordBatch.from_pylist([], schema=schema)


def _reject_schema(schema: pa.Schema) -> pa.Schema:
    return schema.append(pa.field(REJECT_REASON, pa.string())).append(pa.field("raw", pa.string()))


def _concat(a: pa.RecordBatch | None, b: pa.RecordBatch) -> pa.RecordBatch:
    if a is None or a.num_rows == 0:
        return b
    return pa.Table.from_batches([a, b]).combine_chunks().to_batches()[0]



class _Roller:
    """Writes pieces of at most shard_rows rows / shard_bytes text bytes; rejects alongside."""

    def __init__(self, ctx: TaskContext, task_name: str, schema: pa.Schema, params: IngestParams):
        self.ctx, self.task, self.schema, self.p = ctx, task_name, schema, params
        self.writer = None
        self.rej = None
        self.piece = 0
        self.rows = 0
        self.bytes = 0

    def _piece_name(self) -> str:
        if self.ctx.stream is not None:
            return "stream"
        return f"{PIECES}/{self.task}-{self.piece:05d}.parquet"

    def write(self, kept: pa.RecordBatch, rejected: pa.RecordBatch | None) -> None:
        if rejected is not None and rejected.num_rows:
            if self.rej is None:
                self.rej = self.ctx.open_rejects(f"{self.task}.parquet", rejected.schema)
            if self.rej is not None:
                self.rej.write(rejected)
        while kept.num_rows:
            if self.writer is None:
                if self.ctx.out is not None and self.piece == 0:
                    self.ctx.out.fs.create_dir(self.ctx.out.child(PIECES).path, recursive=True)
                self.writer = self.ctx.open_output(self._piece_name(), kept.schema)
            take = self._room(kept)
            self.writer.write(kept.slice(0, take))
            self.rows += take
            self.bytes += _text_bytes(kept.slice(0, take))
            kept = kept.slice(take)
            if self._full():
                self._roll()

    def _room(self, batch: pa.RecordBatch) -> int:
        n = batch.num_rows
        if self.p.shard_rows:
            n = min(n, self.p.shard_rows - self.rows)
        if self.p.shard_bytes:
            lengths = pc.binary_length(batch.column("text")).to_numpy(zero_copy_only=False)
            cum = np.cumsum(lengths[:n]) + self.bytes
            over = np.nonzero(cum >= self.p.shard_bytes)[0]
            if len(over):
                n = min(n, int(over[0]) + 1)
        return max(n, 1)

    def _full(self) -> bool:
        return bool((self.p.shard_rows and self.rows >= self.p.shard_rows) or (self.p.shard_bytes and self.bytes >= self.p.shard_bytes))

    def _roll(self) -> None:
        if self.writer is not None:
            res = self.ctx.result
            res.bytes_out += self.writer.close()
            if self.ctx.stream is None:
                res.outputs.append(self._piece_name())
            self.writer = None
            self.piece += 1
            self.rows = self.bytes = 0

    def close(self) -> None:
        self._roll()
        if self.rej is not None:
            self.rej.close()

    def abort(self) -> None:
        for w in (self.writer, self.rej):
            if w is not None:
                w.abort()


def _rstrip_cr(lines: pa.Array) -> pa.Array:
    """Drop one trailing CR of each line (CRLF files), on bytes: UTF-8 is checked afterwards."""
    ends_cr = pc.ends_with(lines, "\r")
    if not pc.any(ends_cr).as_py():
        return lines
    return pc.if_else(ends_cr, pc.binary_slice(lines, 0, -1), lines)


def _text_bytes(batch: pa.RecordBatch) -> int:
    return int(pc.sum(pc.binary_length(batch.column("text"))).as_py() or 0)


def _is_text_type(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def _is_bytes_type(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_binary_view(t)


def _holds_text(t: pa.DataType) -> bool:
    """Types ingest reads as text: strings of any layout, bytes (if UTF-8), dictionaries of those."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return _is_text_type(t) or _is_bytes_type(t)


def _as_string(col, f: FileRef, field: str, schema: pa.Schema, locate=None):
    """The text column as the string type ingest writes. `locate(i)` names row i in messages."""
    t = col.type
    if pa.types.is_dictionary(t):  # pandas categoricals: the values are the text
        col = pc.cast(col, t.value_type)
    v = col.type
    if pa.types.is_string(v):
        return col
    if _is_text_type(v) or pa.types.is_null(v):
        return pc.cast(col, pa.string())
    if _is_bytes_type(v):
        try:
            return pc.cast(col, pa.string())
        except pa.ArrowInvalid:
            raise _bad_utf8(col, f, field, locate) from None
    others = [c.name for c in schema if c.name != field and _holds_text(c.type)]
    hint = (f"pass --text-field with the column that holds the document text: {', '.join(others)}" if others
            else f"convert '{field}' to a string column first")
    raise InputError(f"'{field}' has type {t}; ingest reads text from string, UTF-8 binary or dictionary-encoded string columns",
                     where=_where(f), hint=hint)


def _ids_as_string(col, f: FileRef, field: str):
    try:
        return pc.cast(col, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise InputError(f"'{field}' has type {col.type}, which cannot be an id", where=_where(f),
                         hint="pass --id-field with a string or integer column, or drop it to generate ids") from None


def _bad_utf8(col, f: FileRef, field: str, locate) -> InputError:
    """Name the first value that is not UTF-8; a Python loop, but only on this error path."""
    for i, v in enumerate(col.to_pylist()):
        try:
            (v or b"").decode("utf-8")
        except UnicodeDecodeError as e:
            at = f"{locate(i)}: " if locate else ""
            return InputError(f"{at}'{field}' holds bytes that are not valid UTF-8 (at byte {e.start})", where=_where(f),
                              hint="decode the column to UTF-8 text first (or drop the row)")
    return InputError(f"'{field}' holds bytes that are not valid UTF-8", where=_where(f),
                      hint="decode the column to UTF-8 text first")


def _gen_ids(name: str, first, n: int) -> pa.Array:
    """Stable ids: '<file relative to the input root>:<record ordinal from 0>'; `first` is the first
    record's ordinal, or every record's ordinals when set-aside lines leave gaps."""
    nums = first if isinstance(first, np.ndarray) else np.arange(first, first + n, dtype=np.int64)
    nums = pc.cast(pa.array(nums), pa.string())
    return pc.binary_join_element_wise(f"{name}:", nums, "")


def _record_ordinals(lines: list[bytes], first_line: int, ordinal: int) -> dict[int, int]:
    """Line number -> record ordinal for the block's non-blank lines (blank lines are not records)."""
    out = {}
    for i, ln in enumerate(lines):
        if not jsonl.is_blank(ln):
            out[first_line + i] = ordinal
            ordinal += 1
    return out


def _where(f: FileRef) -> str:
    return f.loc.uri if f.loc is not None else "stdin"


class _StdinStream:
    def __enter__(self):
        return sys.stdin.buffer

    def __exit__(self, *a):
        return False


def _open_stream(f: FileRef):
    if f.loc is None:
        return _StdinStream()
    try:
        return f.loc.fs.open_input_stream(f.loc.path, compression=jsonl.compression_of(f.loc.path))
    except (pa.ArrowException, OSError) as e:
        raise InputError(f"cannot open ({e})", where=f.loc.uri) from None


def _refuse_incomplete(base: Location, uri: str) -> None:
    """A curate output without _SUCCESS is being written or was interrupted: its shards are not a dataset yet."""
    if is_complete(base):
        return
    if info(base.child(MANIFEST)).type.name == "File" or info(base.child("_work")).type.name == "Directory":
        raise InputError("dataset is incomplete: it has no _SUCCESS marker (a stage is still writing it, or was interrupted)",
                         where=uri, hint="rerun the stage that writes it to complete it, then ingest or use it")


def _strings_as_string(schema: pa.Schema, names: tuple[str | None, ...]) -> pa.Schema:
    """The text and id columns are cast to string batch by batch, so files need not agree on their
    layout (string in one file, a pandas categorical in the next)."""
    for name in names:
        i = schema.get_field_index(name) if name else -1
        if i >= 0 and _holds_text(schema.field(i).type):
            schema = schema.set(i, pa.field(name, pa.string()))
    return schema


def _refuse_mixed_formats(files: list[FileRef], base: Location, uri: str) -> None:
    """One format per run: name a file of each and suggest a glob for the most common one."""
    by_format: dict[str, list[FileRef]] = {}
    for f in files:
        by_format.setdefault(f.format, []).append(f)
    if len(by_format) < 2:
        return
    kinds = ", ".join(f"{fmt} ({len(fs)} files, e.g. {fs[0].name})" if len(fs) > 1 else f"{fmt} ({fs[0].name})"
                      for fmt, fs in sorted(by_format.items()))
    # The glob is for the most common format; on a tie not for .txt, the likeliest stray (README.txt).
    main = max(by_format.values(), key=lambda fs: (len(fs), fs[0].format != "lines"))[0]
    glob = f"'{base.uri.rstrip('/')}/*{_suffix(main.name)}'"
    raise UsageError(f"input mixes formats: {kinds}", where=uri,
                     hint=f"ingest one format at a time with a quoted glob such as {glob}, or pass --format to read every file as one format")


def _suffix(name: str) -> str:
    """'a/b.jsonl.gz' -> '.jsonl.gz', 'README.txt' -> '.txt': the part of a name a glob keeps."""
    base = posixpath.basename(name)
    comp = next((s for s in jsonl.COMPRESSION_BY_SUFFIX if base.endswith(s)), "")
    stem = base[: len(base) - len(comp)]
    return (posixpath.splitext(stem)[1] or "") + comp


def _unify_parquet_schemas(files: list[FileRef], cast_names: tuple[str | None, ...]) -> pa.Schema:
    schemas = []
    for f in files:
        schemas.append(_strings_as_string(open_parquet(f.loc).schema_arrow.remove_metadata(), cast_names))
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InputError(f"the Parquet files' schemas cannot be unified ({e})", where=posixpath.dirname(files[0].loc.uri) or ".",
                         hint="pass --fields to keep only the columns that agree, or convert the odd files first") from None
