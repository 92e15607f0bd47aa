"""One code path for every stage: plan tasks, skip finished ones, run the rest on a local process
pool (or only this --task I/N slice), then finalize: manifest, _SUCCESS, clean-up.

Resume rests on two rules: a task's outputs are published by atomic rename, and its completion
marker (_work/done/NAME.json, holding its counts) is written only after them. A task without a
marker is simply run again from scratch; its output is a pure function of its spec.
"""

from __future__ import annotations

import json
import os
import queue
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pyarrow.fs import FileSelector

from curate import __version__, log
from curate.errors import CurateError, OutputError, UsageError
from curate.io import manifest as mf
from curate.io.atomic import is_tmp_name, write_bytes_atomic
from curate.io.location import STDIO, Location, info, locate
from curate.run.proc import default_workers, exit_with_driver, imports_done, tune_malloc  # noqa: F401  (default_workers re-exported)
from curate.run.progress import Reporter

WORK = "_work"
# Below this much input a run stays in one process whatever -j says: starting a pool of workers
# (~0.3 s each on a small machine) costs more than it saves. Tests set it to 0 to use the pool.
POOL_MIN_BYTES = 16 << 20


def pool_min_bytes() -> int:
    return int(os.environ.get("CURATE_POOL_MIN_BYTES", POOL_MIN_BYTES))


@dataclass(frozen=True)
class Task:
    name: str  # unique within a run; also the name of its done-marker
    spec: Any  # stage-specific and picklable
    size: int = 0  # input bytes, for progress


@dataclass(frozen=True)
class Phase:
    """A set of independent tasks; phase k+1 starts when every task of phase k is done.

    Phases talk only through files under OUT/_work, so a killed run resumes at the first
    unfinished task. Only the last phase writes the output and accounts rows (in = kept + rejected).
    """

    name: str
    tasks: list[Task]
    method: str = "run_task"  # the Stage method that runs one task of this phase


@dataclass
class TaskResult:
    name: str
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def count(self, reason: str, n: int = 1) -> None:
        if n:
            self.counters[reason] = self.counters.get(reason, 0) + n


@dataclass(frozen=True)
class RunOptions:
    workers: int = 1
    task: tuple[int, int] | None = None  # (index, count): run only tasks index::count
    overwrite: bool = False
    keep_work: bool = False
    rejects: str | None = None
    progress: str = "auto"  # auto | bar | plain | none
    compression: str = "zstd:3"  # of output and rejects shards (--compression)
    # Where tasks run. Not part of the plan (plan.json): a run may be resumed with another executor.
    executor: str = "local"  # local | ray
    ray_address: str | None = None  # None with ray: start a local Ray with `workers` CPUs


@dataclass
class RunSummary:
    stage: str
    output: str
    complete: bool
    tasks_total: int
    tasks_run: int
    tasks_skipped: int
    rows_in: int = 0
    rows_out: int = 0
    rows_rejected: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    seconds: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    already_complete: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


class Stage:
    """A stage: plain params, a plan of independent tasks, and what one task does.

    Subclasses set `name` and `params` (a frozen dataclass), and implement plan() and run_task().
    Heavy state (models) belongs in prepare(), which runs once per worker process.
    """

    name = "stage"
    seed: int | None = None
    output_compression: str = "zstd:3"  # set from RunOptions by execute(); travels to the workers with the stage
    params: Any = None

    def plan(self) -> list[Task]:
        raise NotImplementedError

    def phases(self) -> list[Phase]:
        """A map stage has one phase; global stages (dedup, resample) override this."""
        return [Phase("main", self.plan())]

    def run_task(self, task: Task, ctx: TaskContext) -> None:
        raise NotImplementedError

    def prepare(self) -> None:
        pass

    def finalize(self, out: Location, results: list[TaskResult]) -> dict:
        """Runs once, after every task is done; returns extra manifest fields."""
        return {}

    def work_in_memory(self) -> None:
        """This run is small and runs whole in this process, with no task marked done on disk (a
        rerun after a kill redoes it all): a stage may keep its work files in memory."""

    def manifest_params(self) -> dict:
        return asdict(self.params) if self.params is not None else {}

    def input_manifest(self) -> dict | None:
        return None

    def input_identity(self) -> str | None:
        """Digest of the input; a resumed run must see the same input."""
        return mf.digest(self.input_manifest())

    def input_uri(self) -> str:
        return ""

    def stdout_stream(self, lineage_head: dict):
        """The writer behind '-' as output: an Arrow IPC stream unless the stage says otherwise."""
        from curate.io.stream import StdoutStream

        return StdoutStream(lineage_head)


