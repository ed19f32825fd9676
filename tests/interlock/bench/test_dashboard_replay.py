"""The replay benchmark end to end, small: it records a burst, replays it into a dashboard
with and without keys, and reports the dashboard's CPU and its keys."""

from __future__ import annotations

import pstats
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.interlock.cli.conftest import ROOT


@pytest.mark.slow
def test_a_small_replay_reports_cpu_and_keys(tmp_path: Path) -> None:
    profiles = tmp_path / "not" / "yet"
    done = subprocess.run(
        [sys.executable, "-m", "interlock.bench.dashboard_replay", "--registrations", "30",
         "--rounds", "1", "--press-every-ms", "100", "--profile-dir", str(profiles)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"recorded [\d,]+ events of 30 registrations", out)
    assert re.search(r"this tree, no keys: dashboard CPU \d+\.\d\d s", out)
    assert re.search(r"this tree, `s` every 100 ms: .* over [1-9]\d* presses", out)
    stats = pstats.Stats(str(profiles / "tree1-100ms-0.prof"))  # made, and readable
    assert stats.total_calls > 0 and (profiles / "tree1-0ms-0.prof").is_file()


def test_a_profile_dir_that_cannot_be_made_is_one_usage_line(tmp_path: Path) -> None:
    taken = tmp_path / "a-file"
    taken.write_text("")
    done = subprocess.run(
        [sys.executable, "-m", "interlock.bench.dashboard_replay", "--profile-dir", str(taken)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(f"--profile-dir {taken}: File exists")
