"""``interlock up``: the sandbox to completion, its checks, and one worker id per database file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from interlock.cli.main import main
from interlock.cli.up import worker_identity
from orchestrator.event_types import EventType
from tests.interlock.cli.conftest import run_cli


@pytest.mark.slow
def test_up_runs_the_sandbox_to_completion_and_persists(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    ports = [f"--{s}-port=0" for s in ("api", "users", "billing", "preferences", "notifications")]
    result = run_cli("up", "--db", str(db), "--fake", "3", "--exit-when-done", *ports)
    assert result.returncode == 0, result.stderr
    assert EventType.TASK_COMPLETED in result.stdout
    assert "3 tasks in the database: 3 complete" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tasks WHERE state = 'complete'").fetchone() == (
            3,
        )


def test_missing_directory_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--db", str(tmp_path / "nope" / "x.db"), "--exit-when-done"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_second_orchestrator_on_one_file_gets_its_own_worker_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shared.db"
    with worker_identity(db) as first:
        assert first == f"interlock-up:{db}"  # stable: a restart reclaims its own steps at once
        with worker_identity(db) as second:
            assert second != first and second.startswith(f"interlock-up:{db}:")
        assert "joins it as a second worker" in capsys.readouterr().out
    with worker_identity(db) as again:  # released: the next process is the stable worker
        assert again == first