class TaskContext:
    """What a running task may touch: its output folder, the rejects folder, counters, progress."""

    def __init__(self, out: Location | None, rejects: Location | None, result: TaskResult, progress, stream=None,
                 compression: str = "zstd:3"):
        self.out = out
        self.compression = compression
        self.rejects = rejects
        self.result = result
        self._progress = progress
        self.stream = stream  # a shared Arrow IPC writer when the output is '-'

    def progress(self, rows: int, nbytes: int) -> None:
        if self._progress is not None:
            self._progress(rows, nbytes)

    def open_output(self, name: str, schema):
        """A writer for one output shard (or the shared stdout stream when the output is '-')."""
        if self.stream is not None:
            from curate.io.stream import StreamShard

            return StreamShard(self.stream, schema)
        from curate.io.parquet import ShardWriter

        return ShardWriter(self.out.child(name), schema, compression=self.compression)

    def open_rejects(self, name: str, schema):
        """A writer for rejected rows, or None when --rejects was not given."""
        if self.rejects is None:
            return None
        from curate.io.parquet import ShardWriter

        return ShardWriter(self.rejects.child(name), schema, compression=self.compression)


# ---- worker side -------------------------------------------------------------------------

_worker_queue = None
_prepared: set[int] = set()


def _init_worker(q, driver: int) -> None:
    global _worker_queue
    _worker_queue = q
    exit_with_driver(driver)
    tune_malloc()
    import pyarrow as pa

    pa.set_cpu_count(1)  # one task per process: no oversubscription of the cores
    pa.set_io_thread_count(2)


def _queue_progress(rows: int, nbytes: int) -> None:
    if _worker_queue is not None:
        _worker_queue.put((rows, nbytes))


def _run_one(stage: Stage, phase: Phase, last: bool, task: Task, out: Location | None, rejects: Location | None,
             progress, stream=None) -> TaskResult:
    if id(stage) not in _prepared:
        stage.prepare()
        _prepared.add(id(stage))
    t0 = time.monotonic()
    result = TaskResult(task.name)
    getattr(stage, phase.method)(task, TaskContext(out, rejects, result, progress, stream, stage.output_compression))
    result.seconds = round(time.monotonic() - t0, 3)
    if last and result.rows_in != result.rows_out + result.rows_rejected:
        raise RuntimeError(
            f"row accounting broken in {stage.name} task {task.name}: "
            f"in={result.rows_in} kept={result.rows_out} rejected={result.rows_rejected}"
        )
    if out is not None and _memo is not None:
        _memo[(phase.name, task.name)] = result
    elif out is not None:
        write_bytes_atomic(_done_marker(out, phase.name, task.name), json.dumps(asdict(result), sort_keys=True).encode())
    return result


def _pool_entry(stage: Stage, phase: Phase, last: bool, task: Task, out: Location, rejects: Location | None) -> TaskResult:
    return _run_one(stage, phase, last, task, out, rejects, _queue_progress)


# ---- driver side -------------------------------------------------------------------------


def _done_marker(out: Location, phase: str, name: str) -> Location:
    return out.child(f"{WORK}/done/{phase}/{name.replace('/', '__')}.json")


# A small run in one process (see _in_memory) keeps its done markers here instead of on disk:
# a file costs ~1 ms to create and remove, as much as a task of a 2 MB run.
_memo: dict[tuple[str, str], TaskResult] | None = None


def _small(phases: list[Phase]) -> bool:
    """Below pool_min_bytes a run stays in one process, whatever -j says."""
    return sum(t.size for t in phases[0].tasks) < pool_min_bytes()


def _in_memory(phases: list[Phase], opts: RunOptions, backend) -> bool:
    """Small, all of it in this process (no --task slices, no Ray), and no --keep-work to
    inspect: a kill loses at most a second of work."""
    return _small(phases) and opts.task is None and backend is None and not opts.keep_work


def _read_done(out: Location, phase: str, name: str) -> TaskResult | None:
    if _memo is not None and (phase, name) in _memo:
        return _memo[(phase, name)]
    loc = _done_marker(out, phase, name)
    try:
        with loc.fs.open_input_stream(loc.path) as f:
            return TaskResult(**json.loads(f.read()))
    except (FileNotFoundError, OSError, ValueError, TypeError):
        return None


