"""Durability: leases, two engines on one file, and a real SIGKILL mid-run."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.clock import FakeClock
from orchestrator.embedded import open_engine
from orchestrator.engine import EngineConfig
from orchestrator.errors import StoreError, TaskNotFoundError
from orchestrator.event_types import EventType
from orchestrator.handlers import StepInput
from orchestrator.models import StepState, TaskState
from orchestrator.store.base import NewEvent
from orchestrator.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore
from tests.orchestrator.conftest import Recorder, diamond

ROOT = Path(__file__).resolve().parents[2]


async def test_expired_lease_is_reclaimed_by_another_engine(
    recorder: Recorder, clock: FakeClock, db_path: Path
) -> None:
    b_started = asyncio.Event()

    async def hangs_in_first_engine(inp: StepInput) -> None:
        if not b_started.is_set():
            b_started.set()
            await asyncio.Event().wait()

    recorder.behaviour["b"] = hangs_in_first_engine
    template = diamond(recorder)
    first_config = EngineConfig(worker_id="first", lease_s=10, seed=1, shutdown_grace_s=0.01)
    async with open_engine(
        db_path, recorder.registry, [template], config=first_config, clock=clock, durable=False
    ) as first:
        sub = await first.submit("diamond", {})
        await asyncio.wait_for(b_started.wait(), 5)
    # "first" is gone (its handler was cancelled without a word to the DB); its lease stands.
    second_config = EngineConfig(worker_id="second", lease_s=10, reclaim_interval_s=1, seed=1)
    async with open_engine(
        db_path, recorder.registry, [template], config=second_config, clock=clock, durable=False
    ) as second:
        task = await second.get_task(sub.task_id)
        assert task.step("b").state is StepState.IN_PROGRESS  # not yet expired
        clock.advance(11)  # past the lease; the reclaim loop wakes every second
        done = await second.wait(sub.task_id, timeout_s=5)
        attempts = await second.attempts(sub.task_id)
    assert done.state is TaskState.COMPLETE
    lost = [a for a in attempts if a.outcome == "lost"]
    assert len(lost) == 1 and lost[0].step_name == "b" and lost[0].worker_id == "first"
    assert lost[0].error is not None and lost[0].error.error_code == "WORKER_LOST"
    assert done.step("b").attempts == 1  # the lost attempt was given back


async def test_same_worker_restart_reclaims_its_leases_at_once(
    recorder: Recorder, clock: FakeClock, db_path: Path
) -> None:
    started = asyncio.Event()

    async def hangs_once(inp: StepInput) -> None:
        if not started.is_set():
            started.set()
            await asyncio.Event().wait()

    recorder.behaviour["a"] = hangs_once
    template = diamond(recorder)
    config = EngineConfig(worker_id="stable", lease_s=600, shutdown_grace_s=0.01)
    async with open_engine(
        db_path, recorder.registry, [template], config=config, clock=clock, durable=False
    ) as eng:
        sub = await eng.submit("diamond", {})
        await asyncio.wait_for(started.wait(), 5)
    async with open_engine(
        db_path, recorder.registry, [template], config=config, clock=clock, durable=False
    ) as eng:
        done = await eng.wait(sub.task_id, timeout_s=5)  # no clock advance needed
    assert done.state is TaskState.COMPLETE


async def test_two_engines_on_one_file_never_run_a_step_twice(
    recorder: Recorder, db_path: Path
) -> None:
    executions: Counter[tuple[str, str]] = Counter()
    workers: Counter[str] = Counter()

    def counting(name: str) -> Any:
        async def handler(inp: StepInput) -> None:
            executions[(inp.task_id, name)] += 1
            await asyncio.sleep(0.002)

        return handler

    for name in "abcde":
        recorder.behaviour[name] = counting(name)
    template = diamond(recorder)
    configs = [
        EngineConfig(worker_id=f"w{i}", poll_interval_s=0.01, max_concurrency=8) for i in (1, 2)
    ]
    async with (
        open_engine(db_path, recorder.registry, [template], config=configs[0]) as one,
        open_engine(db_path, recorder.registry, [template], config=configs[1]) as two,
    ):
        ids = [(await (one if i % 2 else two).submit("diamond", {})).task_id for i in range(40)]
        for task_id in ids:
            assert (await one.wait(task_id, timeout_s=20)).state is TaskState.COMPLETE
        for engine in (one, two):
            for ev in await engine.events(0, 100_000):
                if ev.type == EventType.STEP_STARTED:
                    workers[ev.data["worker_id"]] += 1
    assert len(executions) == 40 * 5
    assert set(executions.values()) == {1}
    assert workers["w1"] > 0 and workers["w2"] > 0  # both engines did real work


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_resumes_without_rerunning_completed_steps(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "crash.db", tmp_path / "calls.log"
    cmd = [sys.executable, "-m", "tests.orchestrator.crash_worker", str(db), str(log), "6"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([*cmd, "b"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until every task is stuck in step b
            lines = log.read_text().splitlines() if log.exists() else []
            if sum(1 for ln in lines if ln.split()[1] == "b") >= 6:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the worker never reached step b")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    with sqlite3.connect(db) as conn:
        completed_before = set(
            conn.execute("SELECT task_id, name FROM steps WHERE state = 'complete'").fetchall()
        )
        running = conn.execute(
            "SELECT name, COUNT(*) FROM steps WHERE state = 'in_progress' GROUP BY name"
        )
        in_flight = dict(running.fetchall())
    # Every b was mid-run; a c may have been too (its handler started, its completion unwritten).
    assert in_flight["b"] == 6 and set(in_flight) <= {"b", "c"}
    assert {name for _, name in completed_before} == {"a", "c"} or {
        name for _, name in completed_before
    } == {"a"}
    calls_before = len(log.read_text().splitlines())

    restarted = subprocess.run(
        [*cmd, "none"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert "ALL COMPLETE" in restarted.stdout, restarted.stderr
    after = [tuple(ln.split()[:2]) for ln in log.read_text().splitlines()[calls_before:]]
    assert not set(after) & completed_before, "a completed step ran again"
    assert Counter(name for _, name in after)["b"] == 6  # each lost b ran once more
    with sqlite3.connect(db) as conn:
        states = conn.execute("SELECT state, COUNT(*) FROM tasks GROUP BY state").fetchall()
        lost = conn.execute("SELECT COUNT(*) FROM attempts WHERE outcome = 'lost'").fetchone()
    assert states == [("complete", 6)]
    assert lost[0] == sum(in_flight.values())


async def test_newer_schema_is_refused(db_path: Path) -> None:
    store = SqliteStore(str(db_path))
    await store.open()
    await store.close()
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")
    newer = SqliteStore(str(db_path))
    with pytest.raises(StoreError, match="newer"):
        await newer.open()
    await newer.close()


async def test_a_version_1_database_is_migrated_and_its_keyed_tasks_still_found(
    db_path: Path,
) -> None:
    """The request-hash migration adds a column; a task keyed before it has none and is returned for
    its key as before (it cannot be compared), instead of failing every retry of it."""
    with sqlite3.connect(db_path) as conn:
        conn.executescript(MIGRATIONS.scripts[0])
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute(
            "INSERT INTO tasks (id, name, namespace, version, state, correlation_id, context, "
            "idempotency_key, created_at) VALUES ('old', 'diamond', 'default', '1.0.0', "
            "'complete', 'c', '{}', 'k1', 0)"
        )
    recorder = Recorder()
    async with open_engine(db_path, recorder.registry, [diamond(recorder)], start=False) as engine:
        sub = await engine.submit("diamond", {"n": 1}, idempotency_key="k1")
    assert (sub.task_id, sub.created) == ("old", False)
    with sqlite3.connect(db_path) as conn:
        newest = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    assert newest == (SCHEMA_VERSION,)


async def test_reopening_keeps_data_and_does_not_remigrate(db_path: Path) -> None:
    for _ in range(2):
        store = SqliteStore(str(db_path))
        await store.open()
        await store.close()
    with sqlite3.connect(db_path) as conn:
        versions = conn.execute("SELECT version FROM schema_version").fetchall()
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_a_writer_in_another_process_is_waited_for_without_blocking_the_loop(
    db_path: Path,
) -> None:
    store = SqliteStore(str(db_path), busy_timeout_s=5)
    await store.open()
    other = sqlite3.connect(str(db_path), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticking = asyncio.create_task(ticker())
        write = asyncio.create_task(store.cancel_task("no-such-task", 0.0))
        await asyncio.sleep(0.2)
        assert not write.done()
        assert ticks >= 10  # the loop kept running while the write waited
        other.execute("ROLLBACK")
        with pytest.raises(TaskNotFoundError):  # the write ran once unlocked
            await asyncio.wait_for(write, 5)
        ticking.cancel()

        impatient = SqliteStore(str(db_path), busy_timeout_s=0.1)
        await impatient.open()
        other.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match=r"locked by another writer for 0\.1 s"):
                await impatient.cancel_task("no-such-task", 0.0)
        finally:
            other.execute("ROLLBACK")
            await impatient.close()
    finally:
        other.close()
        await store.close()


async def test_an_idle_write_commits_on_the_loop_and_a_busy_batch_on_the_writer_thread(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import orchestrator.store.sqlite as sqlite_store

    seen: list[tuple[int, bool]] = []  # (operations, ran on the loop's thread)
    real = sqlite_store._apply_batch
    loop_thread = threading.get_ident()

    def spy(ops: list[Any], *args: Any, **kwargs: Any) -> Any:
        seen.append((len(ops), threading.get_ident() == loop_thread))
        return real(ops, *args, **kwargs)

    monkeypatch.setattr(sqlite_store, "_apply_batch", spy)
    store = SqliteStore(str(db_path))
    await store.open()
    try:

        def event(n: int) -> NewEvent:
            return NewEvent(
                type="demo.tick",
                task_id=None,
                step_name=None,
                correlation_id=None,
                attempt=None,
                data={"n": n},
                at=float(n),
            )

        await store.append_events([event(0)])
        for n in range(1, 10):  # queued together before the writer runs: one batch
            store.post_events([event(n)])
        await store.append_events([event(10)])
        assert seen == [(1, True), (10, False)]
        assert [e.data["n"] for e in await store.list_events(0, 100)] == list(range(11))
    finally:
        await store.close()


async def test_a_failed_open_leaves_no_thread_behind(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-db.db"
    bogus.write_bytes(b"this is not a database, " * 100)
    before = set(threading.enumerate())
    with pytest.raises(StoreError, match=r"not-a-db\.db cannot be used as an Interlock database"):
        await SqliteStore(str(bogus)).open()
    assert set(threading.enumerate()) <= before


async def _crash_while_running(
    recorder: Recorder, clock: FakeClock, db_path: Path, crashes: int
) -> tuple[str, Any]:
    """Run the diamond, and kill the engine while step ``a`` runs, ``crashes`` times."""
    running = asyncio.Event()
    calls = Counter[str]()

    async def hangs_until_the_crashes_are_done(inp: StepInput) -> None:
        calls["a"] += 1
        if calls["a"] <= crashes:
            running.set()
            await asyncio.Event().wait()

    recorder.behaviour["a"] = hangs_until_the_crashes_are_done
    template = diamond(recorder)
    # a crash does not wait for its steps: no grace for the hung handler
    config = EngineConfig(worker_id="stable", lease_s=600, shutdown_grace_s=0.01)
    task_id = ""
    for _ in range(crashes):
        running.clear()
        async with open_engine(
            db_path, recorder.registry, [template], config=config, clock=clock, durable=False
        ) as eng:
            if not task_id:
                task_id = (await eng.submit("diamond", {})).task_id
            await asyncio.wait_for(running.wait(), 5)
    async with open_engine(
        db_path, recorder.registry, [template], config=config, clock=clock, durable=False
    ) as eng:
        done = await eng.wait(task_id, timeout_s=5)
        attempts = await eng.attempts(task_id)
    return task_id, (done, attempts)


async def test_crashes_do_not_spend_the_steps_attempts(
    recorder: Recorder, clock: FakeClock, db_path: Path
) -> None:
    # a has 3 attempts; three crashes while it runs used to spend all of them
    _, (done, attempts) = await _crash_while_running(recorder, clock, db_path, crashes=3)
    assert done.state is TaskState.COMPLETE
    lost = [a for a in attempts if a.step_name == "a" and a.outcome == "lost"]
    assert len(lost) == 3  # recorded and shown, not counted
    assert done.step("a").attempts == 1


async def test_a_step_lost_to_crashes_too_often_in_a_row_fails_with_its_own_code(
    recorder: Recorder, clock: FakeClock, db_path: Path
) -> None:
    from orchestrator import lifecycle

    crashes = lifecycle.MAX_LOST_IN_A_ROW
    _, (done, attempts) = await _crash_while_running(recorder, clock, db_path, crashes=crashes)
    assert done.state is TaskState.ERROR
    step = done.step("a")
    assert step.state is StepState.ERROR
    assert step.last_error is not None
    assert step.last_error.error_code == lifecycle.WORKER_LOST_REPEATEDLY
    assert len([a for a in attempts if a.outcome == "lost"]) == crashes
