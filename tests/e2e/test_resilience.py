"""Retry-After and the circuit breaker, with a fake clock where waiting would be real."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator, open_orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.breaker import BreakerConfig
from orchestrator.clock import FakeClock
from orchestrator.engine import EngineConfig
from orchestrator.event_types import EventType
from orchestrator.models import BreakerState, StepState, TaskState
from tests.e2e.conftest import add_fault


@pytest.fixture
async def fake_clock_orch(
    services: RunningServices, tmp_path: Path
) -> AsyncIterator[tuple[Orchestrator, FakeClock]]:
    clock = FakeClock()
    async with open_orchestrator(
        tmp_path / "clock.db",
        services.urls,
        clock=clock,
        config=EngineConfig(worker_id="clock", seed=1),
        durable=False,
    ) as orchestrator:
        yield orchestrator, clock


async def test_429_retry_after_is_honoured(
    fake_clock_orch: tuple[Orchestrator, FakeClock],
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    orch, clock = fake_clock_orch
    await add_fault(
        admin,
        services,
        "notifications",
        {"kind": "error", "status": 429, "retry_after_s": 7, "times": 1},
    )
    with orch.engine.subscribe() as events:
        sub = await orch.engine.submit(TEMPLATE_NAME, fake.registration("free"))
        async for event in events:
            if event.type == EventType.STEP_RETRY_SCHEDULED:
                break
    step = (await orch.engine.get_task(sub.task_id)).step("send_welcome_sequence")
    assert step.state is StepState.WAITING_FOR_RETRY
    assert step.last_error is not None and step.last_error.http_status == 429
    assert step.next_attempt_at == pytest.approx(clock.now() + 7)  # not the policy's 1 s jitter
    clock.advance(6.9)
    await asyncio.sleep(0.05)
    assert (await orch.engine.get_task(sub.task_id)).step("send_welcome_sequence").attempts == 1
    clock.advance(0.2)
    assert await orch.engine.wait_for_end(sub.task_id, 10) is TaskState.COMPLETE


async def test_429_without_retry_after_waits_the_rate_limit_default(
    fake_clock_orch: tuple[Orchestrator, FakeClock],
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    """A 429 that names no wait gets ``RATE_LIMIT_RETRY_AFTER_S`` (60 s), capped like any
    Retry-After by the step's ``max_delay_s`` (30 s for the welcome), not the step's one-second
    jittered backoff that would hit a service protecting itself again at once."""
    orch, clock = fake_clock_orch
    await add_fault(admin, services, "notifications", {"kind": "error", "status": 429, "times": 1})
    with orch.engine.subscribe() as events:
        sub = await orch.engine.submit(TEMPLATE_NAME, fake.registration("free"))
        async for event in events:
            if event.type == EventType.STEP_RETRY_SCHEDULED:
                break
    assert event.step_name == "send_welcome_sequence"
    assert event.data["error"]["http_status"] == 429
    assert event.data["delay_s"] == pytest.approx(30.0)  # min(60, max_delay_s), no jitter
    step = (await orch.engine.get_task(sub.task_id)).step("send_welcome_sequence")
    assert step.next_attempt_at == pytest.approx(clock.now() + 30.0)
    clock.advance(30.1)
    assert await orch.engine.wait_for_end(sub.task_id, 10) is TaskState.COMPLETE


@pytest.mark.parametrize(
    "breaker_config",
    [BreakerConfig(failure_threshold=2, cooldown_s=0.3, half_open_probes=1, success_threshold=1)],
)
async def test_breaker_opens_defers_without_spending_attempts_and_closes(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    await add_fault(
        admin, services, "billing", {"kind": "error", "status": 503, "match": {"method": "POST"}}
    )
    with orch.engine.subscribe() as events:
        ids = [
            (await orch.engine.submit(TEMPLATE_NAME, fake.registration("pro"))).task_id
            for _ in range(4)
        ]
        async for event in events:
            if event.type == EventType.BREAKER_OPENED:
                break
    async with admin.delete(f"{services.urls['billing']}/__admin/faults") as resp:
        assert resp.status == 200
    for task_id in ids:
        assert await orch.engine.wait_for_end(task_id, 20) is TaskState.COMPLETE
    log = await orch.engine.events(limit=10_000)
    types = [e.type for e in log]
    assert types.count(EventType.BREAKER_OPENED) == 1
    assert EventType.BREAKER_HALF_OPEN in types and types[-1] != EventType.BREAKER_OPENED
    assert EventType.BREAKER_CLOSED in types
    deferred = [e for e in log if e.type == EventType.STEP_DEFERRED]
    assert deferred and all(e.data["service"] == "billing" for e in deferred)
    failed_calls = sum(
        1 for e in log if e.type == EventType.SERVICE_CALL_FAILED and e.data["service"] == "billing"
    )
    attempts = 0
    for task_id in ids:
        task = await orch.engine.get_task(task_id)
        attempts += task.step("setup_billing_profile").attempts
    assert attempts == failed_calls + len(ids)  # a deferral spent no attempt
    assert orch.breakers.state("billing") is BreakerState.CLOSED
    assert [b.state for b in await orch.engine.store.load_breakers()] == [BreakerState.CLOSED]