def _mkdir(loc: Location) -> None:
    try:
        loc.fs.create_dir(loc.path, recursive=True)
    except OSError as e:  # a read-only place, a file on the way, /dev/null/x: the user's path, not a bug
        raise OutputError(f"cannot create the directory ({e})", where=loc.uri,
                          hint="choose an output path in a directory you can write to") from None


def _read_plan(out: Location) -> dict | None:
    """The plan of the unfinished run in `out`, or None (no plan, or not a JSON object)."""
    loc = out.child(f"{WORK}/plan.json")
    if info(loc).type.name != "File":
        return None
    with loc.fs.open_input_stream(loc.path) as f:
        try:
            plan = json.loads(f.read())
        except ValueError:
            return None
    return plan if isinstance(plan, dict) else None


def _plan_rejects(out: Location) -> str | None:
    """The --rejects directory of the unfinished run in `out`, if it has one."""
    return (_read_plan(out) or {}).get("rejects")


def _check_rejects(rej: Location, record: dict, resuming: bool) -> None:
    """--rejects gets OUT's protection: never another dataset, never a directory of someone's files."""
    kind = info(rej).type.name
    if kind == "NotFound":
        return
    if kind != "Directory":
        raise OutputError("--rejects: is a file, not a directory", where=rej.uri, hint="give --rejects a new directory")
    if mf.is_complete(rej):
        if (mf.read_manifest(rej) or {}).get("plan") == record:
            return  # this very run's rejects (a kill between its two manifests)
        raise OutputError("--rejects: already holds a complete dataset made by a different command or input",
                          where=rej.uri, hint="pass --overwrite to replace it, or choose a new --rejects directory")
    if resuming:
        return  # the unfinished run's own reject shards
    stray = [fi.base_name for fi in rej.fs.get_file_info(FileSelector(rej.path)) if not is_tmp_name(fi.base_name)]
    if stray:
        raise OutputError(f"--rejects: exists and holds files of its own ({', '.join(sorted(stray)[:3])})",
                          where=rej.uri, hint="choose a new or empty --rejects directory")


def _clear_output(out: Location, unfinished_ok: bool = False) -> None:
    """--overwrite: drop what curate wrote here (marker first, so no reader trusts a half-cleared dir).
    unfinished_ok: the rejects of an unfinished run of ours, which hold only shards."""
    fs = out.fs
    kind = info(out).type.name
    if kind == "NotFound":
        return
    if kind != "Directory":
        raise OutputError("is a file, not a dataset directory", where=out.uri,
                          hint="give a directory for the output (or '-' for stdout); curate does not delete files it did not write")
    if not unfinished_ok:
        _check_ours(out)
    success = out.child(mf.SUCCESS)
    if info(success).type.name == "File":
        fs.delete_file(success.path)
    if out.is_local:
        import shutil

        shutil.rmtree(out.path)
    else:
        fs.delete_dir_contents(out.path)


def _check_ours(out: Location) -> None:
    """--overwrite deletes a directory only when curate wrote it (or it is empty): a mistyped OUT
    such as a home directory must never be wiped."""
    entries = [fi.base_name for fi in out.fs.get_file_info(FileSelector(out.path, recursive=False))]
    if not entries or {mf.MANIFEST, mf.SUCCESS, WORK} & set(entries):
        return
    shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
    raise OutputError(f"--overwrite refused: this directory holds files curate did not write ({shown})",
                      where=out.uri, hint="choose a new or empty output directory, or remove it yourself")


def _remove_tmp_files(out: Location, before_ns: int) -> None:
    """Temporary files a killed run left; only those older than this run, since a concurrent
    --task slice may be writing its own right now."""
    if info(out).type.name != "Directory":
        return
    for fi in out.fs.get_file_info(FileSelector(out.path, recursive=False)):
        if is_tmp_name(fi.base_name) and (fi.mtime_ns is None or fi.mtime_ns < before_ns):
            try:
                out.fs.delete_file(fi.path)
            except FileNotFoundError:
                pass  # renamed into place or removed by the slice that wrote it


def _same_place(a: Location, b: Location) -> bool:
    return a.fs_key == b.fs_key and a.path.rstrip("/") == b.path.rstrip("/")


