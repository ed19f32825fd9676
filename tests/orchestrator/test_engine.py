"""The engine end to end on a real SQLite file: ordering, parallelism, retries, operator actions."""

from __future__ import annotations

import asyncio
import random
from contextlib import aclosing
from typing import Any

import pytest

from orchestrator.clock import FakeClock
from orchestrator.embedded import store_for
from orchestrator.engine import Engine, _first_of
from orchestrator.errors import (
    ContextValidationError,
    IdempotencyKeyConflictError,
    InvalidTransitionError,
    PermanentError,
    RetryableError,
    TaskNotFoundError,
    UnknownTemplateError,
)
from orchestrator.event_types import EventType
from orchestrator.handlers import StepInput
from orchestrator.models import Event, StepState, TaskState
from orchestrator.retry import RetryPolicy, retry_delay_s
from tests.orchestrator.conftest import Recorder


async def next_event(
    engine: Engine, task_id: str, type_: str, step: str | None = None, timeout_s: float = 5
) -> Event:
    """The first event of ``type_`` (for ``step``) at or after now, reading the log then live."""
    with engine.subscribe(task_id) as sub:
        for ev in await engine.events(0, 10_000, task_id=task_id):
            if ev.type == type_ and (step is None or ev.step_name == step):
                return ev
        async with asyncio.timeout(timeout_s):
            while True:
                ev = await sub.get()
                if ev.type == type_ and (step is None or ev.step_name == step):
                    return ev


async def test_diamond_runs_in_order_and_passes_dependency_results(
    engine: Engine, recorder: Recorder
) -> None:
    sub = await engine.submit("diamond", {})
    task = await engine.wait(sub.task_id, timeout_s=5)
    assert task.state is TaskState.COMPLETE
    assert task.context == {"n": 1}
    assert [s.state for s in task.steps] == [StepState.COMPLETE] * 5
    assert task.step("d").results == {"step": "d", "saw": ["b", "c"]}
    order = [s for _, s, _ in recorder.calls]
    assert order[0] == "a" and order[-2:] == ["d", "e"]
    assert sorted(order[1:3]) == ["b", "c"]
    assert task.correlation_id.startswith("corr-")


async def test_independent_steps_overlap_in_time(engine: Engine, recorder: Recorder) -> None:
    started = {"b": asyncio.Event(), "c": asyncio.Event()}

    def waits_for(other: str) -> Any:
        async def handler(inp: StepInput) -> dict[str, Any]:
            started[inp.step_name].set()
            # Finishes only once the other branch is running too: proves real overlap.
            await asyncio.wait_for(started[other].wait(), timeout=2)
            return {}

        return handler

    recorder.behaviour["b"] = waits_for("c")
    recorder.behaviour["c"] = waits_for("b")
    sub = await engine.submit("diamond", {})
    assert (await engine.wait(sub.task_id, timeout_s=5)).state is TaskState.COMPLETE


async def test_correlation_id_from_context_reaches_handlers_and_events(
    engine: Engine, recorder: Recorder
) -> None:
    seen: list[str] = []

    async def record(inp: StepInput) -> None:
        seen.append(inp.correlation_id)

    recorder.behaviour["a"] = record
    sub = await engine.submit("diamond", {"correlation_id": "corr-abc"})
    await engine.wait(sub.task_id, timeout_s=5)
    assert seen == ["corr-abc"]
    events = await engine.events(task_id=sub.task_id)
    assert {e.correlation_id for e in events} == {"corr-abc"}
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_unknown_template_and_bad_context_create_nothing(engine: Engine) -> None:
    with pytest.raises(UnknownTemplateError):
        await engine.submit("nope", {})
    with pytest.raises(ContextValidationError) as info:
        await engine.submit("diamond", {"n": "x"})
    assert [d.path for d in info.value.details] == ["/n"]
    assert await engine.list_tasks() == []


