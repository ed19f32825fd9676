"""``interlock demo`` from outside: the list, a real run in a sandbox of its own (the crash
demo, which needs one), and the mistakes a user makes, each one clear line."""

from __future__ import annotations

import pytest

from interlock.demos import DEMOS
from tests.interlock.cli.conftest import run_cli


def test_list_names_every_demo() -> None:
    done = run_cli("demo", "--list")
    assert done.returncode == 0, done.stderr
    for demo in DEMOS:
        assert demo.name in done.stdout and demo.title in done.stdout


@pytest.mark.slow
def test_crash_recovery_kills_and_restarts_its_own_orchestrator_and_passes() -> None:
    done = run_cli("demo", "crash-recovery")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "SIGKILL to the orchestrator" in out and "the orchestrator is back" in out
    assert "verdict: PASS" in out and "✗" not in out
    assert "users holds 200 accounts for 200 people" in out


def test_without_a_name_it_says_how_to_list_them() -> None:
    done = run_cli("demo")
    assert done.returncode == 2 and "interlock demo --list" in done.stderr


def test_an_unknown_demo_is_refused_with_the_choices() -> None:
    done = run_cli("demo", "billing")
    assert done.returncode == 2 and "billing-outage" in done.stderr


def test_the_crash_demo_on_an_attached_sandbox_is_one_clear_line() -> None:
    done = run_cli("demo", "crash-recovery", "--attach", "http://127.0.0.1:9")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("interlock: crash-recovery kills")


def test_an_unreachable_attached_sandbox_is_one_clear_line() -> None:
    done = run_cli("demo", "flaky-email", "--attach", "http://127.0.0.1:9")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "http://127.0.0.1:9/health" in done.stderr
