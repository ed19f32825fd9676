"""The store interface: domain operations the engine asks of a database.

Every state change is a compare-and-swap on the expected state and is written in the same
transaction as its events, so two engines on one database never run a step twice. Operations
that finish a step also claim the steps it made ready, so one commit does both.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from orchestrator.models import (
    JSON,
    AttemptStat,
    AttemptView,
    BreakerView,
    ClaimedStep,
    ErrorInfo,
    Event,
    OnFailure,
    StepState,
    TaskCounts,
    TaskState,
    TaskSummary,
    TaskView,
)

EventListener = Callable[[Sequence[Event]], None]


# Not frozen: built for every transition, and a frozen one is slower to construct
# (docs/benchmarks.md, "Measured choices in the code").
@dataclass(slots=True)
class Claim:
    """Permission for a store operation to claim up to ``limit`` ready steps for ``owner``."""

    owner: str  #: the claiming engine's worker id
    lease_s: float  #: how long the claim holds before another worker may reclaim it
    limit: int  #: most steps to claim (the engine's free concurrency)
    now: float  #: unix time of the claim


@dataclass(frozen=True, slots=True)
class NewStep:
    name: str
    handler: str
    depends_on: tuple[str, ...]
    max_attempts: int
    retry: JSON  #: effective RetryPolicy as JSON
    timeout_s: float | None
    handler_config: JSON
    on_failure: OnFailure = OnFailure.FAIL  #: ``continue``: failing for good degrades it
    fallback_results: JSON | None = None  #: what dependents get from it when degraded


@dataclass(frozen=True, slots=True)
class NewTask:
    task_id: str
    name: str
    namespace: str
    version: str
    correlation_id: str
    context: JSON
    idempotency_key: str | None
    steps: tuple[NewStep, ...]
    now: float
    #: ``lifecycle.request_hash`` of this submission: a reused key must name the same request
    request_hash: str | None = None


# Not frozen: built for every transition, and a frozen one is slower to construct
# (docs/benchmarks.md, "Measured choices in the code").
@dataclass(slots=True)
class CreatedTask:
    task_id: str  #: the new task, or the existing one with the same idempotency key
    created: bool  #: False when an existing task was returned
    claimed: list[ClaimedStep] = field(default_factory=list)


# Not frozen: built for every transition, and a frozen one is slower to construct
# (docs/benchmarks.md, "Measured choices in the code").
@dataclass(slots=True)
class StepSuccess:
    step_id: int
    task_id: str
    step_name: str
    owner: str
    attempt: int
    results: JSON
    started_at: float
    duration_s: float
    now: float


# Not frozen: built for every transition, and a frozen one is slower to construct
# (docs/benchmarks.md, "Measured choices in the code").
@dataclass(slots=True)
class StepFailure:
    step_id: int
    task_id: str
    step_name: str
    owner: str
    attempt: int
    error: ErrorInfo
    next_attempt_at: float | None  #: None: the step fails for good
    started_at: float
    duration_s: float
    now: float


# Not frozen: built for every transition, and a frozen one is slower to construct
# (docs/benchmarks.md, "Measured choices in the code").
@dataclass(slots=True)
class Transition:
    accepted: bool  #: False when the compare-and-swap lost (cancelled, or lease reclaimed)
    claimed: list[ClaimedStep] = field(default_factory=list)


# Not frozen: built for every transition, and a frozen one is slower to construct
# (docs/benchmarks.md, "Measured choices in the code").
@dataclass(slots=True)
class NewEvent:
    type: str
    task_id: str | None
    step_name: str | None = None
    correlation_id: str | None = None
    attempt: int | None = None
    data: JSON = field(default_factory=dict)
    at: float = 0.0


class StoreObserver:
    """Told of each commit and each claim, for the metrics an operator scrapes (the API's
    ``/metrics`` sets one). This default does nothing; a store calls it on its hot path, so an
    observer only counts."""

    def committed(self, operations: int, seconds: float) -> None:
        """A batch of ``operations`` writes committed in ``seconds`` (the fsync included)."""

    def claimed(self, steps: int, seconds: float) -> None:
        """A claim for ready steps got ``steps`` of them ``seconds`` after it was asked."""


class Store(abc.ABC):
    """What the engine needs from a database. SQLite is the default implementation."""

    #: Told of commits and claims; replace it to count them (``orchestrator/api/metrics.py``).
    observer: StoreObserver = StoreObserver()

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and migrate the schema to the current version."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def add_listener(self, listener: EventListener) -> None:
        """Call ``listener`` with each batch of events right after it commits, in seq order
        (on a database several workers share, theirs included, in the one global order)."""

    def on_outside_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when another worker committed a change, so an idle engine claims
        at once instead of at its next poll. A store that only one process writes never calls
        it (this default)."""
        del callback

    # -- hot path -----------------------------------------------------------------------------
    @abc.abstractmethod
    async def create_task(self, task: NewTask, claim: Claim | None) -> CreatedTask: ...

    @abc.abstractmethod
    async def complete_step(self, success: StepSuccess, claim: Claim | None) -> Transition: ...

    @abc.abstractmethod
    async def fail_step(self, failure: StepFailure, claim: Claim | None = None) -> Transition:
        """Record a failed attempt. A non-critical step failing for good becomes ``degraded``
        and counts as done: ``claim`` lets the same commit claim the dependents it freed."""

    @abc.abstractmethod
    async def claim_ready_steps(self, claim: Claim) -> list[ClaimedStep]: ...

    @abc.abstractmethod
    async def defer_step(
        self, step_id: int, owner: str, until: float, reason: JSON, now: float
    ) -> bool:
        """Put a claimed step back to waiting_for_retry without spending the attempt."""

    @abc.abstractmethod
    async def append_events(self, events: Sequence[NewEvent]) -> None:
        """Write events and wait for their commit."""

    @abc.abstractmethod
    def post_events(self, events: Sequence[NewEvent]) -> None:
        """Queue events for the next commit without waiting for it.

        They commit before any write queued after them (a handler's events always precede its
        step's completion). For observations such as ``service_call.*``, where waiting for the
        disk would only delay the call being observed.
        """

    # -- leases -------------------------------------------------------------------------------
    @abc.abstractmethod
    async def renew_leases(self, owner: str, step_ids: Sequence[int], until: float) -> int: ...

    @abc.abstractmethod
    async def reclaim_expired_leases(self, now: float, owner: str | None = None) -> int:
        """Turn expired leases (and all of ``owner``'s, when given) into lost attempts."""

    @abc.abstractmethod
    async def next_wakeup(self) -> float | None:
        """Earliest retry time among waiting steps, or None."""

    # -- operator actions ---------------------------------------------------------------------
    @abc.abstractmethod
    async def cancel_task(self, task_id: str, now: float) -> None: ...

    @abc.abstractmethod
    async def retry_step(self, task_id: str, step_name: str, now: float) -> None: ...

    @abc.abstractmethod
    async def resolve_step(
        self, task_id: str, step_name: str, results: JSON | None, now: float, claim: Claim | None
    ) -> list[ClaimedStep]:
        """Mark a step done by hand; ``results=None`` hands its dependents its fallback."""

    @abc.abstractmethod
    async def save_breaker(self, breaker: BreakerView, events: Sequence[NewEvent]) -> None:
        """Write a breaker's row and the events of its transition in one transaction."""

    @abc.abstractmethod
    async def load_breakers(self) -> list[BreakerView]: ...

    # -- reads --------------------------------------------------------------------------------
    @abc.abstractmethod
    async def get_task(self, task_id: str) -> TaskView: ...

    @abc.abstractmethod
    async def task_state(self, task_id: str) -> TaskState: ...

    @abc.abstractmethod
    async def list_tasks(
        self, state: TaskState | None = None, limit: int = 100, offset: int = 0
    ) -> list[TaskSummary]:
        """Newest first (ties in creation order, newest first): ``limit`` after skipping
        ``offset``."""

    @abc.abstractmethod
    async def count_tasks(self) -> TaskCounts:
        """How many tasks are in each state (every state, zero included), with the last event
        sequence number the counts include, read in one snapshot."""

    @abc.abstractmethod
    async def count_steps(self) -> dict[StepState, int]:
        """How many steps are in each state, every state present (zero included)."""

    @abc.abstractmethod
    async def last_event_seq(self) -> int:
        """The sequence number of the newest event (0 when there is none)."""

    @abc.abstractmethod
    async def list_attempts(self, task_id: str) -> list[AttemptView]: ...

    @abc.abstractmethod
    async def list_events(
        self, after: int = 0, limit: int = 1000, task_id: str | None = None
    ) -> list[Event]: ...

    @abc.abstractmethod
    async def attempt_stats(
        self,
        namespace: str | None = None,
        task_name: str | None = None,
        since: float | None = None,
    ) -> list[AttemptStat]:
        """Every finished attempt (of tasks in ``namespace`` / of template ``task_name``, ended at
        or after ``since``), reduced to what :func:`analytics.bottlenecks` needs."""

    @abc.abstractmethod
    async def breaker_openings(self, since: float | None = None) -> dict[str, int]:
        """How many times each service's breaker opened (at or after ``since``)."""