async def test_idempotency_key_returns_the_existing_task(engine: Engine) -> None:
    first = await engine.submit("diamond", {}, idempotency_key="k1")
    # The same request: n's default is 1, so leaving it out and giving it are the same.
    second = await engine.submit("diamond", {"n": 1}, idempotency_key="k1")
    assert first.created and not second.created
    assert second.task_id == first.task_id
    assert second.correlation_id == first.correlation_id
    with pytest.raises(IdempotencyKeyConflictError, match="'k1'") as refused:
        await engine.submit("diamond", {"n": 5}, idempotency_key="k1")
    assert refused.value.task_id == first.task_id
    assert len(await engine.list_tasks()) == 1


async def test_retryable_error_schedules_retry_by_policy(
    engine: Engine, recorder: Recorder, clock: FakeClock
) -> None:
    async def flaky(inp: StepInput) -> None:
        if inp.attempt == 1:
            raise RetryableError("try later")

    recorder.behaviour["a"] = flaky
    sub = await engine.submit("diamond", {})
    ev = await next_event(engine, sub.task_id, EventType.STEP_RETRY_SCHEDULED, "a")
    # The engine's RNG is seeded with 7 and this is its first draw: full jitter over 1 s.
    expected = retry_delay_s(RetryPolicy(initial_delay_s=1, max_delay_s=60), 1, random.Random(7))
    assert ev.data["delay_s"] == pytest.approx(expected, abs=1e-6)
    assert ev.data["next_attempt_at"] == pytest.approx(clock.now() + expected)
    task = await engine.get_task(sub.task_id)
    a = task.step("a")
    assert a.state is StepState.WAITING_FOR_RETRY
    assert a.last_error is not None and a.last_error.error_code == "RETRYABLE"
    assert recorder.count("a") == 1
    clock.advance(expected + 0.001)
    done = await engine.wait(sub.task_id, timeout_s=5)
    assert done.state is TaskState.COMPLETE
    assert done.step("a").attempts == 2


async def test_server_retry_after_wins_clamped_and_unjittered(
    engine: Engine, recorder: Recorder, clock: FakeClock
) -> None:
    async def limited(inp: StepInput) -> None:
        if inp.attempt == 1:
            raise RetryableError("429", retry_after_s=7, http_status=429)
        if inp.attempt == 2:
            raise RetryableError("429", retry_after_s=600, http_status=429)

    recorder.behaviour["a"] = limited
    sub = await engine.submit("diamond", {})
    ev = await next_event(engine, sub.task_id, EventType.STEP_RETRY_SCHEDULED, "a")
    assert ev.data["delay_s"] == 7
    assert ev.data["error"]["http_status"] == 429
    clock.advance(7)
    await next_event(engine, sub.task_id, EventType.STEP_STARTED, "a")
    while True:
        events = [
            e
            for e in await engine.events(task_id=sub.task_id)
            if e.type == EventType.STEP_RETRY_SCHEDULED
        ]
        if len(events) == 2:
            break
        await asyncio.sleep(0.01)
    assert events[1].data["delay_s"] == 60  # clamped to max_delay_s
    clock.advance(60)
    assert (await engine.wait(sub.task_id, timeout_s=5)).state is TaskState.COMPLETE


async def test_permanent_error_stops_at_once_and_isolates_failure(
    engine: Engine, recorder: Recorder
) -> None:
    c_done = asyncio.Event()

    async def broken(inp: StepInput) -> None:
        raise PermanentError("card declined", error_code="PAYMENT_DECLINED", http_status=402)

    async def slow_sibling(inp: StepInput) -> dict[str, Any]:
        await asyncio.sleep(0.05)
        c_done.set()
        return {"ok": True}

    recorder.behaviour["b"] = broken
    recorder.behaviour["c"] = slow_sibling
    sub = await engine.submit("diamond", {})
    task = await engine.wait(sub.task_id, timeout_s=5)
    assert task.state is TaskState.ERROR
    assert task.failed_steps == ["b"]
    assert recorder.count("b") == 1
    assert task.step("c").state is StepState.COMPLETE  # the sibling ran to its end
    assert task.step("d").state is StepState.PENDING and recorder.count("d") == 0
    assert task.step("e").state is StepState.PENDING and recorder.count("e") == 0
    err = task.step("b").last_error
    assert err is not None and (err.kind, err.error_code, err.http_status) == (
        "permanent",
        "PAYMENT_DECLINED",
        402,
    )
    failed = await next_event(engine, sub.task_id, EventType.TASK_FAILED)
    assert failed.data["failed_steps"] == ["b"]
    assert failed.data["summary"] == task.summary
    assert task.summary is not None and task.summary["attempts"] == {
        "a": 1,
        "b": 1,
        "c": 1,
        "d": 0,
        "e": 0,
    }


