"""Several orchestrator workers on one PostgreSQL database, coordinating only through it.

The workers are separate processes (``tests/orchestrator/pg_worker.py``); tasks are submitted
by an engine of this process that never starts, so every step is claimed by a worker, from the
database, after a notification wakes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from orchestrator.breaker import BreakerConfig, CircuitBreakers
from orchestrator.clock import FakeClock
from orchestrator.embedded import open_engine, store_for
from orchestrator.engine import EngineConfig
from orchestrator.errors import StoreError
from orchestrator.models import BreakerState, ClaimedStep, TaskState
from orchestrator.templates import parse_template
from tests.orchestrator.conftest import DIAMOND, Recorder

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
Call = tuple[str, str, str, int]  # worker, task, step, attempt


@contextlib.contextmanager
def workers(
    url: str, logs: Path, ids: list[str], slow: dict[str, str] | None = None
) -> Iterator[dict[str, subprocess.Popen[str]]]:
    """Start a worker process per id and wait until each is running; stop them at the end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        for wid in ids:
            extra = [slow[wid]] if slow and wid in slow else []
            cmd = [sys.executable, "-m", "tests.orchestrator.pg_worker", url, str(logs / wid), wid]
            procs[wid] = subprocess.Popen(
                [*cmd, *extra], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
            )
        for wid, proc in procs.items():
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "READY", f"worker {wid} did not start"
        yield procs
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()


def calls(logs: Path) -> list[Call]:
    out: list[Call] = []
    for file in sorted(logs.iterdir()):
        for line in file.read_text().splitlines():
            worker, task, step, attempt = line.split()
            out.append((worker, task, step, int(attempt)))
    return out


async def submit(url: str, n: int) -> list[str]:
    """Create ``n`` diamonds from an engine that never runs a step."""
    recorder = Recorder()
    template = parse_template(DIAMOND, recorder.registry.names())
    async with open_engine(url, recorder.registry, [template], start=False) as engine:
        return [(await engine.submit("diamond", {"n": i})).task_id for i in range(n)]


async def wait_complete(url: str, n: int, timeout_s: float) -> None:
    store = store_for(url)
    await store.open()
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            counts = (await store.count_tasks()).by_state
            if counts[TaskState.COMPLETE] == n:
                return
            await asyncio.sleep(0.1)
        pytest.fail(f"not every task completed in {timeout_s} s: {counts}")
    finally:
        await store.close()


async def test_three_workers_share_the_work_and_never_run_a_step_twice(
    pg_url: str, tmp_path: Path
) -> None:
    with workers(pg_url, tmp_path, ["w1", "w2", "w3"]):
        await submit(pg_url, 150)
        await wait_complete(pg_url, 150, timeout_s=60)
    done = calls(tmp_path)
    runs = Counter((task, step) for _, task, step, _ in done)
    assert len(runs) == 150 * 5 and set(runs.values()) == {1}
    assert set(Counter(worker for worker, *_ in done)) == {"w1", "w2", "w3"}
    store = store_for(pg_url)
    await store.open()
    try:
        events = await store.list_events(0, 100_000)
    finally:
        await store.close()
    # One global order, with no number skipped, though three processes wrote them.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))


