"""Progress and logs: a rich bar on a terminal, plain lines in cron, silence with --quiet."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

from tests.conftest import curate_proc


def test_plain_lines_when_not_a_terminal(sample_raw, tmp_path):
    r = curate_proc("ingest", sample_raw, tmp_path / "o", "-j", "1", env={"CURATE_LOG_INTERVAL": "0"})
    assert r.returncode == 0
    err = r.stderr.decode()
    assert r.stdout == b""
    lines = [ln for ln in err.splitlines() if "shards," in ln]
    assert lines, err
    # cron-friendly: a timestamp, counts and rates on every line
    assert all(ln[:4].isdigit() and "docs/s" in ln and "MB/s" in ln for ln in lines)
    assert re.search(r"(\d+)/\1 shards", lines[-1]), lines[-1]


def test_quiet_prints_nothing(sample_raw, tmp_path):
    r = curate_proc("ingest", sample_raw, tmp_path / "o", "-q", env={"CURATE_LOG_INTERVAL": "0"})
    assert r.returncode == 0 and r.stderr == b"" and r.stdout == b""


def test_bar_on_a_terminal(sample_raw, tmp_path):
    # Run under a pseudo-terminal, as a person at a shell would.
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, "-m", "curate", "ingest", str(sample_raw), str(tmp_path / "o"), "-j", "1"])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    text = out.decode(errors="replace")
    assert "docs/s" in text and "MB/s" in text and "shards" in text
    assert "\x1b[" in text  # rich drew it with terminal control codes


def test_progress_never_touches_stdout(sample_dataset):
    r = subprocess.run([sys.executable, "-m", "curate", "export", str(sample_dataset), "-", "--progress", "plain"],
                       capture_output=True, env=dict(os.environ, CURATE_LOG_INTERVAL="0"))
    assert r.returncode == 0
    assert len(r.stdout.splitlines()) == 2539
