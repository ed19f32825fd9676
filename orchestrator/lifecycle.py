"""The rules of a task's and a step's life, as pure functions on states.

Every store calls these inside its write transaction, so the rules live once, here, and a second
store adds only SQL. They decide; the store reads the rows they need and writes what they
decided (and the events), in the same commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from orchestrator import codec
from orchestrator.dag import blocked_by_failure
from orchestrator.errors import IdempotencyKeyConflictError, InvalidTransitionError
from orchestrator.models import (
    ACTIVE_TASK_STATES,
    CLAIMABLE_STEP_STATES,
    FAILED_STEP_STATES,
    JSON,
    OPEN_STEP_STATES,
    REOPENABLE_TASK_STATES,
    RESOLVABLE_STEP_STATES,
    RETRYABLE_STEP_STATES,
    ErrorInfo,
    ErrorKind,
    OnFailure,
    StepState,
    TaskState,
)

#: The error code of an attempt cut short because its worker stopped renewing the lease.
WORKER_LOST = "WORKER_LOST"
#: The error code of a step whose worker was lost :data:`MAX_LOST_IN_A_ROW` times in a row.
WORKER_LOST_REPEATEDLY = "WORKER_LOST_REPEATEDLY"
#: Attempts in a row a step may lose to crashed workers before it fails for good. A crash is not
#: the service's failure, so a lost attempt is not counted against ``max_attempts``; this bound
#: stops a step that crashes its worker every time (a poison input) from looping for ever.
MAX_LOST_IN_A_ROW = 5


class StepStatus(Protocol):
    """What the rules need to know of a step (a stored row or a :class:`StepView`)."""

    @property
    def name(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def depends_on(self) -> tuple[str, ...]: ...


def task_outcome(task_state: str, steps: Iterable[StepStatus]) -> TaskState | None:
    """The state an active task ends in now, or None while something in it can still run.

    A task ends when no step can run any more: every step finished, or every step still open
    waits (transitively) on a failed or cancelled one. It ends ``error`` if a step failed,
    ``complete`` otherwise: a ``degraded`` step (non-critical, failed for good) counts as done,
    not as a failure. A task that is not active never changes here.
    """
    if task_state not in ACTIVE_TASK_STATES:
        return None
    steps = list(steps)
    if any(s.state in OPEN_STEP_STATES for s in steps):
        failed = {s.name for s in steps if s.state in FAILED_STEP_STATES}
        if not failed:
            return None
        blocked = blocked_by_failure({s.name: s.depends_on for s in steps}, failed)
        if any(s.state in OPEN_STEP_STATES and s.name not in blocked for s in steps):
            return None
    if any(s.state == StepState.ERROR for s in steps):
        return TaskState.ERROR
    return TaskState.COMPLETE


def failed_step_names(steps: Iterable[StepStatus]) -> list[str]:
    """The steps that failed for good, in the order given (template order)."""
    return [s.name for s in steps if s.state == StepState.ERROR]


def degraded_step_names(steps: Iterable[StepStatus]) -> list[str]:
    """The non-critical steps that failed for good and gave their fallback (template order)."""
    return [s.name for s in steps if s.state == StepState.DEGRADED]


def is_due(state: str, next_attempt_at: float | None, now: float) -> bool:
    """Whether a step whose dependencies are done may be claimed at ``now``."""
    if state == StepState.PENDING:
        return True
    return state == StepState.WAITING_FOR_RETRY and (next_attempt_at or 0) <= now


def is_claimable(state: str) -> bool:
    return state in CLAIMABLE_STEP_STATES


def failure_state(next_attempt_at: float | None, on_failure: str = OnFailure.FAIL) -> StepState:
    """A failed attempt with a next attempt time waits for it; without one the step failed for
    good: ``error`` for a critical step, ``degraded`` for a non-critical one (``continue``)."""
    if next_attempt_at is not None:
        return StepState.WAITING_FOR_RETRY
    return StepState.DEGRADED if on_failure == OnFailure.CONTINUE else StepState.ERROR


def resolution_results(given: JSON | None, fallback: JSON | None) -> JSON:
    """What a step resolved by hand hands its dependents: the operator's results if given,
    else the step's declared fallback, else nothing (``{}``)."""
    if given is not None:
        return given
    return dict(fallback) if fallback is not None else {}


