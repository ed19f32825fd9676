"""The API's JSON from domain objects: one time format (ISO 8601 UTC), no server needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.api.serialize import (
    EVENT_TIME_FIELDS,
    attempt_json,
    breaker_json,
    error_json,
    event_data_json,
    event_json,
    iso,
    readiness_json,
    step_json,
    summary_json,
    task_json,
)
from orchestrator.event_types import EventType
from orchestrator.models import (
    AttemptView,
    BreakerState,
    BreakerView,
    ErrorInfo,
    ErrorKind,
    Event,
    StepReadiness,
    StepState,
    StepView,
    TaskState,
    TaskSummary,
    TaskView,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
T0_ISO = "2026-01-01T12:00:00+00:00"
T1_ISO = "2026-01-01T12:00:01.500000+00:00"
ERROR = ErrorInfo(ErrorKind.RETRYABLE, "HTTP_503", "HTTP 503: down", 503)


def test_iso_is_utc_and_keeps_none() -> None:
    assert iso(T0) == T0_ISO
    assert iso(T0 + 1.5) == T1_ISO
    assert iso(None) is None


def test_error_json_is_the_shape_events_carry() -> None:
    assert (
        error_json(ERROR)
        == ERROR.to_json()
        == {
            "kind": "retryable",
            "error_code": "HTTP_503",
            "message": "HTTP 503: down",
            "http_status": 503,
        }
    )
    assert error_json(None) is None


def step(**changes: object) -> StepView:
    fields: dict[str, object] = {
        "name": "s",
        "handler": "h",
        "state": StepState.WAITING_FOR_RETRY,
        "depends_on": ("a",),
        "attempts": 1,
        "max_attempts": 3,
        "results": None,
        "last_error": ERROR,
        "next_attempt_at": T0 + 1.5,
        "started_at": T0,
        "completed_at": None,
    }
    fields.update(changes)
    return StepView(**fields)  # type: ignore[arg-type]


def test_task_and_step_times() -> None:
    task = TaskView(
        "t1", "wf", "ns", "1.0.0", TaskState.IN_PROGRESS, "c1", {"n": 1}, T0, None, None, (step(),)
    )
    data = task_json(task)
    assert (data["created_at"], data["completed_at"], data["state"]) == (
        T0_ISO,
        None,
        "in_progress",
    )
    (s,) = data["steps"]
    assert s == {
        "name": "s",
        "state": "waiting_for_retry",
        "depends_on": ["a"],
        "attempts": 1,
        "max_attempts": 3,
        "results": None,
        "last_error": error_json(ERROR),
        "next_attempt_at": T1_ISO,
        "started_at": T0_ISO,
        "completed_at": None,
    }
    assert step_json(step(completed_at=T0))["completed_at"] == T0_ISO


def test_summary_and_attempt_times() -> None:
    summary = TaskSummary(
        "t1", "wf", "ns", "1", TaskState.COMPLETE, "c1", {"user": "ada"}, T0, T0 + 1.5
    )
    assert (summary_json(summary)["created_at"], summary_json(summary)["completed_at"]) == (
        T0_ISO,
        T1_ISO,
    )
    assert summary_json(summary)["context"] == {"user": "ada"}
    attempt = AttemptView("t1", "s", 2, "w1", T0, T0 + 1.5, 1.25, "failed", ERROR)
    assert attempt_json(attempt) == {
        "step_name": "s",
        "attempt": 2,
        "worker_id": "w1",
        "started_at": T0_ISO,
        "ended_at": T1_ISO,
        "duration_ms": 1250.0,
        "outcome": "failed",
        "error": error_json(ERROR),
    }


def test_event_at_and_the_times_in_its_data() -> None:
    event = Event(
        7,
        T0,
        EventType.STEP_RETRY_SCHEDULED,
        "t1",
        "s",
        "c1",
        1,
        {"error": error_json(ERROR), "next_attempt_at": T0 + 1.5, "delay_s": 1.5},
    )
    data = event_json(event)
    assert (data["seq"], data["at"], data["type"]) == (7, T0_ISO, EventType.STEP_RETRY_SCHEDULED)
    assert data["data"] == {"error": error_json(ERROR), "next_attempt_at": T1_ISO, "delay_s": 1.5}
    assert event.data["next_attempt_at"] == T0 + 1.5  # the event itself is not changed


@pytest.mark.parametrize("name", sorted(EVENT_TIME_FIELDS))
def test_every_named_time_field_is_converted(name: str) -> None:
    assert event_data_json({name: T0, "other": T0}) == {name: T0_ISO, "other": T0}


def test_event_data_without_times_is_passed_as_it_is() -> None:
    data = {"service": "billing", "duration_ms": 3.5}
    assert event_data_json(data) is data
    assert event_data_json({"open_until": None, "opened_at": True}) == {
        "open_until": None,
        "opened_at": True,
    }
    assert {"next_attempt_at", "open_until", "opened_at"} == EVENT_TIME_FIELDS


def test_breaker_times() -> None:
    breaker = BreakerView("billing", BreakerState.OPEN, 5, 0, T0, T0 + 1.5, T0)
    assert breaker_json(breaker) == {
        "service": "billing",
        "state": "open",
        "failures": 5,
        "successes": 0,
        "opened_at": T0_ISO,
        "open_until": T1_ISO,
        "updated_at": T0_ISO,
    }
    closed = BreakerView("users", BreakerState.CLOSED, 0, 0, None, None, T0)
    assert (breaker_json(closed)["opened_at"], breaker_json(closed)["open_until"]) == (None, None)


def test_readiness_time() -> None:
    ready = StepReadiness("s", StepState.WAITING_FOR_RETRY, 1, 1, 1, 3, T0, False, "retry due")
    assert readiness_json(ready)["next_attempt_at"] == T0_ISO
    assert readiness_json(ready)["state"] == "waiting_for_retry"
