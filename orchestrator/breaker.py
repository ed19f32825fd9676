"""Circuit breakers per service, persisted in the store, consulted before each step runs.

::

    closed ──(N consecutive retryable failures)──▶ open ──(cooldown_s passed)──▶ half_open
      ▲                                             ▲                              │
      └──────────(M successful probes)──────────────┼──────(a probe fails)─────────┘

Across all tasks, a service that keeps failing is given a rest instead of more calls. While a
breaker is open, steps that call the service are *deferred*: they go back to
``waiting_for_retry`` until the breaker lets a probe through, without spending an attempt (the
engine's gate hook, :meth:`Engine.add_gate`). A 10-minute outage therefore ends with every
registration completed rather than every registration out of attempts. Permanent errors (4xx)
mean the service is up and answering; they do not count. Each transition is a row update in the
``breakers`` table plus a ``breaker.opened`` / ``breaker.half_open`` / ``breaker.closed`` event,
written together.

The state machine is pure (:func:`after_success`, :func:`after_failure`, :func:`after_cooldown`
decide a :class:`BreakerChange` from a state, a config and the time); :class:`CircuitBreakers`
applies each decision and persists it. Which service a step calls is read from its
``handler_config["service"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from orchestrator.clock import Clock
from orchestrator.event_types import EventType
from orchestrator.models import JSON, BreakerState, BreakerView, ClaimedStep, Event
from orchestrator.store.base import NewEvent, Store

#: How long a step waits before asking again while the half-open probes are out.
PROBE_RECHECK_S = 0.5
#: A probe that never reported back (its step failed before calling) stops counting after this.
PROBE_EXPIRY_S = 30.0
EVENT_TYPES: Mapping[BreakerState, EventType] = {
    BreakerState.OPEN: EventType.BREAKER_OPENED,
    BreakerState.HALF_OPEN: EventType.BREAKER_HALF_OPEN,
    BreakerState.CLOSED: EventType.BREAKER_CLOSED,
}

_STATES: Mapping[str, BreakerState] = {t.value: s for s, t in EVENT_TYPES.items()}


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 5  #: consecutive retryable failures that open the breaker
    cooldown_s: float = 30.0  #: how long it stays open before probing
    half_open_probes: int = 1  #: calls allowed at once while half-open
    success_threshold: int = 2  #: successful probes that close it again

    def __post_init__(self) -> None:
        for name in ("failure_threshold", "half_open_probes", "success_threshold"):
            if getattr(self, name) < 1:
                raise ValueError(f"breaker {name} must be >= 1, got {getattr(self, name)}")
        if self.cooldown_s < 0:
            raise ValueError(f"breaker cooldown_s must be >= 0, got {self.cooldown_s}")


@dataclass(frozen=True, slots=True)
class BreakerChange:
    """A decision of the state machine: the breaker as it is now, and the event, if it moved."""

    breaker: BreakerView
    moved_from: BreakerState | None = None  #: the previous state, when the state changed
    extra: JSON = field(default_factory=dict)  #: more fields for the event (``last_error``)

    def event(self) -> NewEvent | None:
        """The ``breaker.*`` event of a change of state (None when only counters changed)."""
        if self.moved_from is None:
            return None
        b = self.breaker
        data = {
            "service": b.service,
            "from": self.moved_from.value,
            "to": b.state.value,
            "failures": b.failures,
            "open_until": b.open_until,
            **self.extra,
        }
        return NewEvent(type=EVENT_TYPES[b.state], task_id=None, data=data, at=b.updated_at)


def closed(service: str, now: float) -> BreakerView:
    """A breaker that has seen nothing yet."""
    return BreakerView(service, BreakerState.CLOSED, 0, 0, None, None, now)


def after_cooldown(breaker: BreakerView, now: float) -> BreakerChange | None:
    """An open breaker whose cooldown has passed turns half-open (lets probes through)."""
    if breaker.state is not BreakerState.OPEN:
        return None
    if breaker.open_until is not None and now < breaker.open_until:
        return None
    moved = replace(breaker, state=BreakerState.HALF_OPEN, successes=0, updated_at=now)
    return BreakerChange(moved, BreakerState.OPEN)


def after_success(breaker: BreakerView, config: BreakerConfig, now: float) -> BreakerChange | None:
    """A call succeeded: half-open counts towards closing; closed forgets its failures."""
    if breaker.state is BreakerState.HALF_OPEN:
        successes = breaker.successes + 1
        if successes >= config.success_threshold:
            moved = replace(
                breaker, state=BreakerState.CLOSED, failures=0, successes=0, updated_at=now
            )
            return BreakerChange(moved, BreakerState.HALF_OPEN)
        return BreakerChange(replace(breaker, successes=successes, updated_at=now))
    if breaker.state is BreakerState.CLOSED and breaker.failures:
        return BreakerChange(replace(breaker, failures=0, updated_at=now))
    return None


def after_failure(
    breaker: BreakerView, config: BreakerConfig, now: float, error: JSON | None = None
) -> BreakerChange | None:
    """A retryable failure: counted while closed, opens at the threshold; a failed probe
    reopens a half-open breaker; an open one ignores calls that started before it opened."""
    if breaker.state is BreakerState.OPEN:
        return None
    if breaker.state is BreakerState.HALF_OPEN:
        return _opened(breaker, config, now, error, breaker.failures)
    failures = breaker.failures + 1
    if failures >= config.failure_threshold:
        return _opened(breaker, config, now, error, failures)
    return BreakerChange(replace(breaker, failures=failures, updated_at=now))


def _opened(
    breaker: BreakerView, config: BreakerConfig, now: float, error: JSON | None, failures: int
) -> BreakerChange:
    moved = replace(
        breaker,
        state=BreakerState.OPEN,
        failures=failures,
        successes=0,
        opened_at=now,
        open_until=now + config.cooldown_s,
        updated_at=now,
    )
    return BreakerChange(moved, breaker.state, {"last_error": error})


class CircuitBreakers:
    """The breakers of every service this engine calls: decisions applied, cached, persisted.

    Probes out while half-open are counted here, per engine: they are calls in flight, not state.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        configs: Mapping[str, BreakerConfig] | None = None,
        default: BreakerConfig | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._configs = dict(configs or {})
        self._default = default or BreakerConfig()
        self._breakers: dict[str, BreakerView] = {}
        self._probes: dict[str, list[float]] = {}  #: start times of probes out, per service
        store.add_listener(self.observe)

    def config(self, service: str) -> BreakerConfig:
        return self._configs.get(service, self._default)

    async def load(self) -> None:
        """Pick up the persisted state (after a restart, or from another engine)."""
        self._breakers = {b.service: b for b in await self._store.load_breakers()}

    def observe(self, events: Sequence[Event]) -> None:
        """Follow the ``breaker.*`` events of the store, so that a breaker another worker on
        the same database opened (or closed) defers (or lets through) this engine's steps too.

        Our own events carry the state we already hold and change nothing. Failure counts stay
        per worker between transitions: each worker decides from the calls it saw, and the
        first to open the breaker opens it for all.
        """
        for ev in events:
            state = _STATES.get(ev.type)
            if state is None or not isinstance(ev.data, dict):
                continue
            service = ev.data.get("service")
            if not isinstance(service, str):
                continue
            known = self._breakers.get(service)
            if known is not None and (known.updated_at >= ev.at and known.state is state):
                continue
            failures = ev.data.get("failures")
            open_until = ev.data.get("open_until")
            self._breakers[service] = BreakerView(
                service,
                state,
                failures if isinstance(failures, int) else 0,
                0,
                ev.at if state is BreakerState.OPEN else (known.opened_at if known else None),
                open_until if isinstance(open_until, int | float) else None,
                ev.at,
            )
            if state is not BreakerState.HALF_OPEN:
                self._probes.pop(service, None)

    def views(self) -> list[BreakerView]:
        return [self._breakers[s] for s in sorted(self._breakers)]

    def state(self, service: str) -> BreakerState:
        breaker = self._breakers.get(service)
        return breaker.state if breaker else BreakerState.CLOSED

    async def gate(self, claim: ClaimedStep) -> tuple[float, JSON] | None:
        """The engine's gate: None to run the step, or (until, reason) to defer it."""
        service = claim.handler_config.get("service")
        if not isinstance(service, str):
            return None
        until = await self.acquire(service)
        if until is None:
            return None
        return until, {
            "reason": "circuit_open",
            "service": service,
            "breaker": self.state(service).value,
        }

    async def acquire(self, service: str) -> float | None:
        """None if a call to ``service`` may go now; else the time to ask again."""
        breaker = self._breakers.get(service)
        if breaker is None or breaker.state is BreakerState.CLOSED:
            return None
        now = self._clock.now()
        if breaker.state is BreakerState.OPEN:
            change = after_cooldown(breaker, now)
            if change is None:
                return breaker.open_until
            await self._apply(change)
        probes = [t for t in self._probes.get(service, []) if t > now - PROBE_EXPIRY_S]
        if len(probes) >= self.config(service).half_open_probes:
            self._probes[service] = probes
            return now + PROBE_RECHECK_S
        self._probes[service] = [*probes, now]
        return None

    def release(self, service: str) -> None:
        """A call that was let through has ended."""
        probes = self._probes.get(service)
        if probes:
            probes.pop(0)

    async def record_success(self, service: str) -> None:
        breaker = self._breakers.get(service)
        self.release(service)
        if breaker is None:
            return
        change = after_success(breaker, self.config(service), self._clock.now())
        if change is not None:
            await self._apply(change)

    async def record_failure(self, service: str, error: JSON | None = None) -> None:
        """A retryable failure (5xx, timeout, connection error) of a call to ``service``."""
        self.release(service)
        now = self._clock.now()
        breaker = self._breakers.get(service) or closed(service, now)
        change = after_failure(breaker, self.config(service), now, error)
        if change is not None:
            await self._apply(change)

    async def _apply(self, change: BreakerChange) -> None:
        breaker = change.breaker
        if change.moved_from is not None and breaker.state is not BreakerState.HALF_OPEN:
            self._probes.pop(breaker.service, None)
        self._breakers[breaker.service] = breaker
        event = change.event()
        await self._store.save_breaker(breaker, [event] if event else [])