def _inside(child: Location, parent: Location) -> bool:
    return child.fs_key == parent.fs_key and (child.path.rstrip("/") + "/").startswith(parent.path.rstrip("/") + "/")


def check_output_location(out: Location, inputs: list[Location]) -> None:
    """`out` (the output or --rejects) may not be, hold or sit inside any of the input paths."""
    for inp in inputs:
        if _same_place(out, inp) or _inside(inp, out):
            raise OutputError(
                "the output would overwrite the input",
                where=out.uri,
                hint="write to a new directory; curate never modifies its input",
            )
        if _inside(out, inp):  # a directory is read recursively: the next run would read this output too
            raise OutputError(
                f"is inside {inp.uri}, which this command reads or writes as a dataset",
                where=out.uri,
                hint="write to a directory beside it, not inside it",
            )


def _plan_record(stage: Stage, phases: list[Phase], rejects: Location | None) -> dict:
    return {
        "rejects": rejects.uri if rejects is not None else None,  # a resume must write its rejects to the same place
        "stage": stage.name,
        "curate_version": __version__,
        "params": stage.manifest_params(),
        "seed": stage.seed,
        "input": stage.input_identity(),
        "tasks": {ph.name: [t.name for t in ph.tasks] for ph in phases},
        "compression": stage.output_compression,
    }


def _check_plan(out: Location, record: dict) -> None:
    old = _read_plan(out)
    if old == record:
        return
    if old is not None:
        what = [k for k in ("stage", "curate_version", "params", "seed", "input", "tasks", "compression", "rejects")
                if old.get(k) != record.get(k)]
        raise OutputError(
            f"holds an unfinished run with different {', '.join(what)}",
            where=out.uri,
            hint="rerun with the same options and input to resume it, or pass --overwrite to start again",
        )
    write_bytes_atomic(out.child(f"{WORK}/plan.json"), json.dumps(record, indent=1, sort_keys=True).encode())


def execute(stage: Stage, out_uri: str, opts: RunOptions, input_locations: list[Location] | None = None) -> RunSummary:
    """Run a stage to completion (or this --task slice of it) and return what happened."""
    t0 = time.monotonic()
    imports_done()
    stage.output_compression = opts.compression
    if out_uri == STDIO:
        if opts.executor != "local":
            raise UsageError(f"--executor {opts.executor} needs an output directory, not '-'",
                             hint="a stream to stdout is written by one process; write to a directory instead")
        return _execute_to_stdout(stage, opts, t0)
    if opts.overwrite and opts.task is not None:
        raise UsageError(
            "--overwrite cannot be combined with --task",
            hint="clear the output once (rm -r OUT, or one run with --overwrite) before fanning out tasks",
        )
    out = locate(out_uri)
    check_output_location(out, input_locations or [])
    backend = None
    if opts.executor == "ray":  # connect first: an unreachable cluster is an error before any work
        from curate.run.ray_backend import RayBackend

        backend = RayBackend(opts.ray_address, opts.workers)
    try:
        return _execute_dir(stage, out, opts, input_locations, backend, t0)
    finally:
        if backend is not None:
            backend.close()


