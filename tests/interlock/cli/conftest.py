"""Running the ``interlock`` command for real, as ``python -m interlock.cli`` in a child process,
with pipes or on a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def run_cli(
    *args: str,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """``interlock ARGS`` in a child process; ``env`` is added to this process's environment,
    ``prefix`` runs before the interpreter (``setpriv ...``)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "interlock.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, **(env or {})},
    )


def run_in_pty(argv: Sequence[str]) -> tuple[int, str]:
    """Run ``argv`` with a terminal as stdin, stdout and stderr; its exit status and output."""
    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=ROOT)
    os.close(slave)
    chunks = []
    try:
        while chunk := _read(master):
            chunks.append(chunk)
    finally:
        os.close(master)
    status = process.wait(timeout=60)
    return status, b"".join(chunks).decode().replace("\r\n", "\n")


def _read(fd: int) -> bytes:
    try:
        return os.read(fd, 65536)
    except OSError:  # EIO: every process holding the terminal has closed it
        return b""


def run_all(
    cases: dict[str, tuple[list[str], dict[str, str]]],
    cwd: Path,
    prefix: Sequence[str] = (),
) -> dict[str, tuple[int, str, float]]:
    """Run every case's ``interlock ARGS`` (with its environment added) side by side, in
    ``cwd``; each one's exit status, stderr, and seconds from the start until it was seen done."""
    started = time.monotonic()
    running = {}
    for name, (args, env) in cases.items():
        running[name] = subprocess.Popen(
            [*prefix, sys.executable, "-m", "interlock.cli", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        )
    results = {}
    for name, process in running.items():
        _, err = process.communicate(timeout=60)
        results[name] = (process.returncode, err, time.monotonic() - started)
    return results
