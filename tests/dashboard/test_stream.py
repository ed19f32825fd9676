"""The dashboard's follower of ``/events/stream`` against a server that writes lines cut
anywhere: a line split between two writes arrives whole, blank lines are skipped, a dropped
connection resumes after the last seq."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from dashboard.model import DashEvent
from dashboard.stream import Link, follow


def _line(seq: int) -> bytes:
    event = {
        "seq": seq,
        "at": "2026-12-03T10:00:00+00:00",
        "type": "task.created",
        "task_id": f"t{seq}",
        "step_name": None,
        "correlation_id": None,
        "attempt": None,
        "data": {"name": "x" * 50},
    }
    return json.dumps(event).encode() + b"\n"


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[int]]]:
    afters: list[int] = []

    async def stream(request: web.Request) -> web.StreamResponse:
        after = int(request.query["after"])
        afters.append(after)
        resp = web.StreamResponse()
        await resp.prepare(request)
        data = b"".join(_line(seq) for seq in range(after + 1, after + 4)) + b"\n"
        for cut in (7, 60, 131, len(data)):  # inside a line, between two, anywhere
            await resp.write(data[:cut])
            data = data[cut:]
            await asyncio.sleep(0.01)
        if after == 0:
            raise ConnectionResetError  # drop it: the follower must come back after seq 3
        await asyncio.sleep(0.3)
        return resp

    app = web.Application()
    app.router.add_get("/events/stream", stream)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", afters
    await runner.cleanup()


async def test_lines_cut_between_writes_arrive_whole_and_a_drop_resumes_by_seq(
    server: tuple[str, list[int]],
) -> None:
    url, afters = server
    seen: list[int] = []
    links: list[str] = []
    async with aiohttp.ClientSession() as session:
        async for item in follow(session, url, 0, retry_s=0.01):
            if isinstance(item, Link):
                links.append(item.state)
                continue
            assert isinstance(item, DashEvent) and item.data["name"] == "x" * 50
            seen.append(item.seq)
            if len(seen) == 6:
                break
    assert seen == [1, 2, 3, 4, 5, 6]
    assert afters == [0, 3] and links == ["live", "reconnecting", "live"]


async def test_a_line_longer_than_any_event_is_refused_and_the_follower_reconnects() -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        for _ in range(40):  # 2.5 MB and no newline
            await resp.write(b"x" * 65536)
        return resp

    app = web.Application()
    app.router.add_get("/events/stream", endless)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as session:
            async for item in follow(session, url, 0, retry_s=0.01):
                if isinstance(item, Link) and item.state == "reconnecting":
                    assert "not JSON" in item.reason
                    break
    finally:
        await runner.cleanup()
