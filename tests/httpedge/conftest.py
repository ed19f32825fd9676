"""Every Interlock server for real on loopback (port 0): the orchestrator API on a SQLite file and
the four mock services, each with a path that takes a JSON body."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from interlock.sandbox import open_orchestrator, run_api
from mock_services.runner import RunningServices, start_services
from mock_services.runtime import ServiceConfig
from orchestrator.engine import EngineConfig

ALL = {"users": 0, "billing": 0, "preferences": 0, "notifications": 0}
JSON_TYPE = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Server:
    """One running server: its name, base URL and a path that takes a JSON body by POST."""

    name: str
    base: str
    post_path: str

    @property
    def authority(self) -> str:
        return self.base.removeprefix("http://")


@dataclass(frozen=True)
class Sandbox:
    servers: list[Server]
    services: RunningServices

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.servers)


@pytest.fixture
def service_config() -> ServiceConfig:
    return ServiceConfig()


@pytest.fixture
async def sandbox(tmp_path: Path, service_config: ServiceConfig) -> AsyncIterator[Sandbox]:
    services = await start_services(ALL, config=service_config)
    try:
        async with (
            open_orchestrator(
                tmp_path / "edge.db",
                services.urls,
                config=EngineConfig(worker_id="edge"),
                durable=False,
            ) as orch,
            run_api(orch, port=0) as api_url,
        ):
            servers = [
                Server("api", api_url, "/tasks"),
                Server("users", services.urls["users"], "/users"),
                Server("billing", services.urls["billing"], "/profiles"),
                Server("preferences", services.urls["preferences"], "/preferences"),
                Server("notifications", services.urls["notifications"], "/welcome"),
                Server("admin", services.urls["users"], "/__admin/faults"),
            ]
            yield Sandbox(servers, services)
    finally:
        await services.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def send(
    client: aiohttp.ClientSession,
    method: str,
    url: str,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, dict[str, str], object]:
    """Status, content type, headers and parsed JSON (the test fails if the answer is not JSON)."""
    data = io.BytesIO(raw) if raw is not None and len(raw) > 65536 else raw
    async with client.request(method, url, data=data, headers=headers) as resp:
        body = await resp.json()
        return resp.status, resp.content_type, dict(resp.headers), body
