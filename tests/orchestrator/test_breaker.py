"""The circuit breaker's state machine, pure, and its application with an in-memory store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from orchestrator.breaker import (
    BreakerConfig,
    CircuitBreakers,
    after_cooldown,
    after_failure,
    after_success,
    closed,
)
from orchestrator.clock import FakeClock
from orchestrator.event_types import EventType
from orchestrator.models import BreakerState, BreakerView, ClaimedStep
from orchestrator.store.base import NewEvent

CONFIG = BreakerConfig(
    failure_threshold=3, cooldown_s=10.0, half_open_probes=2, success_threshold=2
)


def _fail(b: BreakerView, now: float, error: dict[str, object] | None = None) -> BreakerView:
    change = after_failure(b, CONFIG, now, error)
    assert change is not None
    return change.breaker


def test_failures_below_the_threshold_are_counted_without_an_event() -> None:
    b = closed("billing", 0.0)
    for n in (1, 2):
        change = after_failure(b, CONFIG, float(n))
        assert change is not None and change.event() is None
        b = change.breaker
        assert (b.state, b.failures, b.updated_at) == (BreakerState.CLOSED, n, float(n))


def test_the_threshold_failure_opens_it_with_its_event() -> None:
    b = _fail(_fail(closed("billing", 0.0), 1.0), 2.0)
    change = after_failure(b, CONFIG, 5.0, {"error_code": "HTTP_503"})
    assert change is not None
    opened = change.breaker
    assert opened.state is BreakerState.OPEN
    assert (opened.failures, opened.opened_at, opened.open_until) == (3, 5.0, 15.0)
    event = change.event()
    assert event == NewEvent(
        type=EventType.BREAKER_OPENED,
        task_id=None,
        data={
            "service": "billing",
            "from": "closed",
            "to": "open",
            "failures": 3,
            "open_until": 15.0,
            "last_error": {"error_code": "HTTP_503"},
        },
        at=5.0,
    )


def test_a_success_resets_the_count_of_a_closed_breaker() -> None:
    b = _fail(_fail(closed("billing", 0.0), 1.0), 2.0)
    change = after_success(b, CONFIG, 3.0)
    assert change is not None and change.event() is None
    assert (change.breaker.failures, change.breaker.state) == (0, BreakerState.CLOSED)
    b = _fail(_fail(change.breaker, 4.0), 5.0)  # two more do not open it: the count restarted
    assert b.state is BreakerState.CLOSED
    assert after_success(closed("billing", 0.0), CONFIG, 1.0) is None  # nothing to reset


def test_an_open_breaker_ignores_late_failures_and_successes() -> None:
    b = replace(closed("s", 0.0), state=BreakerState.OPEN, open_until=10.0, failures=3)
    assert after_failure(b, CONFIG, 1.0) is None
    assert after_success(b, CONFIG, 1.0) is None


def test_cooldown_turns_open_into_half_open_exactly_at_open_until() -> None:
    b = replace(closed("s", 0.0), state=BreakerState.OPEN, open_until=10.0, failures=3, successes=1)
    assert after_cooldown(b, 9.999) is None
    change = after_cooldown(b, 10.0)
    assert change is not None
    assert (change.breaker.state, change.breaker.successes) == (BreakerState.HALF_OPEN, 0)
    event = change.event()
    assert event is not None and event.type is EventType.BREAKER_HALF_OPEN
    assert (event.data["from"], event.data["to"]) == ("open", "half_open")
    assert after_cooldown(change.breaker, 11.0) is None  # only an open breaker cools down


def test_half_open_closes_after_the_configured_successes() -> None:
    b = replace(closed("s", 0.0), state=BreakerState.HALF_OPEN, failures=3)
    first = after_success(b, CONFIG, 1.0)
    assert first is not None and first.event() is None
    assert (first.breaker.state, first.breaker.successes) == (BreakerState.HALF_OPEN, 1)
    second = after_success(first.breaker, CONFIG, 2.0)
    assert second is not None
    assert (second.breaker.state, second.breaker.failures, second.breaker.successes) == (
        BreakerState.CLOSED,
        0,
        0,
    )
    event = second.event()
    assert event is not None and event.type is EventType.BREAKER_CLOSED
    assert (event.data["from"], event.data["to"], event.at) == ("half_open", "closed", 2.0)


def test_a_failed_probe_reopens_for_another_cooldown() -> None:
    b = replace(closed("s", 0.0), state=BreakerState.HALF_OPEN, failures=3, successes=1)
    change = after_failure(b, CONFIG, 20.0, {"error_code": "TIMEOUT"})
    assert change is not None
    assert (change.breaker.state, change.breaker.open_until) == (BreakerState.OPEN, 30.0)
    assert (change.breaker.failures, change.breaker.successes) == (3, 0)
    event = change.event()
    assert event is not None and event.data["from"] == "half_open"
    assert event.data["last_error"] == {"error_code": "TIMEOUT"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_threshold": 0},
        {"half_open_probes": 0},
        {"success_threshold": -1},
        {"cooldown_s": -0.5},
    ],
)
def test_an_invalid_configuration_is_refused(kwargs: dict[str, float]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"breaker {name} must be >= "):
        BreakerConfig(**kwargs)  # type: ignore[arg-type]


class _Store:
    """The two store calls the breakers make, in memory."""

    def __init__(self) -> None:
        self.saved: list[tuple[BreakerView, list[NewEvent]]] = []

    async def save_breaker(self, breaker: BreakerView, events: Sequence[NewEvent]) -> None:
        self.saved.append((breaker, list(events)))

    async def load_breakers(self) -> list[BreakerView]:
        return [b for b, _ in self.saved[-1:]]


def _claim(service: object) -> ClaimedStep:
    return ClaimedStep(1, "t", "wf", "s", "h", 1, 3, None, {}, {"service": service}, {}, {}, "c", 0)


async def test_breakers_gate_defer_probe_and_close() -> None:
    clock = FakeClock(start=100.0)
    store = _Store()
    breakers = CircuitBreakers(store, clock, {"billing": CONFIG})  # type: ignore[arg-type]
    assert await breakers.gate(_claim("billing")) is None
    assert await breakers.gate(_claim(None)) is None  # no service named: never gated
    for _ in range(3):
        await breakers.record_failure("billing", {"error_code": "HTTP_503"})
    assert breakers.state("billing") is BreakerState.OPEN
    assert [e.type for _, events in store.saved for e in events] == [EventType.BREAKER_OPENED]
    assert await breakers.gate(_claim("billing")) == (
        110.0,
        {"reason": "circuit_open", "service": "billing", "breaker": "open"},
    )
    clock.advance(10.0)
    assert await breakers.acquire("billing") is None  # first probe
    assert await breakers.acquire("billing") is None  # second probe (half_open_probes=2)
    assert await breakers.acquire("billing") == 110.5  # the third waits PROBE_RECHECK_S
    await breakers.record_success("billing")
    await breakers.record_success("billing")
    assert breakers.state("billing") is BreakerState.CLOSED
    assert [e.type for _, events in store.saved for e in events] == [
        EventType.BREAKER_OPENED,
        EventType.BREAKER_HALF_OPEN,
        EventType.BREAKER_CLOSED,
    ]
    fresh = CircuitBreakers(store, clock)  # type: ignore[arg-type]
    await fresh.load()
    assert [b.state for b in fresh.views()] == [BreakerState.CLOSED]
    assert fresh.state("unknown") is BreakerState.CLOSED
