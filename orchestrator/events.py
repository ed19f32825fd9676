"""In-process event subscription, so a live view follows every change without polling the DB.

The store calls :meth:`EventBus.publish` with each committed batch, in sequence order. A slow
subscriber never blocks the engine, and never loses an event without being told: when an event
arrives and ``max_buffered`` are already waiting unread, the subscription discards its whole
buffer (the slow reader then holds no memory), counts the events in ``dropped``, and marks a gap
that starts after ``gap_after``. Until the reader calls :meth:`Subscription.clear_gap`, every read
raises :class:`~orchestrator.errors.EventsLostError`, so no reader can step over the gap by
accident. Every discarded event is already committed, so the reader re-reads them from the store
by sequence number; the events published after the overflow are buffered again at once, so
nothing falls between the store read and the live ones (the reader skips the seqs it has seen).

:func:`follow` is that reader: the stored events after a sequence number, then the live ones,
each gap re-read from the store, so its caller sees every event exactly once, in strictly
increasing ``seq`` order. ``GET /events/stream`` and the console use it (through
:meth:`Engine.follow <orchestrator.engine.Engine.follow>`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import aclosing

from orchestrator.errors import EventsLostError
from orchestrator.models import Event

#: Events a subscription holds unread before it overflows.
DEFAULT_MAX_BUFFERED = 10_000

#: Reads the store: up to ``limit`` events after seq ``after``, in seq order (one task's, or all).
ReadEvents = Callable[[int, int], Awaitable[Sequence[Event]]]


class Subscription:
    """An async iterator of events, optionally only those of one task."""

    def __init__(self, bus: EventBus, task_id: str | None, max_buffered: int) -> None:
        if max_buffered < 1:
            raise ValueError(f"max_buffered must be at least 1, got {max_buffered}")
        self._bus = bus
        self.task_id = task_id
        self._buffer: deque[Event] = deque()
        self._max = max_buffered
        self._ready = asyncio.Event()
        self.dropped = 0  #: events discarded by overflows, over the subscription's life
        #: While not None, events after this seq may be missing: re-read them from the store.
        self.gap_after: int | None = None
        self.closed = False

    @property
    def overflowed(self) -> bool:
        """True from an overflow until :meth:`clear_gap`."""
        return self.gap_after is not None

    def _push(self, event: Event) -> None:
        if len(self._buffer) < self._max:
            self._buffer.append(event)
        else:
            self._overflow()
        self._ready.set()

    def _overflow(self) -> None:
        """Discard the buffer and the event that did not fit; the gap starts before the oldest."""
        if self.gap_after is None:
            self.gap_after = self._buffer[0].seq - 1
        self.dropped += len(self._buffer) + 1
        self._buffer.clear()

    def clear_gap(self) -> int | None:
        """Acknowledge the gap (the caller will re-read it); return where it started, or None.

        Events buffered since the overflow are then read as usual; some of them may also be in
        what the caller re-reads, so it skips seqs it has already seen.
        """
        gap_after, self.gap_after = self.gap_after, None
        return gap_after

    def _check_gap(self) -> None:
        if self.gap_after is not None:
            raise EventsLostError(self.gap_after, self.dropped)

    async def get(self) -> Event:
        """The next event; :class:`EventsLostError` while there is a gap before it."""
        while True:
            self._check_gap()
            if self._buffer:
                return self._buffer.popleft()
            if self.closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()

    async def wait(self, timeout_s: float | None) -> None:
        """Return once an event is buffered, a gap opened or the subscription closed, or after
        ``timeout_s`` (None: no time limit).

        A timer, not a cancellation, ends the wait: nothing raised, nothing lost.
        """
        if self._buffer or self.closed or self.gap_after is not None:
            return
        self._ready.clear()
        if timeout_s is None:
            await self._ready.wait()
            return
        timer = asyncio.get_running_loop().call_later(max(0.0, timeout_s), self._ready.set)
        try:
            await self._ready.wait()
        finally:
            timer.cancel()

    def get_nowait(self) -> Event | None:
        """The next buffered event or None; :class:`EventsLostError` while there is a gap."""
        self._check_gap()
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

    @property
    def subscriptions(self) -> int:
        """How many subscriptions are open."""
        return len(self._all) + sum(len(subs) for subs in self._by_task.values())

    def subscribe(
        self, task_id: str | None = None, max_buffered: int = DEFAULT_MAX_BUFFERED
    ) -> Subscription:
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


async def follow(
    sub: Subscription,
    read: ReadEvents,
    after: int | None,
    *,
    idle_s: float | None = None,
    page: int = 1000,
) -> AsyncGenerator[Event | None, None]:
    """Every event after seq ``after`` (None: from the subscription on), then the live ones.

    Open ``sub`` before calling (``read`` must read what ``sub`` filters on): what commits while
    the backlog is read is then buffered, and seqs already given are skipped, so every event
    comes exactly once, in strictly increasing seq order, each gap re-read through ``read``.
    Yields None whenever ``idle_s`` passes without an event (a caller's cue for a keep-alive).
    Ends when ``sub`` is closed. Close it with :func:`contextlib.aclosing`.
    """
    async with aclosing(follow_batches(sub, read, after, idle_s=idle_s, page=page)) as batches:
        async for batch in batches:
            if batch is None:
                yield None
                continue
            for event in batch:
                yield event


async def follow_batches(
    sub: Subscription,
    read: ReadEvents,
    after: int | None,
    *,
    idle_s: float | None = None,
    page: int = 1000,
) -> AsyncGenerator[list[Event] | None, None]:
    """:func:`follow`, a batch at a time: each non-empty list is every event available at once
    (a stored page, or what is buffered live, at most ``page``), so a writer can send a burst
    in one write instead of one per event. Same guarantees: every event once, in seq order."""
    last = after
    loop = asyncio.get_running_loop()
    while True:
        if last is not None:
            async with aclosing(_stored(read, last, page)) as stored:
                async for events in stored:
                    yield events
                    last = events[-1].seq
        quiet_since = loop.time()
        while not sub.overflowed:
            batch: list[Event] = []
            while len(batch) < page:
                live = sub.get_nowait()
                if live is None:
                    break
                if last is None or live.seq > last:
                    batch.append(live)
                    last = live.seq
            if batch:
                yield batch
                quiet_since = loop.time()
                continue
            if sub.closed:
                return
            wait_s = None if idle_s is None else quiet_since + idle_s - loop.time()
            if wait_s is None or wait_s > 0:
                await sub.wait(wait_s)
                continue
            yield None
            quiet_since = loop.time()
        gap_after = sub.clear_gap()
        if last is None:
            last = gap_after


async def _stored(read: ReadEvents, after: int, page: int) -> AsyncGenerator[list[Event], None]:
    """The stored events after ``after``, a page at a time (non-empty) until a short page."""
    while True:
        events = await read(after, page)
        if events:
            yield list(events)
        if len(events) < page:
            return
        after = events[-1].seq