@dataclass(frozen=True, slots=True)
class LostAttempt:
    """What :func:`lost_attempt` decided for a step whose worker was lost."""

    error: ErrorInfo  #: recorded as the attempt's error and the step's last_error
    retry_at: float | None  #: when it runs again, or None: it failed for good
    state: StepState  #: waiting_for_retry, error or degraded
    attempts: int  #: the step's attempt count afterwards (the lost one given back)


def lost_attempt(
    worker_id: str | None,
    attempts: int,
    lost_in_a_row: int,
    now: float,
    on_failure: str = OnFailure.FAIL,
) -> LostAttempt:
    """What becomes of a step whose worker stopped renewing its lease mid-attempt.

    The attempt is recorded (it happened, and is shown) but given back: a crash is not the
    service's failure and must not spend the step's ``max_attempts``. The step runs again at
    once, unless this is its :data:`MAX_LOST_IN_A_ROW`-th lost attempt in a row (``lost_in_a_row``
    counts this one): then it fails for good with :data:`WORKER_LOST_REPEATEDLY` (``error``, or
    ``degraded`` for a non-critical step).
    """
    given_back = max(0, attempts - 1)
    if lost_in_a_row >= MAX_LOST_IN_A_ROW:
        error = ErrorInfo(
            ErrorKind.PERMANENT,
            WORKER_LOST_REPEATEDLY,
            f"lost to a crashed worker {lost_in_a_row} times in a row (last: {worker_id})",
        )
        return LostAttempt(error, None, failure_state(None, on_failure), given_back)
    error = ErrorInfo(
        ErrorKind.RETRYABLE, WORKER_LOST, f"worker {worker_id} stopped renewing its lease"
    )
    return LostAttempt(error, now, StepState.WAITING_FOR_RETRY, given_back)


# -- submitting ---------------------------------------------------------------------------------


def request_hash(name: str, namespace: str, version: str, context: object) -> str:
    """What makes two submissions "the same request", as one hex digest.

    The resolved template (so a submission without a version and one naming the version it
    resolved to are the same) and the context after the schema's defaults (so leaving out a
    field and giving its default are the same); key order never matters.
    """
    document = {"name": name, "namespace": namespace, "version": version, "context": context}
    return hashlib.sha256(codec.canonical(document)).hexdigest()


def check_resubmission(key: str, task_id: str, stored_hash: str | None, new_hash: str) -> None:
    """A key that names an existing task returns it only for the same request.

    A task stored before request hashes were kept (``stored_hash`` None) cannot be compared;
    it is returned as before rather than refusing a retry that may well be the same.
    """
    if stored_hash is not None and stored_hash != new_hash:
        raise IdempotencyKeyConflictError(key, task_id)


# -- operator actions ---------------------------------------------------------------------------


def check_cancel(task_id: str, task_state: str) -> None:
    """Only an unfinished task can be cancelled."""
    if task_state not in ACTIVE_TASK_STATES:
        raise InvalidTransitionError(
            f"task {task_id} is {task_state}; only an unfinished task can be cancelled",
            current_state=task_state,
        )


def check_retry(task_id: str, task_state: str, step_name: str, step_state: str) -> None:
    """Only a failed or degraded step of a task that was not cancelled can be given fresh
    attempts (a degraded step's retry can still fill in what its fallback stood in for)."""
    if step_state not in RETRYABLE_STEP_STATES:
        raise InvalidTransitionError(
            f"step {step_name!r} is {step_state}; only a failed or degraded step can be retried",
            current_state=step_state,
        )
    if task_state == TaskState.CANCELLED:
        raise InvalidTransitionError(f"task {task_id} is cancelled", current_state=task_state)


def check_resolve(task_state: str, step_name: str, step_state: str) -> None:
    """A pending, waiting or failed step of a task that was not cancelled can be resolved."""
    if step_state not in RESOLVABLE_STEP_STATES or task_state == TaskState.CANCELLED:
        raise InvalidTransitionError(
            f"step {step_name!r} is {step_state} in a task that is {task_state}; only a "
            "pending, waiting or failed step of an uncancelled task can be resolved",
            current_state=step_state,
        )


def reopens(task_state: str) -> bool:
    """Whether an operator retry or resolution turns a finished task back to in_progress."""
    return task_state in REOPENABLE_TASK_STATES
