"""In-process event subscription, so a live view follows every change without polling the DB.

The store calls :meth:`EventBus.publish` with each committed batch, in sequence order. A slow
subscriber never blocks the engine: past ``max_buffered`` its oldest events are dropped and
counted in ``dropped``; it can then re-read the gap from the store by sequence number.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Sequence

from orchestrator.models import Event


class Subscription:
    """An async iterator of events, optionally only those of one task."""

    def __init__(self, bus: EventBus, task_id: str | None, max_buffered: int) -> None:
        self._bus = bus
        self.task_id = task_id
        self._buffer: deque[Event] = deque()
        self._max = max_buffered
        self._ready = asyncio.Event()
        self.dropped = 0  #: events lost to overflow; re-read them from the store by seq
        self.closed = False

    def _push(self, event: Event) -> None:
        if len(self._buffer) >= self._max:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append(event)
        self._ready.set()

    async def get(self) -> Event:
        while not self._buffer:
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._buffer.popleft()

    async def wait(self, timeout_s: float) -> None:
        """Return once an event is buffered (or the subscription closed), or after ``timeout_s``.

        A timer, not a cancellation, ends the wait: nothing raised, nothing lost.
        """
        if self._buffer or self.closed:
            return
        self._ready.clear()
        timer = asyncio.get_running_loop().call_later(max(0.0, timeout_s), self._ready.set)
        try:
            await self._ready.wait()
        finally:
            timer.cancel()

    def get_nowait(self) -> Event | None:
        return self._buffer.popleft() if self._buffer else None

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.get()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._remove(self)
            self._ready.set()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    """Fans committed events out to subscriptions (all events, or one task's)."""

    def __init__(self) -> None:
        self._all: list[Subscription] = []
        self._by_task: dict[str, list[Subscription]] = {}
        self.last_seq = 0  #: highest sequence number published

    def subscribe(self, task_id: str | None = None, max_buffered: int = 10_000) -> Subscription:
        sub = Subscription(self, task_id, max_buffered)
        if task_id is None:
            self._all.append(sub)
        else:
            self._by_task.setdefault(task_id, []).append(sub)
        return sub

    def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            for sub in self._all:
                sub._push(event)
            if self._by_task and event.task_id is not None:
                for sub in self._by_task.get(event.task_id, ()):
                    sub._push(event)
        if events:
            self.last_seq = events[-1].seq

    def _remove(self, sub: Subscription) -> None:
        if sub.task_id is None:
            if sub in self._all:
                self._all.remove(sub)
            return
        subs = self._by_task.get(sub.task_id, [])
        if sub in subs:
            subs.remove(sub)
        if not subs:
            self._by_task.pop(sub.task_id, None)
