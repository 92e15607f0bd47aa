"""Bad input and conflicting outputs: every failure is one clean message (file, line or row group,
and a hint), the documented exit code, no traceback, the input untouched and no _SUCCESS written."""

from __future__ import annotations

import gzip
import json
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tests.conftest import curate_proc, read_rows, run


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under path (or the file itself), by relative name, with its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def fails(args: list, code: int, *needles: str, inputs: list[Path] = (), out: Path | None = None, hint: bool = True):
    """Run the CLI and check a clean failure; returns stderr."""
    before = {p: snapshot(p) for p in inputs}
    r = run(*args)
    err = r.stderr
    assert r.exit_code == code, (r.exit_code, r.stdout, err)
    assert "Traceback" not in err, err
    assert err.strip(), "no message on stderr"
    for n in needles:
        assert n in err, (n, err)
    if hint:
        assert "hint:" in err, err
    for p in inputs:
        assert snapshot(p) == before[p], f"{p} was modified"
    if out is not None:
        assert not (out / "_SUCCESS").exists()
    return err


def succeeds(*args):
    r = run(*args)
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def manifest(out: Path) -> dict:
    return json.loads((out / "_manifest.json").read_text())


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(ln + b"\n" for ln in lines))
    return path


GOOD = [b'{"text": "first document"}', b'{"text": "second document"}']


# ---- JSON Lines ----------------------------------------------------------------------------


def test_missing_text_field_in_jsonl(tmp_path):
    src = write_lines(tmp_path / "notext.jsonl", [b'{"body": "a", "lang": "en"}', b'{"body": "b", "lang": "fr"}'])
    fails(["ingest", src, tmp_path / "o"], 1, "notext.jsonl", "'text'", "body, lang", "--text-field",
          inputs=[src], out=tmp_path / "o")


def test_missing_text_column_in_parquet(tmp_path):
    src = tmp_path / "notext.parquet"
    pq.write_table(pa.table({"doc_id": ["a"], "body": ["x"]}), src)
    err = fails(["ingest", src, tmp_path / "o"], 1, "notext.parquet", "'text'", "doc_id, body", "--text-field",
                inputs=[src], out=tmp_path / "o")
    assert "column" in err


@pytest.mark.parametrize("line", [1, 3])
def test_text_of_the_wrong_type(tmp_path, line):
    lines = GOOD + [b'{"text": "third"}']
    lines.insert(line - 1, b'{"text": 12345}')
    src = write_lines(tmp_path / "num.jsonl", lines)
    err = fails(["ingest", src, tmp_path / "o"], 1, f"num.jsonl:{line}", "--on-bad-record skip", inputs=[src], out=tmp_path / "o")
    assert "text" in err and "int" in err


def test_invalid_json_at_line(tmp_path):
    src = write_lines(tmp_path / "bad.jsonl", GOOD + [b'{"text": "unterminated', b'{"text": "ok"}'])
    err = fails(["ingest", src, tmp_path / "o"], 1, "bad.jsonl:3", "invalid JSON", inputs=[src], out=tmp_path / "o")
    assert "--on-bad-record" in err


@pytest.mark.parametrize("bad, what, line", [
    (b"\x0c", "invalid JSON", 1),  # a form feed: whitespace to Python, not to pyarrow's reader
    (b"\x0c", "invalid JSON", 3),
    (b"[1, 2]", "list", 1),
    (b"[1, 2]", "list", 3),
    # a field changing type inside the first block (not on line 1: the first record sets the type)
    (b'{"text": "x", "n": "seven"}', "'n'", 3),
    (b'{"text": "x", "text": "y"}', "", 1),  # a key given twice
    (b'{"text": "x", "text": "y"}', "", 3),
])
def test_other_bad_lines_are_named(tmp_path, bad, what, line):
    lines = [b'{"text": "a", "n": 1}', b'{"text": "b", "n": 2}', b'{"text": "c", "n": 3}']
    lines.insert(line - 1, bad)
    src = write_lines(tmp_path / "bad.jsonl", lines)
    fails(["ingest", src, tmp_path / "o"], 1, f"bad.jsonl:{line}", what, inputs=[src], out=tmp_path / "o")
    succeeds("ingest", src, tmp_path / "s", "--on-bad-record", "skip", "-j", "1", "-q")
    ords = [i for i in range(4) if i != line - 1]  # the set-aside line keeps its ordinal
    assert [(r["id"], r["n"]) for r in read_rows(tmp_path / "s")] == [(f"bad.jsonl:{o}", n) for o, n in zip(ords, (1, 2, 3), strict=True)]


