"""A real sandbox for the dashboard's Pilot tests: services, engine and API on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dashboard.app import DashboardApp
from dashboard.config import DashboardConfig
from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator, open_orchestrator, run_api
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.breaker import BreakerConfig
from orchestrator.engine import EngineConfig
from tests.e2e.conftest import ALL, admin, fake, services, tiny_retries

__all__ = ["ALL", "admin", "fake", "services"]


@dataclass
class Sandbox:
    orch: Orchestrator
    services: RunningServices
    api_url: str

    def app(self, *, readonly: bool = False, seed: int = 1) -> DashboardApp:
        config = DashboardConfig(
            self.api_url,
            dict(self.services.urls),
            readonly=readonly,
            label="test sandbox",
            new_context=RegistrationFaker(seed).registration,
        )
        return DashboardApp(config)


@pytest.fixture
def breaker_config() -> BreakerConfig:
    return BreakerConfig(failure_threshold=3, cooldown_s=30)


@pytest.fixture
async def sandbox(
    services: RunningServices, tmp_path: Path, breaker_config: BreakerConfig
) -> AsyncIterator[Sandbox]:
    async with open_orchestrator(
        tmp_path / "dash.db",
        services.urls,
        config=EngineConfig(worker_id="dash", seed=1),
        breaker_config=breaker_config,
        durable=False,
    ) as orch:
        orch.engine.add_customizer(TEMPLATE_NAME, tiny_retries)
        async with run_api(orch, "127.0.0.1", 0) as api_url:
            yield Sandbox(orch, services, api_url)
