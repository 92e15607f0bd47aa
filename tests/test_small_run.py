"""A run small enough for one process (below pool_min_bytes, no --task, no Ray) keeps its done
markers and dedup's work files in memory: nothing of it is marked done on disk, so a kill is
followed by a rerun of the whole, with the same output as an uninterrupted run."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run, shard_bytes

SMALL = str(16 << 20)


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


@pytest.mark.parametrize("argv", [["dedup", "minhash"], ["dedup", "exact"], ["dedup", "paragraphs"], ["export"]])
def test_small_run_writes_no_markers_or_work_files(sample_dataset, tmp_path, monkeypatch, argv):
    import curate.io.atomic as atomic

    written: list[str] = []
    real_replace = os.replace

    def recording(src, dst, *a, **k):
        written.append(str(dst))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(atomic.os, "replace", recording)
    outs = {}
    for name, threshold in (("pool", "0"), ("small", SMALL)):
        monkeypatch.setenv("CURATE_POOL_MIN_BYTES", threshold)
        written.clear()
        out = tmp_path / name
        r = run(*argv, sample_dataset, out, "-j", "1", "-q")
        assert r.exit_code == 0, r.output
        work = [w for w in written if "/_work/" in w]
        if name == "pool":
            assert any("/_work/done/" in w for w in work)  # the ordinary run marks every task
        else:
            assert [Path(w).name for w in work] == ["plan.json"], work
        outs[name] = _outputs(out)
        assert not (out / "_work").exists()
    assert outs["small"] == outs["pool"]


@pytest.mark.parametrize("kind", ["exact", "paragraphs", "minhash"])
def test_small_run_spills_under_a_tiny_memory_and_gives_the_same_bytes(sample_dataset, tmp_path, monkeypatch, kind):
    # Spill files go to disk even when the work files stay in memory.
    outs = {}
    for name, threshold in (("pool", "0"), ("small", SMALL)):
        monkeypatch.setenv("CURATE_POOL_MIN_BYTES", threshold)
        out = tmp_path / name
        assert run("dedup", kind, sample_dataset, out, "-j", "1", "-q", "--memory", "64K").exit_code == 0
        phases = json.loads((out / "_manifest.json").read_text())["phases"]
        assert any(p["counters"].get("spilled_partitions") for p in phases.values()), phases
        outs[name] = _outputs(out)
    assert outs["small"] == outs["pool"]


def test_keep_work_and_task_slices_still_write_markers(sample_dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_POOL_MIN_BYTES", SMALL)
    ref = tmp_path / "ref"
    assert run("dedup", "minhash", sample_dataset, ref, "-q").exit_code == 0
    kept = tmp_path / "kept"
    assert run("dedup", "minhash", sample_dataset, kept, "-q", "--keep-work").exit_code == 0
    assert any((kept / "_work" / "done" / "apply").iterdir())
    assert any(p.name.startswith("bands-") for p in (kept / "_work").iterdir())
    # Slices: each leaves its markers and work files for the others, and the last one finishes.
    out = tmp_path / "sliced"
    for i in range(3):
        r = run("dedup", "minhash", sample_dataset, out, "-q", "--task", f"{i}/3")
        assert r.exit_code == 0, r.output
        if i < 2:
            assert any((out / "_work" / "done" / "signature").iterdir())
    while not (out / "_SUCCESS").exists():  # later phases need every slice's earlier ones
        for i in range(3):
            assert run("dedup", "minhash", sample_dataset, out, "-q", "--task", f"{i}/3").exit_code == 0
    assert _outputs(out) == _outputs(ref) == _outputs(kept)


@pytest.mark.parametrize("kind", ["minhash", "exact"])
def test_small_run_finishes_what_a_slice_left_on_disk(sample_dataset, tmp_path, monkeypatch, kind):
    # A slice's markers and work files on disk, the rest run in memory by a plain rerun: the
    # tasks done on disk are skipped and their work files read back; same bytes as one run.
    monkeypatch.setenv("CURATE_POOL_MIN_BYTES", SMALL)
    ref = tmp_path / "ref"
    assert run("dedup", kind, sample_dataset, ref, "-q").exit_code == 0
    out = tmp_path / "out"
    assert run("dedup", kind, sample_dataset, out, "-q", "--task", "1/3").exit_code == 0
    left = sorted(p.name for p in (out / "_work" / "done" / "signature").iterdir())
    assert left
    r = run("dedup", kind, sample_dataset, out, "--progress", "none")
    assert r.exit_code == 0, r.output
    assert _outputs(out) == _outputs(ref)
    assert f"resuming signature: {len(left)} of" in r.stderr, r.stderr


def test_killed_small_run_reruns_to_the_same_output(sample_dataset, tmp_path):
    env = dict(os.environ, CURATE_POOL_MIN_BYTES=SMALL)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    argv = [sys.executable, "-m", "curate", "dedup", "minhash", str(sample_dataset)]
    ref = tmp_path / "ref"
    subprocess.run([*argv, str(ref), "-q", "--rejects", str(tmp_path / "ref_rej")], env=env, check=True)
    # Killed at several points of a run that lasts well under a second: before, during and after
    # its phases. Whatever it left, the rerun must finish with the same bytes.
    killed = 0
    for k, delay in enumerate((0.05, 0.2, 0.3, 0.4, 0.5, 0.7)):
        out, rej = tmp_path / f"o{k}", tmp_path / f"r{k}"
        proc = subprocess.Popen([*argv, str(out), "-q", "--rejects", str(rej)], env=env)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed += proc.returncode == -signal.SIGKILL and (out / "_work" / "plan.json").exists()
        assert not (out / "_work" / "done").exists()
        subprocess.run([*argv, str(out), "-q", "--rejects", str(rej)], env=env, check=True)
        assert shard_bytes(out) == shard_bytes(ref) and _outputs(out) == _outputs(ref)
        assert shard_bytes(rej) == shard_bytes(tmp_path / "ref_rej")
    assert killed >= 1  # at least one kill landed inside a run


def test_cli_collects_cycles_again_once_a_run_starts(sample_dataset, tmp_path):
    # cli.main imports with the cyclic GC off (start-up speed); a command must not run that way,
    # and importing curate.cli (a library user, the tests) must not turn it off.
    code = (  # main() ends in os._exit, after the atexit handlers
        "import atexit, gc, sys\nfrom curate.cli import main\nassert gc.isenabled()\n"
        "atexit.register(lambda: print(gc.isenabled()))\nmain()\n"
    )
    argv = ["curate", "dedup", "exact", str(sample_dataset), str(tmp_path / "o"), "-q"]
    r = subprocess.run([sys.executable, "-c", f"import sys; sys.argv = {argv!r}\n" + code],
                       capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "True", r.stderr
    assert gc.isenabled()
