"""What the dashboard knows about a task, folded from its events: the same fold for live and replay.

A task's structure (its steps, their dependencies and attempt budgets) comes once from
``GET /tasks/{id}``; everything that changes comes from events. :class:`TaskModel` applies one
event at a time, so the live view and the replay of "the task as it was at event k" are the same
code: replay folds the first k events into a fresh model. Results are not in step events, so the
model takes them from the latest task view (they no longer change once a step is done).

Pure: no Textual, no HTTP. Times are unix seconds (the API's ISO 8601 strings parsed once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.event_types import EventType
from orchestrator.models import JSON, StepState, TaskState

#: A step held back by an open circuit breaker: not a stored state, but one the operator must see.
DEFERRED = "deferred"


def parse_time(value: object) -> float | None:
    """An ISO 8601 string from the API as unix seconds (None for anything else)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


@dataclass(slots=True)
class DashEvent:
    """One event from ``/events`` or ``/events/stream``, with its time parsed.

    Not frozen, though nothing changes one once made: a burst brings thousands a second, and a
    frozen dataclass's ``__init__`` (``object.__setattr__`` per field) cost 1.4 µs an event
    against 0.4 µs (docs/benchmarks.md, "An event costs less to take in")."""

    seq: int
    at: float
    type: str
    task_id: str | None
    step_name: str | None
    correlation_id: str | None
    attempt: int | None
    data: JSON

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DashEvent:
        get = raw.get
        data = get("data")
        attempt = get("attempt")
        return cls(
            int(raw["seq"]),
            parse_time(get("at")) or 0.0,
            str(get("type")),
            get("task_id"),
            get("step_name"),
            get("correlation_id"),
            attempt if isinstance(attempt, int) else None,
            data if isinstance(data, dict) else {},
        )


@dataclass(slots=True)
class AttemptBar:
    """One attempt of one step, as the timeline and the step detail show it."""

    attempt: int
    started_at: float
    ended_at: float | None = None
    #: ``running``, ``completed``, ``retry`` (failed, will run again), ``failed``, ``lost``.
    outcome: str = "running"
    service: str | None = None
    request: str | None = None  #: ``POST /users``
    status: int | None = None  #: the last HTTP status the attempt saw
    error_code: str | None = None
    message: str | None = None
    retry_in_s: float | None = None  #: the wait scheduled after it (backoff or Retry-After)
    replayed: bool = False  #: the service answered from its idempotency store
    calls: int = 0  #: service calls made during the attempt

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)


@dataclass(slots=True)
class Wait:
    """A span in which a step was not running: a backoff wait or a breaker deferral."""

    kind: str  #: ``backoff`` or ``deferred``
    start: float
    end: float | None  #: when it was due to end, then when it did (the next event of the step)
    closed: bool = False


@dataclass(slots=True)
class StepSnapshot:
    """One step as of the events applied so far."""

    name: str
    depends_on: tuple[str, ...]
    max_attempts: int
    state: str = StepState.PENDING.value
    attempt: int = 0
    next_attempt_at: float | None = None
    deferred_by: str | None = None  #: the service whose open breaker holds the step back
    last_error: JSON | None = None
    results: JSON | None = None
    lost: int = 0  #: attempts cut short by a crashed worker
    attempts: list[AttemptBar] = field(default_factory=list)
    waits: list[Wait] = field(default_factory=list)

    @property
    def display_state(self) -> str:
        """The state with the deferral the store does not keep as a state of its own."""
        if self.deferred_by is not None and self.state in (
            StepState.PENDING,
            StepState.WAITING_FOR_RETRY,
        ):
            return DEFERRED
        return self.state

    @property
    def idempotent(self) -> str | None:
        """``already_exists`` or ``replayed`` when the service had done this before."""
        status = (self.results or {}).get("status")
        if status == "already_exists":
            return "already_exists"
        if self.attempts and self.attempts[-1].replayed:
            return "replayed"
        return None

    def _open_bar(self) -> AttemptBar | None:
        if self.attempts and self.attempts[-1].ended_at is None:
            return self.attempts[-1]
        return None

    def _end_wait(self, at: float) -> None:
        if self.waits and not self.waits[-1].closed:
            self.waits[-1].end, self.waits[-1].closed = at, True