async def test_attempts_exhausted_ends_in_error(
    engine: Engine, recorder: Recorder, clock: FakeClock
) -> None:
    async def always(inp: StepInput) -> None:
        raise RuntimeError("boom")  # unclassified: counts as retryable

    recorder.behaviour["b"] = always
    sub = await engine.submit("diamond", {})
    for _ in range(2):
        await next_event(engine, sub.task_id, EventType.STEP_RETRY_SCHEDULED, "b")
        clock.advance(30)
        await asyncio.sleep(0.05)
    task = await engine.wait(sub.task_id, timeout_s=5)
    assert task.state is TaskState.ERROR
    b = task.step("b")
    assert (b.state, b.attempts, recorder.count("b")) == (StepState.ERROR, 3, 3)
    assert b.last_error is not None and b.last_error.error_code == "HANDLER_EXCEPTION"
    assert "RuntimeError: boom" in b.last_error.message
    attempts = [a for a in await engine.attempts(sub.task_id) if a.step_name == "b"]
    assert [a.outcome for a in attempts] == ["failed"] * 3


async def test_not_retryable_means_exactly_one_execution(
    recorder: Recorder, clock: FakeClock, tmp_path: Any
) -> None:
    from orchestrator.embedded import open_engine
    from orchestrator.templates import parse_template

    text = (
        "name: once\nsteps:\n"
        "  - {name: a, handler: a, retry: {retryable: false, max_attempts: 5}}\n"
        "  - {name: b, handler: b, retry: {max_attempts: 1}}\n"
    )
    template = parse_template(text, recorder.registry.names())

    async def fail(inp: StepInput) -> None:
        raise RetryableError("nope")

    recorder.behaviour["a"] = fail
    recorder.behaviour["b"] = fail
    async with open_engine(
        tmp_path / "once.db", recorder.registry, [template], clock=clock, durable=False
    ) as eng:
        sub = await eng.submit("once", {})
        task = await eng.wait(sub.task_id, timeout_s=5)
    assert task.state is TaskState.ERROR
    assert (recorder.count("a"), recorder.count("b")) == (1, 1)
    assert task.step("a").max_attempts == 1


async def test_timeout_is_retryable_with_timeout_code(
    recorder: Recorder, clock: FakeClock, tmp_path: Any
) -> None:
    from orchestrator.embedded import open_engine
    from orchestrator.templates import parse_template

    text = (
        "name: slow\nsteps:\n  - {name: a, handler: a, timeout_s: 0.05, "
        "retry: {max_attempts: 2, backoff: none}}\n"
    )
    template = parse_template(text, recorder.registry.names())

    async def hang(inp: StepInput) -> None:
        if inp.attempt == 1:
            await asyncio.Event().wait()

    recorder.behaviour["a"] = hang
    async with open_engine(
        tmp_path / "slow.db", recorder.registry, [template], clock=clock, durable=False
    ) as eng:
        sub = await eng.submit("slow", {})
        task = await eng.wait(sub.task_id, timeout_s=5)
        attempts = await eng.attempts(sub.task_id)
    assert task.state is TaskState.COMPLETE
    assert attempts[0].error is not None and attempts[0].error.error_code == "TIMEOUT"
    assert [a.outcome for a in attempts] == ["failed", "completed"]


async def test_invalid_results_are_a_permanent_error(engine: Engine, recorder: Recorder) -> None:
    async def bad(inp: StepInput) -> Any:
        return ["not", "a", "mapping"]

    recorder.behaviour["a"] = bad
    sub = await engine.submit("diamond", {})
    task = await engine.wait(sub.task_id, timeout_s=5)
    err = task.step("a").last_error
    assert err is not None and err.error_code == "INVALID_RESULTS"
    assert recorder.count("a") == 1


