"""The demo's stage on its own: a demo cancelled (Ctrl-C, the dashboard quitting) stays
cancelled, whatever it was waiting for at that moment."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from dashboard.model import DashEvent
from interlock.demos.stage import Stage, Target
from orchestrator.event_types import EventType


def _event(seq: int) -> DashEvent:
    return DashEvent(
        seq=seq,
        at=0.0,
        type=EventType.STEP_DEFERRED,
        task_id="t1",
        step_name="setup_billing_profile",
        correlation_id="demo-x-1",
        attempt=None,
        data={},
    )


async def test_a_cancel_that_arrives_with_the_awaited_event_is_not_swallowed() -> None:
    """asyncio.wait_for on Python 3.11 returns the result when the awaited future and the
    cancel land in one loop turn, and the cancel is lost (the demo would then run on after
    the user stopped it)."""
    async with aiohttp.ClientSession() as session:
        stage = Stage(Target("http://127.0.0.1:9", {}), session, lambda line: None)
        waiting = asyncio.create_task(
            stage.until(lambda e: e.type == EventType.STEP_DEFERRED, 5, "a deferral")
        )
        await asyncio.sleep(0)  # the waiter is registered on the task's first step
        assert stage._waiters
        stage._waiters[0].found.set_result(_event(1))
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting


async def test_a_cancel_while_settling_is_not_swallowed() -> None:
    async with aiohttp.ClientSession() as session:
        stage = Stage(Target("http://127.0.0.1:9", {}), session, lambda line: None)
        waiting = asyncio.create_task(stage.settle(["t1"], 5))
        await asyncio.sleep(0.01)
        stage.finished["t1"] = "completed"
        stage._changed.set()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
