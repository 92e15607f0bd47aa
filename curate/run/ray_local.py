"""A throwaway Ray cluster on the loopback, for the tests and benchmarks: `ray start --head --block`
in its own process group and temp dir, so that stop() kills exactly what it started and nothing of
it (e.g. /tmp/ray/ray_current_cluster) outlives it. Drivers join it with its `address`."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Token auth (the default of new local Ray clusters) needs the driver to hold the token; a
# throwaway loopback cluster does without, and leaves no ~/.ray/auth_token behind.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spare_ports() -> list[str]:
    """Free ports for what Ray otherwise binds at fixed numbers (8265, 52365, metrics): two
    clusters on one machine, e.g. two test runs at once, would collide there. (The Ray Client
    server's 10001 is not started without ray[client].)"""
    return [x for opt in ("--dashboard-port", "--dashboard-agent-listen-port", "--metrics-export-port")
            for x in (opt, str(free_port()))]


class LocalRay:
    """A head with `cpus` CPUs; its output goes to `log` (a path) or nowhere."""

    def __init__(self, cpus: int, log: Path | None = None, timeout: float = 120):
        self.port = free_port()
        # short: Ray's socket paths must fit in 107 bytes
        self.temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")
        ray_bin = Path(sys.executable).parent / "ray"
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
        try:
            self.proc = subprocess.Popen(
                [str(ray_bin), "start", "--head", "--block", "--num-cpus", str(cpus), "--port", str(self.port),
                 "--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats",
                 *_spare_ports(), "--temp-dir", self.temp],
                env=dict(os.environ, **RAY_ENV), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if log:
                out.close()
        self.address = f"127.0.0.1:{self.port}"
        t0 = time.time()
        while True:
            if self.proc.poll() is not None or time.time() - t0 > timeout:
                tail = Path(log).read_text(errors="replace")[-2000:] if log else ""
                self.stop()
                raise RuntimeError(f"ray start --head did not come up in {timeout:.0f} s\n{tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)

    def stop(self) -> None:
        # the head, the GCS, the raylet and their workers share the group
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it failed to start
        self.proc.wait()
        shutil.rmtree(self.temp, ignore_errors=True)