def test_non_utf8_in_jsonl(tmp_path):
    src = write_lines(tmp_path / "latin1.jsonl", [GOOD[0], b'{"text": "caf\xe9 au lait"}', GOOD[1]])
    fails(["ingest", src, tmp_path / "o"], 1, "latin1.jsonl:2", "UTF-8", inputs=[src], out=tmp_path / "o")


def test_non_utf8_in_txt(tmp_path):
    src = write_lines(tmp_path / "latin1.txt", [b"fine", b"", b"caf\xe9", b"also fine"])
    fails(["ingest", src, tmp_path / "o"], 1, "latin1.txt:3", "UTF-8", inputs=[src], out=tmp_path / "o")


def test_skip_in_txt_replaces_bad_bytes_and_counts_them(tmp_path):
    src = write_lines(tmp_path / "latin1.txt", [b"fine", b"caf\xe9", b"na\xefve \xff"])
    succeeds("ingest", src, tmp_path / "o", "--on-bad-record", "skip", "-j", "1")
    assert [r["text"] for r in read_rows(tmp_path / "o")] == ["fine", "caf\ufffd", "na\ufffdve \ufffd"]
    assert manifest(tmp_path / "o")["counters"]["utf8_replaced"] == 2


def test_skip_bad_records_into_rejects(tmp_path):
    bad_json, bad_utf8, bad_type = b'{"text": "oops', b'{"text": "caf\xe9"}', b'{"text": 7}'
    lines = [GOOD[0], bad_json, GOOD[1], bad_utf8, b'{"text": "fifth"}', bad_type, b'{"text": "last"}']
    src = write_lines(tmp_path / "mixed.jsonl", lines)
    before = snapshot(src)
    out, rej = tmp_path / "o", tmp_path / "rej"
    succeeds("ingest", src, out, "--on-bad-record", "skip", "--rejects", rej, "-j", "1")
    assert snapshot(src) == before
    kept = read_rows(out)
    assert [r["text"] for r in kept] == ["first document", "second document", "fifth", "last"]
    # set-aside lines keep their place: ids are record ordinals in the file
    assert [r["id"] for r in kept] == ["mixed.jsonl:0", "mixed.jsonl:2", "mixed.jsonl:4", "mixed.jsonl:6"]
    m = manifest(out)
    assert m["counters"]["bad_records"] == 3
    assert m["totals"]["rows_in"] == 7 == m["totals"]["rows_out"] + m["totals"]["rows_rejected"]
    assert (rej / "_SUCCESS").is_file()
    rows = read_rows(rej)
    assert [r["id"] for r in rows] == ["mixed.jsonl:1", "mixed.jsonl:3", "mixed.jsonl:5"]
    assert [r["raw"] for r in rows] == [ln.decode("utf-8", "replace") for ln in (bad_json, bad_utf8, bad_type)]
    assert all(r["reject_reason"].startswith("bad_record") for r in rows)
    assert ["line 2" in rows[0]["reject_reason"], "line 4" in rows[1]["reject_reason"]] == [True, True]


# ---- compressed input ----------------------------------------------------------------------

def _corpus_bytes() -> bytes:
    rng = random.Random(1)
    return b"".join(json.dumps({"text": f"doc {i} " + "".join(rng.choice("abcdef ") for _ in range(200))}).encode() + b"\n"
                    for i in range(3000))