async def test_cancel_stops_in_flight_and_open_steps(engine: Engine, recorder: Recorder) -> None:
    b_running = asyncio.Event()
    b_cancelled = asyncio.Event()

    async def long(inp: StepInput) -> None:
        b_running.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            b_cancelled.set()
            raise

    recorder.behaviour["b"] = long
    recorder.behaviour["c"] = long
    sub = await engine.submit("diamond", {})
    await asyncio.wait_for(b_running.wait(), 5)
    task = await engine.cancel_task(sub.task_id)
    assert task.state is TaskState.CANCELLED
    await asyncio.wait_for(b_cancelled.wait(), 5)
    states = {s.name: s.state for s in task.steps}
    assert states == {
        "a": "complete",
        "b": "cancelled",
        "c": "cancelled",
        "d": "cancelled",
        "e": "cancelled",
    }
    with pytest.raises(InvalidTransitionError):
        await engine.cancel_task(sub.task_id)
    assert recorder.count("d") == 0
    types = [e.type for e in await engine.events(task_id=sub.task_id)]
    assert types[-1] == EventType.TASK_CANCELLED and types.count(EventType.STEP_CANCELLED) == 4


async def test_operator_retry_of_failed_step_resumes_the_task(
    engine: Engine, recorder: Recorder
) -> None:
    async def fails_first_time(inp: StepInput) -> None:
        if recorder.count("b") == 1:
            raise PermanentError("bad data", error_code="BAD")

    recorder.behaviour["b"] = fails_first_time
    sub = await engine.submit("diamond", {})
    assert (await engine.wait(sub.task_id, timeout_s=5)).state is TaskState.ERROR
    with pytest.raises(InvalidTransitionError):
        await engine.retry_step(sub.task_id, "a")  # complete, not failed
    await engine.retry_step(sub.task_id, "b")
    requested = await next_event(engine, sub.task_id, EventType.STEP_RETRY_REQUESTED, "b")
    assert requested.data == {"by": "operator"}
    await next_event(engine, sub.task_id, EventType.TASK_RESUMED)
    done = await engine.wait(sub.task_id, timeout_s=5)
    assert done.state is TaskState.COMPLETE
    assert recorder.count("b") == 2 and recorder.count("a") == 1


async def test_resolve_manually_lets_dependents_run_with_its_results(
    engine: Engine, recorder: Recorder
) -> None:
    async def broken(inp: StepInput) -> None:
        raise PermanentError("service gone", error_code="GONE")

    seen: list[Any] = []

    async def d(inp: StepInput) -> None:
        seen.append(dict(inp.dependency_results))

    recorder.behaviour["b"] = broken
    recorder.behaviour["d"] = d
    sub = await engine.submit("diamond", {})
    assert (await engine.wait(sub.task_id, timeout_s=5)).state is TaskState.ERROR
    await engine.resolve_step(sub.task_id, "b", {"profile_id": "manual-1"})
    done = await engine.wait(sub.task_id, timeout_s=5)
    assert done.state is TaskState.COMPLETE
    assert done.step("b").state is StepState.RESOLVED_MANUALLY
    assert seen[0]["b"] == {"profile_id": "manual-1"}
    with pytest.raises(InvalidTransitionError):
        await engine.resolve_step(sub.task_id, "e")
    with pytest.raises(InvalidTransitionError, match="no step"):
        await engine.resolve_step(sub.task_id, "zzz")
    with pytest.raises(TaskNotFoundError):
        await engine.resolve_step("nope", "b")


