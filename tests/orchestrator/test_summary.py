"""The task summary and the analytics without a database."""

from __future__ import annotations

from orchestrator import analytics
from orchestrator.models import (
    AttemptOutcome,
    AttemptStat,
    ErrorInfo,
    ErrorKind,
    StepState,
    StepView,
    TaskState,
    TaskView,
)
from orchestrator.summary import StepTiming, critical_path_s, service_time_ms, task_summary


def _diamond_timings() -> list[StepTiming]:
    return [
        StepTiming("a", (), 100.0, 101.0, 1),  # 1 s
        StepTiming("b", ("a",), 101.0, 104.0, 3),  # 3 s, retried
        StepTiming("c", ("a",), 101.0, 102.0, 1),  # 1 s, in parallel with b
        StepTiming("d", ("b", "c"), 104.0, 104.5, 1),  # 0.5 s
    ]


def test_summary_of_a_diamond() -> None:
    calls = [
        {"service": "users", "duration_ms": 12.25},
        {"service": "billing", "duration_ms": 30.0},
        {"service": "users", "duration_ms": 7.5},
        {"service": "billing", "duration_ms": None},  # a call that never got an answer timed
    ]
    summary = task_summary(_diamond_timings(), calls, created_at=99.5, now=105.0)
    assert summary == {
        "total_duration_ms": 5500.0,
        "step_duration_ms": {"a": 1000.0, "b": 3000.0, "c": 1000.0, "d": 500.0},
        "attempts": {"a": 1, "b": 3, "c": 1, "d": 1},
        "service_time_ms": {"billing": 30.0, "users": 19.8},
        "critical_path_ms": 4500.0,  # a + b + d
        "parallel_saved_ms": 1000.0,  # c ran beside b
        "degraded_steps": [],
    }


def test_the_summary_names_the_degraded_steps() -> None:
    summary = task_summary(_diamond_timings(), [], 99.5, 105.0, degraded_steps=["c"])
    assert summary["degraded_steps"] == ["c"]


def test_steps_that_never_ran_have_no_span_but_count_attempts() -> None:
    timings = [StepTiming("a", (), 10.0, 12.0, 1), StepTiming("b", ("a",), None, None, 0)]
    summary = task_summary(timings, [], created_at=10.0, now=12.0)
    assert summary["step_duration_ms"] == {"a": 2000.0}
    assert summary["attempts"] == {"a": 1, "b": 0}
    assert summary["critical_path_ms"] == 2000.0
    assert summary["parallel_saved_ms"] == 0.0
    assert summary["service_time_ms"] == {}


def test_a_clock_step_backwards_gives_no_negative_span() -> None:
    summary = task_summary([StepTiming("a", (), 10.0, 9.0, 1)], [], 10.0, 10.0)
    assert summary["step_duration_ms"] == {"a": 0.0}


def test_critical_path_takes_the_longest_chain() -> None:
    timings = _diamond_timings()
    assert critical_path_s(timings, {"a": 1.0, "b": 3.0, "c": 5.0, "d": 0.5}) == 6.5
    assert critical_path_s(timings, {"c": 5.0}) == 5.0
    assert critical_path_s(timings, {}) == 0.0


def test_service_time_is_sorted_and_rounded() -> None:
    assert list(service_time_ms([{"service": "z", "duration_ms": 1}, {"service": "a"}])) == [
        "a",
        "z",
    ]
    assert service_time_ms([{"service": "s", "duration_ms": 0.04}] * 3) == {"s": 0.1}


def _step(name: str, state: StepState, deps: tuple[str, ...] = (), **kw: object) -> StepView:
    fields: dict[str, object] = {
        "attempts": 0,
        "max_attempts": 3,
        "results": None,
        "last_error": None,
        "next_attempt_at": None,
        "started_at": None,
        "completed_at": None,
    }
    fields.update(kw)
    return StepView(name, "h", state, deps, **fields)  # type: ignore[arg-type]


def _task(state: TaskState, *steps: StepView) -> TaskView:
    return TaskView("t1", "wf", "default", "1.0.0", state, "c", {}, 0.0, None, None, steps)


def test_readiness_explains_every_step() -> None:
    task = _task(
        TaskState.IN_PROGRESS,
        _step("a", StepState.COMPLETE, attempts=1),
        _step("b", StepState.WAITING_FOR_RETRY, ("a",), attempts=1, next_attempt_at=103.25),
        _step("c", StepState.IN_PROGRESS, ("a",), attempts=2),
        _step("d", StepState.PENDING, ("b", "c")),
        _step("e", StepState.ERROR, attempts=3),
        _step("f", StepState.PENDING, ("a",)),
        _step("g", StepState.WAITING_FOR_RETRY, attempts=1, next_attempt_at=99.0),
        _step("h", StepState.CANCELLED),
    )
    by_name = {r.name: r for r in analytics.step_readiness(task, now=100.0)}
    assert {n: r.reason for n, r in by_name.items()} == {
        "a": "done",
        "b": "retry due in 3.2 s",
        "c": "running attempt 2 of 3",
        "d": "waiting for 2 of 2 dependencies: b, c",
        "e": "failed; needs an operator (retry or resolve)",
        "f": "ready",
        "g": "ready",
        "h": "cancelled",
    }
    assert [n for n, r in by_name.items() if r.ready] == ["f", "g"]
    assert (by_name["d"].parents_done, by_name["d"].parents_total) == (0, 2)
    assert (by_name["b"].parents_done, by_name["b"].parents_total) == (1, 1)
    assert by_name["b"].next_attempt_at == 103.25


def test_readiness_of_a_finished_task_names_its_state() -> None:
    task = _task(TaskState.CANCELLED, _step("a", StepState.PENDING))
    (only,) = analytics.step_readiness(task, 0.0)
    assert (only.ready, only.reason) == (False, "task is cancelled")


def test_bottlenecks_per_step_slowest_first() -> None:
    ok, failed, lost = AttemptOutcome.COMPLETED, AttemptOutcome.FAILED, AttemptOutcome.LOST
    stats = [AttemptStat("wf", "fast", 0.01, ok, None)] * 3
    stats += [
        AttemptStat("wf", "slow", 1.0, ok, None),
        AttemptStat("wf", "slow", 2.0, failed, ErrorKind.RETRYABLE),
        AttemptStat("wf", "slow", 3.0, lost, ErrorKind.RETRYABLE),
        AttemptStat("wf", "slow", 4.0, failed, ErrorKind.PERMANENT),
    ]
    slow, fast = analytics.bottlenecks(stats)
    assert (slow.step_name, fast.step_name) == ("slow", "fast")
    assert (slow.executions, slow.mean_duration_s, slow.p95_duration_s) == (4, 2.5, 4.0)
    assert (slow.retry_rate, slow.error_rate) == (0.5, 0.75)
    assert (fast.retry_rate, fast.error_rate, fast.p95_duration_s) == (0.0, 0.0, 0.01)


def test_p95_index_is_the_nearest_rank() -> None:
    # rank ceil(0.95 n), 1-based: 1, 2, 10, 19, 19, 20, 95
    assert [analytics.p95_index(n) for n in (1, 2, 10, 19, 20, 21, 100)] == [
        0,
        1,
        9,
        18,
        18,
        19,
        94,
    ]


def test_error_info_round_trips() -> None:
    info = ErrorInfo(ErrorKind.PERMANENT, "X", "m", 422)
    assert ErrorInfo.from_json(info.to_json()) == info
