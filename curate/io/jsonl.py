"""JSON Lines in and out, vectorised: pyarrow parses blocks of lines, pyarrow.compute writes them.

Python looks at single lines only to explain an error (which line, what is wrong) or, with
--on-bad-record skip, to set bad lines aside.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from curate.errors import InputError

BLOCK_BYTES = 16 << 20
COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}


def compression_of(path: str) -> str | None:
    for suffix, codec in COMPRESSION_BY_SUFFIX.items():
        if path.endswith(suffix):
            return codec
    return None


@dataclass
class Block:
    data: bytes | memoryview  # whole lines, without the final newline (a view: no copy)
    first_line: int  # 1-based line number of the block's first line
    nlines: int  # physical lines in the block
    end_offset: int  # uncompressed bytes consumed so far, the block's final newline included

    @property
    def raw(self) -> bytes:
        return bytes(self.data)


def iter_line_blocks(stream, uri: str, block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Cut a byte stream into blocks of whole lines; a line longer than a block extends it.

    Each chunk read gives at most two blocks: the line it completes (joined with the carried
    part of the previous chunk: a small copy) and a zero-copy view of its whole lines. Copying
    16 MB blocks around cost more than parsing them.
    """
    carry = b""
    line = 1
    consumed = 0
    while True:
        try:
            chunk = stream.read(block_bytes)
        except (pa.ArrowException, OSError, EOFError) as e:
            raise InputError(
                f"cannot read after line {line - 1} ({e})",
                where=uri,
                hint="the compressed file is truncated or corrupt: re-download or re-create it",
            ) from None
        if not chunk:
            break
        consumed += len(chunk)
        last = chunk.rfind(b"\n")
        if last < 0:
            carry += chunk  # inside one long line
            continue
        first = -1  # no carried line to complete: the whole chunk is one view
        if carry:
            first = chunk.find(b"\n")
            yield Block(carry + chunk[:first], line, 1, consumed - (len(chunk) - first - 1))
            line += 1
        if last > first:
            n = chunk.count(b"\n", first + 1, last) + 1
            yield Block(memoryview(chunk)[first + 1 : last], line, n, consumed - (len(chunk) - last - 1))
            line += n
        carry = chunk[last + 1 :]
    if carry:
        yield Block(carry, line, carry.count(b"\n") + 1, consumed)


# ---- parsing -----------------------------------------------------------------------------


def parse_block(data: bytes, schema: pa.Schema | None) -> pa.Table:
    """Raises pa.ArrowInvalid / UnicodeDecodeError on any bad line; the caller explains it."""
    ro = pj.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 16))
    po = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    table = pj.read_json(pa.BufferReader(pa.py_buffer(data)), read_options=ro, parse_options=po)
    # pyarrow's JSON reader copies string bytes unchecked: bad UTF-8 would reach the Parquet shard.
    table.validate(full=True)
    return table


def sniff_schema(data: bytes, uri: str, text_field: str) -> pa.Schema:
    """The schema every block is parsed with, taken from the first block of the first file."""
    table = _sample_table([ln for ln in data.split(b"\n")[:20000] if _is_good(ln, text_field)])
    if table is None:
        return pa.schema([(text_field, pa.string())])
    fields = []
    for f in table.schema:
        if f.name == text_field:
            fields.append(pa.field(text_field, pa.string()))
        elif pa.types.is_null(f.type):
            continue  # no value seen yet: a later block infers it (see `unexpected fields`)
        else:
            fields.append(f)
    if text_field not in table.schema.names:
        # No record in the sample has the field: a wrong --text-field, not a corpus of empty documents.
        raise InputError(f"no field '{text_field}' in the first {table.num_rows:,} records; the fields are: "
                         f"{', '.join(table.schema.names) or '(none)'}", where=uri,
                         hint="pass --text-field with the field that holds the document text")
    return pa.schema(fields)


def _sample_table(good: list[bytes]) -> pa.Table | None:
    """The sample lines as one table. A field whose type changes inside the sample (or a key given
    twice) breaks that: infer from the lines before the breaking one (past it, if it is the first),
    and parsing the block then names that line or sets it aside, as in later blocks."""
    for _ in range(100):
        if not good:
            return None
        try:
            return parse_block(b"\n".join(good), None)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            k = _first_breaking(good)
            good = good[:k] if k else good[1:]
    return None


def _first_breaking(lines: list[bytes]) -> int:
    """Index of the line whose addition makes the lines unparseable as one table, by bisection."""
    lo, hi = 1, len(lines)  # the first hi lines fail together
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            parse_block(b"\n".join(lines[:mid]), None)
            lo = mid + 1
        except (pa.ArrowInvalid, UnicodeDecodeError):
            hi = mid
    return lo - 1


def is_blank(line: bytes) -> bool:
    """Blank as pyarrow's reader sees it: JSON whitespace only (a form feed is not blank)."""
    return not line.strip(b" \t\r\n")