async def test_readiness_explains_each_step(engine: Engine, recorder: Recorder) -> None:
    gate = asyncio.Event()

    async def blocked(inp: StepInput) -> None:
        await gate.wait()

    recorder.behaviour["b"] = blocked
    sub = await engine.submit("diamond", {})
    await next_event(engine, sub.task_id, EventType.STEP_COMPLETED, "c")
    ready = {r.name: r for r in await engine.readiness(sub.task_id)}
    assert ready["a"].reason == "done"
    assert ready["b"].reason.startswith("running attempt 1 of 3")
    assert (ready["d"].parents_done, ready["d"].parents_total) == (1, 2)
    assert ready["d"].reason == "waiting for 1 of 2 dependencies: b"
    gate.set()
    await engine.wait(sub.task_id, timeout_s=5)


async def test_bottlenecks_report_per_step_statistics(
    engine: Engine, recorder: Recorder, clock: FakeClock
) -> None:
    async def flaky(inp: StepInput) -> None:
        if inp.attempt == 1:
            raise RetryableError("flaky")

    recorder.behaviour["c"] = flaky
    for _ in range(2):
        sub = await engine.submit("diamond", {})
        await next_event(engine, sub.task_id, EventType.STEP_RETRY_SCHEDULED, "c")
        clock.advance(60)
        await engine.wait(sub.task_id, timeout_s=5)
    stats = {s.step_name: s for s in await engine.bottlenecks()}
    assert stats["a"].executions == 2 and stats["a"].error_rate == 0
    assert stats["c"].executions == 4
    assert stats["c"].retry_rate == pytest.approx(0.5)
    assert stats["c"].error_rate == pytest.approx(0.5)
    assert stats["c"].p95_duration_s >= stats["c"].mean_duration_s >= 0


async def test_handlers_can_emit_their_own_events(engine: Engine, recorder: Recorder) -> None:
    async def calls_service(inp: StepInput) -> None:
        await inp.events.emit(EventType.SERVICE_CALL_COMPLETED, {"service": "users", "status": 201})

    recorder.behaviour["a"] = calls_service
    sub = await engine.submit("diamond", {})
    ev = await next_event(engine, sub.task_id, EventType.SERVICE_CALL_COMPLETED)
    assert (ev.step_name, ev.attempt, ev.data["status"]) == ("a", 1, 201)
    await engine.wait(sub.task_id, timeout_s=5)


async def test_follow_misses_nothing_when_the_reader_falls_behind(engine: Engine) -> None:
    """A two-event buffer overflows on every task; the store fills each gap, in seq order."""
    ids = [(await engine.submit("diamond", {"n": n})).task_id for n in range(3)]
    seen: list[Event] = []
    async with aclosing(engine.follow(after=0, max_buffered=2)) as events:
        async for event in events:
            assert event is not None
            seen.append(event)
            if event.seq == 1:  # the first is read: what follows arrives live, in bursts
                ids += [(await engine.submit("diamond", {"n": n})).task_id for n in range(3, 6)]
            ended = {e.task_id for e in seen if e.type == EventType.TASK_COMPLETED}
            if ended == set(ids):
                break
    assert [e.seq for e in seen] == [e.seq for e in await engine.events(0, 10_000)][: len(seen)]
    assert [e.seq for e in seen] == sorted({e.seq for e in seen})


async def test_task_counts_name_every_state(engine: Engine, recorder: Recorder) -> None:
    empty = await engine.task_counts()
    assert (empty.by_state, empty.last_seq, empty.total) == (dict.fromkeys(TaskState, 0), 0, 0)
    done = await engine.submit("diamond", {})
    await engine.wait(done.task_id, timeout_s=5)
    release = asyncio.Event()

    async def held(inp: StepInput) -> None:
        await release.wait()

    recorder.behaviour["a"] = held
    running = await engine.submit("diamond", {})
    cancelled = await engine.submit("diamond", {})
    await engine.cancel_task(cancelled.task_id)
    await next_event(engine, running.task_id, EventType.STEP_STARTED)
    counts = await engine.task_counts()
    assert counts.by_state == {
        TaskState.PENDING: 0,
        TaskState.IN_PROGRESS: 1,
        TaskState.COMPLETE: 1,
        TaskState.ERROR: 0,
        TaskState.CANCELLED: 1,
    }
    assert counts.total == 3
    assert counts.last_seq == (await engine.events(0, 10_000))[-1].seq
    assert await engine.last_event_seq() == counts.last_seq
    release.set()
    await engine.wait(running.task_id, timeout_s=5)


