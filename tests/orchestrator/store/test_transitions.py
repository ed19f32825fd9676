"""The failure transition's answers, on each store (a SQLite file, a PostgreSQL schema): what a
failed attempt leaves behind."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.embedded import store_for
from orchestrator.event_types import EventType
from orchestrator.models import (
    AttemptOutcome,
    ClaimedStep,
    ErrorInfo,
    ErrorKind,
    OnFailure,
    StepState,
    TaskState,
)
from orchestrator.store.base import Claim, NewStep, NewTask, StepFailure, Store

ERROR = ErrorInfo(ErrorKind.RETRYABLE, "HTTP_503", "HTTP 503: busy", 503)


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    store = store_for(database, durable=False)
    await store.open()
    yield store
    await store.close()


def _claim(now: float) -> Claim:
    return Claim(owner="w1", lease_s=30.0, limit=10, now=now)


async def _started(store: Store, on_failure: OnFailure = OnFailure.FAIL) -> ClaimedStep:
    """A task ``t1``: ``a`` (claimed by w1 at 100, attempt 1) and ``b`` after it."""
    fallback = {"x": 1} if on_failure is OnFailure.CONTINUE else None
    steps = (
        NewStep("a", "h", (), 3, {}, None, {}, on_failure, fallback),
        NewStep("b", "h", ("a",), 3, {}, None, {}),
    )
    task = NewTask("t1", "wf", "ns", "1", "c1", {}, None, steps, 100.0)
    created = await store.create_task(task, _claim(100.0))
    (claimed,) = created.claimed
    assert (claimed.step_name, claimed.attempt) == ("a", 1)
    return claimed


def _failure(
    claimed: ClaimedStep, next_attempt_at: float | None, *, owner: str = "w1", attempt: int = 1
) -> StepFailure:
    return StepFailure(
        claimed.step_id, "t1", "a", owner, attempt, ERROR, next_attempt_at, 100.0, 0.5, 100.5
    )


async def test_a_retryable_failure_waits_for_its_retry_and_says_when(store: Store) -> None:
    claimed = await _started(store)
    answer = await store.fail_step(_failure(claimed, 105.0), _claim(100.5))
    assert (answer.accepted, answer.claimed) == (True, [])
    step = (await store.get_task("t1")).step("a")
    assert (step.state, step.next_attempt_at, step.completed_at) == (
        StepState.WAITING_FOR_RETRY,
        105.0,
        None,
    )
    assert (step.last_error, step.results) == (ERROR, None)  # no fallback for a step that waits
    event = (await store.list_events(task_id="t1"))[-1]
    assert (event.type, event.step_name, event.attempt, event.at) == (
        EventType.STEP_RETRY_SCHEDULED,
        "a",
        1,
        100.5,
    )
    assert event.data == {"error": ERROR.to_json(), "next_attempt_at": 105.0, "delay_s": 4.5}
    (attempt,) = await store.list_attempts("t1")
    assert (attempt.attempt, attempt.worker_id, attempt.outcome, attempt.error) == (
        1,
        "w1",
        AttemptOutcome.FAILED,
        ERROR,
    )
    assert (attempt.started_at, attempt.ended_at, attempt.duration_s) == (100.0, 100.5, 0.5)


@pytest.mark.parametrize(("owner", "attempt"), [("w2", 1), ("w1", 2)])
async def test_a_stale_report_is_refused_and_changes_nothing(
    store: Store, owner: str, attempt: int
) -> None:
    claimed = await _started(store)
    events = await store.list_events(task_id="t1")
    answer = await store.fail_step(_failure(claimed, None, owner=owner, attempt=attempt))
    assert (answer.accepted, answer.claimed) == (False, [])
    assert (await store.get_task("t1")).step("a").state is StepState.IN_PROGRESS
    assert await store.list_events(task_id="t1") == events
    assert await store.list_attempts("t1") == []


async def test_a_report_for_a_step_no_longer_running_is_refused(store: Store) -> None:
    claimed = await _started(store)
    assert (await store.fail_step(_failure(claimed, 105.0))).accepted
    assert not (await store.fail_step(_failure(claimed, None))).accepted
    assert (await store.get_task("t1")).step("a").state is StepState.WAITING_FOR_RETRY


async def test_a_final_failure_ends_the_step_and_the_task_at_once(store: Store) -> None:
    claimed = await _started(store)
    answer = await store.fail_step(_failure(claimed, None), _claim(100.5))
    assert (answer.accepted, answer.claimed) == (True, [])
    task = await store.get_task("t1")
    step = task.step("a")
    assert (step.state, step.next_attempt_at, step.completed_at) == (StepState.ERROR, None, 100.5)
    assert (task.state, task.completed_at) == (TaskState.ERROR, 100.5)
    assert task.step("b").state is StepState.PENDING
    failed = [e for e in await store.list_events(task_id="t1") if e.type == EventType.STEP_FAILED]
    assert [(e.step_name, e.attempt, e.at, e.data) for e in failed] == [
        ("a", 1, 100.5, {"error": ERROR.to_json()})
    ]


async def test_a_non_critical_failure_degrades_and_frees_its_dependents(
    store: Store,
) -> None:
    claimed = await _started(store, OnFailure.CONTINUE)
    answer = await store.fail_step(_failure(claimed, None), _claim(100.5))
    assert answer.accepted
    assert [(c.step_name, c.attempt, c.dependency_results) for c in answer.claimed] == [
        ("b", 1, {"a": {"x": 1}})
    ]
    task = await store.get_task("t1")
    a = task.step("a")
    assert (a.state, a.results, a.completed_at) == (StepState.DEGRADED, {"x": 1}, 100.5)
    assert task.state is TaskState.IN_PROGRESS
    degraded = [
        e for e in await store.list_events(task_id="t1") if e.type == EventType.STEP_DEGRADED
    ]
    assert [(e.step_name, e.attempt, e.data) for e in degraded] == [
        ("a", 1, {"error": ERROR.to_json(), "fallback_results": {"x": 1}})
    ]
