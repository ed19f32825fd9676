"""A burst of registrations over the orchestrator's HTTP API, timed until every one is finished.

The submitters are a pool of coroutines with ``concurrency`` requests in flight, each
``POST /tasks`` as a client would send it. Submitting returns long before the work is done, so
the burst is timed until ``GET /tasks/counts`` says that all of it is finished. The counts are
polled often only near the end (every quarter of the time left at the rate so far, 5 to 200 ms),
so the poll costs the orchestrator little and the end is seen within a few milliseconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from orchestrator import codec
from orchestrator.models import TERMINAL_TASK_STATES, TaskState

_JSON: Final = {"Content-Type": "application/json"}
_POLL_MIN_S: Final = 0.005
_POLL_MAX_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class Counts:
    """``GET /tasks/counts``: tasks by state."""

    by_state: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def finished(self) -> int:
        return sum(self.by_state.get(s.value, 0) for s in TERMINAL_TASK_STATES)

    @property
    def failed(self) -> int:
        return self.by_state.get(TaskState.ERROR.value, 0) + self.by_state.get(
            TaskState.CANCELLED.value, 0
        )


async def read_counts(session: aiohttp.ClientSession, api_url: str) -> Counts:
    async with session.get(f"{api_url}/tasks/counts") as resp:
        if resp.status != 200:
            raise RuntimeError(f"GET /tasks/counts answered {resp.status}")
        body = codec.loads(await resp.read())
    return Counts({str(k): int(v) for k, v in body["counts"].items()})


async def submit_all(
    session: aiohttp.ClientSession,
    api_url: str,
    template: str,
    contexts: Sequence[dict[str, Any]],
    concurrency: int,
) -> None:
    """``POST /tasks`` for every context, ``concurrency`` at a time, as fast as they are taken."""
    queue = iter(contexts)

    async def submitter() -> None:
        for context in queue:
            body = codec.dumpb({"name": template, "context": context})
            async with session.post(f"{api_url}/tasks", data=body, headers=_JSON) as resp:
                if resp.status not in (200, 201):
                    raise RuntimeError(f"POST /tasks answered {resp.status}: {await resp.text()}")
                await resp.read()

    await asyncio.gather(*(submitter() for _ in range(min(concurrency, len(contexts)))))


async def wait_finished(
    session: aiohttp.ClientSession,
    api_url: str,
    before: Counts,
    added: int,
    started_s: float,
    timeout_s: float,
) -> float:
    """Wait until ``added`` more tasks than in ``before`` are finished; return the
    ``perf_counter`` time it was seen. A task that failed or was cancelled raises."""
    target = before.finished + added
    deadline = time.monotonic() + timeout_s
    while True:
        counts = await read_counts(session, api_url)
        seen = time.perf_counter()
        if counts.failed > before.failed:
            raise RuntimeError(f"{counts.failed - before.failed} benchmark registrations failed")
        if counts.finished >= target:
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target - counts.finished} of {added} unfinished at the timeout")
        done = counts.finished - before.finished
        rate = max(done, 1) / max(seen - started_s, 1e-3)
        pause = (target - counts.finished) / rate / 4
        await asyncio.sleep(min(_POLL_MAX_S, max(_POLL_MIN_S, pause)))
