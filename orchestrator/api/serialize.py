"""The one place where domain objects become the API's JSON, with one time format.

Every timestamp the API serves is an ISO 8601 string in UTC (``2026-01-01T12:00:00.5+00:00``,
what :func:`iso` gives), or null: the task's, step's and attempt's times, an event's ``at``, a
breaker's ``opened_at`` / ``open_until`` / ``updated_at``. The engine and the store keep unix
seconds; only this module converts. An event's ``data`` is free-form, so the fields in it that
are times are named in :data:`EVENT_TIME_FIELDS` and converted too, wherever an event type puts
them (``step.retry_scheduled``'s and ``step.deferred``'s ``next_attempt_at``, the
``breaker.*`` events' ``open_until``). Durations stay numbers, with their unit in their name
(``duration_ms``, ``delay_s``).

``orchestrator/api/openapi.py`` describes these shapes; ``tests/e2e/test_api.py`` checks real
responses against that description.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from orchestrator.engine import Submission
from orchestrator.models import (
    JSON,
    AttemptView,
    BreakerView,
    ErrorInfo,
    Event,
    StepBottleneck,
    StepReadiness,
    StepView,
    TaskCounts,
    TaskState,
    TaskSummary,
    TaskView,
)

#: Fields of an event's ``data`` that hold a time (unix seconds in the store, ISO 8601 here).
EVENT_TIME_FIELDS: Final = frozenset({"next_attempt_at", "open_until", "opened_at"})


def iso(ts: float | None) -> str | None:
    """Unix seconds as ISO 8601 in UTC; None stays None."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def error_json(error: ErrorInfo | None) -> JSON | None:
    """``last_error`` and an attempt's ``error``: the shape events carry too."""
    if error is None:
        return None
    return {
        "kind": error.kind.value,
        "error_code": error.error_code,
        "message": error.message,
        "http_status": error.http_status,
    }


def step_json(step: StepView) -> JSON:
    return {
        "name": step.name,
        "state": step.state.value,
        "depends_on": list(step.depends_on),
        "attempts": step.attempts,
        "max_attempts": step.max_attempts,
        "results": step.results,
        "last_error": error_json(step.last_error),
        "next_attempt_at": iso(step.next_attempt_at),
        "started_at": iso(step.started_at),
        "completed_at": iso(step.completed_at),
    }


def task_json(task: TaskView) -> JSON:
    return {
        "task_id": task.task_id,
        "name": task.name,
        "namespace": task.namespace,
        "version": task.version,
        "state": task.state.value,
        "correlation_id": task.correlation_id,
        "context": task.context,
        "created_at": iso(task.created_at),
        "completed_at": iso(task.completed_at),
        "summary": task.summary,
        "degraded_steps": task.degraded_steps,
        "steps": [step_json(s) for s in task.steps],
    }


def summary_json(task: TaskSummary) -> JSON:
    return {
        "task_id": task.task_id,
        "name": task.name,
        "namespace": task.namespace,
        "version": task.version,
        "state": task.state.value,
        "correlation_id": task.correlation_id,
        "context": task.context,
        "created_at": iso(task.created_at),
        "completed_at": iso(task.completed_at),
    }


def counts_json(counts: TaskCounts) -> JSON:
    """``GET /tasks/counts``: every state's count (zero included), their total, and the last
    event sequence number they include."""
    return {
        "counts": {state.value: counts.by_state.get(state, 0) for state in TaskState},
        "total": counts.total,
        "last_seq": counts.last_seq,
    }


def submission_json(submission: Submission, state: TaskState) -> JSON:
    return {
        "task_id": submission.task_id,
        "correlation_id": submission.correlation_id,
        "state": state.value,
        "created": submission.created,
    }


def attempt_json(attempt: AttemptView) -> JSON:
    return {
        "step_name": attempt.step_name,
        "attempt": attempt.attempt,
        "worker_id": attempt.worker_id,
        "started_at": iso(attempt.started_at),
        "ended_at": iso(attempt.ended_at),
        "duration_ms": round(attempt.duration_s * 1000, 3),
        "outcome": attempt.outcome,
        "error": error_json(attempt.error),
    }


def event_json(event: Event) -> JSON:
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "type": event.type,
        "task_id": event.task_id,
        "step_name": event.step_name,
        "correlation_id": event.correlation_id,
        "attempt": event.attempt,
        "data": event_data_json(event.data),
    }


def event_data_json(data: JSON) -> JSON:
    """``data`` with the fields of :data:`EVENT_TIME_FIELDS` that hold a number as ISO 8601."""
    if EVENT_TIME_FIELDS.isdisjoint(data):  # most events: no copy
        return data
    return {
        key: _data_time(value) if key in EVENT_TIME_FIELDS else value for key, value in data.items()
    }


def _data_time(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return iso(value)
    return value


def breaker_json(breaker: BreakerView) -> JSON:
    return {
        "service": breaker.service,
        "state": breaker.state.value,
        "failures": breaker.failures,
        "successes": breaker.successes,
        "opened_at": iso(breaker.opened_at),
        "open_until": iso(breaker.open_until),
        "updated_at": iso(breaker.updated_at),
    }


def bottleneck_json(row: StepBottleneck) -> JSON:
    return {
        "workflow": row.workflow,
        "step_name": row.step_name,
        "executions": row.executions,
        "mean_duration_ms": round(row.mean_duration_s * 1000, 3),
        "p95_duration_ms": round(row.p95_duration_s * 1000, 3),
        "retry_rate": row.retry_rate,
        "error_rate": row.error_rate,
    }


def readiness_json(readiness: StepReadiness) -> JSON:
    """Why a step is or is not ready (no route serves it yet; the CLI and dashboard may)."""
    return {
        "name": readiness.name,
        "state": readiness.state.value,
        "parents_done": readiness.parents_done,
        "parents_total": readiness.parents_total,
        "attempts": readiness.attempts,
        "max_attempts": readiness.max_attempts,
        "next_attempt_at": iso(readiness.next_attempt_at),
        "ready": readiness.ready,
        "reason": readiness.reason,
    }
