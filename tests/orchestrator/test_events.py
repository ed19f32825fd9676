"""The event bus: a subscriber that falls behind is told so, and ``follow`` fills every gap."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from contextlib import aclosing

import pytest

from orchestrator.engine import _end_within
from orchestrator.errors import EventsLostError
from orchestrator.event_types import EventType
from orchestrator.events import EventBus, follow
from orchestrator.models import Event, TaskState


def _event(seq: int, task_id: str | None = "t1", type_: str = EventType.STEP_STARTED) -> Event:
    return Event(seq, float(seq), type_, task_id, "a", "corr", 1, {"n": seq})


class Log:
    """The store's side of the bus: every event committed, readable by seq like the real store."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.events: list[Event] = []
        self.reads = 0

    def commit(self, count: int, task_id: str | None = "t1") -> list[Event]:
        """Commit ``count`` events in one batch and publish them, as the store does."""
        first = len(self.events) + 1
        batch = [_event(seq, task_id) for seq in range(first, first + count)]
        self.events.extend(batch)
        self.bus.publish(batch)
        return batch

    async def read(self, after: int, limit: int) -> Sequence[Event]:
        self.reads += 1
        await asyncio.sleep(0)  # a real read yields to the loop, and commits may land meanwhile
        return [e for e in self.events if e.seq > after][:limit]


def test_an_overflowing_subscription_discards_its_buffer_and_says_where_the_gap_starts() -> None:
    bus = EventBus()
    log = Log(bus)
    log.commit(2)
    with bus.subscribe(max_buffered=3) as sub:
        log.commit(5)  # seqs 3..7: 3, 4, 5 fill the buffer, 6 overflows it
        assert sub.overflowed and sub.dropped == 4 and sub.gap_after == 2
        with pytest.raises(EventsLostError) as lost:
            sub.get_nowait()
        assert lost.value.after_seq == 2 and lost.value.dropped == 4
        assert sub.clear_gap() == 2
        assert not sub.overflowed
        # What came after the overflow is buffered again: nothing falls between store and bus.
        event = sub.get_nowait()
        assert event is not None and event.seq == 7
        assert sub.get_nowait() is None


async def test_every_read_reports_the_gap_until_it_is_cleared() -> None:
    bus = EventBus()
    with bus.subscribe(max_buffered=1) as sub:
        bus.publish([_event(1), _event(2), _event(3)])
        await asyncio.wait_for(sub.wait(60), 1)  # a gap wakes a waiter, like an event
        for _ in range(2):
            with pytest.raises(EventsLostError):
                await sub.get()
        sub.clear_gap()
        assert (await sub.get()).seq == 3


def test_a_second_overflow_before_the_gap_is_cleared_keeps_the_first_gap() -> None:
    bus = EventBus()
    with bus.subscribe(max_buffered=2) as sub:
        bus.publish([_event(s) for s in range(1, 4)])
        bus.publish([_event(s) for s in range(4, 7)])
        assert sub.gap_after == 0 and sub.dropped == 6


def test_a_task_subscription_counts_only_its_task() -> None:
    bus = EventBus()
    with bus.subscribe("t1", max_buffered=2) as sub:
        bus.publish([_event(1, "t2"), _event(2, "t1"), _event(3, "t2"), _event(4, "t1")])
        assert not sub.overflowed
        bus.publish([_event(5, "t1")])
        assert sub.gap_after == 1 and sub.dropped == 3


def test_max_buffered_must_hold_an_event() -> None:
    with pytest.raises(ValueError, match="max_buffered"):
        EventBus().subscribe(max_buffered=0)


async def test_follow_gives_every_event_once_in_order_across_overflows() -> None:
    bus = EventBus()
    log = Log(bus)
    log.commit(10)
    with bus.subscribe(max_buffered=4) as sub:
        seen: list[int] = []
        async with aclosing(follow(sub, log.read, after=3)) as events:
            async for item in events:
                assert isinstance(item, Event)
                seen.append(item.seq)
                if item.seq % 7 == 0 and len(log.events) < 200:
                    log.commit(25)  # a burst larger than the buffer, mid-read
                if item.seq == len(log.events) >= 200:
                    break
        assert sub.dropped > 0, "the test must overflow the subscription"
    assert seen == list(range(4, len(log.events) + 1))


async def test_follow_from_now_reads_a_gap_from_where_it_starts() -> None:
    bus = EventBus()
    log = Log(bus)
    log.commit(10)  # before the subscription: not wanted
    with bus.subscribe(max_buffered=2) as sub:
        log.commit(5)  # overflows before anything is read
        async with aclosing(follow(sub, log.read, after=None)) as events:
            seen = []
            async for item in events:
                assert isinstance(item, Event)
                seen.append(item.seq)
                if item.seq == 15:
                    break
    assert seen == [11, 12, 13, 14, 15]


async def test_follow_pages_through_a_long_backlog() -> None:
    bus = EventBus()
    log = Log(bus)
    log.commit(25)
    with bus.subscribe() as sub:
        async with aclosing(follow(sub, log.read, after=0, page=10)) as events:
            seen = []
            async for item in events:
                assert isinstance(item, Event)
                seen.append(item.seq)
                if item.seq == 25:
                    break
    assert seen == list(range(1, 26)) and log.reads == 3


async def test_follow_yields_none_when_idle_and_ends_when_the_subscription_closes() -> None:
    bus = EventBus()
    log = Log(bus)
    sub = bus.subscribe()
    items: list[int | None] = []
    async with aclosing(follow(sub, log.read, after=0, idle_s=0.01)) as events:
        async for item in events:
            items.append(item.seq if item is not None else None)
            if item is None and len(items) == 1:
                log.commit(1)
            elif item is None:
                sub.close()
    assert items[:3] == [None, 1, None]


async def test_a_gap_ends_the_wait_for_a_task_at_once_so_its_state_is_read() -> None:
    bus = EventBus()
    loop = asyncio.get_running_loop()
    with bus.subscribe("t1", max_buffered=2) as sub:
        bus.publish([_event(1, type_=EventType.TASK_COMPLETED), _event(2), _event(3)])
        started = loop.time()
        assert await _end_within(sub, started + 30) is None
        assert loop.time() - started < 5
        assert not sub.overflowed
        bus.publish([_event(4, type_=EventType.TASK_FAILED)])
        assert await _end_within(sub, loop.time() + 30) is TaskState.ERROR