@dataclass(slots=True)
class TaskModel:
    """A task's steps and state as of the events applied so far."""

    task_id: str
    name: str
    correlation_id: str | None
    context: JSON
    state: str
    created_at: float | None
    completed_at: float | None = None
    summary: JSON | None = None
    steps: dict[str, StepSnapshot] = field(default_factory=dict)
    last_seq: int = 0
    applied: int = 0  #: events applied (the replay position)

    @classmethod
    def from_view(cls, view: Mapping[str, Any], *, as_created: bool = False) -> TaskModel:
        """The task's structure from ``GET /tasks/{id}``; with ``as_created``, every step pending
        (the start of a replay), else the view's own states (events then bring it up to date)."""
        model = cls(
            task_id=str(view["task_id"]),
            name=str(view.get("name")),
            correlation_id=view.get("correlation_id"),
            context=view.get("context") or {},
            state=TaskState.PENDING.value if as_created else str(view.get("state")),
            created_at=parse_time(view.get("created_at")),
        )
        for raw in view.get("steps", []):
            step = StepSnapshot(
                name=str(raw["name"]),
                depends_on=tuple(raw.get("depends_on", ())),
                max_attempts=int(raw.get("max_attempts") or 1),
            )
            if not as_created:
                step.state = str(raw.get("state"))
                step.attempt = int(raw.get("attempts") or 0)
                step.next_attempt_at = parse_time(raw.get("next_attempt_at"))
                step.last_error = raw.get("last_error")
            model.steps[step.name] = step
        model.set_results(view)
        if not as_created:
            model.completed_at = parse_time(view.get("completed_at"))
            model.summary = view.get("summary")
        return model

    def set_results(self, view: Mapping[str, Any]) -> None:
        """Take the steps' results from a task view (events do not carry them)."""
        for raw in view.get("steps", []):
            step = self.steps.get(str(raw.get("name")))
            if step is not None and raw.get("results") is not None:
                step.results = raw["results"]

    def apply_all(self, events: Iterable[DashEvent]) -> TaskModel:
        for event in events:
            self.apply(event)
        return self

    def apply(self, event: DashEvent) -> None:
        """Fold one of this task's events in (others, and repeats by ``seq``, are ignored)."""
        if event.task_id != self.task_id or event.seq <= self.last_seq:
            return
        self.last_seq = event.seq
        self.applied += 1
        if event.type.startswith("task."):
            self._apply_task(event)
            return
        step = self.steps.get(event.step_name or "")
        if step is not None:
            _apply_step(step, event)

    def _apply_task(self, event: DashEvent) -> None:
        kind = event.type
        if kind == EventType.TASK_CREATED:
            self.created_at = event.at
            self.state = TaskState.PENDING.value
        elif kind in (EventType.TASK_STARTED, EventType.TASK_RESUMED):
            self.state = TaskState.IN_PROGRESS.value
            self.completed_at = None
        elif kind in _TASK_ENDS:
            self.state = _TASK_ENDS[kind].value
            self.completed_at = event.at
            summary = event.data.get("summary")
            if isinstance(summary, dict):
                self.summary = summary

    @property
    def degraded(self) -> list[str]:
        return [s.name for s in self.steps.values() if s.state == StepState.DEGRADED]

    def started_at(self) -> float | None:
        starts = [b.started_at for s in self.steps.values() for b in s.attempts]
        return min(starts, default=None)


_TASK_ENDS: Mapping[str, TaskState] = {
    EventType.TASK_COMPLETED: TaskState.COMPLETE,
    EventType.TASK_FAILED: TaskState.ERROR,
    EventType.TASK_CANCELLED: TaskState.CANCELLED,
}