def _is_good(line: bytes, text_field: str) -> bool:
    """A line the schema may be inferred from; the others are explained later, with their line number."""
    try:
        obj = None if is_blank(line) else json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(obj, dict) and isinstance(obj.get(text_field, ""), (str, type(None)))


def explain_bad_lines(block: Block, schema: pa.Schema, text_field: str) -> list[tuple[int, str, bytes]]:
    """(line number, what is wrong, raw line) for each line pyarrow would refuse, checked in Python."""
    bad = []
    for i, raw in enumerate(block.raw.split(b"\n")):
        if is_blank(raw):
            continue
        reason = _line_problem(raw, schema, text_field)
        if reason is not None:
            bad.append((block.first_line + i, reason, raw))
    return bad


def _line_problem(raw: bytes, schema: pa.Schema, text_field: str) -> str | None:
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 at byte {e.start}"
    try:
        obj = json.loads(s)
    except ValueError as e:
        return f"invalid JSON: {e}"
    if not isinstance(obj, dict):
        return f"a JSON {type(obj).__name__} where an object was expected"
    for f in schema:
        v = obj.get(f.name)
        if v is None:
            continue
        if not _fits(v, f.type):
            what = "the text field" if f.name == text_field else f"field '{f.name}'"
            return f"{what} is a JSON {type(v).__name__}, expected {f.type}"
    try:
        parse_block(raw, schema)
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        return f"cannot be converted ({e})"
    return None


def _fits(v, t: pa.DataType) -> bool:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return isinstance(v, str)
    if pa.types.is_boolean(t):
        return isinstance(v, bool)
    if pa.types.is_integer(t):
        return isinstance(v, int) and not isinstance(v, bool)
    if pa.types.is_floating(t):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if pa.types.is_struct(t):
        return isinstance(v, dict)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return isinstance(v, list)
    return True


# ---- writing -----------------------------------------------------------------------------

_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f")]
_OTHER_CONTROL = [chr(c) for c in range(0x20) if chr(c) not in "\n\r\t\b\f"]


def _json_string(arr: pa.Array) -> pa.Array:
    if not pa.types.is_string(arr.type):
        # large_string too: binary_join_element_wise has no kernel mixing it with the string pieces.
        arr = pc.cast(arr, pa.string())
    for old, new in _ESCAPES:
        arr = pc.replace_substring(arr, old, new)
    if pc.any(pc.match_substring_regex(arr, "[\\x00-\\x1f]")).as_py():
        for ch in _OTHER_CONTROL:  # rare: only batches that hold such bytes pay for this
            arr = pc.replace_substring(arr, ch, f"\\u{ord(ch):04x}")
    return pc.binary_join_element_wise('"', arr, '"', "")


def _json_value(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        out = _json_string(arr)
    elif pa.types.is_integer(t) or pa.types.is_boolean(t):
        out = pc.cast(arr, pa.string())
    elif pa.types.is_floating(t):
        finite = pc.is_finite(arr)
        s = pc.cast(arr, pa.string())
        # 2.0 casts to "2": keep it a JSON float, so that a re-ingest reads a double, not an int64.
        s = pc.if_else(pc.match_substring_regex(s, r"^-?[0-9]+$"), pc.binary_join_element_wise(s, ".0", ""), s)
        out = pc.if_else(finite, s, pa.scalar(None, pa.string()))
    elif pa.types.is_temporal(t) or pa.types.is_decimal(t) or pa.types.is_dictionary(t):
        out = _json_string(pc.cast(arr, pa.string()))
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        import base64  # bytes have no JSON form: base64, the usual convention

        out = pa.array([None if v is None else base64.b64encode(v).decode() for v in arr.to_pylist()], pa.string())
        out = _json_string(out)
    else:  # nested values: exact but slower, per value
        out = pa.array([None if v is None else json.dumps(_finite(v), ensure_ascii=False, default=str, allow_nan=False)
                        for v in arr.to_pylist()], pa.string())
    return pc.fill_null(out, "null")


def _finite(v):
    """NaN and infinities inside lists and structs become null, as top-level floats do: JSON has no NaN."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def encode_jsonl(batch: pa.RecordBatch) -> pa.Buffer:
    """The batch as JSON Lines, one object per row, keys in column order."""
    if batch.num_rows == 0:
        return pa.py_buffer(b"")
    pieces = []
    for i, name in enumerate(batch.schema.names):
        key = json.dumps(name, ensure_ascii=False)
        pieces.append(("{" if i == 0 else ",") + key + ":")
        pieces.append(_json_value(batch.column(i)))
    pieces.append("}\n")
    lines = pc.binary_join_element_wise(*pieces, "")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    # A string array's data buffer is its values back to back: exactly the JSON Lines bytes.
    offsets = lines.buffers()[1]
    width = 8 if pa.types.is_large_string(lines.type) else 4
    import numpy as np

    off = np.frombuffer(offsets, dtype=np.int64 if width == 8 else np.int32)[lines.offset : lines.offset + len(lines) + 1]
    return lines.buffers()[2][int(off[0]) : int(off[-1])]
