"""--executor ray: every task of every phase runs as a Ray task (Ray Core only, no Ray Data).

The driver keeps what the local executor does: the plan, done-markers, resume, finalize. Ray only
replaces the process pool, so the output bytes cannot depend on the executor. Phases still talk
through files under OUT/_work: on a cluster of several nodes OUT must be shared storage (NFS,
Lustre) or an object-store URI (s3://, gs://) that every node can reach.

Ray is imported here only, and this module only when --executor ray is given: `--help` and local
runs never pay for it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid

from curate.errors import CurateError, TaskFailed, UsageError

MAX_RETRIES = 3  # a worker that dies (killed, out of memory, node lost) is retried this often
POLL_S = 0.2
FLUSH_S = 0.5  # how often a task sends its progress to the driver
# Test hook: a path; the first task to create it kills its own worker process (os._exit), once.
CRASH_ENV = "CURATE_TEST_RAY_CRASH_ONCE"


def import_ray():
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray, which is not installed",
                         hint="pip install 'curate[ray]', or run with --executor local") from None
    return ray


def check_reachable(address: str | None) -> None:
    """Fail in a second, not after Ray's long connection retries, when HOST:PORT does not answer."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--ray-address {address!r} is not HOST:PORT",
                         hint="give the address `ray start --head` printed, e.g. 10.0.0.1:6379, or 'auto'")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        raise UsageError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}",
                         hint="start it with `ray start --head` (port 6379 by default) and check the address, "
                              "or run with --executor local") from None


# Local pool workers inherit the driver's environment; Ray workers do not. These variables travel
# with the job so a task sees the same storage credentials and curate settings as a local one.
FORWARD_PREFIXES = ("CURATE_", "AWS_", "AZURE_STORAGE_", "GOOGLE_APPLICATION_CREDENTIALS", "OPENBLAS_NUM_THREADS")


def forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARD_PREFIXES)}


class ProgressSink:
    """A Ray actor (see RayBackend): tasks add rows and bytes, the driver takes the sums."""

    def __init__(self):
        self.rows = self.nbytes = 0

    def add(self, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.nbytes += nbytes

    def take(self) -> tuple[int, int]:
        r, b = self.rows, self.nbytes
        self.rows = self.nbytes = 0
        return r, b


class _Sender:
    """The progress callback inside a task: batches updates so the actor sees a few calls a second."""

    def __init__(self, sink):
        self.sink = sink
        self.rows = self.nbytes = 0
        self.last = time.monotonic()

    def __call__(self, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.nbytes += nbytes
        if time.monotonic() - self.last >= FLUSH_S:
            self.flush()

    def flush(self, wait: bool = False) -> None:
        if self.rows or self.nbytes:
            ref = self.sink.add.remote(self.rows, self.nbytes)
            if wait:  # a task's last rows are counted before its result is: the driver never lags behind
                import ray

                ray.get(ref)
        self.rows = self.nbytes = 0
        self.last = time.monotonic()


# ---- worker side -------------------------------------------------------------------------

_worker_ready = False
_stage_cache: dict = {}  # run token -> the stage, unpickled and prepared once per worker process


def _crash_once(marker: str) -> None:
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(1)  # as if the worker were OOM-killed: Ray must retry the task elsewhere


def run_task(token: str, stage_box: list, phase, last: bool, task, out, rejects, sink, crash_marker: str | None):
    global _worker_ready
    import ray

    from curate.run import executor as ex

    if not _worker_ready:
        ex.tune_malloc()
        import pyarrow as pa

        pa.set_cpu_count(1)  # one task per CPU Ray gives us: no oversubscription
        pa.set_io_thread_count(2)
        _worker_ready = True
    if crash_marker:
        _crash_once(crash_marker)
    stage = _stage_cache.get(token)
    if stage is None:
        _stage_cache.clear()  # a reused worker keeps only the current run's stage
        stage = _stage_cache[token] = ray.get(stage_box[0])
    send = _Sender(sink)
    try:
        return ex._run_one(stage, phase, last, task, out, rejects, send)
    finally:
        send.flush(wait=True)


# ---- driver side -------------------------------------------------------------------------


class RayBackend:
    """Connects (or starts a local Ray) up front, then runs one phase's pending tasks at a time."""

    def __init__(self, address: str | None, workers: int):
        ray = import_ray()
        address = address or os.environ.get("RAY_ADDRESS") or None  # as `ray job submit` sets it
        check_reachable(address)
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            kwargs = dict(logging_level=logging.WARNING, log_to_driver=True,
                          runtime_env={"env_vars": forwarded_env()})
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:  # "local": a new Ray of our own, never a stray cluster found in /tmp/ray
                    ray.init(address="local", num_cpus=workers, include_dashboard=False, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise UsageError(f"could not start or join Ray ({address or 'local'}): {e}",
                                 hint="check --ray-address and that the cluster runs the same Ray and Python "
                                      "versions; a cluster with token authentication needs RAY_AUTH_MODE=token "
                                      "and its token here; or run with --executor local") from None
            self.started = True
        self.remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False, num_cpus=1)(run_task)
        self.sink = None
        self.token = None
        self.stage_ref = None
        self.stage = None

    def _share(self, stage) -> None:
        """Put the stage in the object store once per run; workers unpickle it once each."""
        if self.stage is not stage:
            self.stage = stage
            self.stage_ref = self.ray.put(stage)
            self.token = uuid.uuid4().hex
        if self.sink is None:
            self.sink = self.ray.remote(num_cpus=0)(ProgressSink).remote()

    def run_phase(self, stage, phase, last: bool, tasks: list, out, rejects, reporter) -> None:
        if not tasks:
            return
        ray = self.ray
        self._share(stage)
        crash = os.environ.get(CRASH_ENV) or None
        refs = {self.remote.remote(self.token, [self.stage_ref], phase, last, t, out, rejects, self.sink, crash): t
                for t in tasks}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_S, fetch_local=True)
                self._drain(reporter)
                for ref in done:
                    self._result(ref, refs[ref], phase)
                    reporter.task_done()
        except BaseException:
            for ref in pending:
                ray.cancel(ref, force=True)  # a failed or interrupted run stops now; finished tasks are kept
            raise
        finally:
            self._drain(reporter)

    def _result(self, ref, task, phase):
        ray = self.ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None)
            if isinstance(cause, CurateError):
                raise cause from None  # the same clear error as a local run gives
            raise
        except ray.exceptions.RayError as e:
            raise TaskFailed(f"task {task.name} of phase {phase.name} failed on Ray after {MAX_RETRIES} retries: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                             hint="its worker kept dying (out of memory? see the Ray logs); "
                                  "rerun the same command to resume") from None

    def _drain(self, reporter) -> None:
        if self.sink is None:
            return
        try:
            rows, nbytes = self.ray.get(self.sink.take.remote(), timeout=10)
        except self.ray.exceptions.RayError:
            return  # progress is best-effort; the done-markers are the truth
        if rows or nbytes:
            reporter.advance(rows, nbytes)

    def close(self) -> None:
        if self.sink is not None:
            self.ray.kill(self.sink)
            self.sink = None
        self.stage = self.stage_ref = None
        if self.started:
            self.ray.shutdown()
            self.started = False
