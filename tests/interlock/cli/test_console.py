"""The event lines ``interlock up`` prints."""

from __future__ import annotations

from interlock.cli.console import PRINTED, describe
from orchestrator.event_types import EventType
from orchestrator.models import Event


def test_the_event_lines_up_prints() -> None:
    def line(type_: str, data: dict[str, object], step: str | None = None) -> str:
        return describe(
            Event(42, 0.0, type_, "abcdef123456", step, "corr", 2 if step else None, data)
        )

    assert line(
        EventType.STEP_FAILED,
        {"error": {"error_code": "HTTP_503", "message": "down"}},
        "setup_billing_profile",
    ) == ("    42 ef123456 step.failed            setup_billing_profile #2  HTTP_503: down")
    assert line(EventType.STEP_RETRY_SCHEDULED, {"delay_s": 1.5}, "x").endswith("(again in 1.50 s)")
    assert line(
        EventType.TASK_COMPLETED,
        {"summary": {"total_duration_ms": 120.5, "parallel_saved_ms": 30.0}},
    ).endswith("120.5 ms, 30.0 ms saved by running branches in parallel")
    assert line(EventType.TASK_FAILED, {"failed_steps": ["a", "b"]}).endswith("failed: a, b")
    assert line(
        EventType.STEP_DEGRADED,
        {"error": {"error_code": "CONNECTION_ERROR", "message": "refused"}},
        "initialize_preferences",
    ).endswith("step.degraded          initialize_preferences #2  CONNECTION_ERROR: refused")
    assert line(
        EventType.TASK_COMPLETED,
        {
            "summary": {"total_duration_ms": 9.0, "parallel_saved_ms": 1.0},
            "degraded_steps": ["initialize_preferences"],
        },
    ).endswith("1.0 ms saved by running branches in parallel; degraded: initialize_preferences")


def test_interlock_up_prints_degraded_steps() -> None:
    assert EventType.STEP_DEGRADED in PRINTED
