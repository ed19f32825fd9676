"""The chaos soak, short: ``interlock soak`` with 60 registrations and 2 kills, for real.

The whole command runs as a child process (which runs the services and the orchestrator as
its own children), under the default fault mix on all four services and the template's own
retry policies. Which calls fail, and so how many registrations end ``error``, depends on
timing; the invariants checked do not: every task terminal, none lost, nothing duplicated, no
registration failed by a kill, every failure explained by its faults.

It takes about 8 s. A circuit breaker may open under these faults (rarely in a run this short;
see docs/benchmarks.md, "Chaos soak"): its steps then wait out the 30 s cooldown, so the test
allows time for that rather than fail on a timing it does not check.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REGISTRATIONS = 60


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_short_soak_loses_nothing_duplicates_nothing_and_explains_every_failure(
    tmp_path: Path,
) -> None:
    db = tmp_path / "soak.db"
    argv = ["--n", str(REGISTRATIONS), "--kills", "2", "--rate", "30", "--seed", "1"]
    result = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "soak", *argv, "--db", str(db), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    log = Path(f"{db}.soak.log")
    assert result.returncode == 0, (result.stdout, result.stderr, log.read_text()[-3000:])
    report = json.loads(result.stdout)

    assert report["ok"] and report["problems"] == []
    assert report["registrations"] == report["tasks"] == REGISTRATIONS
    assert report["complete"] + report["failed"] == REGISTRATIONS
    assert report["complete"] >= REGISTRATIONS * 0.8  # most complete under this mix
    assert report["unfinished"] == report["lost"] == report["duplicated"] == 0
    assert report["failed_by_kill"] == report["unexplained"] == report["mismatched"] == 0
    # The kills were real and came while submissions were going on (seed 1 puts both early).
    assert report["kills"] == 2 and len(report["kill_at_s"]) == 2
    assert report["submissions_retried"] > 0
    assert log.read_text().count("killing the orchestrator (SIGKILL)") == 2
    # Every kind of fault fired somewhere, and lost answers were replayed, not redone.
    assert {"latency", "error", "reset", "lost_response"} <= set(report["faults_fired"])
    assert report["idempotent_replays"] > 0
    assert "kill 2/2" in result.stderr


@pytest.mark.slow
def test_the_soak_refuses_a_database_that_exists(tmp_path: Path) -> None:
    db = tmp_path / "used.db"
    db.write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "soak", "--n", "5", "--db", str(db)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"interlock: {db} exists: the soak needs a database of its own" in result.stderr
