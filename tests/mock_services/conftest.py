"""The four services on real loopback ports (port 0), a client, and a clock tests can move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from mock_services.runner import RunningServices, start_services
from mock_services.runtime import ServiceConfig
from mock_services.services import SandboxData

ALL_PORTS = {"users": 0, "billing": 0, "preferences": 0, "notifications": 0}


class Ticker:
    """A monotonic clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def service_config() -> ServiceConfig:
    return ServiceConfig()


@pytest.fixture
async def services(ticker: Ticker, service_config: ServiceConfig) -> AsyncIterator[RunningServices]:
    running = await start_services(
        ALL_PORTS, config=service_config, data=SandboxData(monotonic=ticker)
    )
    yield running
    await running.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    # A fresh connection per request: aiohttp silently retries a GET whose reused connection
    # was reset, which would hide the very faults these tests look for.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


class Api:
    """Short calls against the running services, returning (status, json body)."""

    def __init__(self, services: RunningServices, client: aiohttp.ClientSession) -> None:
        self.services, self.client = services, client

    def url(self, service: str, path: str) -> str:
        return self.services.urls[service] + path

    async def call(
        self,
        method: str,
        service: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        async with self.client.request(
            method, self.url(service, path), json=body, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    async def user(self, email: str = "ada@example.com", plan: str = "pro") -> dict[str, Any]:
        status, user = await self.call(
            "POST", "users", "/users", {"email": email, "name": "Ada Lovelace", "plan": plan}
        )
        assert status == 201, user
        return dict(user)

    async def fault(self, service: str, rule: dict[str, Any]) -> dict[str, Any]:
        status, body = await self.call("POST", service, "/__admin/faults", rule)
        assert status == 201, body
        return dict(body)


@pytest.fixture
def api(services: RunningServices, client: aiohttp.ClientSession) -> Api:
    return Api(services, client)
