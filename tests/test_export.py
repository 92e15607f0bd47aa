"""curate export: round trips through every format, exact JSON, re-sharding, columns, stdout, workers."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tests.conftest import read_rows, run, shard_bytes


def ok(r):
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def _no_constants(name):
    raise ValueError(f"{name} is not JSON")


def strict_loads(line: bytes):
    """json.loads that refuses NaN/Infinity and raw control characters: what other JSON readers accept."""
    return json.loads(line.decode("utf-8"), parse_constant=_no_constants)


def jsonl_lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(data).read()
    assert data == b"" or data.endswith(b"\n")
    return data.split(b"\n")[:-1]  # not splitlines(): U+2028 inside a string is not a line end


def exported(out: Path, suffix: str) -> list[Path]:
    return sorted(out.glob(f"*.{suffix}"))


# ---- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "jsonl.zst", "parquet"])
def test_round_trip(sample_dataset, tmp_path, fmt):
    ok(run("export", sample_dataset, tmp_path / "e", "--format", fmt, "-j", "1", "-q"))
    files = exported(tmp_path / "e", fmt)
    assert [f.name for f in files] == [f"part-{i:05d}.{fmt}" for i in range(10)]  # one file per input shard
    assert (tmp_path / "e" / "_SUCCESS").is_file()
    ok(run("ingest", tmp_path / "e", tmp_path / "back", "--id-field", "id", "-j", "1", "-q"))
    assert read_rows(tmp_path / "back") == read_rows(sample_dataset)
    assert pq.read_schema(tmp_path / "back" / "part-00000.parquet") == pq.read_schema(sample_dataset / "part-00000.parquet")


TYPED = pa.table({
    "id": ["a", "b", "c"],
    "text": ["one", "two \u00e9", "three"],
    "n": pa.array([1, None, -3], pa.int64()),
    "f": pa.array([2.0, -3.0, None], pa.float64()),  # whole numbers: still floats after a round trip
    "ok": [True, False, None],
    "tags": pa.array([["x", "y"], [], None], pa.list_(pa.string())),
    "meta": pa.array([{"k": "v", "w": 1.0}, {"k": None, "w": 2.0}, None], pa.struct([("k", pa.string()), ("w", pa.float64())])),
})


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.zst"])
def test_round_trip_keeps_types(tmp_path, fmt):
    (tmp_path / "ds").mkdir()
    pq.write_table(TYPED, tmp_path / "ds" / "part-00000.parquet")
    ok(run("export", tmp_path / "ds", tmp_path / "e", "--format", fmt, "-j", "1", "-q"))
    ok(run("ingest", tmp_path / "e", tmp_path / "back", "--id-field", "id", "-j", "1", "-q"))
    back = pq.read_table(tmp_path / "back" / "part-00000.parquet")
    assert back.schema == TYPED.schema
    assert back.to_pylist() == TYPED.to_pylist()


# ---- exact JSON ----------------------------------------------------------------------------

CONTROL = "".join(chr(c) for c in range(0x20))
TEXTS = [
    'a "quoted" word',
    "back\\slash \\n not a newline",
    "two\nlines\r\nand a tab\tend",
    CONTROL,
    "nul \x00 inside",
    "unicode \u00e9\u00df\u4e2d\u6587 \u0416",
    "emoji \U0001F600\U0001F44D\U0001F3FD family \U0001F468\u200d\U0001F469",
    "line separators \u2028 and \u2029, DEL \x7f, C1 \x85",
    "",
]
N = len(TEXTS)
FLOATS = [float("nan"), float("inf"), float("-inf"), None, 1.5, 2.0, -0.25, 1e300, 3.0]
EXPECTED_FLOATS = [None, None, None, None, 1.5, 2.0, -0.25, 1e300, 3.0]
LISTS = [[1.0, float("nan")], None, [], [None], [float("inf"), -1.0], [2.0], [], None, [0.5]]
EXPECTED_LISTS = [[1.0, None], None, [], [None], [None, -1.0], [2.0], [], None, [0.5]]


@pytest.fixture
def tricky(tmp_path) -> Path:
    d = tmp_path / "tricky"
    d.mkdir()
    t = pa.table({
        "id": [f"d{i}" for i in range(N)],
        "text": TEXTS,
        "f": pa.array(FLOATS, pa.float64()),
        "ok": [True, False, None] * 3,
        "i": pa.array([2**63 - 1, -(2**63), None, 0, 1, -1, 42, 10**15, 7], pa.int64()),
        "l": pa.array(LISTS, pa.list_(pa.float64())),
        "s": pa.array([{"k": 'q"\n\\', "v": 1}, None, {"k": None, "v": None}] + [{"k": "\U0001F600", "v": 2}] * 6,
                      pa.struct([("k", pa.string()), ("v", pa.int64())])),
        "nothing": pa.nulls(N, pa.string()),
    })
    pq.write_table(t, d / "part-00000.parquet")
    return d


def expected_rows() -> list[dict]:
    return [
        {
            "id": f"d{i}",
            "text": TEXTS[i],
            "f": EXPECTED_FLOATS[i],
            "ok": [True, False, None][i % 3],
            "i": [2**63 - 1, -(2**63), None, 0, 1, -1, 42, 10**15, 7][i],
            "l": EXPECTED_LISTS[i],
            "s": [{"k": 'q"\n\\', "v": 1}, None, {"k": None, "v": None}][i] if i < 3 else {"k": "\U0001F600", "v": 2},
            "nothing": None,
        }
        for i in range(N)
    ]


def _check_json(lines: list[bytes]) -> None:
    assert len(lines) == N
    got = [strict_loads(line) for line in lines]
    assert got == expected_rows()
    for g in got:
        assert list(g) == ["id", "text", "f", "ok", "i", "l", "s", "nothing"]  # column order
        assert g["f"] is None or type(g["f"]) is float
        assert type(g["i"]) in (int, type(None)) and type(g["ok"]) in (bool, type(None))
    for line in lines:
        assert not any(b < 0x20 for b in line), line  # every control character is escaped


def test_json_escaping_and_values(tricky, tmp_path):
    ok(run("export", tricky, tmp_path / "e", "--format", "jsonl", "-j", "1", "-q"))
    _check_json(jsonl_lines(tmp_path / "e" / "part-00000.jsonl"))


def test_json_escaping_on_stdout(tricky):
    r = ok(run("export", tricky, "-", "-q"))
    _check_json(r.stdout_bytes.split(b"\n")[:-1])


def test_large_string_and_dictionary_columns(tmp_path):
    # Parquet written by other tools (polars, HF datasets) often holds large_string and dictionaries.
    (tmp_path / "ds").mkdir()
    t = pa.table({
        "id": pa.array(["a", "b"], pa.large_string()),
        "text": pa.array(['say "hi"\n', "\U0001F600"], pa.large_string()),
        "lang": pa.array(["en", None]).dictionary_encode(),
    })
    pq.write_table(t, tmp_path / "ds" / "part-00000.parquet")
    r = ok(run("export", tmp_path / "ds", "-", "-q"))
    assert [strict_loads(line) for line in r.stdout_bytes.split(b"\n")[:-1]] == [
        {"id": "a", "text": 'say "hi"\n', "lang": "en"},
        {"id": "b", "text": "\U0001F600", "lang": None},
    ]


# ---- re-sharding, columns, stdout ----------------------------------------------------------


def test_reshard_by_rows(sample_dataset, tmp_path):
    ok(run("export", sample_dataset, tmp_path / "e", "--format", "jsonl", "--shard-size", "1000", "-j", "1", "-q"))
    expected = read_rows(sample_dataset)
    files = exported(tmp_path / "e", "jsonl")
    assert [f.name for f in files] == [f"part-{i:05d}.jsonl" for i in range(math.ceil(len(expected) / 1000))]
    counts = [len(jsonl_lines(f)) for f in files]
    assert counts == [1000, 1000, len(expected) - 2000]
    rows = [strict_loads(line) for f in files for line in jsonl_lines(f)]
    assert rows == expected


def test_reshard_parquet(sample_dataset, tmp_path):
    ok(run("export", sample_dataset, tmp_path / "e", "--format", "parquet", "--shard-size", "1000", "-j", "1", "-q"))
    files = exported(tmp_path / "e", "parquet")
    assert [pq.ParquetFile(f).metadata.num_rows for f in files] == [1000, 1000, 539]
    assert read_rows(tmp_path / "e") == read_rows(sample_dataset)


def test_columns(sample_dataset, tmp_path):
    ok(run("export", sample_dataset, tmp_path / "e", "--format", "jsonl.gz", "--columns", "id,text", "-j", "1", "-q"))
    rows = [strict_loads(line) for f in exported(tmp_path / "e", "jsonl.gz") for line in jsonl_lines(f)]
    assert rows == [{"id": r["id"], "text": r["text"]} for r in read_rows(sample_dataset)]
    assert all(list(r) == ["id", "text"] for r in rows)


def test_unknown_column_is_a_usage_error(sample_dataset, tmp_path):
    r = run("export", sample_dataset, tmp_path / "e", "--columns", "id,nope")
    assert r.exit_code == 2 and "nope" in r.stderr
    assert not (tmp_path / "e").exists()


def test_stdout_is_json_lines(sample_dataset):
    r = ok(run("export", sample_dataset, "-", "--columns", "id,domain"))
    lines = r.stdout_bytes.split(b"\n")
    assert lines[-1] == b""
    assert [strict_loads(line) for line in lines[:-1]] == [{"id": x["id"], "domain": x["domain"]} for x in read_rows(sample_dataset)]
    assert "streamed" in r.stderr  # the log is on stderr, never mixed into the data


@pytest.mark.parametrize("fmt", ["parquet", "jsonl.zst"])
def test_binary_formats_to_stdout_are_usage_errors(sample_dataset, fmt):
    r = run("export", sample_dataset, "-", "--format", fmt)
    assert r.exit_code == 2, (r.exit_code, r.stderr)
    assert r.stdout_bytes == b""
    assert "hint:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("fmt", ["jsonl.zst", "jsonl.gz", "parquet"])
def test_identical_bytes_whatever_the_worker_count(sample_dataset, tmp_path, fmt):
    for j in ("1", "2"):
        ok(run("export", sample_dataset, tmp_path / f"j{j}", "--format", fmt, "--shard-size", "700", "-j", j, "-q"))
    a, b = shard_bytes(tmp_path / "j1"), shard_bytes(tmp_path / "j2")
    assert list(a) == [f"part-{i:05d}.{fmt}" for i in range(4)]
    assert a == b


def test_binary_columns_export_as_base64(tmp_path):
    import base64
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.conftest import run

    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x", "y"], "blob": pa.array([b"\x00\xff", None], pa.binary())}), d / "part-00000.parquet")
    r = run("export", d, "-", "--format", "jsonl")
    assert r.exit_code == 0
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert rows[0]["blob"] == base64.b64encode(b"\x00\xff").decode() and rows[1]["blob"] is None


def test_stdin_input_never_counts_as_already_complete(sample_dataset, tmp_path):
    from tests.conftest import curate_proc

    out = tmp_path / "o"
    data = curate_proc("export", sample_dataset / "part-00000.parquet", "-", "--format", "jsonl").stdout
    assert curate_proc("ingest", "-", out, "-q", input=data).returncode == 0
    r = curate_proc("ingest", "-", out, "-q", input=data)
    assert r.returncode == 1 and b"--overwrite" in r.stderr
