"""Typed, immutable values that cross the engine's boundaries (store, API, live views)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]


class TaskState(StrEnum):
    PENDING = "pending"  #: created, no step has started yet
    IN_PROGRESS = "in_progress"  #: at least one step started; not finished
    COMPLETE = "complete"  #: every step complete, resolved manually or degraded
    ERROR = "error"  #: a step failed for good and nothing else can run
    CANCELLED = "cancelled"  #: an operator cancelled it


class StepState(StrEnum):
    PENDING = "pending"  #: waiting for its dependencies (or for a first claim)
    IN_PROGRESS = "in_progress"  #: claimed by a worker holding a lease
    WAITING_FOR_RETRY = "waiting_for_retry"  #: failed retryably; runs again at next_attempt_at
    COMPLETE = "complete"  #: the handler succeeded; results are stored
    ERROR = "error"  #: failed permanently or ran out of attempts
    CANCELLED = "cancelled"  #: its task was cancelled before it finished
    RESOLVED_MANUALLY = "resolved_manually"  #: an operator marked it done (optional results)
    #: a non-critical step (``on_failure: continue``) failed for good; its dependents ran with
    #: its ``fallback_results`` and it does not fail the task (an operator may still retry it)
    DEGRADED = "degraded"


class OnFailure(StrEnum):
    """What a step failing for good does to its task (the template's ``on_failure``)."""

    FAIL = "fail"  #: the step is critical: it ends ``error``, its dependents never run
    CONTINUE = "continue"  #: non-critical: it ends ``degraded``, dependents get its fallback


TERMINAL_TASK_STATES = frozenset({TaskState.COMPLETE, TaskState.ERROR, TaskState.CANCELLED})
#: Task states in which steps may still be claimed.
ACTIVE_TASK_STATES = frozenset({TaskState.PENDING, TaskState.IN_PROGRESS})
#: Step states that satisfy a dependency.
DONE_STEP_STATES = frozenset({StepState.COMPLETE, StepState.RESOLVED_MANUALLY, StepState.DEGRADED})
#: Step states from which no further execution happens without an operator.
TERMINAL_STEP_STATES = frozenset(
    {
        StepState.COMPLETE,
        StepState.ERROR,
        StepState.CANCELLED,
        StepState.RESOLVED_MANUALLY,
        StepState.DEGRADED,
    }
)
#: Step states in which a step may still run without an operator (the complement of terminal).
OPEN_STEP_STATES = frozenset(
    {StepState.PENDING, StepState.IN_PROGRESS, StepState.WAITING_FOR_RETRY}
)
#: Step states that block every dependent for good (until an operator acts).
FAILED_STEP_STATES = frozenset({StepState.ERROR, StepState.CANCELLED})
#: Step states a worker may claim (when dependencies are done and the retry time is due).
CLAIMABLE_STEP_STATES = frozenset({StepState.PENDING, StepState.WAITING_FOR_RETRY})
#: Step states an operator may give fresh attempts (a degraded one can still be filled in).
RETRYABLE_STEP_STATES = frozenset({StepState.ERROR, StepState.DEGRADED})
#: Step states an operator may resolve by hand.
RESOLVABLE_STEP_STATES = frozenset(
    {StepState.ERROR, StepState.PENDING, StepState.WAITING_FOR_RETRY}
)
#: Task states an operator retry or resolution reopens.
REOPENABLE_TASK_STATES = frozenset({TaskState.ERROR, TaskState.COMPLETE})


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"  #: the engine will try again (if attempts remain)
    PERMANENT = "permanent"  #: the engine will not try again


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why an attempt failed, as stored and served (``last_error``)."""

    kind: ErrorKind  #: retryable or permanent
    error_code: str | None  #: machine-readable code, e.g. ``TIMEOUT``, ``USER_CONFLICT``
    message: str  #: human-readable explanation
    http_status: int | None = None  #: the HTTP status behind it, when a service answered

    def to_json(self) -> JSON:
        return {
            "kind": self.kind.value,
            "error_code": self.error_code,
            "message": self.message,
            "http_status": self.http_status,
        }

    @classmethod
    def from_json(cls, data: JSON | None) -> ErrorInfo | None:
        if data is None:
            return None
        return cls(
            kind=ErrorKind(data["kind"]),
            error_code=data.get("error_code"),
            message=data.get("message", ""),
            http_status=data.get("http_status"),
        )


@dataclass(frozen=True, slots=True)
class StepView:
    """One step of a task as stored."""

    name: str  #: unique within the task
    handler: str  #: registered handler name
    state: StepState  #: current state
    depends_on: tuple[str, ...]  #: names of the steps it waits for
    attempts: int  #: executions started so far
    max_attempts: int  #: executions allowed before the step fails for good
    results: JSON | None  #: what the handler returned (the operator's resolution, a fallback)
    last_error: ErrorInfo | None  #: why the latest attempt failed
    next_attempt_at: float | None  #: unix time of the next retry, when waiting_for_retry
    started_at: float | None  #: unix time the latest attempt started
    completed_at: float | None  #: unix time the step reached complete / resolved / error / degraded


@dataclass(frozen=True, slots=True)
class TaskView:
    """A task with all its steps, in template order."""

    task_id: str
    name: str
    namespace: str
    version: str
    state: TaskState
    correlation_id: str
    context: JSON
    created_at: float
    completed_at: float | None
    idempotency_key: str | None
    steps: tuple[StepView, ...]
    summary: JSON | None = None  #: what the engine recorded when the task finished

    def step(self, name: str) -> StepView:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    @property
    def failed_steps(self) -> list[str]:
        return [s.name for s in self.steps if s.state is StepState.ERROR]

    @property
    def degraded_steps(self) -> list[str]:
        """Non-critical steps that failed for good and whose dependents ran with a fallback."""
        return [s.name for s in self.steps if s.state is StepState.DEGRADED]


@dataclass(frozen=True, slots=True)
class TaskSummary:
    """A task without its steps, for listings (with its context: who or what it is for)."""

    task_id: str
    name: str
    namespace: str
    version: str
    state: TaskState
    correlation_id: str
    context: JSON
    created_at: float
    completed_at: float | None


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """How many tasks are in each state, as of one moment of the log.

    ``last_seq`` is the last event the counts include (read in the same statement), so a reader
    that follows the event stream can add only the events after it and never count one twice.
    """

    by_state: dict[TaskState, int]  #: every state, zero included
    last_seq: int

    @property
    def total(self) -> int:
        return sum(self.by_state.values())


class AttemptOutcome(StrEnum):
    COMPLETED = "completed"  #: the handler succeeded
    FAILED = "failed"  #: the handler failed (retryably or for good)
    LOST = "lost"  #: the worker running it stopped renewing its lease (a crash)


@dataclass(frozen=True, slots=True)
class AttemptView:
    """One finished execution of a step."""

    task_id: str
    step_name: str
    attempt: int  #: 1-based attempt number
    worker_id: str  #: the engine that ran it
    started_at: float
    ended_at: float
    duration_s: float  #: handler wall time
    outcome: AttemptOutcome
    error: ErrorInfo | None


@dataclass(frozen=True, slots=True)
class Event:
    """An append-only record of a change; ``seq`` is strictly increasing in commit order."""

    seq: int
    at: float  #: unix time
    type: str  #: e.g. ``task.created``, ``step.retry_scheduled``
    task_id: str | None
    step_name: str | None
    correlation_id: str | None
    attempt: int | None
    data: JSON = field(default_factory=dict)  #: type-specific payload (error, results, delay …)


@dataclass(frozen=True, slots=True)
class StepReadiness:
    """Why a step is or is not ready to run."""

    name: str
    state: StepState
    parents_done: int  #: dependencies complete or resolved
    parents_total: int
    attempts: int
    max_attempts: int
    next_attempt_at: float | None
    ready: bool
    reason: str  #: e.g. ``waiting for 1 of 2 dependencies``, ``retry due in 3.2 s``


@dataclass(frozen=True, slots=True)
class AttemptStat:
    """The part of one finished attempt that the bottleneck analytics need."""

    workflow: str  #: the task's template name
    step_name: str
    duration_s: float
    outcome: AttemptOutcome
    error_kind: ErrorKind | None  #: how a failed or lost attempt was classified


@dataclass(frozen=True, slots=True)
class StepBottleneck:
    """Execution statistics of one step of one workflow, from its attempts."""

    workflow: str
    step_name: str
    executions: int  #: attempts finished
    mean_duration_s: float
    p95_duration_s: float
    retry_rate: float  #: share of attempts that failed retryably and were retried
    error_rate: float  #: share of attempts that failed


# Not frozen: built for every transition, and a frozen one is slower to construct
# (docs/benchmarks.md, "Measured choices in the code").
@dataclass(slots=True)
class ClaimedStep:
    """Everything a worker needs to run one claimed step, read in the claiming transaction."""

    step_id: int
    task_id: str
    task_name: str
    step_name: str
    handler: str
    attempt: int  #: the attempt this claim starts (1-based)
    max_attempts: int
    timeout_s: float | None
    retry: JSON  #: the effective retry policy (see :class:`orchestrator.retry.RetryPolicy`)
    handler_config: JSON
    context: JSON
    dependency_results: dict[str, JSON]
    correlation_id: str
    started_at: float


class BreakerState(StrEnum):
    CLOSED = "closed"  #: calls flow; consecutive retryable failures are counted
    OPEN = "open"  #: calls are held back until ``open_until``
    HALF_OPEN = "half_open"  #: a few probe calls may go; their outcome closes or reopens it


@dataclass(frozen=True, slots=True)
class BreakerView:
    """One service's circuit breaker as stored (one row per service)."""

    service: str
    state: BreakerState
    failures: int  #: consecutive retryable failures (closed), or 0
    successes: int  #: successful probes so far (half-open)
    opened_at: float | None
    open_until: float | None  #: when an open breaker lets the first probe through
    updated_at: float
