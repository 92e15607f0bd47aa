"""Resume, kill -9, --task slicing and --overwrite: a rerun finishes the job with identical output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import curate_proc, run, shard_bytes


def _default_sigint() -> None:
    # A background job inherits SIGINT ignored; a user at a terminal has it delivered.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "curate", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=_default_sigint)


def _wait_for_markers(out: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> int:
    done = out / "_work" / "done"
    t0 = time.time()
    while time.time() - t0 < timeout:
        k = len(list(done.rglob("*.json"))) if done.exists() else 0
        if k >= n:
            return k
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()}"
        time.sleep(0.005)
    raise AssertionError("no progress")


def _kill9_after(out: Path, markers: int, *args) -> None:
    """Start `curate *args`, kill -9 it once `markers` tasks are done; nothing may look complete."""
    proc = _start(*args)
    _wait_for_markers(out, markers, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "_SUCCESS").exists()


def test_kill9_then_resume_gives_identical_output(sample_dataset, tmp_path):
    ref = tmp_path / "ref"
    assert run("export", sample_dataset, ref, "--shard-size", "8", "-j", "1", "-q").exit_code == 0

    out = tmp_path / "out"
    _kill9_after(out, 20, "export", sample_dataset, out, "--shard-size", "8", "-j", "1", "-q")
    assert not (out / "_manifest.json").exists()

    # A killed output is not a dataset anyone may read.
    r = run("info", out)
    assert r.exit_code == 1 and "incomplete" in r.stderr

    r = curate_proc("export", sample_dataset, out, "--shard-size", "8", "-j", "2")
    assert r.returncode == 0, r.stderr.decode()
    assert "resuming" in r.stderr.decode()
    assert (out / "_SUCCESS").exists()
    assert shard_bytes(out) == shard_bytes(ref)
    assert not any(p.name.startswith(".") for p in out.iterdir()), "temporary files left behind"
    m = json.loads((out / "_manifest.json").read_text())
    assert m["totals"]["rows_out"] == m["totals"]["rows_in"] == 2539


def test_kill9_during_ingest_then_resume(sample_raw, tmp_path):
    ref = tmp_path / "ref"
    assert run("ingest", sample_raw, ref, "--shard-size", "20", "-j", "1", "-q").exit_code == 0
    # The sample is one ingest task: killed once its pieces are committed, before they are renamed
    # (127 renames and the manifest). The window is short: a run that got through it whole is
    # started again in a fresh directory, and one of three must be killed inside it.
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        proc = _start("ingest", sample_raw, out, "--shard-size", "20", "-j", "1", "-q")
        done = out / "_work" / "done"
        while proc.poll() is None and not (done.exists() and any(done.rglob("*.json"))):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.returncode == -signal.SIGKILL and not (out / "_SUCCESS").exists():
            break
    else:
        raise AssertionError("the run finished before it could be killed, three times")
    r = curate_proc("ingest", sample_raw, out, "--shard-size", "20", "-j", "1")
    assert r.returncode == 0, r.stderr.decode()
    assert shard_bytes(out) == shard_bytes(ref)


def test_ctrl_c_exits_130_and_resumes(sample_dataset, tmp_path):
    out = tmp_path / "out"
    proc = _start("export", sample_dataset, out, "--shard-size", "8", "-j", "1")
    _wait_for_markers(out, 5, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert "interrupted" in err.decode() and "Traceback" not in err.decode()
    assert not (out / "_SUCCESS").exists()
    assert curate_proc("export", sample_dataset, out, "--shard-size", "8", "-q").returncode == 0
    assert (out / "_SUCCESS").exists()


def test_task_slices_complete_the_dataset(sample_dataset, tmp_path):
    ref = tmp_path / "ref"
    assert run("export", sample_dataset, ref, "--format", "parquet", "-q").exit_code == 0
    out = tmp_path / "out"
    r0 = run("export", sample_dataset, out, "--format", "parquet", "--task", "0/3", "--json")
    assert r0.exit_code == 0
    s0 = json.loads(r0.stdout)
    assert s0["complete"] is False and s0["tasks_run"] == 4
    assert not (out / "_SUCCESS").exists()
    assert run("export", sample_dataset, out, "--format", "parquet", "--task", "2/3", "-q").exit_code == 0
    assert not (out / "_SUCCESS").exists()
    r1 = run("export", sample_dataset, out, "--format", "parquet", "--task", "1/3", "--json")
    assert json.loads(r1.stdout)["complete"] is True  # the last slice to finish completes it
    assert (out / "_SUCCESS").exists()
    assert shard_bytes(out) == shard_bytes(ref)
    # Slurm's variables through the environment
    out2 = tmp_path / "out2"
    for i in range(2):
        assert run("export", sample_dataset, out2, "--format", "parquet", "-q", env={"CURATE_TASK": f"{i}/2"}).exit_code == 0
    assert shard_bytes(out2) == shard_bytes(ref)


def test_rerun_of_complete_output_is_a_no_op(sample_dataset, tmp_path):
    out = tmp_path / "out"
    assert run("export", sample_dataset, out, "-q").exit_code == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = run("export", sample_dataset, out, "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["already_complete"] is True
    assert "nothing to do" in r.stderr
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_resume_with_other_params_is_refused(sample_dataset, tmp_path):
    out = tmp_path / "out"
    _kill9_after(out, 3, "export", sample_dataset, out, "--shard-size", "8", "-j", "1", "-q")
    r = run("export", sample_dataset, out, "--shard-size", "9")
    assert r.exit_code == 1
    assert "different" in r.stderr and "--overwrite" in r.stderr
    r = run("export", sample_dataset, out, "--shard-size", "9", "--overwrite", "-q")
    assert r.exit_code == 0
    assert len([p for p in out.glob("part-*")]) == -(-2539 // 9)


def test_overwrite_redoes_everything(sample_dataset, tmp_path):
    out = tmp_path / "out"
    assert run("export", sample_dataset, out, "--format", "parquet", "-q").exit_code == 0
    first = shard_bytes(out)
    (out / "part-00000.parquet").write_bytes(b"garbage")
    # Without --overwrite a complete output is trusted as it is ...
    assert run("export", sample_dataset, out, "--format", "parquet", "-q").exit_code == 0
    assert (out / "part-00000.parquet").read_bytes() == b"garbage"
    # ... with it, everything is redone.
    assert run("export", sample_dataset, out, "--format", "parquet", "--overwrite", "-q").exit_code == 0
    assert shard_bytes(out) == first


def test_overwrite_with_task_is_a_usage_error(sample_dataset, tmp_path):
    r = run("export", sample_dataset, tmp_path / "o", "--overwrite", "--task", "0/2")
    assert r.exit_code == 2


def test_stale_tmp_file_is_never_trusted(sample_dataset, tmp_path):
    out = tmp_path / "out"
    _kill9_after(out, 3, "export", sample_dataset, out, "--shard-size", "8", "-j", "1", "-q")
    # Pretend a writer died mid-file: a hidden temp file with half a shard.
    (out / ".part-00100.jsonl.zst.tmp-1-abcd").write_bytes(b"half")
    assert run("export", sample_dataset, out, "--shard-size", "8", "-q").exit_code == 0
    assert not (out / ".part-00100.jsonl.zst.tmp-1-abcd").exists()
    assert os.path.getsize(out / "part-00100.jsonl.zst") > 4


def _session(sid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getsid(int(d.name)) == sid:
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def test_workers_end_when_the_driver_is_killed(sample_dataset, tmp_path):
    """kill -9 of the main process alone (the OOM killer, systemd KillMode=process) leaves no
    worker behind holding memory."""
    out = tmp_path / "out"
    env = {**os.environ, "CURATE_POOL_MIN_BYTES": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "curate", "export", str(sample_dataset), str(out), "--shard-size", "4",
                             "-j", "2", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    _wait_for_markers(out, 8, proc)
    assert len(_session(proc.pid)) >= 3  # the driver, the fork server, workers
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    t0 = time.time()
    while _session(proc.pid) and time.time() - t0 < 20:
        time.sleep(0.1)
    left = _session(proc.pid)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"{len(left)} processes outlived the driver"
