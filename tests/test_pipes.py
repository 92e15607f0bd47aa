"""'-' pipes: Arrow IPC between stages, JSON Lines out of export, and `| head` that ends early."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq

from tests.conftest import curate_proc, read_rows, run

CURATE = f"{sys.executable} -m curate"


def _sh(cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, timeout=300)


def test_ingest_to_stdout_into_export_from_stdin(sample_raw, sample_dataset, tmp_path):
    out = tmp_path / "out"
    r = _sh(f"{CURATE} ingest {sample_raw} - --id-field doc_id | {CURATE} export - {out} --format parquet -q")
    assert r.returncode == 0, r.stderr.decode()
    assert read_rows(out) == read_rows(sample_dataset)
    m = json.loads((out / "_manifest.json").read_text())
    # The lineage travels inside the Arrow stream's schema metadata.
    assert [a["stage"] for a in m["lineage"]] == ["ingest"]
    assert m["lineage"][0]["params"]["id_field"] == "doc_id"
    assert m["input"]["uri"] == "-"


def test_three_stage_pipe_preserves_rows(sample_dataset, tmp_path):
    out = tmp_path / "o.jsonl"
    r = _sh(f"{CURATE} export {sample_dataset} - --format jsonl > {out}")
    assert r.returncode == 0, r.stderr.decode()
    lines = out.read_text().splitlines()
    assert len(lines) == 2539
    assert [json.loads(x) for x in lines] == read_rows(sample_dataset)


def test_ingest_jsonl_from_stdin(sample_raw, tmp_path):
    data = (sample_raw / "docs-04.jsonl").read_bytes()
    r = curate_proc("ingest", "-", tmp_path / "o", "--id-field", "doc_id", "-q", input=data)
    assert r.returncode == 0, r.stderr.decode()
    rows = read_rows(tmp_path / "o")
    assert [x["id"] for x in rows] == [json.loads(x)["doc_id"] for x in data.splitlines()]
    assert set(rows[0]) == {"id", "text", "domain", "source"}


def test_head_and_info_read_a_stream(sample_dataset):
    r = _sh(f"{CURATE} export {sample_dataset} - --format jsonl | {CURATE} ingest - - | {CURATE} head - -n 2 --format jsonl")
    assert r.returncode == 0, r.stderr.decode()
    assert len(r.stdout.splitlines()) == 2
    r = _sh(f"{CURATE} ingest {sample_dataset}/part-00000.parquet - | {CURATE} info - --json")
    assert r.returncode == 0, r.stderr.decode()
    assert json.loads(r.stdout)["rows"] == 256


def test_pipe_into_head_exits_cleanly(sample_dataset):
    # The reader leaves after 3 lines: curate must exit 0 without a traceback.
    r = _sh(f"{CURATE} export {sample_dataset} - --format jsonl | head -n 3; echo \"rc=${{PIPESTATUS[0]}}\" >&2")
    err = r.stderr.decode()
    assert "rc=0" in err, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert len(r.stdout.splitlines()) == 3


def test_table_output_into_head_exits_cleanly(sample_dataset):
    # rich's own broken-pipe handling exits 1 in silence; a reader leaving early is not an error
    r = _sh(f"{CURATE} head {sample_dataset} -n 500 | head -n 1; echo \"rc=${{PIPESTATUS[0]}}\" >&2")
    err = r.stderr.decode()
    assert "rc=0" in err, err
    assert "Traceback" not in err and len(r.stdout.splitlines()) == 1


def test_a_stream_of_no_rows_keeps_its_columns(sample_dataset, tmp_path):
    out = tmp_path / "out"
    r = _sh(f"{CURATE} filter {sample_dataset} - -q --where 'len(text) > 1e9' "
            f"| {CURATE} score - - -q --signals c4 | {CURATE} filter - {out} -q --where 'len(text) > 0'")
    assert r.returncode == 0, r.stderr.decode()
    (shard,) = out.glob("part-*.parquet")
    names = pq.read_schema(shard).names
    assert names[:4] == ["id", "text", "domain", "source"] and "c4_sentences" in names


def test_stdin_that_is_not_arrow_is_a_clear_error(tmp_path):
    r = curate_proc("export", "-", tmp_path / "o", input=b'{"text": "not arrow"}\n')
    assert r.returncode == 1
    err = r.stderr.decode()
    assert "stdin" in err and "Arrow IPC stream" in err and "hint:" in err and "Traceback" not in err


def test_data_on_stdout_only_when_asked(sample_dataset, tmp_path):
    r = run("export", sample_dataset, tmp_path / "o", "-q")
    assert r.exit_code == 0 and r.stdout == ""
    r = run("export", sample_dataset, tmp_path / "o2")
    assert r.stdout == "" and "wrote" in r.stderr
    r = run("export", sample_dataset, "-", "--json")
    assert r.exit_code == 2  # data and the summary cannot share stdout