async def test_task_created_and_the_task_list_carry_the_context(engine: Engine) -> None:
    """Who a task is for, without a read per task: in its first event and in every listing."""
    with engine.subscribe() as live:
        sub = await engine.submit("diamond", {"n": 5})
        created = await live.get()
    stored = (await engine.events(0, 1, task_id=sub.task_id))[0]
    for event in (created, stored):
        assert event.type == EventType.TASK_CREATED
        assert event.data["context"] == {"n": 5}
        assert event.data["name"] == "diamond"
    (listed,) = await engine.list_tasks()
    assert listed.context == {"n": 5}
    assert (await engine.list_tasks(limit=1))[0].context == (
        await engine.get_task(sub.task_id)
    ).context
    await engine.wait(sub.task_id, timeout_s=5)


async def test_the_summary_is_written_with_the_completion(
    engine: Engine, recorder: Recorder, clock: FakeClock
) -> None:
    """Timeline on the fake clock: a 1 s; b 2 s and c 5 s side by side; d 0.5 s; e 0 s."""
    b_done = asyncio.Event()

    def takes(seconds: float, calls: tuple[tuple[str, float], ...] = ()) -> Any:
        async def handler(inp: StepInput) -> None:
            if inp.step_name == "c":
                await asyncio.wait_for(b_done.wait(), 5)  # both started at t=1; b ends first
                seconds_left = seconds - 2
            else:
                seconds_left = seconds
            clock.advance(seconds_left)
            for service, ms in calls:
                await inp.events.emit(
                    EventType.SERVICE_CALL_COMPLETED, {"service": service, "duration_ms": ms}
                )
            if inp.step_name == "b":
                b_done.set()

        return handler

    recorder.behaviour.update(
        a=takes(1),
        b=takes(2, (("billing", 1500.0),)),
        c=takes(5, (("prefs", 200.0), ("prefs", 300.5))),
        d=takes(0.5),
        e=takes(0),
    )
    sub = await engine.submit("diamond", {})
    task = await engine.wait(sub.task_id, timeout_s=5)
    assert task.state is TaskState.COMPLETE
    assert task.summary == {
        "total_duration_ms": 6500.0,
        "step_duration_ms": {"a": 1000.0, "b": 2000.0, "c": 5000.0, "d": 500.0, "e": 0.0},
        "attempts": {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1},
        "service_time_ms": {"billing": 1500.0, "prefs": 500.5},
        "critical_path_ms": 6500.0,  # a + c + d + e
        "parallel_saved_ms": 2000.0,  # b ran inside c's time
        "degraded_steps": [],
    }
    completed = await next_event(engine, sub.task_id, EventType.TASK_COMPLETED)
    assert completed.data == {"summary": task.summary, "degraded_steps": []}


async def test_a_gate_defers_a_step_without_spending_an_attempt(
    engine: Engine, recorder: Recorder, clock: FakeClock
) -> None:
    deferred: list[str] = []

    async def gate(claim: Any) -> tuple[float, dict[str, Any]] | None:
        if claim.step_name == "b" and not deferred:
            deferred.append(claim.task_id)
            return clock.now() + 30, {"reason": "breaker_open", "service": "billing", "delay_s": 30}
        return None

    engine.add_gate(gate)
    sub = await engine.submit("diamond", {})
    ev = await next_event(engine, sub.task_id, EventType.STEP_DEFERRED, "b")
    assert ev.data["reason"] == "breaker_open"
    task = await engine.get_task(sub.task_id)
    assert task.step("b").state is StepState.WAITING_FOR_RETRY
    assert task.step("b").attempts == 0  # deferral spends no attempt
    assert recorder.count("b") == 0
    clock.advance(30)
    done = await engine.wait(sub.task_id, timeout_s=5)
    assert done.state is TaskState.COMPLETE
    assert done.step("b").attempts == 1