def _execute_dir(stage: Stage, out: Location, opts: RunOptions, input_locations: list[Location] | None, backend,
                 t0: float) -> RunSummary:
    rejects = locate(opts.rejects) if opts.rejects else None
    if rejects is not None:
        check_output_location(rejects, input_locations or [])
        if _same_place(rejects, out) or _inside(rejects, out) or _inside(out, rejects):
            raise UsageError(f"--rejects {rejects.uri} and the output {out.uri} must be separate directories",
                             hint="put the rejects beside the output, e.g. OUT.rejects")
    if opts.overwrite:
        ours = rejects is not None and _plan_rejects(out) == rejects.uri
        _clear_output(out)
        if rejects is not None:
            _clear_output(rejects, unfinished_ok=ours)

    phases = stage.phases()
    for ph in phases:
        names = [t.name for t in ph.tasks]
        if len(set(names)) != len(names):
            raise RuntimeError(f"{stage.name}: duplicate task names in phase {ph.name}")
    tasks = phases[-1].tasks
    record = _plan_record(stage, phases, rejects)

    if mf.is_complete(out):
        existing = mf.read_manifest(out) or {}
        if existing.get("plan") == record and record["input"] != "stdin":  # a stream cannot be compared
            log.info(f"{stage.name}: {out.uri} is already complete; nothing to do (--overwrite redoes it)")
            return _summary_from_manifest(stage, out, existing, len(tasks), time.monotonic() - t0)
        raise OutputError(
            "already holds a complete dataset made by a different command or input",
            where=out.uri,
            hint="pass --overwrite to replace it, or choose a new output directory",
        )
    if info(out).type.name == "File":
        raise OutputError("is a file, not a directory", where=out.uri, hint="choose a directory for the output")
    if info(out).type.name == "Directory" and info(out.child(f"{WORK}/plan.json")).type.name != "File":
        # _work alone: a concurrent --task slice is setting the run up (plan.json comes next)
        stray = [fi for fi in out.fs.get_file_info(FileSelector(out.path)) if not is_tmp_name(fi.base_name)
                 and fi.base_name != WORK]
        if stray:
            raise OutputError(
                "exists and is not an unfinished curate output",
                where=out.uri,
                hint="choose a new output directory (curate deletes only directories it wrote, even with --overwrite)",
            )
    if rejects is not None:
        _check_rejects(rejects, record, resuming=_plan_rejects(out) == rejects.uri)

    global _memo
    in_memory = _in_memory(phases, opts, backend)
    if in_memory:
        _mkdir(out.child(WORK))  # for plan.json, which marks the run as curate's
    else:
        for ph in phases:
            _mkdir(out.child(f"{WORK}/done/{ph.name}"))
    if rejects is not None:
        _mkdir(rejects)
    _check_plan(out, record)

    summary = RunSummary(stage.name, out.uri, False, len(tasks), 0, 0)
    pools = backend or _Pool(opts.workers)
    if in_memory:
        _memo = {}
        stage.work_in_memory()
    else:
        tune_malloc()  # a small run allocates no big buffers: spare it ctypes
    try:
        return _run_phases(stage, phases, out, rejects, record, opts, summary, pools, t0)
    finally:
        _memo = None
        pools.close()


def _run_phases(stage, phases, out, rejects, record, opts, summary, pools, t0) -> RunSummary:
    tasks = phases[-1].tasks
    small = _small(phases)
    for k, ph in enumerate(phases):
        last = k == len(phases) - 1
        mine = ph.tasks if opts.task is None else ph.tasks[opts.task[0] :: opts.task[1]]
        pending = [t for t in mine if _read_done(out, ph.name, t.name) is None]
        skipped = len(mine) - len(pending)
        if skipped and pending:
            log.info(f"{stage.name}: resuming {ph.name}: {skipped} of {len(mine)} tasks already done")
        if last:
            summary.tasks_run, summary.tasks_skipped = len(pending), skipped
        label = stage.name if len(phases) == 1 else f"{stage.name} {ph.name} ({k + 1}/{len(phases)})"
        reporter = Reporter(label, len(pending), sum(t.size for t in pending), opts.progress)
        try:
            if not isinstance(pools, _Pool):  # --executor ray: every task is a Ray task
                pools.run_phase(stage, ph, last, pending, out, rejects, reporter)
            elif opts.workers <= 1 or len(pending) <= 1 or small:
                _run_inline(stage, ph, last, pending, out, rejects, reporter)
            else:
                _run_pool(stage, ph, last, pending, out, rejects, reporter, pools)
        finally:
            reporter.close()
        left = [t for t in ph.tasks if _read_done(out, ph.name, t.name) is None]
        if left:
            log.info(f"{stage.name}: {ph.name}: this slice is done; {len(left)} of {len(ph.tasks)} tasks still to run "
                     "elsewhere (rerun any slice after they finish to go on)")
            if last:
                _add_totals(summary, [r for r in (_read_done(out, ph.name, t.name) for t in tasks) if r is not None])
            summary.seconds = round(time.monotonic() - t0, 3)
            return summary

    results = [_read_done(out, phases[-1].name, t.name) for t in tasks]
    if None in results and mf.is_complete(out):
        # Two --task slices finished together and the other one finalized (and removed _work) first.
        log.info(f"{stage.name}: {out.uri} was completed by another slice")
        return _summary_from_manifest(stage, out, mf.read_manifest(out) or {}, len(tasks), time.monotonic() - t0)
    phase_stats = {}
    if len(phases) > 1:
        for ph in phases:
            rs = [_read_done(out, ph.name, t.name) for t in ph.tasks]
            phase_stats[ph.name] = {"tasks": len(rs), "task_seconds": round(sum(r.seconds for r in rs if r), 3),
                                    "counters": _counters([r for r in rs if r])}
    try:
        _finalize(stage, out, rejects, results, record, opts, t0, phase_stats)
    except Exception:
        # Concurrent --task slices (a Slurm array) can both find the last phase done and finalize
        # together; the loser may find its temporary manifest or _work gone. The winner's output
        # is complete and the same, so that is success, not an error.
        if opts.task is None or not mf.is_complete(out):
            raise
        log.info(f"{stage.name}: {out.uri} was completed by another slice")
        return _summary_from_manifest(stage, out, mf.read_manifest(out) or {}, len(tasks), time.monotonic() - t0)
    _add_totals(summary, results)
    summary.complete = True
    summary.seconds = round(time.monotonic() - t0, 3)
    return summary


