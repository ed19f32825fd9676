"""``GET /metrics``: what an operator scrapes, in Prometheus's text format (prometheus-client).

The counters are fed by the engine's own events, as each batch of them commits (a store
listener: no subscription, no queue; the same events ``/events/stream`` serves, each counted
once, from the moment the API is made):

- ``interlock_step_attempts_total{step, outcome, error_code}``: each attempt's end — ``completed``,
  ``retry`` (it failed and will run again), ``failed`` / ``degraded`` (for good), ``lost`` (its
  worker died: recorded, not counted against the step), and ``deferred`` steps that an open
  breaker held back before they ran;
- ``interlock_service_call_duration_seconds{service, status}``: a histogram of every call the
  HTTP adapter made, ``status`` the HTTP status or ``none`` when no answer came;
- ``interlock_breaker_state{service}``: 0 closed, 1 half-open, 2 open, as its last event said;
- ``interlock_events_total{type}``: every event, by type.

From the store (its :class:`~orchestrator.store.base.StoreObserver`): a histogram of each
claim's latency (``interlock_claim_seconds``) and of each commit's batch size and time
(``interlock_commit_batch_operations``, ``interlock_commit_seconds``).

Read at each scrape: ``interlock_tasks{state}`` and ``interlock_steps{state}``, the tasks and
the steps in each state (a count each). Process metrics (CPU, memory, file descriptors) come
from the client library's default collectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import (
    process_collector as process,
)

from orchestrator.engine import Engine
from orchestrator.event_types import EventType
from orchestrator.models import Event
from orchestrator.store.base import StoreObserver

#: The outcome an event records for a step attempt.
_OUTCOMES: Final = {
    EventType.STEP_COMPLETED: "completed",
    EventType.STEP_RETRY_SCHEDULED: "retry",
    EventType.STEP_FAILED: "failed",
    EventType.STEP_DEGRADED: "degraded",
    EventType.STEP_WORKER_LOST: "lost",
    EventType.STEP_DEFERRED: "deferred",
}
_BREAKER_STATES: Final = {
    EventType.BREAKER_CLOSED: 0,
    EventType.BREAKER_HALF_OPEN: 1,
    EventType.BREAKER_OPENED: 2,
}
#: The event types counted beyond ``interlock_events_total``.
_COUNTED: Final = frozenset(
    {
        *_OUTCOMES,
        *_BREAKER_STATES,
        EventType.SERVICE_CALL_COMPLETED,
        EventType.SERVICE_CALL_FAILED,
    }
)
#: Seconds: a mock call takes a millisecond, a slow real one tens of seconds.
_CALL_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class _StoreMetrics(StoreObserver):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.claims = Histogram(
            "interlock_claim_seconds",
            "From asking the store for ready steps to having them (the commit included)",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=registry,
        )
        self.batches = Histogram(
            "interlock_commit_batch_operations",
            "Writes committed together in one transaction (group commit)",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=registry,
        )
        self.commits = Histogram(
            "interlock_commit_seconds",
            "Time to apply and commit one batch, the fsync included",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
            registry=registry,
        )

    def committed(self, operations: int, seconds: float) -> None:
        self.batches.observe(operations)
        self.commits.observe(seconds)

    def claimed(self, steps: int, seconds: float) -> None:
        self.claims.observe(seconds)


class EngineMetrics:
    """One registry of the engine's metrics, kept current from its event log and its store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.registry = CollectorRegistry()
        process.ProcessCollector(registry=self.registry)
        self.attempts = Counter(
            "interlock_step_attempts",
            "Step attempts by how they ended (deferred: held back by a breaker, no attempt)",
            ["step", "outcome", "error_code"],
            registry=self.registry,
        )
        self.calls = Histogram(
            "interlock_service_call_duration_seconds",
            "Calls the HTTP step adapter made, by service and HTTP status (none: no answer)",
            ["service", "status"],
            buckets=_CALL_BUCKETS,
            registry=self.registry,
        )
        self.breakers = Gauge(
            "interlock_breaker_state",
            "Circuit breaker state by service: 0 closed, 1 half-open, 2 open",
            ["service"],
            registry=self.registry,
        )
        self.events = Counter(
            "interlock_events", "Events the engine wrote, by type", ["type"], registry=self.registry
        )
        self.tasks = Gauge(
            "interlock_tasks", "Tasks by state, at the scrape", ["state"], registry=self.registry
        )
        self.steps = Gauge(
            "interlock_steps", "Steps by state, at the scrape", ["state"], registry=self.registry
        )
        self._by_type: dict[str, Counter] = {}
        engine.store.observer = _StoreMetrics(self.registry)
        engine.store.add_listener(self.observe_batch)

    def observe(self, event: Event) -> None:
        """Count one event. On the commit path, so the per-type child is cached (a ``labels``
        lookup was half of the 2 us an event cost)."""
        by_type = self._by_type.get(event.type)
        if by_type is None:
            by_type = self._by_type[event.type] = self.events.labels(event.type)
        by_type.inc()
        if event.type not in _COUNTED:
            return  # most events (starts, service_call.started, task.*) end here
        data = event.data
        outcome = _OUTCOMES.get(event.type)  # type: ignore[call-overload]
        if outcome is not None:
            error = data.get("error") or {}
            code = str(error.get("error_code") or data.get("reason") or "")
            self.attempts.labels(event.step_name or "", outcome, code).inc()
        elif event.type in (EventType.SERVICE_CALL_COMPLETED, EventType.SERVICE_CALL_FAILED):
            status = data.get("status")
            seconds = float(data.get("duration_ms") or 0) / 1000
            label = "none" if status is None else str(status)
            self.calls.labels(str(data.get("service")), label).observe(seconds)
        elif event.type in _BREAKER_STATES:
            state = _BREAKER_STATES[event.type]  # type: ignore[index]
            self.breakers.labels(str(data.get("service"))).set(state)

    def observe_batch(self, events: Sequence[Event]) -> None:
        """The store's listener: count a committed batch of events."""
        for event in events:
            self.observe(event)

    async def render(self) -> bytes:
        counts = await self.engine.task_counts()
        for state, n in counts.by_state.items():
            self.tasks.labels(state.value).set(n)
        for step_state, n in (await self.engine.step_counts()).items():
            self.steps.labels(step_state.value).set(n)
        return generate_latest(self.registry)


METRICS: Final = web.AppKey("metrics", EngineMetrics)


async def metrics(request: web.Request) -> web.Response:
    body = await request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
