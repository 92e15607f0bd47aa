"""--executor ray: every stage run as Ray tasks writes the same bytes as the local executor; a
killed worker is retried, a killed driver resumes, bad data and a wrong address are clean errors.

One Ray cluster per module, started with `ray start --head --num-cpus 2` in its own process group
and temp dir (the subprocess form of ray.init(num_cpus=2)). Drivers join it from other processes:
a long-lived one that runs the CLI in-process for the byte-for-byte comparisons (its Ray workers
start once), and real `python -m curate ... --ray-address` drivers for kill -9, storage and
errors. So Ray never lives inside the pytest process (whose stdout and signal handlers the other
tests use), and the teardown kills exactly what the fixture started.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.run.ray_local import RAY_ENV, LocalRay, free_port
from tests.conftest import curate_proc, run, shard_bytes

ROOT = Path(__file__).resolve().parent.parent
@pytest.fixture(scope="module")
def ray_address(tmp_path_factory):
    head = LocalRay(2, log=tmp_path_factory.mktemp("ray") / "head.log", timeout=60)
    try:
        yield head.address
    finally:
        head.stop()


# One long-lived driver for the byte-for-byte comparisons: it joins the cluster once and runs each
# command through the CLI in-process, so the job's Ray workers are started once, not per command
# (~5 s each on this machine). The failure tests below run real `python -m curate` drivers.
_SERVE = """
import json, sys
import ray
from click.testing import CliRunner
from curate.cli import cli
from curate.run.ray_backend import forwarded_env
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR", runtime_env={"env_vars": forwarded_env()})
print("ready", flush=True)
for line in sys.stdin:
    args, env = json.loads(line)
    r = CliRunner().invoke(cli, args, env=env)
    print(json.dumps({"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}), flush=True)
"""


@pytest.fixture(scope="module")
def ray_driver(ray_address):
    p = subprocess.Popen([sys.executable, "-c", _SERVE, ray_address], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, env=dict(os.environ, **RAY_ENV), cwd=ROOT, text=True)
    try:
        assert _readline(p, 120) == "ready"
        yield p
    finally:
        p.stdin.close()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _readline(p: subprocess.Popen, timeout: float) -> str:
    ready, _, _ = select.select([p.stdout], [], [], timeout)
    assert ready, f"the Ray driver gave no answer in {timeout} s"
    return p.stdout.readline().strip()


def ray_run(driver, *args, env=None) -> dict:
    driver.stdin.write(json.dumps([[*map(str, args), "--executor", "ray"], env or {}]) + "\n")
    driver.stdin.flush()
    return json.loads(_readline(driver, 240))


def ray_proc(address, *args, env=None, timeout=240):
    return curate_proc(*args, "--executor", "ray", "--ray-address", address, env=dict(RAY_ENV, **(env or {})),
                       timeout=timeout)


def ok(*args):
    r = run(*args)
    assert r.exit_code == 0, r.output
    return r


# ---- inputs ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(sample_dataset, tmp_path_factory):
    """The sample (10 shards), a tiny KenLM model of it, and the sample scored with it."""
    d = tmp_path_factory.mktemp("ray_inputs")
    model = d / "m.bin"
    ok("ngram", "train", sample_dataset, model, "--order", "3", "--memory", "200M", "-q")
    scored = d / "scored"
    ok("score", sample_dataset, scored, "--kenlm", model, "--commonness", model, "-j", "1", "-q")
    import fasttext  # a dev dependency: a tiny classifier of the sample, long vs short

    texts = [r["text"].replace("\n", " ") for r in pq.read_table(sample_dataset, columns=["text"]).to_pylist()]
    (d / "ft.txt").write_text("".join(f"__label__{'long' if len(t) > 800 else 'short'} {t}\n" for t in texts))
    ft = fasttext.train_supervised(str(d / "ft.txt"), thread=1, verbose=0, epoch=5, dim=8, bucket=20000)
    ft.save_model(str(d / "ft.bin"))
    return {"raw": sample_dataset, "model": model, "scored": scored, "ft": d / "ft.bin",
            "dsir_target": ROOT / "tests" / "fixtures" / "dsir" / "target.jsonl"}


# One line per command: {out} and {rej} are filled per run, the rest from `inputs`.
COMMANDS = [
    ("dedup-exact", ["dedup", "exact", "{raw}", "{out}", "--rejects", "{rej}"]),
    ("dedup-paragraphs", ["dedup", "paragraphs", "{raw}", "{out}", "--rejects", "{rej}"]),
    ("dedup-minhash", ["dedup", "minhash", "{raw}", "{out}", "--rejects", "{rej}"]),
    ("dedup-minhash-annotate", ["dedup", "minhash", "{raw}", "{out}", "--no-verify", "--mode", "annotate"]),
    ("score-kenlm-commonness", ["score", "{raw}", "{out}", "--kenlm", "{model}", "--commonness", "{model}"]),
    ("score-signals", ["score", "{raw}", "{out}", "--signals", "gopher,gopher-repetition,c4,fineweb"]),
    ("score-fasttext", ["score", "{raw}", "{out}", "--fasttext", "{ft}"]),
    ("score-dsir", ["score", "{raw}", "{out}", "--dsir-target", "{dsir_target}", "--dsir-buckets", "512"]),
    ("filter-quantile", ["filter", "{scored}", "{out}", "--rejects", "{rej}", "--where", "len(text) >= 50",
                         "--where", "ppl < quantile(ppl, 0.8)"]),
    ("resample-counts", ["resample", "{scored}", "{out}", "--weights", "softdedup", "--fraction", "0.5"]),
    ("resample-materialize", ["resample", "{scored}", "{out}", "--weights", "softdedup", "--fraction", "0.5",
                              "--materialize", "--rejects", "{rej}"]),
    ("export-parquet", ["export", "{raw}", "{out}", "--format", "parquet", "--shard-size", "100"]),
]


def _fill(template, inputs, out, rej):
    vals = {k: str(v) for k, v in inputs.items()} | {"out": str(out), "rej": str(rej)}
    return [a.format(**vals) for a in template]


def _same_manifest(a: Path, b: Path) -> None:
    ma, mb = (json.loads((p / "_manifest.json").read_text()) for p in (a, b))
    for key in ("totals", "counters", "params"):
        assert ma.get(key) == mb.get(key), key
    # the plan names the --rejects place, which differs between the two runs
    assert {k: v for k, v in ma["plan"].items() if k != "rejects"} == {k: v for k, v in mb["plan"].items() if k != "rejects"}
    assert [(s["name"], s["rows_in"], s["rows_out"]) for s in ma["shards"]] == \
           [(s["name"], s["rows_in"], s["rows_out"]) for s in mb["shards"]]


@pytest.mark.parametrize("name,template", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_ray_writes_the_same_bytes_as_local(ray_driver, inputs, tmp_path, name, template):
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    ok(*_fill(template, inputs, local, tmp_path / "local_rej"), "-j", "1", "-q")
    r = ray_run(ray_driver, *_fill(template, inputs, ray_out, tmp_path / "ray_rej"), "--json", "-q")
    assert r["code"] == 0, r["stderr"][-3000:]
    summary = json.loads(r["stdout"])
    assert summary["complete"] and summary["tasks_run"] == summary["tasks_total"] > 0
    assert (ray_out / "_SUCCESS").exists() and not (ray_out / "_work").exists()
    assert shard_bytes(ray_out) == shard_bytes(local) and shard_bytes(local)
    _same_manifest(ray_out, local)
    if "{rej}" in template:
        assert shard_bytes(tmp_path / "ray_rej") == shard_bytes(tmp_path / "local_rej")


# ---- failures --------------------------------------------------------------------------------


def test_a_killed_worker_is_retried(ray_driver, inputs, tmp_path):
    """The first task kills its own worker process (as the OOM killer would); Ray reruns it."""
    marker = tmp_path / "crashed"
    args = ["dedup", "minhash", inputs["raw"], tmp_path / "ray", "-q"]
    r = ray_run(ray_driver, *args, env={"CURATE_TEST_RAY_CRASH_ONCE": str(marker)})
    assert r["code"] == 0, r["stderr"][-3000:]
    assert marker.exists(), "no worker was killed: the test proved nothing"
    ok("dedup", "minhash", inputs["raw"], tmp_path / "local", "-j", "1", "-q")
    assert shard_bytes(tmp_path / "ray") == shard_bytes(tmp_path / "local")


def test_progress_streams_back_to_the_driver(ray_driver, inputs, tmp_path):
    """Rows counted inside Ray tasks reach the driver's progress lines while the run is going."""
    r = ray_run(ray_driver, "export", inputs["raw"], tmp_path / "ray", "--format", "parquet", "--progress", "plain",
                env={"CURATE_LOG_INTERVAL": "0"})
    assert r["code"] == 0, r["stderr"][-3000:]
    lines = [m.groups() for m in re.finditer(r"(\d+)/(\d+) shards, ([\d,.]+\w?) docs", r["stderr"])]
    assert lines, r["stderr"][-2000:]
    total = int(lines[-1][1])
    assert total > 1 and int(lines[-1][0]) == total
    assert any(0 < int(done) < total and docs != "0" for done, _, docs in lines), lines  # mid-run, with rows
    rows = sum(pq.read_metadata(f).num_rows for f in (tmp_path / "ray").glob("*.parquet"))
    assert lines[-1][2] == f"{rows:,}", lines  # every task's rows counted by the time it is done


def test_bad_data_fails_the_stage_with_the_local_error(ray_driver, tmp_path):
    """A row group that does not decode fails inside a Ray task; the driver shows the local message."""
    d = tmp_path / "in"
    d.mkdir()
    t = pa.table({"id": [str(i) for i in range(20000)], "text": [f"doc {i} " * 20 for i in range(20000)]})
    pq.write_table(t.slice(0, 100), d / "part-00000.parquet")
    p = d / "part-00001.parquet"
    pq.write_table(t, p, row_group_size=5000)
    col = pq.ParquetFile(p).metadata.row_group(2).column(1)
    b = bytearray(p.read_bytes())
    for i in range(col.data_page_offset + 50, col.data_page_offset + col.total_compressed_size - 50):
        b[i] = (b[i] * 7 + 13) & 0xFF
    p.write_bytes(bytes(b))
    local = run("export", d, tmp_path / "o", "--format", "parquet", "-j", "1", "-q")
    assert local.exit_code == 1 and "row group 2" in local.stderr, local.output
    r = ray_run(ray_driver, "export", d, tmp_path / "o2", "--format", "parquet", "-q")
    err = r["stderr"]
    assert r["code"] == 1, err[-3000:]
    assert "Traceback" not in err and "RayTaskError" not in err
    assert err.strip().endswith(local.stderr.strip()), (err[-2000:], local.stderr)


def test_unreachable_address_and_stdout_are_clean_errors_before_any_work(sample_dataset, tmp_path):
    out = tmp_path / "out"
    r = curate_proc("export", sample_dataset, out, "--executor", "ray", "--ray-address", f"127.0.0.1:{free_port()}")
    assert r.returncode == 2 and "cannot reach the Ray cluster" in r.stderr.decode(), r.stderr.decode()
    assert not out.exists(), "work started before the executor was known to be usable"
    r = run("export", sample_dataset, out, "--ray-address", "127.0.0.1:1")
    assert r.exit_code == 2 and "--ray-address needs --executor ray" in r.output
    r = run("export", sample_dataset, "-", "--executor", "ray")
    assert r.exit_code == 2 and "needs an output directory" in r.stderr


def test_ray_not_installed_is_a_clean_error(sample_dataset, tmp_path):
    """A `ray` that cannot be imported (a package whose import fails, first on the path)."""
    fake = tmp_path / "site" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    out = tmp_path / "out"
    r = curate_proc("export", sample_dataset, out, "--executor", "ray",
                    env={"PYTHONPATH": str(tmp_path / "site") + os.pathsep + os.environ.get("PYTHONPATH", "")})
    err = r.stderr.decode()
    assert r.returncode == 2 and "needs Ray, which is not installed" in err and "curate[ray]" in err, err
    assert "Traceback" not in err and not out.exists()


def test_ray_is_imported_only_for_the_ray_executor(sample_dataset, tmp_path):
    code = ("import sys; from click.testing import CliRunner; from curate.cli import cli; "
            f"r = CliRunner().invoke(cli, ['export', {str(sample_dataset)!r}, {str(tmp_path / 'o')!r}, '--format', "
            "'parquet', '-j', '1', '-q']); assert r.exit_code == 0, r.output; "
            "CliRunner().invoke(cli, ['dedup', 'minhash', '--help']); print('ray' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_driver_killed_then_resumed_gives_identical_output(ray_address, ray_driver, inputs, tmp_path):
    """kill -9 the driver once some tasks are done; a rerun resumes and gives the same bytes."""
    out = tmp_path / "out"
    args = ["score", str(inputs["raw"]), str(out), "--kenlm", str(inputs["model"]), "-q",
            "--executor", "ray", "--ray-address", ray_address]
    proc = subprocess.Popen([sys.executable, "-m", "curate", *args], env=dict(os.environ, **RAY_ENV),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = out / "_work" / "done"
    t0 = time.time()
    while not (done.exists() and len(list(done.rglob("*.json"))) >= 2):
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        assert time.time() - t0 < 120
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not (out / "_SUCCESS").exists()
    r = ray_run(ray_driver, *args[:6], "--json")  # another driver resumes it
    assert r["code"] == 0, r["stderr"][-3000:]
    s = json.loads(r["stdout"])
    assert s["complete"] and s["tasks_skipped"] >= 2 and s["tasks_run"] + s["tasks_skipped"] == 10
    ok("score", inputs["raw"], tmp_path / "local", "--kenlm", inputs["model"], "-j", "1", "-q")
    assert shard_bytes(out) == shard_bytes(tmp_path / "local")
    assert not any(p.name.startswith(".") for p in out.iterdir()), "temporary files left behind"


def test_a_plan_started_on_ray_is_finished_by_the_local_executor(ray_driver, inputs, tmp_path):
    """The executor is not part of the plan (plan.json): half a run on Ray, the rest with -j."""
    out = tmp_path / "out"
    cmd = ["dedup", "paragraphs", inputs["raw"], out]
    r = ray_run(ray_driver, *cmd, "--task", "0/2", "--json", "-q")
    assert r["code"] == 0 and json.loads(r["stdout"])["complete"] is False, r["stderr"][-3000:]
    r = run(*cmd, "-j", "2", "--json")
    assert r.exit_code == 0, r.output
    assert "resuming signature: 5 of 10 tasks already done" in r.stderr, r.stderr
    ok(*cmd[:3], tmp_path / "plain", "-j", "1", "-q")
    assert shard_bytes(out) == shard_bytes(tmp_path / "plain")


# ---- Slurm job arrays: N slices as separate processes, then the finalize job -------------------


@pytest.mark.parametrize("stage", [["dedup", "minhash"], ["filter", "--where", "ppl < quantile(ppl, 0.8)"]],
                         ids=["dedup-minhash", "filter-quantile"])
def test_slurm_array_flow_matches_a_plain_run(inputs, tmp_path, stage):
    """scripts/slurm/array.sbatch runs `--task $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT`, one
    process per array task; finalize.sbatch then runs the plain command for the global phases."""
    src = inputs["scored"] if stage[0] == "filter" else inputs["raw"]
    cmd = [*stage[:2], str(src)] if stage[0] == "dedup" else [stage[0], str(src)]
    extra = stage[2:] if stage[0] == "dedup" else stage[1:]
    plain, arr = tmp_path / "plain", tmp_path / "array"
    ok(*cmd, plain, *extra, "-j", "1", "-q")
    procs = [subprocess.Popen([sys.executable, "-m", "curate", *cmd, str(arr), *extra, "-q", "-j", "1",
                               "--task", f"{i}/3"], stderr=subprocess.PIPE) for i in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    fin = curate_proc(*cmd, arr, *extra, "-j", "1", "--json")
    assert fin.returncode == 0, fin.stderr.decode()
    assert json.loads(fin.stdout)["complete"]
    assert shard_bytes(arr) == shard_bytes(plain)
    _same_manifest(arr, plain)


def test_slurm_templates_run_an_array_then_finalize(inputs, tmp_path):
    """The sbatch scripts themselves, run as Slurm would run them (its environment variables set
    by hand): an array numbered from 1 (--array=1-3), then the finalize job; same bytes as a plain
    run. And submit.sh chains the arrays and the finalize job with afterok (sbatch recorded)."""
    slurm = ROOT / "scripts" / "slurm"
    args = ["dedup", "minhash", str(inputs["raw"]), str(tmp_path / "arr"), "-q"]
    env = dict(os.environ, CURATE=f"{sys.executable} -m curate", SLURM_ARRAY_TASK_MIN="1",
               SLURM_ARRAY_TASK_COUNT="3", SLURM_CPUS_PER_TASK="1")
    procs = [subprocess.Popen(["bash", str(slurm / "array.sbatch"), *args], env=dict(env, SLURM_ARRAY_TASK_ID=str(i)),
                              stderr=subprocess.PIPE) for i in (1, 2, 3)]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    r = subprocess.run(["bash", str(slurm / "finalize.sbatch"), *args], env=env, capture_output=True)
    assert r.returncode == 0, r.stderr.decode()
    ok("dedup", "minhash", inputs["raw"], tmp_path / "plain", "-j", "1", "-q")
    assert shard_bytes(tmp_path / "arr") == shard_bytes(tmp_path / "plain")

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text('#!/bin/bash\necho "$*" >> "$SBATCH_LOG"\nn=$(wc -l < "$SBATCH_LOG")\necho "10$n"\n')
    (bin_dir / "sbatch").chmod(0o755)
    log = tmp_path / "sbatch.log"
    r = subprocess.run(["bash", str(slurm / "submit.sh"), "-n", "4", "-p", "2", "--", "--partition=cpu", ":", *args],
                       env=dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SBATCH_LOG=str(log)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 3 and r.stdout.strip() == "103"
    assert calls[0].startswith("--parsable --partition=cpu --array=0-3 ") and "array.sbatch dedup minhash" in calls[0]
    assert "--dependency=afterok:101 --array=0-3" in calls[1]
    assert "--dependency=afterok:102" in calls[2] and "finalize.sbatch dedup minhash" in calls[2]


# ---- remote storage ----------------------------------------------------------------------------


def test_s3_in_and_out_through_ray(ray_address, sample_raw, sample_dataset, tmp_path):
    """The same URIs as locally: Ray tasks read and write s3:// (a local S3 server) with the
    credentials of the driver's environment, and the bytes match a local run's."""
    moto_server = pytest.importorskip("moto.server")
    import pyarrow.fs as pafs

    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}
        fs = pafs.S3FileSystem(access_key="test", secret_key="test", region="us-east-1", scheme="http",
                               endpoint_override=f"127.0.0.1:{port}", allow_bucket_creation=True)
        fs.create_dir("corpus")
        q = f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        r = curate_proc("ingest", sample_raw, f"s3://corpus/raw?{q}", "--id-field", "doc_id", "--shard-size", "256",
                        "-j", "1", "-q", env=env)
        assert r.returncode == 0, r.stderr.decode()
        args = ["dedup", "exact", f"s3://corpus/raw?{q}"]
        r = ray_proc(ray_address, *args, f"s3://corpus/ray?{q}", "-q", env=env)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        ok("dedup", "exact", sample_dataset, tmp_path / "local", "-j", "1", "-q")  # the same rows, on local disk
        names = sorted(fi.base_name for fi in fs.get_file_info(pafs.FileSelector("corpus/ray")))
        assert "_SUCCESS" in names and "_work" not in names
        remote = {}
        for n in names:
            if not n.startswith(("_", ".")):  # as shard_bytes: the shards, not _clusters.parquet
                with fs.open_input_stream(f"corpus/ray/{n}") as f:
                    remote[n] = f.read()
        assert remote == shard_bytes(tmp_path / "local")
    finally:
        server.stop()
