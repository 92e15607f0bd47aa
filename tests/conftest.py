"""Shared fixtures: the sample corpus, a CliRunner wrapper and a real-subprocess runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli import cli

# Small test inputs would otherwise always run in one process: make -j N use its pool of workers.
os.environ["CURATE_POOL_MIN_BYTES"] = "0"

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture(scope="session")
def sample_raw() -> Path:
    """The sample corpus's raw JSON Lines (built by scripts/make_sample_corpus.py, cached)."""
    if not (SAMPLE / "stats.json").exists():
        subprocess.run([sys.executable, str(ROOT / "scripts" / "make_sample_corpus.py"), "--out", str(SAMPLE)], check=True)
    return SAMPLE / "raw"


@pytest.fixture(scope="session")
def sample_dataset(sample_raw, tmp_path_factory) -> Path:
    """The sample corpus ingested once per test session (10 shards of ~250 rows)."""
    out = tmp_path_factory.mktemp("sample") / "raw"
    r = CliRunner().invoke(cli, ["ingest", str(sample_raw), str(out), "--id-field", "doc_id", "--shard-size", "256", "-j", "1", "-q"])
    assert r.exit_code == 0, r.output
    return out


def run(*args, input=None, env=None):
    """Invoke the CLI in-process; returns click's Result (stdout, stderr, exit_code)."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env, catch_exceptions=False)


def curate_proc(*args, input=None, env=None, check=False, timeout=300) -> subprocess.CompletedProcess:
    """Run `python -m curate` as a real process (pipes, signals, exit codes)."""
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "curate", *map(str, args)], input=input, capture_output=True,
                          env=e, check=check, timeout=timeout)


def read_rows(path) -> list[dict]:
    """All rows of a dataset directory (or file) in shard order."""
    p = Path(path)
    files = sorted(f for f in p.glob("*.parquet") if not f.name.startswith(("_", "."))) if p.is_dir() else [p]
    rows = []
    for f in files:
        rows.extend(pq.read_table(f).to_pylist())
    return rows


def shard_bytes(path) -> dict[str, bytes]:
    """Shard name -> file bytes, for byte-for-byte comparisons of outputs."""
    return {f.name: f.read_bytes() for f in sorted(Path(path).iterdir()) if not f.name.startswith(("_", "."))}
