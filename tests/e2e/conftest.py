"""The sandbox for real: the four services on loopback (port 0) and an orchestrator on a file."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator, open_orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices, start_services
from orchestrator.breaker import BreakerConfig
from orchestrator.engine import EngineConfig
from orchestrator.models import JSON, TaskState, TaskView
from orchestrator.retry import RetryPolicy
from orchestrator.templates import StepTemplate

ALL = {"users": 0, "billing": 0, "preferences": 0, "notifications": 0}


def tiny_retries(step: StepTemplate, context: JSON) -> StepTemplate:
    """Tests never sleep through real backoff: the same policy, with millisecond delays."""
    retry: RetryPolicy = dataclasses.replace(step.retry, initial_delay_s=0.005, max_delay_s=0.02)
    return dataclasses.replace(step, retry=retry)


def short_request_timeouts(step: StepTemplate, context: JSON) -> StepTemplate:
    """A hung call gives up after 0.2 s instead of the template's 10 s."""
    return dataclasses.replace(
        step, handler_config={**step.handler_config, "request_timeout_s": 0.2}
    )


@pytest.fixture
async def services() -> AsyncIterator[RunningServices]:
    running = await start_services(ALL)
    yield running
    await running.stop()


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return BreakerConfig(failure_threshold=50)


@pytest.fixture
async def orch(
    services: RunningServices, database: str, breaker_config: BreakerConfig
) -> AsyncIterator[Orchestrator]:
    """The orchestrator on each store in turn (``database``): the end-to-end suite runs on a
    SQLite file and on a PostgreSQL schema."""
    async with open_orchestrator(
        database,
        services.urls,
        config=EngineConfig(worker_id="e2e", seed=1),
        breaker_config=breaker_config,
        durable=False,
    ) as orchestrator:
        orchestrator.engine.add_customizer(TEMPLATE_NAME, tiny_retries)
        yield orchestrator


@pytest.fixture
def fake() -> RegistrationFaker:
    return RegistrationFaker(seed=3)


@pytest.fixture
async def admin() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def add_fault(
    session: aiohttp.ClientSession, services: RunningServices, service: str, rule: dict[str, Any]
) -> None:
    async with session.post(f"{services.urls[service]}/__admin/faults", json=rule) as resp:
        assert resp.status == 201, await resp.text()


async def register(orch: Orchestrator, context: JSON, timeout_s: float = 20) -> TaskView:
    sub, state = await orch.engine.run(TEMPLATE_NAME, context, timeout_s=timeout_s)
    assert state in (TaskState.COMPLETE, TaskState.ERROR), state
    return await orch.engine.get_task(sub.task_id)
