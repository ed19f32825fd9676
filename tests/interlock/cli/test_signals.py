"""A command that starts a sandbox of its own stops it when it is told to stop (SIGTERM, as
``timeout``, a CI runner or ``kill`` do), instead of leaving its children running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    """The sandbox's children of ``pid``: its ``interlock up`` processes."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == pid and b"up" in cmdline:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(
    "command",
    [
        ["bench", "--only", "dashboard", "--burst", "5000", "--pairs", "1"],
        ["soak", "--n", "5000", "--kills", "0"],
    ],
)
def test_sigterm_stops_the_sandbox_the_command_started(command: list[str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock.cli", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        children: set[int] = set()
        while len(children) < 2:  # the services and the orchestrator
            assert time.monotonic() < deadline, "the sandbox never started"
            assert proc.poll() is None, "the command ended before its sandbox started"
            time.sleep(0.2)
            children = _children(proc.pid)
        time.sleep(1)  # running: a burst under way
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children):
            assert time.monotonic() < deadline, f"left running: {children}"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for child in _children(proc.pid):
            os.kill(child, signal.SIGKILL)
