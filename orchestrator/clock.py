"""Time as a dependency, so tests never sleep through a real backoff."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    """Wall time for timestamps and retry schedules, and a sleep that honours it."""

    def now(self) -> float:
        """Unix time in seconds."""
        ...

    async def sleep(self, delay_s: float) -> None:
        """Return after ``delay_s`` seconds of this clock's time."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (at once if it already is)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, delay_s: float) -> None:
        await asyncio.sleep(max(0.0, delay_s))

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.time()))


class FakeClock:
    """A clock that moves only when told to: ``advance()`` wakes every sleeper whose time came."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._counter = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, delay_s: float) -> None:
        await self.sleep_until(self._now + delay_s)

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._counter), future))
        await future

    def advance(self, delta_s: float) -> None:
        """Move time forward and release the sleepers that are now due."""
        self._now += delta_s
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
