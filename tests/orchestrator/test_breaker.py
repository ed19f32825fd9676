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
    """The store calls the breakers make, in memory."""

    def __init__(self) -> None:
        self.saved: list[tuple[BreakerView, list[NewEvent]]] = []

    def add_listener(self, listener: object) -> None:
        pass  # one engine: it only ever sees its own breaker events

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


def test_every_change_is_stamped_with_its_time() -> None:
    assert closed("s", 7.0).updated_at == 7.0
    opened = replace(closed("s", 0.0), state=BreakerState.OPEN, open_until=10.0, failures=3)
    cooled = after_cooldown(opened, 12.0)
    assert cooled is not None and cooled.breaker.updated_at == 12.0
    probing = after_success(cooled.breaker, CONFIG, 13.0)  # one of two successes: counted only
    assert probing is not None and probing.breaker.updated_at == 13.0
    counted = _fail(closed("s", 0.0), 14.0)
    reset = after_success(counted, CONFIG, 15.0)
    assert reset is not None and reset.breaker.updated_at == 15.0


def test_the_half_open_and_closed_events_carry_the_whole_payload() -> None:
    opened = replace(closed("billing", 0.0), state=BreakerState.OPEN, open_until=10.0, failures=3)
    half = after_cooldown(opened, 10.0)
    assert half is not None
    assert half.event() == NewEvent(
        type=EventType.BREAKER_HALF_OPEN,
        task_id=None,
        data={
            "service": "billing",
            "from": "open",
            "to": "half_open",
            "failures": 3,
            "open_until": 10.0,
        },
        at=10.0,
    )
    one = after_success(half.breaker, CONFIG, 11.0)
    assert one is not None
    shut = after_success(one.breaker, CONFIG, 12.0)
    assert shut is not None
    assert shut.event() == NewEvent(
        type=EventType.BREAKER_CLOSED,
        task_id=None,
        data={
            "service": "billing",
            "from": "half_open",
            "to": "closed",
            "failures": 0,
            "open_until": 10.0,
        },
        at=12.0,
    )


@pytest.mark.parametrize("cooldown_s", [0.0, 0.5])
def test_a_short_or_zero_cooldown_is_a_valid_configuration(cooldown_s: float) -> None:
    assert BreakerConfig(cooldown_s=cooldown_s).cooldown_s == cooldown_s


def test_the_minimum_configuration_is_valid() -> None:
    config = BreakerConfig(failure_threshold=1, half_open_probes=1, success_threshold=1)
    opened = after_failure(closed("s", 0.0), config, 1.0)
    assert opened is not None and opened.breaker.state is BreakerState.OPEN


async def _half_open(
    config: BreakerConfig, clock: FakeClock, store: _Store | None = None
) -> CircuitBreakers:
    """Breakers whose ``billing`` breaker opened at 0 and cooled down: the clock (from 0) at 100."""
    store = store or _Store()
    breakers = CircuitBreakers(store, clock, {"billing": config})  # type: ignore[arg-type]
    for _ in range(config.failure_threshold):
        await breakers.record_failure("billing")
    clock.advance(100.0)
    return breakers


async def test_without_a_default_an_unconfigured_service_gets_the_default_thresholds() -> None:
    clock = FakeClock(start=0.0)
    breakers = CircuitBreakers(_Store(), clock)  # type: ignore[arg-type]
    assert breakers.config("anything") == BreakerConfig()
    for _ in range(4):
        await breakers.record_failure("users")
    assert breakers.state("users") is BreakerState.CLOSED
    await breakers.record_failure("users")
    assert breakers.state("users") is BreakerState.OPEN


async def test_a_given_default_applies_to_services_without_their_own() -> None:
    clock = FakeClock(start=0.0)
    default = BreakerConfig(failure_threshold=2)
    breakers = CircuitBreakers(_Store(), clock, {"billing": CONFIG}, default)  # type: ignore[arg-type]
    assert (breakers.config("users"), breakers.config("billing")) == (default, CONFIG)
    await breakers.record_failure("users")
    await breakers.record_failure("users")
    assert breakers.state("users") is BreakerState.OPEN
    await breakers.record_failure("billing")
    await breakers.record_failure("billing")
    assert breakers.state("billing") is BreakerState.CLOSED  # its own threshold is 3


