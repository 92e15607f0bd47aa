"""The map-stage machinery every later stage uses: accounting, rejects, names, determinism."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curate.io.dataset import open_dataset
from curate.run.executor import RunOptions, execute
from curate.stages.base import REJECT_REASON, MapStage, input_locations
from tests.conftest import read_rows, shard_bytes


@dataclass(frozen=True)
class MinChars:
    min_chars: int


class DropShort(MapStage):
    """A real (if small) map stage: rows with fewer than min_chars characters are rejected."""

    name = "drop_short"

    def transform(self, batch, result):
        short = pc.less(pc.utf8_length(batch.column("text")), self.params.min_chars)
        kept = batch.filter(pc.invert(short))
        rej = batch.filter(short)
        rej = rej.append_column(REJECT_REASON, pa.array(["too_short"] * rej.num_rows, pa.string()))
        result.count("too_short", rej.num_rows)
        return kept, rej


class Broken(MapStage):
    """Loses rows without accounting for them: the executor must refuse to publish that."""

    name = "broken"

    def transform(self, batch, result):
        return batch.slice(1), None


def _run(stage, out, **kw):
    ds = stage.dataset
    return execute(stage, str(out), RunOptions(progress="none", **kw), input_locations(ds))


def test_rows_in_equal_kept_plus_rejected(sample_dataset, tmp_path):
    ds = open_dataset(str(sample_dataset))
    s = _run(DropShort(ds, MinChars(600)), tmp_path / "o", workers=2, rejects=str(tmp_path / "rej"))
    kept, rej = read_rows(tmp_path / "o"), read_rows(tmp_path / "rej")
    assert s.rows_in == 2539 == len(kept) + len(rej)
    assert s.rows_rejected == len(rej) > 0 and s.counters == {"too_short": len(rej)}
    assert all(len(r["text"]) >= 600 for r in kept)
    assert {r[REJECT_REASON] for r in rej} == {"too_short"} and all(len(r["text"]) < 600 for r in rej)
    # Every input column survives in both outputs; ids partition the input.
    assert set(kept[0]) == {"id", "text", "domain", "source"}
    assert sorted(r["id"] for r in kept + rej) == sorted(r["id"] for r in read_rows(sample_dataset))
    m = json.loads((tmp_path / "o" / "_manifest.json").read_text())
    for sh in m["shards"]:
        assert sh["rows_in"] == sh["rows_out"] + sh["rows_rejected"]
    assert [sh["name"] for sh in m["shards"]] == sorted(p.name for p in sample_dataset.glob("part-*.parquet"))
    assert (tmp_path / "rej" / "_SUCCESS").exists()
    assert m["lineage"][-1]["stage"] == "ingest" and m["input"]["manifest_digest"].startswith("sha256:")


def test_output_shards_follow_input_names_and_are_worker_independent(sample_dataset, tmp_path):
    ds = open_dataset(str(sample_dataset))
    _run(DropShort(ds, MinChars(300)), tmp_path / "a", workers=1)
    _run(DropShort(ds, MinChars(300)), tmp_path / "b", workers=2)
    a, b = shard_bytes(tmp_path / "a"), shard_bytes(tmp_path / "b")
    assert a == b
    assert sorted(a) == sorted(p.name for p in sample_dataset.glob("part-*.parquet"))


def test_broken_accounting_is_never_published(sample_dataset, tmp_path):
    ds = open_dataset(str(sample_dataset))
    with pytest.raises(RuntimeError, match="row accounting broken"):
        _run(Broken(ds, MinChars(0)), tmp_path / "o", workers=1)
    assert not (tmp_path / "o" / "_SUCCESS").exists()


def test_input_is_never_modified(sample_dataset, tmp_path):
    before = {p.name: p.read_bytes() for p in sample_dataset.iterdir() if p.is_file()}
    ds = open_dataset(str(sample_dataset))
    _run(DropShort(ds, MinChars(600)), tmp_path / "o", workers=2, rejects=str(tmp_path / "r"))
    assert {p.name: p.read_bytes() for p in sample_dataset.iterdir() if p.is_file()} == before


class WhichProcess(MapStage):
    """Counts the rows it saw in the driver process versus in a worker."""

    name = "which_process"

    def transform(self, batch, result):
        import os

        result.count("in_driver" if os.getpid() == self.params.min_chars else "in_worker", batch.num_rows)
        return batch, None


def test_small_inputs_stay_in_one_process_whatever_j_says(sample_dataset, tmp_path, monkeypatch):
    import os

    ds, driver = open_dataset(str(sample_dataset)), MinChars(os.getpid())  # the pid travels to the workers
    monkeypatch.setenv("CURATE_POOL_MIN_BYTES", str(1 << 30))
    s = _run(WhichProcess(ds, driver), tmp_path / "small", workers=2)
    assert s.counters.get("in_driver") == s.rows_in and "in_worker" not in s.counters
    monkeypatch.setenv("CURATE_POOL_MIN_BYTES", "0")
    s = _run(WhichProcess(ds, driver), tmp_path / "pooled", workers=2)
    assert s.counters.get("in_worker") == s.rows_in and "in_driver" not in s.counters


def test_concurrent_task_slices_finish_once_and_all_succeed(sample_dataset, tmp_path):
    """A Slurm array starts every slice at once: whichever finish last may finalize together.
    Every slice must exit 0 and the output must be a plain run's, round after round."""
    import subprocess
    import sys

    from tests.conftest import curate_proc

    plain = tmp_path / "plain"
    assert curate_proc("export", sample_dataset, plain, "--format", "parquet", "-q").returncode == 0
    for rnd in range(3):
        out = tmp_path / f"arr{rnd}"
        procs = [subprocess.Popen([sys.executable, "-m", "curate", "export", str(sample_dataset), str(out), "--format",
                                   "parquet", "--task", f"{i}/4", "-q"], stderr=subprocess.PIPE) for i in range(4)]
        for p in procs:
            _, err = p.communicate(timeout=120)
            assert p.returncode == 0, err.decode()
        if not (out / "_SUCCESS").exists():  # every slice finished before another saw the phase complete
            assert curate_proc("export", sample_dataset, out, "--format", "parquet", "-q").returncode == 0
        assert shard_bytes(out) == shard_bytes(plain) and not (out / "_work").exists()
