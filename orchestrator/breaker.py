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

Which service a step calls is read from its ``handler_config["service"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from orchestrator.clock import Clock
from orchestrator.event_types import EventType
from orchestrator.models import JSON, BreakerState, BreakerView, ClaimedStep
from orchestrator.store.base import NewEvent, Store

#: How long a step waits before asking again while the half-open probes are out.
PROBE_RECHECK_S = 0.5
#: A probe that never reported back (its step failed before calling) stops counting after this.
PROBE_EXPIRY_S = 30.0
_EVENT_TYPES = {
    BreakerState.OPEN: EventType.BREAKER_OPENED,
    BreakerState.HALF_OPEN: EventType.BREAKER_HALF_OPEN,
    BreakerState.CLOSED: EventType.BREAKER_CLOSED,
}


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


class CircuitBreakers:
    """The breakers of every service this engine calls; state cached here, written through."""

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

    def config(self, service: str) -> BreakerConfig:
        return self._configs.get(service, self._default)

    async def load(self) -> None:
        """Pick up the persisted state (after a restart, or from another engine)."""
        self._breakers = {b.service: b for b in await self._store.load_breakers()}

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
            if breaker.open_until is not None and now < breaker.open_until:
                return breaker.open_until
            breaker = await self._move(breaker, BreakerState.HALF_OPEN, now, successes=0)
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
        now = self._clock.now()
        if breaker.state is BreakerState.HALF_OPEN:
            successes = breaker.successes + 1
            if successes >= self.config(service).success_threshold:
                await self._move(breaker, BreakerState.CLOSED, now, failures=0, successes=0)
            else:
                await self._save(replace(breaker, successes=successes, updated_at=now), [])
        elif breaker.state is BreakerState.CLOSED and breaker.failures:
            await self._save(replace(breaker, failures=0, updated_at=now), [])

    async def record_failure(self, service: str, error: JSON | None = None) -> None:
        """A retryable failure (5xx, timeout, connection error) of a call to ``service``."""
        self.release(service)
        now = self._clock.now()
        breaker = self._breakers.get(service) or BreakerView(
            service, BreakerState.CLOSED, 0, 0, None, None, now
        )
        config = self.config(service)
        if breaker.state is BreakerState.HALF_OPEN:
            await self._open(breaker, now, error, breaker.failures)
            return
        if breaker.state is BreakerState.OPEN:
            return  # a call that started before the breaker opened
        failures = breaker.failures + 1
        if failures >= config.failure_threshold:
            await self._open(breaker, now, error, failures)
        else:
            await self._save(replace(breaker, failures=failures, updated_at=now), [])

    async def _open(
        self, breaker: BreakerView, now: float, error: JSON | None, failures: int
    ) -> None:
        until = now + self.config(breaker.service).cooldown_s
        await self._move(
            breaker,
            BreakerState.OPEN,
            now,
            failures=failures,
            successes=0,
            opened_at=now,
            open_until=until,
            extra={"last_error": error},
        )

    async def _move(
        self,
        breaker: BreakerView,
        state: BreakerState,
        now: float,
        *,
        extra: JSON | None = None,
        **changes: object,
    ) -> BreakerView:
        moved = replace(breaker, state=state, updated_at=now, **changes)  # type: ignore[arg-type]
        if state is not BreakerState.HALF_OPEN:
            self._probes.pop(breaker.service, None)
        data = {
            "service": breaker.service,
            "from": breaker.state.value,
            "to": state.value,
            "failures": moved.failures,
            "open_until": moved.open_until,
            **(extra or {}),
        }
        event = NewEvent(type=_EVENT_TYPES[state], task_id=None, data=data, at=now)
        await self._save(moved, [event])
        return moved

    async def _save(self, breaker: BreakerView, events: list[NewEvent]) -> None:
        self._breakers[breaker.service] = breaker
        await self._store.save_breaker(breaker, events)
