"""Graceful degradation on a real SQLite file: a non-critical step that fails for good ends
``degraded``, its dependents run with its fallback, the task completes, and an operator retry
can still fill it in; resolving checks results against the step's ``results_schema``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from orchestrator import lifecycle
from orchestrator.clock import FakeClock
from orchestrator.embedded import open_engine
from orchestrator.engine import Engine, EngineConfig
from orchestrator.errors import PermanentError, ResultsValidationError, RetryableError
from orchestrator.event_types import EventType
from orchestrator.handlers import StepInput
from orchestrator.models import StepState, TaskState
from orchestrator.store.transitions import Tx
from orchestrator.store.writes import SqlWrites
from orchestrator.templates import parse_template
from tests.orchestrator.conftest import Recorder
from tests.orchestrator.test_engine import next_event

#: a -> (b, c) -> d -> e, where c is non-critical and b declares the shape of its results.
DEGRADABLE = """
name: degradable
namespace: test
steps:
  - {name: a, handler: a}
  - name: b
    handler: b
    depends_on: [a]
    results_schema:
      type: object
      required: [profile_id]
      properties: {profile_id: {type: string, minLength: 1}, plan: {enum: [free, pro]}}
  - name: c
    handler: c
    depends_on: [a]
    retry: {max_attempts: 2, initial_delay_s: 1000, max_delay_s: 1000, jitter: none}
    on_failure: continue
    fallback_results: {prefs: defaults}
    results_schema: {type: object, required: [prefs], properties: {prefs: {type: string}}}
  - {name: d, handler: d, depends_on: [b, c]}
  - {name: e, handler: e, depends_on: [d]}