async def test_recorded_failures_keep_their_time_and_error_in_the_view_and_event() -> None:
    clock = FakeClock(start=50.0)
    store = _Store()
    breakers = CircuitBreakers(store, clock, {"billing": CONFIG})  # type: ignore[arg-type]
    await breakers.record_failure("billing", {"error_code": "HTTP_500"})
    assert breakers.views()[0].updated_at == 50.0
    clock.advance(1.0)
    await breakers.record_failure("billing")
    clock.advance(1.0)
    await breakers.record_failure("billing", {"error_code": "HTTP_503"})
    (view, events), *_ = store.saved[-1:]
    assert (view.state, view.updated_at, view.failures) == (BreakerState.OPEN, 52.0, 3)
    assert [e.data["last_error"] for e in events] == [{"error_code": "HTTP_503"}]


async def test_a_recorded_success_uses_the_services_own_config_and_time() -> None:
    clock = FakeClock(start=0.0)
    config = replace(CONFIG, success_threshold=1, half_open_probes=1)
    breakers = await _half_open(config, clock)
    clock.advance(5.0)
    assert await breakers.acquire("billing") is None
    await breakers.record_success("billing")  # the default would want two
    assert breakers.state("billing") is BreakerState.CLOSED
    assert breakers.views()[0].updated_at == 105.0
    await breakers.record_failure("billing")
    clock.advance(1.0)
    await breakers.record_success("billing")  # a closed breaker forgets its failures, at now
    assert (breakers.views()[0].failures, breakers.views()[0].updated_at) == (0, 106.0)


async def test_a_half_open_breaker_admits_its_probes_and_a_released_one_frees_a_slot() -> None:
    clock = FakeClock(start=0.0)
    breakers = await _half_open(replace(CONFIG, half_open_probes=1, success_threshold=3), clock)
    assert await breakers.acquire("billing") is None
    assert await breakers.acquire("billing") == 100.5  # the one probe is out
    assert await breakers.acquire("billing") == 100.5  # and asking again changes nothing
    breakers.release("billing")
    assert await breakers.acquire("billing") is None
    await breakers.record_success("billing")  # ends the probe: its slot is free again
    assert breakers.state("billing") is BreakerState.HALF_OPEN
    assert await breakers.acquire("billing") is None
    assert await breakers.acquire("users") is None  # a service never seen is closed


async def test_a_probe_that_never_reports_stops_counting_after_its_expiry() -> None:
    clock = FakeClock(start=0.0)
    breakers = await _half_open(replace(CONFIG, half_open_probes=1), clock)
    assert await breakers.acquire("billing") is None
    clock.advance(29.5)
    assert await breakers.acquire("billing") == 130.0
    clock.advance(0.5)  # exactly PROBE_EXPIRY_S after it started
    assert await breakers.acquire("billing") is None


async def test_probes_out_when_the_breaker_moves_are_forgotten() -> None:
    clock = FakeClock(start=0.0)
    config = BreakerConfig(
        failure_threshold=1, cooldown_s=1.0, half_open_probes=3, success_threshold=1
    )
    breakers = await _half_open(config, clock)
    for _ in range(3):
        assert await breakers.acquire("billing") is None
    await breakers.record_success("billing")  # one probe back, two still out: it closes
    assert breakers.state("billing") is BreakerState.CLOSED
    await breakers.record_failure("billing")
    assert breakers.state("billing") is BreakerState.OPEN
    clock.advance(1.0)
    for _ in range(3):  # a fresh half-open: all three probes again
        assert await breakers.acquire("billing") is None
    assert await breakers.acquire("billing") == 101.5


async def _reopened_elsewhere(clock: FakeClock) -> CircuitBreakers:
    """This engine's ``billing`` probe is out when another engine reopens the breaker at 100."""
    config = BreakerConfig(failure_threshold=1, cooldown_s=1.0, half_open_probes=1)
    store = _Store()
    breakers = await _half_open(config, clock, store)
    assert await breakers.acquire("billing") is None
    other = CircuitBreakers(store, clock, {"billing": config})  # type: ignore[arg-type]
    await other.record_failure("billing")
    await breakers.load()
    assert breakers.state("billing") is BreakerState.OPEN
    return breakers


async def test_a_probe_in_flight_still_counts_after_the_state_is_reloaded() -> None:
    clock = FakeClock(start=0.0)
    breakers = await _reopened_elsewhere(clock)
    clock.advance(1.0)
    assert await breakers.acquire("billing") == 101.5  # the call is still out


async def test_a_probe_that_fails_late_frees_its_slot() -> None:
    clock = FakeClock(start=0.0)
    breakers = await _reopened_elsewhere(clock)
    await breakers.record_failure("billing")  # the open breaker ignores it, but the call ended
    clock.advance(1.0)
    assert await breakers.acquire("billing") is None
