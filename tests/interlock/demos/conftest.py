"""A whole sandbox per demo, in the test's event loop: the four services and an orchestrator
with its API on ephemeral ports, breakers that cool down in a fraction of a second and retries
with millisecond backoff (a demo's story does not depend on how long the waits are)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

from interlock.demos import Target
from interlock.registration.template import SEQUENTIAL_TEMPLATE_NAME, TEMPLATE_NAME
from interlock.sandbox import open_orchestrator, run_api
from mock_services.runner import start_services
from orchestrator.breaker import BreakerConfig
from orchestrator.engine import EngineConfig
from orchestrator.models import JSON
from orchestrator.retry import RetryPolicy
from orchestrator.templates import StepTemplate
from tests.e2e.conftest import ALL

#: Long enough that billing-outage's outage (0.05 s past its first deferral) ends before it.
QUICK_BREAKER = BreakerConfig(cooldown_s=1.0)


def quick_backoff(step: StepTemplate, context: JSON) -> StepTemplate:
    """Millisecond backoff; the cap stays the template's, since it also caps a Retry-After
    (the rate-limited demo measures a 3 s one)."""
    retry: RetryPolicy = dataclasses.replace(step.retry, initial_delay_s=0.005)
    return dataclasses.replace(step, retry=retry)


@contextlib.asynccontextmanager
async def sandbox(db: Path, breaker: BreakerConfig = QUICK_BREAKER) -> AsyncIterator[Target]:
    services = await start_services(ALL)
    try:
        async with (
            open_orchestrator(
                db,
                services.urls,
                config=EngineConfig(worker_id=f"demo-test:{db.name}", seed=1),
                breaker_config=breaker,
                durable=False,
            ) as orch,
            run_api(orch, port=0) as api_url,
        ):
            for name in (TEMPLATE_NAME, SEQUENTIAL_TEMPLATE_NAME):
                orch.engine.add_customizer(name, quick_backoff)
            yield Target(api_url, services.urls)
    finally:
        await services.stop()
