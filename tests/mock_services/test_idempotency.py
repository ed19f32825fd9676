"""``Idempotency-Key``: replay, mismatch, in flight, not storing failures, expiry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from mock_services.app import create_app
from mock_services.runner import RunningServices
from mock_services.services import SandboxData
from tests.mock_services.conftest import Api, Ticker

BODY = {"email": "ada@example.com", "name": "Ada", "plan": "pro"}


async def test_same_key_same_body_replays_the_first_response(
    api: Api, services: RunningServices
) -> None:
    headers = {"Idempotency-Key": "reg-1"}
    async with api.client.post(api.url("users", "/users"), json=BODY, headers=headers) as first:
        created = await first.json()
        assert first.status == 201 and "Idempotent-Replayed" not in first.headers
    async with api.client.post(api.url("users", "/users"), json=BODY, headers=headers) as again:
        assert again.status == 201
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.headers["Location"] == f"/users/{created['id']}"
        assert await again.json() == created
    assert len(services.data.users.users) == 1
    _status, stats = await api.call("GET", "users", "/__admin/stats")
    assert stats["idempotent_replays"] == 1


async def test_same_key_different_body_is_422(api: Api, services: RunningServices) -> None:
    headers = {"Idempotency-Key": "reg-2"}
    await api.call("POST", "users", "/users", BODY, headers)
    status, body = await api.call(
        "POST", "users", "/users", {**BODY, "email": "other@example.com"}, headers
    )
    assert status == 422 and body["error"] == "idempotency_key_reused"
    assert len(services.data.users.users) == 1


async def test_a_stored_409_is_replayed_too(api: Api) -> None:
    await api.user(BODY["email"])
    headers = {"Idempotency-Key": "dup"}
    first = await api.call("POST", "users", "/users", BODY, headers)
    again = await api.call("POST", "users", "/users", BODY, headers)
    assert first[0] == again[0] == 409 and first == again


class SlowRoute:
    """A real server with the real middleware stack plus a route the test can hold open."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.calls = 0
        self.status = 201

    async def handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return web.json_response({"call": self.calls}, status=self.status)


@pytest.fixture
async def slow(ticker: Ticker) -> AsyncIterator[tuple[str, SlowRoute]]:
    route = SlowRoute()
    app = create_app("users", SandboxData(monotonic=ticker))
    app.router.add_post("/slow", route.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/slow", route
    route.release.set()
    await runner.cleanup()


async def test_second_request_while_the_first_runs_is_409_with_retry_after(
    slow: tuple[str, SlowRoute], client: aiohttp.ClientSession
) -> None:
    url, route = slow
    headers = {"Idempotency-Key": "busy"}
    first = asyncio.create_task(client.post(url, json={"n": 1}, headers=headers))
    await route.started.wait()
    async with client.post(url, json={"n": 1}, headers=headers) as second:
        assert second.status == 409
        assert second.headers["Retry-After"] == "1"
        assert (await second.json())["error"] == "idempotency_key_in_flight"
    route.release.set()
    async with await first as resp:
        assert resp.status == 201
    assert route.calls == 1


async def test_a_5xx_answer_is_not_stored_so_the_key_can_retry(
    slow: tuple[str, SlowRoute], client: aiohttp.ClientSession
) -> None:
    url, route = slow
    route.release.set()
    route.status = 503
    headers = {"Idempotency-Key": "flaky"}
    async with client.post(url, json={}, headers=headers) as resp:
        assert resp.status == 503
    route.status = 201
    async with client.post(url, json={}, headers=headers) as resp:
        assert resp.status == 201 and "Idempotent-Replayed" not in resp.headers
    assert route.calls == 2


async def test_keys_expire_after_the_ttl(
    slow: tuple[str, SlowRoute], client: aiohttp.ClientSession, ticker: Ticker
) -> None:
    url, route = slow
    route.release.set()
    headers = {"Idempotency-Key": "old"}
    async with client.post(url, json={}, headers=headers) as resp:
        assert resp.status == 201
    ticker.advance(24 * 3600 - 1)
    async with client.post(url, json={}, headers=headers) as resp:
        assert resp.headers.get("Idempotent-Replayed") == "true"
    ticker.advance(2)
    async with client.post(url, json={}, headers=headers) as resp:
        assert "Idempotent-Replayed" not in resp.headers
    assert route.calls == 2


async def test_keys_only_apply_to_writes(api: Api) -> None:
    await api.user()
    status, _ = await api.call("GET", "users", "/users", headers={"Idempotency-Key": "r"})
    status2, _ = await api.call("GET", "users", "/users", headers={"Idempotency-Key": "r"})
    assert status == status2 == 200