async def test_customizer_changes_a_step_for_one_task(engine: Engine, recorder: Recorder) -> None:
    import dataclasses

    from orchestrator.retry import RetryPolicy as Policy
    from orchestrator.templates import StepTemplate

    def more_attempts(step: StepTemplate, context: dict[str, Any]) -> StepTemplate:
        if step.name == "b" and context.get("n") == 9:
            return dataclasses.replace(step, retry=Policy(max_attempts=5), timeout_s=45)
        return step

    engine.add_customizer("diamond", more_attempts)
    special = await engine.submit("diamond", {"n": 9})
    normal = await engine.submit("diamond", {})
    assert (await engine.wait(special.task_id, timeout_s=5)).step("b").max_attempts == 5
    assert (await engine.wait(normal.task_id, timeout_s=5)).step("b").max_attempts == 3


async def test_wait_gives_up_after_its_timeout_and_sees_ends_by_other_writers(
    engine: Engine, recorder: Recorder, database: str
) -> None:
    release = asyncio.Event()

    async def held(inp: StepInput) -> None:
        await release.wait()

    recorder.behaviour["a"] = held
    sub = await engine.submit("diamond", {})
    with pytest.raises(TimeoutError):
        await engine.wait_for_end(sub.task_id, timeout_s=0.05)
    # Another writer ends the task (as a second engine on the file would): the waiter notices
    # by re-reading the state, with no event on this engine's bus.
    waiting = asyncio.create_task(engine.wait_for_end(sub.task_id, timeout_s=5))
    await asyncio.sleep(0.05)
    other = store_for(database)
    await other.open()
    try:
        await other.cancel_task(sub.task_id, 0.0)
    finally:
        await other.close()
    assert await waiting is TaskState.CANCELLED
    release.set()


async def test_run_submits_and_waits_without_reading_the_state(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = engine.store.task_state

    async def counted(task_id: str) -> TaskState:
        reads.append(task_id)
        return await real(task_id)

    monkeypatch.setattr(engine.store, "task_state", counted)
    sub, state = await engine.run("diamond", {}, idempotency_key="k-1", timeout_s=5)
    assert sub.created and state is TaskState.COMPLETE
    assert (await engine.get_task(sub.task_id)).state is TaskState.COMPLETE
    assert reads == []  # it listened before the task existed, so the end event sufficed
    # The same key names the finished task: no second task, and its end state at once.
    again, state = await engine.run("diamond", {}, idempotency_key="k-1", timeout_s=5)
    assert (again.task_id, again.created, state) == (sub.task_id, False, TaskState.COMPLETE)


async def test_run_gives_up_after_its_timeout_and_sees_ends_by_other_writers(
    engine: Engine, recorder: Recorder, database: str
) -> None:
    release = asyncio.Event()
    started: asyncio.Queue[str] = asyncio.Queue()

    async def held(inp: StepInput) -> None:
        started.put_nowait(inp.task_id)
        await release.wait()

    recorder.behaviour["a"] = held
    with pytest.raises(TimeoutError):
        await engine.run("diamond", {}, timeout_s=0.05)
    await started.get()
    running = asyncio.create_task(engine.run("diamond", {}, timeout_s=5))
    task_id = await asyncio.wait_for(started.get(), 5)
    # Another writer ends it (as a second engine on the file would): no event on this bus,
    # so run() notices by re-reading the state after a poll interval.
    other = store_for(database)
    await other.open()
    try:
        await other.cancel_task(task_id, 0.0)
    finally:
        await other.close()
    sub, state = await running
    assert (sub.task_id, state) == (task_id, TaskState.CANCELLED)
    release.set()


async def test_the_schedulers_wait_never_swallows_its_own_cancellation() -> None:
    """Engine.stop cancels the scheduler; if that lands while the scheduler reaps its wait
    tasks, it must still stop (swallowing it once hung Engine.stop for good)."""

    async def slow_to_die() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # cleanup that takes a moment
            raise

    async def quick() -> None:
        return None

    outer = asyncio.create_task(_first_of(quick(), slow_to_die()))
    await asyncio.sleep(0.01)  # quick() is done; outer is now reaping slow_to_die()
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