async def test_a_worker_killed_mid_step_has_its_steps_finished_by_the_others(
    pg_url: str, tmp_path: Path
) -> None:
    with workers(pg_url, tmp_path, ["w1", "w2", "w3"], slow={"w1": "b"}) as procs:
        await submit(pg_url, 30)
        deadline = time.monotonic() + 30
        while not any(w == "w1" and s == "b" for w, _, s, _ in calls(tmp_path)):
            assert time.monotonic() < deadline, "w1 never started a b"
            await asyncio.sleep(0.05)
        procs["w1"].send_signal(signal.SIGKILL)
        procs["w1"].wait(10)
        await wait_complete(pg_url, 30, timeout_s=60)
    done = calls(tmp_path)
    held = {task for w, task, s, _ in done if w == "w1" and s == "b"}
    assert held
    # A step runs at most once on the workers that lived; a second run is always of a step w1
    # was running when it died (its b's, or any other step caught mid-run by the kill).
    living = Counter((task, step) for w, task, step, _ in done if w != "w1")
    dead = Counter((task, step) for w, task, step, _ in done if w == "w1")
    assert max(living.values()) == 1 and max(dead.values()) == 1
    twice = set(living) & set(dead)
    assert {(task, "b") for task in held} <= twice
    store = store_for(pg_url)
    await store.open()
    try:
        attempts = [
            a
            for t in await store.list_tasks(limit=100)
            for a in await store.list_attempts(t.task_id)
        ]
    finally:
        await store.close()
    completed = Counter((a.task_id, a.step_name) for a in attempts if a.outcome == "completed")
    assert len(completed) == 30 * 5 and set(completed.values()) == {1}
    lost = {(a.task_id, a.step_name) for a in attempts if a.outcome == "lost"}
    assert {a.worker_id for a in attempts if a.outcome == "lost"} == {"w1"}
    assert twice <= lost  # every second run was of a step recorded as lost with w1


async def test_a_breaker_opened_by_one_worker_defers_steps_in_all(pg_url: str) -> None:
    clock = FakeClock(start=1000.0)
    config = {"billing": BreakerConfig(failure_threshold=2, cooldown_s=30)}
    one, two = store_for(pg_url), store_for(pg_url)
    await one.open()
    await two.open()
    try:
        first = CircuitBreakers(one, clock, config)
        second = CircuitBreakers(two, clock, config)
        claim = ClaimedStep(
            1, "t", "wf", "s", "h", 1, 3, None, {}, {"service": "billing"}, {}, {}, "c", 0
        )
        assert await second.gate(claim) is None
        await first.record_failure("billing")
        await first.record_failure("billing")
        assert first.state("billing") is BreakerState.OPEN
        deadline = time.monotonic() + 10
        while second.state("billing") is not BreakerState.OPEN:  # told through the database
            assert time.monotonic() < deadline, "the other worker never saw the breaker open"
            await asyncio.sleep(0.02)
        deferred = await second.gate(claim)
        assert deferred is not None
        until, reason = deferred
        assert until == pytest.approx(1030.0) and reason["reason"] == "circuit_open"
        # And a worker that starts later reads it from the table.
        third = CircuitBreakers(two, clock, config)
        await third.load()
        assert third.state("billing") is BreakerState.OPEN
    finally:
        await one.close()
        await two.close()


async def test_a_worker_outlives_the_loss_of_its_database_connections(pg_url: str) -> None:
    """The server ends every connection (a restart, an operator): the worker opens new ones,
    listens again, and goes on; nothing committed meanwhile by others is missed."""
    recorder = Recorder()
    template = parse_template(DIAMOND, recorder.registry.names())
    config = EngineConfig(worker_id="w1", poll_interval_s=30, lease_s=5)
    async with (
        open_engine(pg_url, recorder.registry, [template], config=config) as worker,
        open_engine(pg_url, recorder.registry, [template], start=False) as submitter,
    ):
        first = await worker.submit("diamond", {})
        assert (await worker.wait(first.task_id, timeout_s=10)).state is TaskState.COMPLETE
        ended = await _end_every_connection(pg_url)
        assert ended >= 6  # four writers, the listener, a pooled reader (and the submitter's)
        await asyncio.sleep(0.3)  # asyncpg notices the closed sockets
        own = await worker.submit("diamond", {})
        assert (await worker.wait(own.task_id, timeout_s=10)).state is TaskState.COMPLETE
        # A task another process creates wakes this worker by notification (its poll is 30 s)
        # and its events reach this worker's bus.
        deadline = time.monotonic() + 10
        while True:
            try:
                other = await submitter.submit("diamond", {})
                break
            except StoreError:  # the submitter's own connections were ended too
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        assert (await worker.wait(other.task_id, timeout_s=10)).state is TaskState.COMPLETE


async def _end_every_connection(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        ended = await conn.fetchval(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return int(ended)