def _apply_step(step: StepSnapshot, event: DashEvent) -> None:  # noqa: C901 - one branch per type
    kind, data, at = event.type, event.data, event.at
    bar = step._open_bar()
    if kind == EventType.STEP_STARTED:
        step._end_wait(at)
        step.state = StepState.IN_PROGRESS.value
        step.attempt = event.attempt or step.attempt + 1
        step.next_attempt_at = None
        step.deferred_by = None
        step.attempts.append(AttemptBar(attempt=step.attempt, started_at=at))
    elif kind == EventType.STEP_COMPLETED:
        step.state = StepState.COMPLETE.value
        step.next_attempt_at = None
        step.last_error = None
        _close(bar, at, "completed")
    elif kind == EventType.STEP_RETRY_SCHEDULED:
        step.state = StepState.WAITING_FOR_RETRY.value
        step.next_attempt_at = parse_time(data.get("next_attempt_at"))
        step.last_error = data.get("error")
        last = step.attempts[-1] if step.attempts else None
        target = bar or (last if last is not None and last.outcome == "lost" else None)
        if target is not None:
            _close(target, at, "retry", data.get("error"))
            target.retry_in_s = _float(data.get("delay_s"))
        step._end_wait(at)
        step.waits.append(Wait("backoff", at, step.next_attempt_at))
    elif kind == EventType.STEP_FAILED:
        step.state = StepState.ERROR.value
        step.next_attempt_at = None
        step.last_error = data.get("error")
        _close(bar, at, "failed", data.get("error"))
    elif kind == EventType.STEP_WORKER_LOST:
        step.lost += 1
        _close(bar, at, "lost")
    elif kind == EventType.STEP_DEFERRED:
        # The claim is handed back before the handler ran: not an attempt (the store gives the
        # attempt back too), so the bar the claim opened goes and the step waits again.
        if bar is not None and bar.calls == 0 and bar.attempt == event.attempt:
            step.attempts.pop()
        if event.attempt:
            step.attempt = max(0, event.attempt - 1)
        step.state = StepState.WAITING_FOR_RETRY.value
        step.deferred_by = str(data.get("service") or "a service")
        step.next_attempt_at = parse_time(data.get("next_attempt_at"))
        step._end_wait(at)
        step.waits.append(Wait("deferred", at, step.next_attempt_at))
    elif kind == EventType.STEP_CANCELLED:
        step.state = StepState.CANCELLED.value
        step.next_attempt_at = None
        step._end_wait(at)
        _close(bar, at, "failed")
    elif kind == EventType.STEP_RETRY_REQUESTED:
        step.state = StepState.PENDING.value
        step.attempt = 0
        step.next_attempt_at = None
    elif kind == EventType.STEP_RESOLVED:
        step.state = StepState.RESOLVED_MANUALLY.value
        step.next_attempt_at = None
        step.deferred_by = None
        step._end_wait(at)
        results = data.get("results")
        step.results = results if isinstance(results, dict) else {}
    elif kind.startswith("service_call.") and bar is not None:
        _apply_call(bar, kind, data)
    elif kind == EventType.STEP_DEGRADED:
        # failed for good, but not critical: its dependents run on the fallback results
        step.state = StepState.DEGRADED.value
        step.next_attempt_at = None
        step.last_error = data.get("error")
        _close(bar, at, "failed", data.get("error"))
        fallback = data.get("fallback_results")
        step.results = fallback if isinstance(fallback, dict) else {}
    elif kind.startswith("step."):  # a state this dashboard does not know yet: show it as named
        step.state = kind.removeprefix("step.")


def _apply_call(bar: AttemptBar, kind: str, data: JSON) -> None:
    bar.service = str(data.get("service") or bar.service or "")
    if data.get("method"):
        bar.request = f"{data.get('method')} {data.get('path')}"
    if kind == EventType.SERVICE_CALL_STARTED:
        bar.calls += 1
    elif kind == EventType.SERVICE_CALL_COMPLETED:
        bar.status = _int(data.get("status"))
        bar.replayed = bool(data.get("replayed"))
    elif kind == EventType.SERVICE_CALL_FAILED:
        bar.status = _int(data.get("status"))
        bar.error_code = data.get("error_code")
        bar.message = data.get("message")


def _close(bar: AttemptBar | None, at: float, outcome: str, error: Any = None) -> None:
    if bar is None:
        return
    if bar.ended_at is None:
        bar.ended_at = at
        bar.outcome = outcome
    if isinstance(error, dict):
        bar.error_code = error.get("error_code") or bar.error_code
        bar.message = error.get("message") or bar.message
        bar.status = _int(error.get("http_status")) or bar.status


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None