"""
FALLBACK = {"prefs": "defaults"}


@pytest.fixture
async def degradable(recorder: Recorder, clock: FakeClock, database: str) -> AsyncIterator[Engine]:
    template = parse_template(DEGRADABLE, recorder.registry.names(), source="degradable.yaml")
    config = EngineConfig(seed=7, worker_id="w-test", lease_s=30, poll_interval_s=1)
    async with open_engine(
        database, recorder.registry, [template], config=config, clock=clock, durable=False
    ) as eng:
        yield eng


def _seen_by(recorder: Recorder, step: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    async def record(inp: StepInput) -> dict[str, Any]:
        seen.append(dict(inp.dependency_results))
        return {"step": step}

    recorder.behaviour[step] = record
    return seen


async def test_a_non_critical_step_failing_for_good_degrades_and_the_task_completes(
    degradable: Engine, recorder: Recorder
) -> None:
    async def gone(inp: StepInput) -> None:
        raise PermanentError("preferences service gone", error_code="GONE")

    recorder.behaviour["c"] = gone
    seen = _seen_by(recorder, "d")
    sub = await degradable.submit("degradable", {})
    task = await degradable.wait(sub.task_id, timeout_s=5)
    assert task.state is TaskState.COMPLETE
    c = task.step("c")
    assert (c.state, c.results, c.attempts) == (StepState.DEGRADED, FALLBACK, 1)
    assert c.last_error is not None and c.last_error.error_code == "GONE"
    assert seen == [{"b": {"step": "b", "saw": ["a"]}, "c": FALLBACK}]
    assert task.step("e").state is StepState.COMPLETE
    assert task.degraded_steps == ["c"] and task.failed_steps == []
    assert task.summary is not None and task.summary["degraded_steps"] == ["c"]
    degraded = await next_event(degradable, sub.task_id, EventType.STEP_DEGRADED, "c")
    assert degraded.data["error"]["error_code"] == "GONE"
    assert degraded.data["fallback_results"] == FALLBACK
    completed = await next_event(degradable, sub.task_id, EventType.TASK_COMPLETED)
    assert completed.data["degraded_steps"] == ["c"]
    types = [e.type for e in await degradable.events(task_id=sub.task_id)]
    assert EventType.STEP_FAILED not in types and EventType.TASK_FAILED not in types


async def test_an_operator_retry_fills_a_degraded_step_in(
    degradable: Engine, recorder: Recorder
) -> None:
    async def gone_once(inp: StepInput) -> dict[str, Any]:
        if recorder.count("c") == 1:
            raise PermanentError("preferences service gone", error_code="GONE")
        return {"prefs": "chosen"}

    recorder.behaviour["c"] = gone_once
    sub = await degradable.submit("degradable", {})
    assert (await degradable.wait(sub.task_id, timeout_s=5)).degraded_steps == ["c"]
    last = (await degradable.events(task_id=sub.task_id))[-1].seq
    await degradable.retry_step(sub.task_id, "c")
    done = await degradable.wait(sub.task_id, timeout_s=5)
    assert done.state is TaskState.COMPLETE
    assert done.step("c").state is StepState.COMPLETE
    assert done.step("c").results == {"prefs": "chosen"}
    assert done.degraded_steps == [] and done.summary is not None
    assert done.summary["degraded_steps"] == []
    later = [e for e in await degradable.events(task_id=sub.task_id) if e.seq > last]
    assert [e.type for e in later if e.type.startswith("task.")] == [
        EventType.TASK_RESUMED,
        EventType.TASK_COMPLETED,
    ]
    assert later[-1].data["degraded_steps"] == []
    # Its dependents ran once, on the fallback; the retry does not run them again.
    assert (recorder.count("c"), recorder.count("d"), recorder.count("e")) == (2, 1, 1)


async def test_a_degraded_retry_that_fails_again_degrades_again(
    degradable: Engine, recorder: Recorder
) -> None:
    async def gone(inp: StepInput) -> None:
        raise PermanentError("still gone", error_code="GONE")

    recorder.behaviour["c"] = gone
    sub = await degradable.submit("degradable", {})
    await degradable.wait(sub.task_id, timeout_s=5)
    await degradable.retry_step(sub.task_id, "c")
    done = await degradable.wait(sub.task_id, timeout_s=5)
    assert (done.state, done.degraded_steps) == (TaskState.COMPLETE, ["c"])
    assert done.step("c").results == FALLBACK and recorder.count("d") == 1


async def test_resolving_without_results_hands_dependents_the_fallback(
    degradable: Engine, recorder: Recorder
) -> None:
    async def flaky(inp: StepInput) -> None:
        raise RetryableError("try later")

    recorder.behaviour["c"] = flaky
    seen = _seen_by(recorder, "d")
    sub = await degradable.submit("degradable", {})
    await next_event(degradable, sub.task_id, EventType.STEP_RETRY_SCHEDULED, "c")
    await degradable.resolve_step(sub.task_id, "c")
    done = await degradable.wait(sub.task_id, timeout_s=5)
    assert done.state is TaskState.COMPLETE
    assert done.step("c").state is StepState.RESOLVED_MANUALLY
    assert seen[0]["c"] == FALLBACK
    resolved = await next_event(degradable, sub.task_id, EventType.STEP_RESOLVED, "c")
    assert resolved.data["results"] == FALLBACK


async def test_resolved_results_must_match_the_results_schema(
    degradable: Engine, recorder: Recorder
) -> None:
    async def broken(inp: StepInput) -> None:
        raise PermanentError("billing gone", error_code="GONE")

    recorder.behaviour["b"] = broken
    sub = await degradable.submit("degradable", {})
    assert (await degradable.wait(sub.task_id, timeout_s=5)).state is TaskState.ERROR
    with pytest.raises(ResultsValidationError) as caught:
        await degradable.resolve_step(sub.task_id, "b", {"plan": "gold"})
    assert [d.path for d in caught.value.details] == ["/plan", "/profile_id"]
    assert caught.value.step == "b"
    assert (await degradable.get_task(sub.task_id)).step("b").state is StepState.ERROR
    await degradable.resolve_step(sub.task_id, "b", {"profile_id": "manual-1"})
    assert (await degradable.wait(sub.task_id, timeout_s=5)).state is TaskState.COMPLETE


async def test_a_non_critical_step_lost_too_often_degrades_it(
    degradable: Engine, recorder: Recorder, clock: FakeClock
) -> None:
    """The reclaim path (no engine outcome) follows the same rule as a failed attempt."""

    async def flaky(inp: StepInput) -> None:
        raise RetryableError("try later")

    recorder.behaviour["c"] = flaky
    sub = await degradable.submit("degradable", {})
    await next_event(degradable, sub.task_id, EventType.STEP_RETRY_SCHEDULED, "c")
    await degradable.stop()  # nothing else claims c while workers "crash" on it
    store = degradable.store
    assert isinstance(store, SqlWrites)

    async def claimed_by_a_dead_worker(tx: Tx) -> None:
        await tx.db.execute(
            "UPDATE steps SET state = ?, attempts = attempts + 1, lease_owner = 'dead', "
            "lease_expires_at = 0 WHERE task_id = ? AND name = 'c'",
            (StepState.IN_PROGRESS.value, sub.task_id),
        )

    for _ in range(lifecycle.MAX_LOST_IN_A_ROW):
        await store.write(claimed_by_a_dead_worker)
        assert await store.reclaim_expired_leases(clock.now()) == 1
    await degradable.start()
    task = await degradable.wait(sub.task_id, timeout_s=5)
    assert (task.state, task.degraded_steps) == (TaskState.COMPLETE, ["c"])
    c = task.step("c")
    assert c.results == FALLBACK and c.last_error is not None
    assert c.last_error.error_code == lifecycle.WORKER_LOST_REPEATEDLY
    assert recorder.count("d") == 1