@pytest.mark.parametrize("suffix", ["gz", "zst"])
def test_truncated_compressed_file(tmp_path, suffix):
    data = _corpus_bytes()
    packed = gzip.compress(data) if suffix == "gz" else zstandard.ZstdCompressor().compress(data)
    src = tmp_path / f"cut.jsonl.{suffix}"
    src.write_bytes(packed[: len(packed) // 2])
    err = fails(["ingest", src, tmp_path / "o", "-j", "1"], 1, f"cut.jsonl.{suffix}", inputs=[src], out=tmp_path / "o")
    assert "truncated" in err.lower()


def test_truncated_gz_in_a_real_process(tmp_path):
    packed = gzip.compress(_corpus_bytes())
    src = tmp_path / "cut.jsonl.gz"
    src.write_bytes(packed[: len(packed) // 2])
    p = curate_proc("ingest", src, tmp_path / "o")
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert "cut.jsonl.gz" in err and "hint:" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "_SUCCESS").exists()


# ---- broken Parquet ------------------------------------------------------------------------


def _real_parquet(path: Path, n: int = 2000) -> Path:
    t = pa.table({"id": [f"d{i}" for i in range(n)], "text": [f"document number {i} " * 5 for i in range(n)]})
    pq.write_table(t, path)
    return path


def _broken(tmp_path: Path, kind: str) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    p = d / "part-00000.parquet"
    if kind == "random":
        p.write_bytes(random.Random(0).randbytes(4000))
    else:
        whole = _real_parquet(tmp_path / "whole.parquet").read_bytes()
        p.write_bytes(whole[: len(whole) // 2])
    return d


@pytest.mark.parametrize("kind", ["random", "truncated"])
@pytest.mark.parametrize("command", ["ingest", "export", "info", "head"])
def test_corrupt_parquet(tmp_path, kind, command):
    d = _broken(tmp_path, kind)
    out = tmp_path / "o"
    args = {"ingest": ["ingest", d, out], "export": ["export", d, out], "info": ["info", d], "head": ["head", d]}[command]
    err = fails(args, 1, "part-00000.parquet", inputs=[d], out=out)
    assert "Parquet" in err


def test_corrupt_row_group_is_named(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    p = d / "part-00000.parquet"
    t = pa.table({"id": [str(i) for i in range(20000)], "text": [f"doc {i} " * 20 for i in range(20000)]})
    pq.write_table(t, p, row_group_size=5000)
    col = pq.ParquetFile(p).metadata.row_group(2).column(1)
    b = bytearray(p.read_bytes())
    for i in range(col.data_page_offset + 50, col.data_page_offset + col.total_compressed_size - 50):
        b[i] = (b[i] * 7 + 13) & 0xFF
    p.write_bytes(bytes(b))
    for args in (["export", d, tmp_path / "e"], ["ingest", p, tmp_path / "i"]):
        fails(args + ["-j", "1"], 1, "part-00000.parquet", "row group 2", inputs=[d])


# ---- empty input ---------------------------------------------------------------------------


def test_empty_file_warns_and_counts(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_bytes(b"")
    write_lines(d / "b.jsonl", [b'{"text": "only doc", "lang": "en"}'])
    r = succeeds("ingest", d, tmp_path / "o", "-j", "1")
    assert "warning" in r.stderr and "a.jsonl" in r.stderr and "empty" in r.stderr
    assert read_rows(tmp_path / "o") == [{"id": "b.jsonl:0", "text": "only doc", "lang": "en"}]  # fields of the next file
    assert manifest(tmp_path / "o")["counters"]["empty_files"] == 1


def test_all_files_empty_gives_an_empty_dataset(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_bytes(b"")
    (d / "b.jsonl").write_bytes(b"")
    out = tmp_path / "o"
    r = succeeds("ingest", d, out, "-j", "1")
    assert r.stderr.count("empty input file") == 2
    assert sorted(p.name for p in out.glob("*.parquet")) == ["part-00000.parquet"]
    t = pq.read_table(out / "part-00000.parquet")
    assert t.num_rows == 0 and t.schema.names == ["id", "text"]
    assert (out / "_SUCCESS").is_file()
    assert manifest(out)["totals"]["rows_out"] == 0
    succeeds("export", out, tmp_path / "e", "--format", "jsonl")
    assert (tmp_path / "e" / "part-00000.jsonl").read_bytes() == b""


def test_null_empty_and_blank_text_are_rejected(tmp_path):
    src = write_lines(tmp_path / "t.jsonl", [b'{"text": "real"}', b'{"text": null}', b'{"text": ""}',
                                             b'{"text": " \\n\\t "}', b'{"text": "also real"}'])
    out, rej = tmp_path / "o", tmp_path / "rej"
    succeeds("ingest", src, out, "--rejects", rej, "-j", "1")
    assert [r["text"] for r in read_rows(out)] == ["real", "also real"]
    m = manifest(out)
    assert m["counters"]["empty_text"] == 3
    assert (m["totals"]["rows_in"], m["totals"]["rows_out"], m["totals"]["rows_rejected"]) == (5, 2, 3)
    rows = read_rows(rej)
    assert [(r["id"], r["reject_reason"]) for r in rows] == [("t.jsonl:1", "empty_text"), ("t.jsonl:2", "empty_text"),
                                                            ("t.jsonl:3", "empty_text")]


def test_50mb_document_round_trips(tmp_path):
    chunk = "".join(chr(c) for c in range(0x20, 0x7F)) + '\n\t"\\ \u00e9\u4e2d\U0001F600\x01'
    big = (chunk * (50_000_000 // len(chunk.encode("utf-8")) + 1))
    src = tmp_path / "big.jsonl"
    with src.open("w", encoding="utf-8") as f:
        f.write(json.dumps({"text": "small", "n": 1}) + "\n")
        f.write(json.dumps({"text": big, "n": 2}, ensure_ascii=False) + "\n")
        f.write(json.dumps({"text": "after", "n": 3}) + "\n")
    assert src.stat().st_size > 50_000_000
    succeeds("ingest", src, tmp_path / "o", "-j", "1", "-q")
    rows = read_rows(tmp_path / "o")
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert rows[1]["text"] == big
    del rows
    succeeds("export", tmp_path / "o", tmp_path / "e", "--format", "jsonl", "-j", "1", "-q")
    with (tmp_path / "e" / "part-00000.jsonl").open(encoding="utf-8") as f:
        back = [json.loads(line) for line in f]
    assert [b["n"] for b in back] == [1, 2, 3]
    assert back[1]["text"] == big


# ---- schemas across files ------------------------------------------------------------------


def test_export_of_mixed_schemas_names_the_shard_and_column(tmp_path):
    d = tmp_path / "mixed"
    d.mkdir()
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x", "y"], "n": pa.array([1, 2], pa.int64())}), d / "part-00000.parquet")
    pq.write_table(pa.table({"id": ["c"], "text": ["z"], "n": pa.array(["3"], pa.string())}), d / "part-00001.parquet")
    for fmt in ("jsonl", "parquet"):
        out = tmp_path / f"o-{fmt}"
        err = fails(["export", d, out, "--format", fmt, "-j", "1"], 1, "part-00001.parquet", "'n'", inputs=[d], out=out)
        assert "part-00000.parquet" not in err.split(":")[0]


def test_ingest_unifies_promotable_parquet_schemas(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    pq.write_table(pa.table({"text": ["a", "b"], "lang": ["en", "fr"], "score": pa.array([1, 2], pa.int32())}), d / "a.parquet")
    pq.write_table(pa.table({"text": ["c"], "score": pa.array([3], pa.int64())}), d / "b.parquet")
    succeeds("ingest", d, tmp_path / "o", "-j", "1")
    schema = pq.read_schema(tmp_path / "o" / "part-00000.parquet")
    assert schema.names == ["id", "text", "lang", "score"]
    assert schema.field("score").type == pa.int64()
    assert read_rows(tmp_path / "o") == [
        {"id": "a.parquet:0", "text": "a", "lang": "en", "score": 1},
        {"id": "a.parquet:1", "text": "b", "lang": "fr", "score": 2},
        {"id": "b.parquet:0", "text": "c", "lang": None, "score": 3},
    ]


# ---- paths ---------------------------------------------------------------------------------


def test_nonexistent_input(tmp_path):
    fails(["ingest", tmp_path / "nope.jsonl", tmp_path / "o"], 1, "nope.jsonl", "no such file", hint=False)
    fails(["export", tmp_path / "nope", tmp_path / "o"], 1, "nope", hint=False)
    assert not (tmp_path / "o").exists()


def test_nonexistent_input_has_a_hint(tmp_path):
    fails(["ingest", tmp_path / "nope.jsonl", tmp_path / "o"], 1, "nope.jsonl")


def test_glob_matching_nothing(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    write_lines(d / "a.jsonl", GOOD)
    fails(["ingest", f"{d}/*.jsonl.zst", tmp_path / "o"], 1, "*.jsonl.zst", "no files match", inputs=[d])
    assert not (tmp_path / "o").exists()


def test_glob_under_a_missing_directory(tmp_path):
    fails(["ingest", f"{tmp_path}/missing/*.jsonl", tmp_path / "o"], 1, "missing")


def test_output_equal_to_input_is_refused(tmp_path, sample_dataset):
    d = tmp_path / "in"
    d.mkdir()
    write_lines(d / "a.jsonl", GOOD)
    fails(["ingest", d, d], 1, "overwrite the input", inputs=[d])
    fails(["ingest", d, d, "--overwrite"], 1, "overwrite the input", inputs=[d])
    fails(["ingest", f"{d}/*.jsonl", d], 1, "overwrite the input", inputs=[d])
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset, ds)
    fails(["export", ds, ds, "--overwrite"], 1, "overwrite the input", inputs=[ds])


def test_foreign_output_directory_is_never_deleted(tmp_path):
    src = write_lines(tmp_path / "a.jsonl", GOOD)
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    err = fails(["ingest", src, out], 1, "not an unfinished curate output", inputs=[src, out], out=out)
    assert str(out.name) in err
    # --overwrite deletes only what curate wrote: a mistyped OUT (a home directory) survives
    fails(["ingest", src, out, "--overwrite"], 1, "--overwrite refused", "notes.txt", inputs=[src, out], out=out)
    f = tmp_path / "file"
    f.write_text("x")
    fails(["ingest", src, f, "--overwrite"], 1, "is a file", inputs=[src, f])
    (out / "notes.txt").unlink()
    succeeds("ingest", src, out, "-j", "1")
    succeeds("ingest", src, out, "--overwrite", "-j", "1", "--shard-size", "1")
    assert len(read_rows(out)) == 2 and (out / "_SUCCESS").is_file()


def test_output_nested_in_its_input_or_rejects_in_the_output_is_refused(tmp_path, sample_dataset):
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset, ds)
    # a directory is read recursively: an output inside it would be read back by the next run
    fails(["dedup", "exact", ds, ds / "dedup"], 1, "inside", inputs=[ds])
    assert not (ds / "dedup").exists()
    out = tmp_path / "o"
    for rej in (out, out / "rejects"):
        fails(["dedup", "exact", ds, out, "--rejects", rej], 2, "separate directories", inputs=[ds])
    fails(["dedup", "exact", ds, out / "sub", "--rejects", out], 2, "separate directories", inputs=[ds])
    assert not out.exists()


def test_rejects_directory_gets_the_outputs_protection(tmp_path, sample_dataset):
    """--rejects never replaces another dataset or writes among someone's files."""
    victim = tmp_path / "victim"
    succeeds("dedup", "exact", sample_dataset, victim, "-j", "1")
    before = snapshot(victim)
    rej = ["dedup", "paragraphs", sample_dataset, tmp_path / "o", "--rejects"]
    fails(rej + [victim], 1, "--rejects", "different command", inputs=[victim], out=tmp_path / "o")
    assert snapshot(victim) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    fails(rej + [mine], 1, "--rejects", "notes.txt", inputs=[mine])
    f = tmp_path / "file"
    f.write_text("x")
    fails(rej + [f], 1, "--rejects", "is a file", inputs=[f])
    # --overwrite replaces a dataset curate wrote, as it does for OUT
    succeeds(*rej, victim, "--overwrite", "-j", "1")
    assert manifest(victim)["kind"] == "rejects"
    # a rerun of the same command is a no-op; another --rejects place is another run
    assert "nothing to do" in succeeds(*rej, victim, "-j", "1").stderr
    fails(rej + [tmp_path / "elsewhere"], 1, "different command", "--overwrite", out=None)


def test_overwrite_clears_the_rejects_of_an_unfinished_run(tmp_path, sample_dataset):
    out, rej = tmp_path / "o", tmp_path / "rej"
    succeeds("dedup", "exact", sample_dataset, out, "--rejects", rej, "-j", "1", "--keep-work")
    (out / "_SUCCESS").unlink()
    (rej / "_SUCCESS").unlink()
    (rej / "_manifest.json").unlink()
    (out / "_manifest.json").unlink()  # as a kill before the end leaves it: shards, no manifests
    succeeds("dedup", "exact", sample_dataset, out, "--rejects", rej, "-j", "1", "--overwrite", "--normalize", "none")
    assert manifest(out)["params"]["normalize"] == "none" and manifest(rej)["kind"] == "rejects"


def test_incomplete_dataset_as_input(tmp_path, sample_dataset):
    inc = tmp_path / "inc"
    shutil.copytree(sample_dataset, inc)
    (inc / "_SUCCESS").unlink()
    out = tmp_path / "o"
    for args in (["export", inc, out], ["info", inc], ["head", inc], ["ingest", inc, out]):
        fails(args, 1, "inc", "incomplete", inputs=[inc], out=out)
    assert not out.exists()


def test_complete_output_from_another_command_or_the_same(tmp_path):
    src = write_lines(tmp_path / "a.jsonl", GOOD + [b'{"text": "third"}'])
    out = tmp_path / "o"
    succeeds("ingest", src, out, "-j", "1")
    before = snapshot(out)
    fails(["ingest", src, out, "--shard-size", "1"], 1, "--overwrite", inputs=[src, out])
    fails(["export", out, out], 1, inputs=[src, out])  # export into its own input
    assert snapshot(out) == before
    r = succeeds("ingest", src, out, "-j", "1")
    assert "nothing to do" in r.stderr
    assert snapshot(out) == before
    succeeds("ingest", src, out, "--shard-size", "1", "--overwrite", "-j", "1")
    assert len(list(out.glob("*.parquet"))) == 3


@pytest.mark.parametrize("workers", ["1", "2"])
def test_paragraphs_needs_no_id_column(tmp_path, workers):
    """Only exact and minhash name documents by id; paragraphs works on any text column."""
    src = tmp_path / "noid.parquet"
    pq.write_table(pa.table({"text": ["one\nshared line", "shared line\ntwo", "three"]}), src)
    succeeds("dedup", "paragraphs", src, tmp_path / "o", "-j", workers, "--min-chars", "0")
    assert [r["text"] for r in read_rows(tmp_path / "o")] == ["one\nshared line", "two", "three"]
    fails(["dedup", "exact", src, tmp_path / "e"], 1, "no 'id' column", inputs=[src])


def test_dedup_ids_must_be_strings_and_present(tmp_path):
    nulls, ints = tmp_path / "nulls.parquet", tmp_path / "ints.parquet"
    pq.write_table(pa.table({"id": pa.array(["a", None, "c"], pa.string()), "text": ["same", "same", "x"]}), nulls)
    pq.write_table(pa.table({"id": [5, 7, 9], "text": ["same", "same", "x"]}), ints)
    for mode in ("exact", "minhash"):
        fails(["dedup", mode, nulls, tmp_path / f"o{mode}"], 1, "row 1", "'id' is null", inputs=[nulls])
        fails(["dedup", mode, ints, tmp_path / f"i{mode}"], 1, "'id' has type int64", "--id-field", inputs=[ints])
    succeeds("ingest", ints, tmp_path / "ing", "--id-field", "id", "-j", "1")
    succeeds("dedup", "exact", tmp_path / "ing", tmp_path / "d", "--rejects", tmp_path / "r", "-j", "1")
    assert [r["dup_of"] for r in read_rows(tmp_path / "r")] == ["5"]


def test_a_complete_dataset_that_lost_or_gained_a_shard_is_refused(tmp_path, sample_dataset):
    ds = tmp_path / "ds"
    shutil.copytree(sample_dataset, ds)
    lost = sorted(ds.glob("part-*.parquet"))[1]
    saved = lost.read_bytes()
    lost.unlink()
    for args in (["info", ds], ["export", ds, tmp_path / "o"], ["dedup", "exact", ds, tmp_path / "d"]):
        fails(args, 1, "do not match the dataset's manifest", "1 missing", lost.name, inputs=[ds])
    lost.write_bytes(saved)
    (ds / "part-09999.parquet").write_bytes(saved)
    fails(["info", ds], 1, "1 not in it (part-09999.parquet)", inputs=[ds])
    (ds / "part-09999.parquet").unlink()
    succeeds("info", ds)
    # without its manifest the directory is plain Parquet files again, read as they are
    lost.unlink()
    (ds / "_manifest.json").unlink()
    (ds / "_SUCCESS").unlink()
    succeeds("export", ds, tmp_path / "o2", "-j", "1")


def test_an_output_that_cannot_be_created_is_a_clean_error(tmp_path, sample_dataset):
    f = tmp_path / "file"
    f.write_text("x")
    fails(["export", sample_dataset, f / "sub"], 1, "cannot create the directory", inputs=[f])


def test_shards_differing_only_in_nullability_say_so(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    strict = pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("text", pa.string(), nullable=False)])
    pq.write_table(pa.table({"id": ["a"], "text": ["x"]}, schema=strict), d / "part-00000.parquet")
    pq.write_table(pa.table({"id": ["b"], "text": ["y"]}), d / "part-00001.parquet")
    fails(["dedup", "exact", d, tmp_path / "o", "-j", "1"], 1, "schema differs",
          "column 'id' is nullable here but not nullable in", inputs=[d])


def test_score_warns_about_each_input_column_it_replaces(tmp_path):
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a"], "text": ["Some words here."], "c4_sentences": ["old"],
                             "c4_kept_lines": [1]}), src)
    r = succeeds("score", src, tmp_path / "o", "--signals", "c4", "-j", "1")
    assert "replacing the input's 'c4_sentences' column" in r.stderr
    assert "replacing the input's 'c4_kept_lines' column" in r.stderr
