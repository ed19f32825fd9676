"""The replay benchmark end to end, small: it records a burst, replays it into a dashboard
with and without keys, and reports the dashboard's CPU and its keys."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.interlock.cli.conftest import ROOT


@pytest.mark.slow
def test_a_small_replay_reports_cpu_and_keys() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "interlock.bench.dashboard_replay", "--registrations", "30",
         "--rounds", "1", "--press-every-ms", "100"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"recorded [\d,]+ events of 30 registrations", out)
    assert re.search(r"this tree, no keys: dashboard CPU \d+\.\d\d s", out)
    assert re.search(r"this tree, `s` every 100 ms: .* over [1-9]\d* presses", out)
