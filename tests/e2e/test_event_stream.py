"""``GET /events/stream`` over real HTTP: complete for a slow reader, resumable, kept alive,
and quiet when a client goes away."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from interlock.sandbox import Orchestrator, run_api
from orchestrator.api import StreamConfig
from orchestrator.store.base import NewEvent

#: Bigger than any small buffer below, so each burst overflows a live subscription at once.
BURST = 100
#: Enough bytes per event that a reader that stops reading fills the sockets' buffers too.
PAD = "x" * 1000


async def commit_burst(orch: Orchestrator, count: int = BURST) -> None:
    """Commit ``count`` events in one transaction (one batch on the bus), as a busy engine does."""
    now = orch.engine.clock.now()
    events = [NewEvent("test.burst", None, data={"i": i, "pad": PAD}, at=now) for i in range(count)]
    await orch.engine.store.append_events(events)


async def stored_seqs(orch: Orchestrator) -> list[int]:
    return [e.seq for e in await orch.engine.events(0, 100_000)]


class Reader:
    """An NDJSON reader of the stream that keeps the keep-alive lines apart from the events."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.keepalives = 0

    async def next(self) -> dict[str, Any] | None:
        """The next event, or None for a keep-alive line."""
        line = await self.response.content.readline()
        assert line.endswith(b"\n"), f"the stream ended: {line!r}"
        if not line.strip():  # what every client does with a blank line: skip it
            self.keepalives += 1
            return None
        event: dict[str, Any] = json.loads(line)
        return event

    async def until(self, last_seq: int) -> list[int]:
        """Every event's seq up to ``last_seq`` (keep-alives skipped)."""
        seqs: list[int] = []
        while not seqs or seqs[-1] < last_seq:
            event = await self.next()
            if event is not None:
                seqs.append(event["seq"])
        return seqs


@asynccontextmanager
async def serve(
    orch: Orchestrator, **stream: Any
) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with (
        run_api(orch, port=0, stream=StreamConfig(**stream)) as base,
        aiohttp.ClientSession() as session,
    ):
        yield base, session


async def test_a_slow_reader_gets_every_event_once_in_order(orch: Orchestrator) -> None:
    await commit_burst(orch, 1)
    async with (
        serve(orch, max_buffered=8, keepalive_s=60) as (base, session),
        session.get(f"{base}/events/stream?after=0") as resp,
    ):
        reader = Reader(resp)
        assert await reader.until(1) == [1]  # past the backlog: from here on it is live
        # The reader stops reading while 40 bursts commit: far more than its buffer of 8, and
        # about 4 MB, so the server's writes also stall on the full sockets.
        for _ in range(40):
            await commit_burst(orch)
        expected = await stored_seqs(orch)
        seqs = [1, *await reader.until(expected[-1])]
    assert len(expected) == 1 + 40 * BURST
    assert seqs == expected, "an event was skipped, repeated or out of order"


async def test_a_reader_resumes_after_the_last_seq_it_saw(orch: Orchestrator) -> None:
    await commit_burst(orch)
    async with serve(orch, max_buffered=8, keepalive_s=0.05) as (base, session):
        async with session.get(f"{base}/events/stream?after=0") as resp:
            first = await Reader(resp).until(30)
        assert first == list(range(1, 31))
        await commit_burst(orch)  # while nobody is connected
        async with session.get(f"{base}/events/stream?after={first[-1]}") as resp:
            reader = Reader(resp)
            rest = await reader.until(2 * BURST)
            await commit_burst(orch, 1)  # and one more, live
            rest += await reader.until(2 * BURST + 1)
            assert await reader.next() is None, "nothing after the last event but a keep-alive"
    assert first + rest == await stored_seqs(orch)


async def test_an_idle_stream_writes_blank_lines(orch: Orchestrator) -> None:
    async with (
        serve(orch, keepalive_s=0.02) as (base, session),
        session.get(f"{base}/events/stream?after=0") as resp,
    ):
        assert resp.headers["Content-Type"] == "application/x-ndjson"
        reader = Reader(resp)
        assert [await reader.next() for _ in range(3)] == [None, None, None]
        await commit_burst(orch, 1)
        seqs = await reader.until(1)
    assert seqs == [1]


async def test_a_client_that_goes_away_ends_the_stream_quietly(
    orch: Orchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with serve(orch, max_buffered=8, keepalive_s=0.02) as (base, session):
        for _ in range(3):
            async with session.get(f"{base}/events/stream?after=0") as resp:
                await commit_burst(orch)
                await Reader(resp).until(5)
                resp.close()  # drop the connection mid-stream, with events still to come
            await commit_burst(orch)
        async with asyncio.timeout(10):
            # Each handler ends once a write fails: the server's side is the signal.
            while orch.engine.bus.subscriptions:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]


async def test_events_close_behind_a_write_wait_for_the_next_one_and_the_first_goes_at_once(
    orch: Orchestrator,
) -> None:
    loop = asyncio.get_running_loop()
    async with (
        serve(orch, keepalive_s=60, coalesce_s=0.5) as (base, session),
        session.get(f"{base}/events/stream?after=0") as resp,
    ):
        reader = Reader(resp)
        committed = loop.time()
        await commit_burst(orch, 1)
        assert await reader.until(1) == [1]
        first_at = loop.time()
        assert first_at - committed < 0.3, "the first event after a quiet moment waits"
        await commit_burst(orch, 1)  # right behind it: waits out the rest of the 0.5 s
        await commit_burst(orch, 1)
        assert await reader.until(3) == [2, 3]
        assert loop.time() - first_at >= 0.4
