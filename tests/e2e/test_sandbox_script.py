"""``scripts/sandbox``, the README's first command: the dashboard on a terminal, else headless."""

from __future__ import annotations

import subprocess

import pytest

from tests.interlock.cli.conftest import ROOT, run_in_pty

SANDBOX = str(ROOT / "scripts" / "sandbox")


@pytest.mark.slow
def test_on_a_terminal_it_runs_the_dashboard() -> None:
    status, output = run_in_pty([SANDBOX, "--help"])
    assert status == 0
    assert output.startswith("usage: interlock dashboard"), output


@pytest.mark.slow
def test_headless_on_a_terminal_runs_interlock_up_without_the_flag() -> None:
    status, output = run_in_pty([SANDBOX, "--db", "x.db", "--headless", "--help"])
    assert status == 0
    assert output.startswith("usage: interlock up"), output


@pytest.mark.slow
def test_without_a_terminal_it_runs_interlock_up() -> None:
    result = subprocess.run(
        [SANDBOX, "--help"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: interlock up"), result.stdout