def _run_inline(stage: Stage, phase: Phase, last: bool, tasks: list[Task], out: Location, rejects: Location | None,
                reporter: Reporter) -> None:
    for t in tasks:
        _run_one(stage, phase, last, t, out, rejects, reporter.advance)
        reporter.task_done()


class _Pool:
    """One process pool for all the phases of a run (started on first use): workers start once."""

    def __init__(self, workers: int):
        self.workers = workers
        self.pool = None
        self.q = None

    def get(self):
        if self.pool is None:
            import concurrent.futures as cf  # only runs with workers pay for these imports
            import multiprocessing as mp

            ctx = mp.get_context("forkserver")
            # Workers fork from a server that imported these once: each starts in milliseconds.
            ctx.set_forkserver_preload(["curate.run.executor", "curate.stages.base", "pyarrow.parquet", "pyarrow.compute", "numpy"])
            self.q = ctx.Queue()
            self.pool = cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_init_worker,
                                               initargs=(self.q, os.getpid()))
        return self.pool, self.q

    def kill(self) -> None:
        if self.pool is not None:
            for p in list(getattr(self.pool, "_processes", {}).values()):
                p.terminate()  # a failed or interrupted run must stop now; finished tasks are kept
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


def _run_pool(stage: Stage, phase: Phase, last: bool, tasks: list[Task], out: Location, rejects: Location | None,
              reporter: Reporter, pools: _Pool) -> None:
    import concurrent.futures as cf

    pool, q = pools.get()
    futures = {pool.submit(_pool_entry, stage, phase, last, t, out, rejects): t for t in tasks}
    try:
        pending = set(futures)
        while pending:
            done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
            _drain(q, reporter)
            for fut in done:
                fut.result()  # raises the task's error here, in the driver
                reporter.task_done()
    except BaseException:
        for fut in futures:
            fut.cancel()
        pools.kill()
        raise
    finally:
        _drain(q, reporter)


def _drain(q, reporter: Reporter) -> None:
    rows = nbytes = 0
    while True:
        try:
            r, b = q.get_nowait()
        except (queue.Empty, OSError, ValueError, EOFError):
            break
        rows += r
        nbytes += b
    if rows or nbytes:
        reporter.advance(rows, nbytes)


def _add_totals(summary: RunSummary, results: list[TaskResult]) -> None:
    for r in results:
        summary.rows_in += r.rows_in
        summary.rows_out += r.rows_out
        summary.rows_rejected += r.rows_rejected
        summary.bytes_in += r.bytes_in
        summary.bytes_out += r.bytes_out
        for k, v in r.counters.items():
            summary.counters[k] = summary.counters.get(k, 0) + v


def _totals(results: list[TaskResult]) -> dict:
    keys = ("rows_in", "rows_out", "rows_rejected", "bytes_in", "bytes_out")
    return {k: sum(getattr(r, k) for r in results) for k in keys}


def _counters(results: list[TaskResult]) -> dict:
    out: dict[str, int] = {}
    for r in results:
        for k, v in r.counters.items():
            out[k] = out.get(k, 0) + v
    return dict(sorted(out.items()))


