"""Every event type the engine, its breakers and its HTTP adapter write: the event contract.

An event is ``{"seq", "at", "type", "task_id", "step_name", "correlation_id", "attempt", "data"}``
(:class:`orchestrator.models.Event`); the ``#:`` line of each member names the fields of its
``data``. Times (``at``, ``next_attempt_at``, ``open_until``) are unix seconds in the engine and
ISO 8601 UTC over the HTTP API (``orchestrator/api/serialize.py``). The dashboard, the demos,
the CLI's live output and the analytics match on these members, never on string literals, so a
renamed event is a one-line change here that mypy follows everywhere. ``docs/events.md`` lists
them with an example ``/events/stream`` line each.

A handler may still emit a type of its own through ``StepInput.events.emit`` (any string); the
engine stores and streams it like the others.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    # -- a task's life ------------------------------------------------------------------------
    #: ``name``, ``version``, ``namespace`` of the template the task was made from, and the
    #: task's ``context`` (as validated, defaults filled in): who or what the task is for.
    TASK_CREATED = "task.created"
    #: (no fields) the first step of the task was claimed.
    TASK_STARTED = "task.started"
    #: ``summary`` (see docs/engine.md, "Task summary"), ``degraded_steps`` (step names, maybe
    #: none): every step complete, resolved or degraded.
    TASK_COMPLETED = "task.completed"
    #: ``failed_steps`` (step names), ``summary``: a step failed for good, nothing else can run.
    TASK_FAILED = "task.failed"
    #: (no fields) an operator cancelled the task.
    TASK_CANCELLED = "task.cancelled"
    #: (no fields) an operator retry or resolution reopened a finished task.
    TASK_RESUMED = "task.resumed"

    # -- a step's life ------------------------------------------------------------------------
    #: ``worker_id``: a worker claimed the step; ``attempt`` is the attempt this starts.
    STEP_STARTED = "step.started"
    #: ``duration_s``: the handler's wall time for the attempt that succeeded.
    STEP_COMPLETED = "step.completed"
    #: ``error`` (``kind``, ``error_code``, ``message``, ``http_status``): failed for good.
    STEP_FAILED = "step.failed"
    #: ``error``, ``fallback_results``: a non-critical step (``on_failure: continue``) failed for
    #: good; its dependents run with the fallback and the task can still complete.
    STEP_DEGRADED = "step.degraded"
    #: ``error``, ``next_attempt_at`` (a time), ``delay_s``: the step will run again.
    STEP_RETRY_SCHEDULED = "step.retry_scheduled"
    #: ``worker_id``: the worker holding the step's lease stopped renewing it (a crash).
    STEP_WORKER_LOST = "step.worker_lost"
    #: ``reason`` (``circuit_open``), ``service``, ``breaker``, ``next_attempt_at``, ``delay_s``:
    #: held back before running, without spending an attempt.
    STEP_DEFERRED = "step.deferred"
    #: ``previous_state``: the task was cancelled while the step could still run.
    STEP_CANCELLED = "step.cancelled"
    #: ``by`` (``operator``): a failed or degraded step was given fresh attempts.
    STEP_RETRY_REQUESTED = "step.retry_requested"
    #: ``by`` (``operator``), ``results`` (the given ones, else the step's fallback): an operator
    #: marked the step done.
    STEP_RESOLVED = "step.resolved"

    # -- calls to services (the HTTP step adapter) --------------------------------------------
    #: ``service``, ``method``, ``path``: a request is about to be sent.
    SERVICE_CALL_STARTED = "service_call.started"
    #: ``service``, ``method``, ``path``, ``status``, ``duration_ms``, ``replayed`` (an
    #: ``Idempotent-Replayed`` answer): the service answered as the step wanted.
    SERVICE_CALL_COMPLETED = "service_call.completed"
    #: ``service``, ``method``, ``path``, ``status`` (or null), ``duration_ms``, ``retryable``,
    #: ``error_code``, ``message``, ``http_status``: the call failed (answer or transport).
    SERVICE_CALL_FAILED = "service_call.failed"

    # -- circuit breakers (no task: ``task_id`` is null) --------------------------------------
    #: ``service``, ``from``, ``to``, ``failures``, ``open_until``, ``last_error``.
    BREAKER_OPENED = "breaker.opened"
    #: ``service``, ``from``, ``to``, ``failures``, ``open_until``: probes may go.
    BREAKER_HALF_OPEN = "breaker.half_open"
    #: ``service``, ``from``, ``to``, ``failures``, ``open_until``: calls flow again.
    BREAKER_CLOSED = "breaker.closed"


#: The events that end a task.
TASK_END_EVENTS = frozenset(
    {EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED}
)
#: The events that end a service call (their ``duration_ms`` feeds the task summary).
SERVICE_CALL_END_EVENTS = frozenset(
    {EventType.SERVICE_CALL_COMPLETED, EventType.SERVICE_CALL_FAILED}
)
#: The events of circuit breakers.
BREAKER_EVENTS = frozenset(
    {EventType.BREAKER_OPENED, EventType.BREAKER_HALF_OPEN, EventType.BREAKER_CLOSED}
)
