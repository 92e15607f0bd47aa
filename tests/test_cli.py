"""The command line itself: help, version, option values, environment, --config, head and info."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import curate
from curate.cli import cli
from tests.conftest import SAMPLE, curate_proc, read_rows, run

DOCS04 = SAMPLE / "raw" / "docs-04.jsonl"
N04 = sum(1 for line in DOCS04.read_text(encoding="utf-8").split("\n") if line.strip())


def ok(r):
    assert r.exit_code == 0, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return r


def usage_error(r, *needles):
    assert r.exit_code == 2, (r.exit_code, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in r.stderr, (n, r.stderr)
    return r


def shards(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.parquet"))


# ---- help and version ----------------------------------------------------------------------


@pytest.mark.parametrize("name", cli.list_commands(None))
def test_every_command_has_help_with_an_example(name):
    r = ok(run(name, "--help"))
    assert "Example" in r.stdout
    assert f"curate {name}" in r.stdout
    assert "Exit codes" in r.stdout


def test_misspelt_command_gets_a_suggestion_lazy_ones_too():
    # audit, filter, ngram, score and resample are imported only when named (start-up time)
    # (a fresh process: here the test collection has imported them all already)
    for typo, name in (("filtr", "filter"), ("resamp", "resample"), ("ingst", "ingest")):
        r = curate_proc(typo)
        assert r.returncode == 2 and f"Did you mean '{name}'?" in r.stderr.decode(), (typo, r.stderr)


def test_group_help_lists_commands_and_exit_codes():
    r = ok(run("--help"))
    for name in cli.list_commands(None):
        assert f"  {name}  " in r.stdout or f"  {name} " in r.stdout, name
    assert "Exit codes" in r.stdout
    for code in ("0", "1", "2", "70", "130"):
        assert f"  {code} " in r.stdout, code


def test_help_starts_without_pyarrow_or_numpy():
    """--help of every command must be instant: no heavy import until a command runs."""
    import subprocess
    import sys

    code = ("import sys; from curate.cli import cli\n"
            "for args in (['--help'], ['dedup', 'minhash', '--help'], ['score', '--help'], ['resample', '--help'],"
            " ['audit', '--help'], ['filter', '--help']):\n"
            "    try: cli(args, prog_name='curate')\n"
            "    except SystemExit as e: assert e.code == 0, args\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'numpy', 'ray', 'kenlm', 'rich')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_version():
    r = ok(run("--version"))
    assert r.stdout.strip() == f"curate, version {curate.__version__}"
    p = curate_proc("--version")
    assert p.returncode == 0 and p.stdout.decode().strip() == f"curate, version {curate.__version__}"


# ---- option values -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["12XB", "abc", "0", "-5", "0MB", ""])
def test_bad_shard_size(tmp_path, value):
    usage_error(run("ingest", DOCS04, tmp_path / "o", "--shard-size", value), "--shard-size")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["3/2", "2/2", "1", "a/b", "0/0"])
def test_bad_task(tmp_path, value):
    usage_error(run("ingest", DOCS04, tmp_path / "o", "--task", value), "--task")
    assert not (tmp_path / "o").exists()


def test_curate_workers_env_is_read(tmp_path):
    usage_error(run("ingest", DOCS04, tmp_path / "o", env={"CURATE_WORKERS": "0"}), "CURATE_WORKERS")
    usage_error(run("export", DOCS04, tmp_path / "o", env={"CURATE_WORKERS": "many"}), "CURATE_WORKERS")
    ok(run("ingest", DOCS04, tmp_path / "o", "-q", env={"CURATE_WORKERS": "1"}))
    # the command line wins over the environment
    ok(run("ingest", DOCS04, tmp_path / "o2", "-q", "-j", "1", env={"CURATE_WORKERS": "0"}))


def test_curate_task_env_is_read(tmp_path):
    usage_error(run("ingest", DOCS04, tmp_path / "o", env={"CURATE_TASK": "3/2"}), "CURATE_TASK")


# ---- --config ------------------------------------------------------------------------------


def test_config_file_sets_defaults_and_the_command_line_wins(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[defaults]\nworkers = 1\n\n[ingest]\nshard_size = "100"\n')
    ok(run("--config", cfg, "ingest", DOCS04, tmp_path / "a", "-q"))
    assert len(shards(tmp_path / "a")) == -(-N04 // 100)
    assert json.loads((tmp_path / "a" / "_manifest.json").read_text())["params"]["shard_rows"] == 100
    ok(run("--config", cfg, "ingest", DOCS04, tmp_path / "b", "-q", "--shard-size", "200"))
    assert len(shards(tmp_path / "b")) == -(-N04 // 200)
    ok(run("ingest", DOCS04, tmp_path / "c", "-q", env={"CURATE_CONFIG": str(cfg)}))
    assert len(shards(tmp_path / "c")) == -(-N04 // 100)
    assert read_rows(tmp_path / "a") == read_rows(tmp_path / "b") == read_rows(tmp_path / "c")


def test_config_unknown_key(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[ingest]\nshard_sise = "100"\n')
    usage_error(run("--config", cfg, "ingest", DOCS04, tmp_path / "o"), "shard_sise", "--config")
    assert not (tmp_path / "o").exists()


def test_config_unknown_section_and_bad_toml(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[ingets]\nshard_size = "100"\n')
    usage_error(run("--config", cfg, "ingest", DOCS04, tmp_path / "o"), "ingets")
    cfg.write_text("[ingest\n")
    usage_error(run("--config", cfg, "ingest", DOCS04, tmp_path / "o"), "TOML")
    usage_error(run("--config", tmp_path / "missing.toml", "ingest", DOCS04, tmp_path / "o"), "missing.toml")


# ---- head and info -------------------------------------------------------------------------


def test_head_jsonl_is_exact(sample_dataset):
    r = ok(run("head", sample_dataset, "-n", "3", "--format", "jsonl"))
    lines = r.stdout_bytes.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    assert [json.loads(line) for line in lines[:-1]] == read_rows(sample_dataset)[:3]


def test_head_columns_and_more_rows_than_a_shard(sample_dataset):
    first_shard = pq.ParquetFile(sample_dataset / "part-00000.parquet").metadata.num_rows
    n = first_shard + 5
    r = ok(run("head", sample_dataset, "-n", n, "--format", "jsonl", "--columns", "text,id"))
    got = [json.loads(line) for line in r.stdout.split("\n") if line]
    assert got == [{"text": x["text"], "id": x["id"]} for x in read_rows(sample_dataset)[:n]]
    assert all(list(g) == ["text", "id"] for g in got)


def test_head_table(sample_dataset):
    r = ok(run("head", sample_dataset, "-n", "2", "--columns", "id,domain"))
    rows = read_rows(sample_dataset)[:2]
    for x in rows:
        assert x["id"] in r.stdout and x["domain"] in r.stdout
    assert "2 row(s)" in r.stdout
    usage_error(run("head", sample_dataset, "--columns", "id,nope"), "nope")


def test_info_json(sample_dataset):
    r = ok(run("info", sample_dataset, "--json"))
    data = json.loads(r.stdout)
    rows = read_rows(sample_dataset)
    assert data["rows"] == len(rows)
    assert data["shards"] == len(shards(sample_dataset)) == len(data["shard_list"])
    assert sum(s["rows"] for s in data["shard_list"]) == len(rows)
    assert [f["name"] for f in data["schema"]] == ["id", "text", "domain", "source"]
    assert {f["type"] for f in data["schema"]} == {"string"}
    assert data["complete"] is True
    assert [a["stage"] for a in data["lineage"]] == ["ingest"]
    assert data["lineage"][-1]["rows_out"] == len(rows)
    assert data["lineage"][-1]["params"]["id_field"] == "doc_id"


def test_info_lineage_grows_with_each_stage(sample_dataset, tmp_path):
    ok(run("export", sample_dataset, tmp_path / "flat", "--format", "parquet", "--shard-size", "1000", "-j", "1", "-q"))
    data = json.loads(ok(run("info", tmp_path / "flat", "--json")).stdout)
    assert [a["stage"] for a in data["lineage"]] == ["ingest", "export"]
    assert data["shards"] == 3 and data["rows"] == len(read_rows(sample_dataset))
    human = ok(run("info", tmp_path / "flat", "--shards"))
    assert "part-00002.parquet" in human.stdout and "export" in human.stdout


def test_compression_option_sets_the_codec_and_is_part_of_the_plan(sample_dataset, tmp_path):
    out = tmp_path / "o"
    r = run("export", sample_dataset, out, "--format", "parquet", "--compression", "zstd:1", "-j", "1", "-q", "--keep-work")
    assert r.exit_code == 0, r.output
    codecs = {pq.ParquetFile(f).metadata.row_group(0).column(0).compression for f in out.glob("part-*.parquet")}
    assert codecs == {"ZSTD"}
    assert json.loads((out / "_manifest.json").read_text())["plan"]["compression"] == "zstd:1"
    r = run("export", sample_dataset, tmp_path / "s", "--format", "parquet", "--compression", "snappy", "-j", "1", "-q")
    assert r.exit_code == 0, r.output
    assert {pq.ParquetFile(f).metadata.row_group(0).column(0).compression for f in (tmp_path / "s").glob("part-*.parquet")} == {"SNAPPY"}
    # an unfinished run is not resumed under another codec: its shards would differ
    (out / "_SUCCESS").unlink()
    r = run("export", sample_dataset, out, "--format", "parquet", "--compression", "lz4", "-j", "1", "-q")
    assert r.exit_code != 0 and "compression" in r.output


@pytest.mark.parametrize("value", ["foo", "snappy:2", "zstd:x"])
def test_bad_compression_is_a_usage_error(sample_dataset, tmp_path, value):
    r = run("dedup", "exact", sample_dataset, tmp_path / "o", "--compression", value)
    assert r.exit_code == 2 and "--compression" in r.output