def _finalize(stage: Stage, out: Location, rejects: Location | None, results: list[TaskResult], record: dict,
              opts: RunOptions, t0: float, phase_stats: dict | None = None) -> None:
    extra = stage.finalize(out, results)
    totals = _totals(results)
    if totals["rows_in"] != totals["rows_out"] + totals["rows_rejected"]:
        raise RuntimeError(f"row accounting broken in {stage.name}: {totals}")
    parent = stage.input_manifest()
    manifest = {
        "stage": stage.name,
        "curate_version": __version__,
        "params": stage.manifest_params(),
        "seed": stage.seed,
        "input": {"uri": stage.input_uri(), "manifest_digest": mf.digest(parent), "identity": stage.input_identity()},
        "output": out.uri,
        "rejects": rejects.uri if rejects is not None else None,
        "plan": record,
        "shards": [
            {k: v for k, v in asdict(r).items() if k != "extra"} | ({"extra": r.extra} if r.extra else {})
            for r in results
        ],
        "totals": totals,
        "counters": _counters(results),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.monotonic() - t0, 3),
        "lineage": mf.lineage_of(parent),
    } | ({"phases": phase_stats} if phase_stats else {}) | extra
    started_ns = time.time_ns() - int((time.monotonic() - t0) * 1e9)
    _remove_tmp_files(out, started_ns)
    if rejects is not None:
        _remove_tmp_files(rejects, started_ns)
        rej_manifest = dict(manifest, kind="rejects")
        mf.write_manifest(rejects, rej_manifest)
        mf.write_success(rejects)
    mf.write_manifest(out, manifest)
    mf.write_success(out)
    if not opts.keep_work:
        work = out.child(WORK)
        try:
            out.fs.delete_dir(work.path)  # recursive, in C++: no shutil (and bz2, lzma) to import
        except OSError:
            if not out.is_local:
                raise  # locally, as rmtree(ignore_errors=True): a concurrent slice may be removing it
    log.info(
        f"{stage.name}: wrote {out.uri}: {totals['rows_in']:,} in, {totals['rows_out']:,} kept, "
        f"{totals['rows_rejected']:,} rejected"
    )


def _summary_from_manifest(stage: Stage, out: Location, m: dict, ntasks: int, seconds: float) -> RunSummary:
    t = m.get("totals", {})
    return RunSummary(
        stage.name, out.uri, True, ntasks, 0, ntasks,
        rows_in=t.get("rows_in", 0), rows_out=t.get("rows_out", 0), rows_rejected=t.get("rows_rejected", 0),
        bytes_in=t.get("bytes_in", 0), bytes_out=t.get("bytes_out", 0), seconds=round(seconds, 3),
        counters=m.get("counters", {}), already_complete=True,
    )


def _execute_to_stdout(stage: Stage, opts: RunOptions, t0: float) -> RunSummary:
    """'-' output: tasks run in order in this process and share one Arrow IPC stream on stdout."""
    if opts.task is not None:
        raise UsageError("--task needs an output directory, not '-'")
    if opts.rejects:
        raise UsageError("--rejects needs an output directory for the kept rows, not '-'")
    phases = stage.phases()
    if len(phases) != 1:
        raise UsageError(f"{stage.name} is a global stage: it needs an output directory, not '-'",
                         hint="write to a directory, then read it (or `curate export DIR -`) downstream")
    phase = phases[0]
    tasks = phase.tasks
    parent = stage.input_manifest()
    lineage_head = {
        "stage": stage.name, "curate_version": __version__, "params": stage.manifest_params(),
        "seed": stage.seed, "input": {"uri": stage.input_uri(), "manifest_digest": mf.digest(parent)},
        "lineage": mf.lineage_of(parent), "output": STDIO,
    }
    tune_malloc()
    stream = stage.stdout_stream(lineage_head)
    reporter = Reporter(stage.name, len(tasks), sum(t.size for t in tasks), "none" if opts.progress == "auto" and not log.stderr_is_tty() else opts.progress)
    results = []
    try:
        for t in tasks:
            results.append(_run_one(stage, phase, True, t, None, None, reporter.advance, stream))
            reporter.task_done()
        stream.close()
    finally:
        reporter.close()
    summary = RunSummary(stage.name, STDIO, True, len(tasks), len(tasks), 0)
    _add_totals(summary, results)
    summary.seconds = round(time.monotonic() - t0, 3)
    log.info(f"{stage.name}: streamed {summary.rows_out:,} rows to stdout ({summary.rows_rejected:,} rejected)")
    return summary


__all__ = ["CurateError", "Phase", "RunOptions", "RunSummary", "Stage", "Task", "TaskContext", "TaskResult", "execute"]
