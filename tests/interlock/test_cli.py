"""The ``interlock`` command: the sandbox, the client commands and the benchmark, for real."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from interlock.cli.console import describe
from interlock.cli.main import main
from interlock.cli.up import worker_identity
from orchestrator.models import Event

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_up_runs_the_sandbox_to_completion_and_persists(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    ports = [f"--{s}-port=0" for s in ("api", "users", "billing", "preferences", "notifications")]
    result = run_cli("up", "--db", str(db), "--fake", "3", "--exit-when-done", *ports)
    assert result.returncode == 0, result.stderr
    assert "task.completed" in result.stdout
    assert "3 tasks in the database: 3 complete" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tasks WHERE state = 'complete'").fetchone() == (
            3,
        )


@pytest.mark.slow
def test_bench_json_prints_one_object_with_the_numbers() -> None:
    result = run_cli(
        "bench",
        "--json",
        "--only",
        "engine",
        "--only",
        "services",
        "--only",
        "registration",
        "--sequential",
        "20",
        "--parallel",
        "200",
        "--requests",
        "300",
        "--registrations",
        "40",
    )
    assert result.returncode == 0, result.stderr
    both = json.loads(result.stdout)
    services = both["services"]
    assert services["requests_each"] == 300
    assert services["with_fault_layer_rps"] > 0 and services["without_fault_layer_rps"] > 0
    assert both["registration"]["registrations_per_s"] > 0
    assert both["registration"]["engine_cpu_ms_per_registration"] > 0
    assert both["registration"]["services_cpu_ms_per_registration"] > 0
    data = both["engine"]
    for key in ("concurrency_1", "concurrency_100"):
        run = data[key]
        assert run["workflows_per_s"] > 0
        assert run["p99_ms"] >= run["p50_ms"] > 0
    assert data["concurrency_100"]["workflows"] == 200
    assert data["peak_rss_mb"] > 0
    assert both["machine"]["python_ms"] > 0 and both["machine"]["fdatasync_us"] > 0
    assert all(
        both[name]["other_processes_cores"] >= 0 for name in ("engine", "services", "registration")
    )


def test_bad_arguments_exit_with_a_clear_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["submit", "--fake", "0"])
    assert info.value.code == 2
    assert "expected a number >= 1" in capsys.readouterr().err


def test_missing_directory_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--db", str(tmp_path / "nope" / "x.db"), "--exit-when-done"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_event_lines_up_prints() -> None:
    def line(type_: str, data: dict[str, object], step: str | None = None) -> str:
        return describe(
            Event(42, 0.0, type_, "abcdef123456", step, "corr", 2 if step else None, data)
        )

    assert line(
        "step.failed",
        {"error": {"error_code": "HTTP_503", "message": "down"}},
        "setup_billing_profile",
    ) == ("    42 ef123456 step.failed            setup_billing_profile #2  HTTP_503: down")
    assert line("step.retry_scheduled", {"delay_s": 1.5}, "x").endswith("(again in 1.50 s)")
    assert line(
        "task.completed", {"summary": {"total_duration_ms": 120.5, "parallel_saved_ms": 30.0}}
    ).endswith("120.5 ms, 30.0 ms saved by running branches in parallel")
    assert line("task.failed", {"failed_steps": ["a", "b"]}).endswith("failed: a, b")


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
