"""curate ingest: the sample corpus, every input format, ids, sharding, fields, manifest, --json."""

from __future__ import annotations

import bz2
import gzip
import json
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import curate
from curate.stages import ingest as ingest_stage
from tests.conftest import SAMPLE, curate_proc, read_rows, run, shard_bytes

STATS = json.loads((SAMPLE / "stats.json").read_text())
N = STATS["total_records"]


def raw_records(raw_dir: Path) -> list[tuple[str, int, dict]]:
    """(relative file, ordinal in file, record) for every record of the raw corpus, in file order."""
    out = []
    for f in sorted(raw_dir.iterdir()):
        data = gzip.decompress(f.read_bytes()) if f.name.endswith(".gz") else f.read_bytes()
        lines = [ln for ln in data.decode("utf-8").split("\n") if ln.strip()]
        out.extend((f.name, i, json.loads(ln)) for i, ln in enumerate(lines))
    return out


def parts(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.parquet"))


def manifest(out: Path) -> dict:
    return json.loads((out / "_manifest.json").read_text())


def ok(r):
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def default_ingest(sample_raw, tmp_path_factory) -> Path:
    """The sample corpus ingested with all defaults (generated ids, 256MB shards)."""
    out = tmp_path_factory.mktemp("ingest") / "default"
    ok(run("ingest", sample_raw, out, "-j", "1", "-q"))
    return out


# ---- the sample corpus ---------------------------------------------------------------------


def test_sample_rows_ids_and_columns(sample_raw, sample_dataset):
    rows = read_rows(sample_dataset)
    assert len(rows) == N
    assert [r["id"] for r in rows] == [rec["doc_id"] for _, _, rec in raw_records(sample_raw)]
    assert pq.read_schema(sample_dataset / "part-00000.parquet").names == ["id", "text", "domain", "source"]
    by_id = {rec["doc_id"]: rec for _, _, rec in raw_records(sample_raw)}
    for r in rows[:: max(1, N // 50)]:
        src = by_id[r["id"]]
        assert (r["text"], r["domain"], r["source"]) == (src["text"], src["domain"], src["source"])


def test_shard_size_rows_gives_contiguous_shards_of_at_most_256(sample_dataset):
    names = parts(sample_dataset)
    assert names == [f"part-{i:05d}.parquet" for i in range(len(names))]
    counts = [pq.ParquetFile(sample_dataset / n).metadata.num_rows for n in names]
    assert all(0 < c <= 256 for c in counts)
    assert sum(counts) == N
    assert len(names) == math.ceil(N / 256)


def test_default_shard_size_gives_one_shard(default_ingest):
    assert parts(default_ingest) == ["part-00000.parquet"]
    assert pq.ParquetFile(default_ingest / "part-00000.parquet").metadata.num_rows == N


def test_shard_size_in_bytes_bounds_text_bytes(sample_raw, tmp_path):
    ok(run("ingest", sample_raw, tmp_path / "o", "--shard-size", "300KB", "-j", "1", "-q"))
    names = parts(tmp_path / "o")
    assert names == [f"part-{i:05d}.parquet" for i in range(len(names))]
    sizes = []
    for n in names:
        texts = pq.read_table(tmp_path / "o" / n, columns=["text"]).column("text").to_pylist()
        b = [len(t.encode("utf-8")) for t in texts]
        assert sum(b) - b[-1] < 300_000  # at most one document of overshoot
        sizes.append(sum(b))
    assert all(s >= 300_000 for s in sizes[:-1]), sizes  # shards are filled, not cut at every file
    assert len(read_rows(tmp_path / "o")) == N


# ---- ids -----------------------------------------------------------------------------------


def test_generated_ids_are_file_and_ordinal(sample_raw, default_ingest):
    rows = read_rows(default_ingest)
    expected = [f"{name}:{i}" for name, i, _ in raw_records(sample_raw)]
    assert [r["id"] for r in rows] == expected
    assert len(set(expected)) == N
    # without --id-field the doc_id field is an ordinary extra column
    assert [r["doc_id"] for r in rows] == [rec["doc_id"] for _, _, rec in raw_records(sample_raw)]


def test_output_identical_whatever_the_worker_count(sample_raw, tmp_path):
    for j in ("1", "2"):
        ok(run("ingest", sample_raw, tmp_path / f"j{j}", "--shard-size", "256", "-j", j, "-q"))
    a, b = shard_bytes(tmp_path / "j1"), shard_bytes(tmp_path / "j2")
    assert list(a) == parts(tmp_path / "j1") and len(a) == math.ceil(N / 256)
    assert a == b


def test_many_tasks_identical_whatever_the_worker_count(sample_raw, tmp_path, monkeypatch):
    # Smaller task groups, so that -j 2 really runs several tasks at once.
    monkeypatch.setattr(ingest_stage, "TASK_BYTES", 150_000)
    for j in ("1", "2"):
        ok(run("ingest", sample_raw, tmp_path / f"j{j}", "--shard-size", "256", "-j", j, "-q"))
    assert len(manifest(tmp_path / "j1")["shards"]) > 1  # several tasks ran
    a, b = shard_bytes(tmp_path / "j1"), shard_bytes(tmp_path / "j2")
    assert a == b
    assert [r["id"] for r in read_rows(tmp_path / "j2")] == [f"{n}:{i}" for n, i, _ in raw_records(sample_raw)]


# ---- formats -------------------------------------------------------------------------------

DOCS = [{"text": f"document {i} \u00e9\u4e2d\U0001F600 \"q\"\n", "n": i} for i in range(7)]


def _check_docs(out: Path, name: str) -> None:
    rows = read_rows(out)
    assert [r["id"] for r in rows] == [f"{name}:{i}" for i in range(len(DOCS))]
    assert [r["text"] for r in rows] == [d["text"] for d in DOCS]
    assert [r["n"] for r in rows] == [d["n"] for d in DOCS]


@pytest.mark.parametrize("suffix", ["jsonl", "jsonl.gz", "jsonl.zst", "jsonl.bz2", "ndjson"])
def test_jsonl_formats(tmp_path, suffix):
    data = "".join(json.dumps(d) + "\n" for d in DOCS).encode()
    compress = {"gz": gzip.compress, "zst": zstandard.ZstdCompressor().compress, "bz2": bz2.compress}
    ext = suffix.rsplit(".", 1)[-1]
    src = tmp_path / f"docs.{suffix}"
    src.write_bytes(compress[ext](data) if ext in compress else data)
    ok(run("ingest", src, tmp_path / "o", "-j", "1", "-q"))
    _check_docs(tmp_path / "o", src.name)


def test_txt_one_document_per_line(tmp_path):
    src = tmp_path / "wiki.txt"
    src.write_bytes(b"first line\r\n\r\nsecond \xc3\xa9\n\nthird\r\n\nlast without newline")
    r = ok(run("ingest", src, tmp_path / "o", "-j", "1", "--json"))
    rows = read_rows(tmp_path / "o")
    assert [r_["text"] for r_ in rows] == ["first line", "second \u00e9", "third", "last without newline"]
    assert [r_["id"] for r_ in rows] == [f"wiki.txt:{i}" for i in range(4)]
    m = manifest(tmp_path / "o")
    assert m["counters"].get("blank_lines") == 3
    assert m["totals"]["rows_in"] == 4 and m["totals"]["rows_rejected"] == 0
    assert json.loads(r.stdout)["rows_out"] == 4


def test_format_files_one_document_per_file(tmp_path):
    books = tmp_path / "books"
    (books / "sub").mkdir(parents=True)
    (books / "a.md").write_text("Chapter 1\n\nIt was a dark night.\n", encoding="utf-8")
    (books / "b.md").write_text("second book, no newline \U0001F600", encoding="utf-8")
    (books / "sub" / "c").write_bytes(b"third\r\nbook\r\n")
    ok(run("ingest", books, tmp_path / "o", "--format", "files", "-j", "1", "-q"))
    rows = read_rows(tmp_path / "o")
    assert [(r["id"], r["text"]) for r in rows] == [
        ("a.md:0", "Chapter 1\n\nIt was a dark night.\n"),
        ("b.md:0", "second book, no newline \U0001F600"),
        ("sub/c:0", "third\r\nbook\r\n"),
    ]


def test_parquet_input_with_text_and_id_fields(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    t = pa.table({
        "doc_id": ["a", "b", "c"],
        "content": pa.array(["alpha", "beta \u00e9", "gamma"], pa.large_string()),
        "score": [0.5, 1.0, 2.5],
    })
    pq.write_table(t, src / "x.parquet")
    ok(run("ingest", src, tmp_path / "o", "--text-field", "content", "--id-field", "doc_id", "-j", "1", "-q"))
    schema = pq.read_schema(tmp_path / "o" / "part-00000.parquet")
    assert schema.names == ["id", "text", "score"]
    assert schema.field("text").type == pa.string() and schema.field("score").type == pa.float64()
    assert read_rows(tmp_path / "o") == [
        {"id": "a", "text": "alpha", "score": 0.5},
        {"id": "b", "text": "beta \u00e9", "score": 1.0},
        {"id": "c", "text": "gamma", "score": 2.5},
    ]


def test_stdin(tmp_path):
    data = "".join(json.dumps(d) + "\n" for d in DOCS).encode()
    p = curate_proc("ingest", "-", tmp_path / "o", "-q", input=data)
    assert p.returncode == 0, p.stderr.decode()
    _check_docs(tmp_path / "o", "stdin")


# ---- fields --------------------------------------------------------------------------------

TYPED = [
    {"text": "a", "n": 1, "f": 1.5, "b": True, "tags": ["x", "y"], "meta": {"k": "v", "w": 1}, "s": "one"},
    {"text": "b", "n": -2, "f": None, "b": False, "tags": [], "meta": {"k": None, "w": 2}, "s": None},
]


def test_extra_fields_kept_with_their_types(tmp_path):
    src = write_jsonl(tmp_path / "t.jsonl", TYPED)
    r = ok(run("ingest", src, tmp_path / "o", "-j", "1"))
    assert "warning" not in r.stderr
    schema = pq.read_schema(tmp_path / "o" / "part-00000.parquet")
    assert schema.names == ["id", "text", "n", "f", "b", "tags", "meta", "s"]
    assert schema.field("n").type == pa.int64()
    assert schema.field("f").type == pa.float64()
    assert schema.field("b").type == pa.bool_()
    assert schema.field("tags").type == pa.list_(pa.string())
    assert schema.field("meta").type == pa.struct([("k", pa.string()), ("w", pa.int64())])
    rows = read_rows(tmp_path / "o")
    assert [{k: v for k, v in r_.items() if k != "id"} for r_ in rows] == TYPED


def test_fields_keeps_only_the_named_ones(sample_raw, tmp_path):
    r = ok(run("ingest", sample_raw / "docs-04.jsonl", tmp_path / "o", "--fields", "domain", "-j", "1"))
    assert pq.read_schema(tmp_path / "o" / "part-00000.parquet").names == ["id", "text", "domain"]
    assert "warning" not in r.stderr  # fields left out on purpose are not "dropped"
    rows = read_rows(tmp_path / "o")
    assert [r_["domain"] for r_ in rows] == [rec["domain"] for n, _, rec in raw_records(sample_raw) if n == "docs-04.jsonl"]


# ---- manifest, markers, --json -------------------------------------------------------------


def test_manifest_markers_and_work_dir(tmp_path):
    recs = [{"text": f"doc {i}"} for i in range(10)] + [{"text": "  "}, {"text": None}]
    src = write_jsonl(tmp_path / "in.jsonl", recs)
    out = tmp_path / "o"
    ok(run("ingest", src, out, "--shard-size", "3", "-j", "1", "-q"))
    m = manifest(out)
    assert m["stage"] == "ingest"
    assert m["curate_version"] == curate.__version__
    assert m["params"]["shard_rows"] == 3 and m["params"]["text_field"] == "text"
    t = m["totals"]
    assert (t["rows_in"], t["rows_out"], t["rows_rejected"]) == (12, 10, 2)
    assert t["rows_in"] == t["rows_out"] + t["rows_rejected"]
    assert t["bytes_in"] == src.stat().st_size
    assert sum(s["rows_out"] for s in m["shards"]) == t["rows_out"]
    assert sum(s["rows_in"] for s in m["shards"]) == t["rows_in"]
    assert [o for s in m["shards"] for o in s["outputs"]] == parts(out)
    assert sum(pq.ParquetFile(out / n).metadata.num_rows for n in parts(out)) == t["rows_out"]
    assert m["counters"]["empty_text"] == 2
    assert (out / "_SUCCESS").is_file()
    assert not (out / "_work").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temp files left

    ok(run("ingest", src, tmp_path / "kept", "--shard-size", "3", "--keep-work", "-j", "1", "-q"))
    assert (tmp_path / "kept" / "_work").is_dir()
    assert (tmp_path / "kept" / "_SUCCESS").is_file()
    assert shard_bytes(tmp_path / "kept") == shard_bytes(out)


def test_json_summary_alone_on_stdout(sample_raw, tmp_path):
    r = ok(run("ingest", sample_raw, tmp_path / "o", "--json", "-j", "1"))
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    s = json.loads(lines[0])
    assert s["stage"] == "ingest" and s["complete"] is True
    assert (s["rows_in"], s["rows_out"], s["rows_rejected"]) == (N, N, 0)
    assert "wrote" in r.stderr  # the human lines went to stderr


def test_json_with_stdout_output_is_a_usage_error(sample_raw):
    r = run("ingest", sample_raw, "-", "--json")
    assert r.exit_code == 2
    assert r.stdout == ""


# ---- input columns, text types, error locations --------------------------------------------


def _fails(r, code: int, *needles: str) -> str:
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "hint:" in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
    return r.stderr


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_an_input_id_column_that_is_not_the_id_is_warned_about_once(tmp_path, fmt):
    rows = [{"id": "user-7", "text": "doc one"}, {"id": "user-9", "text": "doc two"}]
    src = tmp_path / f"userids.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), src)
    else:
        write_jsonl(src, rows)
    r = ok(run("ingest", src, tmp_path / "o", "-j", "1", "-q"))
    assert r.stderr.count("warning") == 1, r.stderr  # one clear warning, not a 'dropped field' one too
    assert "'id' column" in r.stderr and "--id-field id" in r.stderr
    assert [x["id"] for x in read_rows(tmp_path / "o")] == [f"{src.name}:0", f"{src.name}:1"]
    ok(run("ingest", src, tmp_path / "kept", "--id-field", "id", "-j", "1", "-q"))
    assert [x["id"] for x in read_rows(tmp_path / "kept")] == ["user-7", "user-9"]


def test_input_without_id_column_gets_no_warning(tmp_path):
    src = tmp_path / "noid.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "doc_id": ["x", "y"]}), src)
    r = ok(run("ingest", src, tmp_path / "o", "-j", "1", "-q"))
    assert "warning" not in r.stderr


@pytest.mark.parametrize("layout", ["dictionary", "string_view", "large_string", "binary_view"])
def test_parquet_text_of_any_string_layout_is_read(tmp_path, layout):
    texts = ["a b c", None, "d \u00e9 f"]
    col = {
        "dictionary": pa.array(texts).dictionary_encode(),  # a pandas categorical
        "string_view": pa.array(texts, pa.string_view()),
        "large_string": pa.array(texts, pa.large_string()),
        "binary_view": pa.array([t.encode() if t else None for t in texts], pa.binary_view()),
    }[layout]
    src = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": col}), src)
    ok(run("ingest", src, tmp_path / "o", "-j", "1", "-q"))
    assert pq.read_schema(tmp_path / "o" / "part-00000.parquet").field("text").type == pa.string()
    assert [(x["id"], x["text"]) for x in read_rows(tmp_path / "o")] == [("t.parquet:0", "a b c"), ("t.parquet:2", "d \u00e9 f")]


def test_parquet_files_may_differ_in_text_layout(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    pq.write_table(pa.table({"text": ["a"]}), src / "a.parquet")
    pq.write_table(pa.table({"text": pa.array(["b"]).dictionary_encode()}), src / "b.parquet")
    ok(run("ingest", src, tmp_path / "o", "-j", "1", "-q"))
    assert [x["text"] for x in read_rows(tmp_path / "o")] == ["a", "b"]


def test_parquet_text_of_a_non_text_type_names_the_text_columns(tmp_path):
    src = tmp_path / "num.parquet"
    pq.write_table(pa.table({"text": [1, 2], "body": ["x", "y"]}), src)
    err = _fails(run("ingest", src, tmp_path / "o", "-j", "1"), 1, "num.parquet", "'text' has type int64")
    assert "--text-field" in err and "body" in err.split("hint:")[1]
    only = tmp_path / "only.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), only)
    err = _fails(run("ingest", only, tmp_path / "o2", "-j", "1"), 1, "only.parquet", "'text' has type int64")
    assert "--text-field" not in err  # no other column to point to: convert this one


def test_parquet_binary_text_not_utf8_names_row_group_and_row(tmp_path):
    src = tmp_path / "bin.parquet"
    values = [b"good", b"fine", b"ok", b"bad \xff text", b"more"]
    pq.write_table(pa.table({"text": pa.array(values, pa.binary())}), src, row_group_size=2)
    _fails(run("ingest", src, tmp_path / "o", "-j", "1"), 1, "bin.parquet", "row group 1, row 1", "row 3 of the file",
           "not valid UTF-8", "at byte 4")
    assert not (tmp_path / "o" / "_SUCCESS").exists()


def test_mixed_formats_name_a_file_of_each_and_hint_a_glob(tmp_path):
    src = tmp_path / "crawl"
    src.mkdir()
    write_jsonl(src / "a.jsonl", DOCS)
    write_jsonl(src / "b.jsonl", DOCS)
    (src / "README.txt").write_text("about this crawl\n")
    _fails(run("ingest", src, tmp_path / "o"), 2, "a.jsonl", "README.txt", f"'{src}/*.jsonl'", "--format")
    ok(run("ingest", f"{src}/*.jsonl", tmp_path / "jl", "-j", "1", "-q"))
    assert len(read_rows(tmp_path / "jl")) == 2 * len(DOCS)


def test_txt_lone_cr_is_not_a_line_break(tmp_path):
    # Deliberate: lines end at LF (as for wc -l, grep and line numbers in errors); CRLF loses its CR.
    src = tmp_path / "cr.txt"
    src.write_bytes(b"one\rtwo\r\nthree\n")
    ok(run("ingest", src, tmp_path / "o", "-j", "1", "-q"))
    assert [x["text"] for x in read_rows(tmp_path / "o")] == ["one\rtwo", "three"]


def test_parquet_id_field_not_utf8_or_not_castable_is_a_clean_error(tmp_path):
    src = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"k": pa.array([b"a", b"\xff"]), "s": [{"x": 1}, {"x": 2}], "text": ["a", "b"]}), src)
    _fails(run("ingest", src, tmp_path / "o", "--id-field", "k", "-j", "1"), 1, "ids.parquet", "row group 0, row 1", "'k'")
    _fails(run("ingest", src, tmp_path / "o2", "--id-field", "s", "-j", "1"), 1, "ids.parquet", "'s' has type struct")
