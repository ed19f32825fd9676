"""The lifecycle rules without a database: when a task ends and how, what operators may do."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import pytest

from orchestrator import lifecycle
from orchestrator.errors import IdempotencyKeyConflictError, InvalidTransitionError
from orchestrator.models import ErrorKind, OnFailure, StepState, TaskState

P, R, W = StepState.PENDING, StepState.IN_PROGRESS, StepState.WAITING_FOR_RETRY
C, E, X, M = StepState.COMPLETE, StepState.ERROR, StepState.CANCELLED, StepState.RESOLVED_MANUALLY
D = StepState.DEGRADED


@dataclass(frozen=True)
class Step:
    name: str
    state: str
    depends_on: tuple[str, ...] = ()


def diamond(a: str, b: str, c: str, d: str) -> list[Step]:
    """a -> (b, c) -> d"""
    return [Step("a", a), Step("b", b, ("a",)), Step("c", c, ("a",)), Step("d", d, ("b", "c"))]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ((C, C, C, C), TaskState.COMPLETE),
        ((C, M, C, M), TaskState.COMPLETE),  # resolved by hand counts as done
        ((C, C, C, R), None),  # the last step still runs
        ((C, C, W, P), None),  # a branch waits for its retry
        ((C, E, R, P), None),  # the other branch still runs: wait for it before ending
        ((C, E, C, P), TaskState.ERROR),  # d can never run
        ((E, P, P, P), TaskState.ERROR),  # everything waits on the failed root
        ((C, E, E, P), TaskState.ERROR),
        ((C, X, C, P), TaskState.COMPLETE),  # a cancelled step blocks but is no failure
        ((P, P, P, P), None),
        ((C, C, D, C), TaskState.COMPLETE),  # a degraded step is done, not a failure
        ((C, C, D, P), None),  # ... and its dependent may still run
        ((C, E, D, P), TaskState.ERROR),  # a critical failure still fails the task
    ],
)
def test_task_outcome_of_a_diamond(states: tuple[str, ...], expected: TaskState | None) -> None:
    assert lifecycle.task_outcome(TaskState.IN_PROGRESS, diamond(*states)) == expected


@pytest.mark.parametrize("state", [TaskState.COMPLETE, TaskState.ERROR, TaskState.CANCELLED])
def test_a_finished_task_never_ends_again(state: TaskState) -> None:
    assert lifecycle.task_outcome(state, diamond(C, C, C, C)) is None


def test_a_pending_task_can_end() -> None:
    assert lifecycle.task_outcome(TaskState.PENDING, [Step("a", E)]) is TaskState.ERROR


def test_blocking_is_transitive_and_independent_chains_still_run() -> None:
    # a fails; b waits on a, c on b; x is on its own and still pending: not over yet.
    steps = [Step("a", E), Step("b", P, ("a",)), Step("c", P, ("b",)), Step("x", P)]
    assert lifecycle.task_outcome(TaskState.IN_PROGRESS, steps) is None
    steps[-1] = Step("x", C)
    assert lifecycle.task_outcome(TaskState.IN_PROGRESS, steps) is TaskState.ERROR


def test_failed_step_names_in_template_order() -> None:
    assert lifecycle.failed_step_names(diamond(C, E, C, E)) == ["b", "d"]
    assert lifecycle.failed_step_names(diamond(C, X, C, P)) == []
    assert lifecycle.failed_step_names(diamond(C, C, D, C)) == []


def test_degraded_step_names_in_template_order() -> None:
    assert lifecycle.degraded_step_names(diamond(C, D, D, C)) == ["b", "c"]
    assert lifecycle.degraded_step_names(diamond(C, E, C, E)) == []


@pytest.mark.parametrize(
    ("state", "next_at", "due"),
    [
        (P, None, True),
        (P, 200.0, True),  # pending never waits for a time
        (W, 99.0, True),
        (W, 100.0, True),
        (W, 100.5, False),
        (W, None, True),
        (R, None, False),
        (C, None, False),
        (E, None, False),
    ],
)
def test_is_due(state: str, next_at: float | None, due: bool) -> None:
    assert lifecycle.is_due(state, next_at, 100.0) is due


def test_failure_state() -> None:
    assert lifecycle.failure_state(None) is StepState.ERROR
    assert lifecycle.failure_state(5.0) is StepState.WAITING_FOR_RETRY
    assert lifecycle.failure_state(None, OnFailure.CONTINUE) is StepState.DEGRADED
    assert lifecycle.failure_state(5.0, OnFailure.CONTINUE) is StepState.WAITING_FOR_RETRY


def test_resolution_results_are_the_given_ones_else_the_fallback() -> None:
    assert lifecycle.resolution_results({"a": 1}, {"b": 2}) == {"a": 1}
    assert lifecycle.resolution_results({}, {"b": 2}) == {}
    assert lifecycle.resolution_results(None, {"b": 2}) == {"b": 2}
    assert lifecycle.resolution_results(None, None) == {}


def test_a_lost_attempt_is_given_back_and_the_step_runs_again_at_once() -> None:
    lost = lifecycle.lost_attempt("w1", attempts=3, lost_in_a_row=1, now=50.0)
    assert (lost.retry_at, lost.state, lost.attempts) == (50.0, StepState.WAITING_FOR_RETRY, 2)
    assert lost.error.kind is ErrorKind.RETRYABLE
    assert lost.error.error_code == lifecycle.WORKER_LOST == "WORKER_LOST"
    assert "w1" in lost.error.message


@pytest.mark.parametrize("in_a_row", [1, lifecycle.MAX_LOST_IN_A_ROW - 1])
def test_lost_attempts_below_the_bound_retry(in_a_row: int) -> None:
    lost = lifecycle.lost_attempt("w1", attempts=1, lost_in_a_row=in_a_row, now=5.0)
    assert (lost.state, lost.attempts) == (StepState.WAITING_FOR_RETRY, 0)


def test_the_bound_of_lost_attempts_in_a_row_fails_the_step_with_its_own_code() -> None:
    lost = lifecycle.lost_attempt(
        "w1", attempts=1, lost_in_a_row=lifecycle.MAX_LOST_IN_A_ROW, now=5
    )
    assert (lost.retry_at, lost.state) == (None, StepState.ERROR)
    assert lost.error.kind is ErrorKind.PERMANENT
    assert lost.error.error_code == lifecycle.WORKER_LOST_REPEATEDLY == "WORKER_LOST_REPEATEDLY"
    assert str(lifecycle.MAX_LOST_IN_A_ROW) in lost.error.message
    bound = lifecycle.MAX_LOST_IN_A_ROW
    lost = lifecycle.lost_attempt("w1", 1, bound, 5.0, OnFailure.CONTINUE)
    assert (lost.retry_at, lost.state) == (None, StepState.DEGRADED)  # non-critical
    lost = lifecycle.lost_attempt("w1", 1, bound - 1, 5.0, OnFailure.CONTINUE)
    assert lost.state is StepState.WAITING_FOR_RETRY


@pytest.mark.parametrize("state", [TaskState.PENDING, TaskState.IN_PROGRESS])
def test_an_unfinished_task_can_be_cancelled(state: TaskState) -> None:
    lifecycle.check_cancel("t1", state)


@pytest.mark.parametrize("state", [TaskState.COMPLETE, TaskState.ERROR, TaskState.CANCELLED])
def test_a_finished_task_cannot_be_cancelled(state: TaskState) -> None:
    with pytest.raises(InvalidTransitionError, match="only an unfinished task") as info:
        lifecycle.check_cancel("t1", state)
    assert info.value.current_state == state


def test_only_a_failed_or_degraded_step_can_be_retried() -> None:
    lifecycle.check_retry("t1", TaskState.ERROR, "b", E)
    lifecycle.check_retry("t1", TaskState.COMPLETE, "b", D)
    for state in (P, R, W, C, X, M):
        with pytest.raises(InvalidTransitionError, match="only a failed or degraded") as info:
            lifecycle.check_retry("t1", TaskState.IN_PROGRESS, "b", state)
        assert info.value.current_state == state
    with pytest.raises(InvalidTransitionError, match="t1 is cancelled"):
        lifecycle.check_retry("t1", TaskState.CANCELLED, "b", E)


def test_which_steps_can_be_resolved() -> None:
    for state in (E, P, W):
        lifecycle.check_resolve(TaskState.IN_PROGRESS, "b", state)
    for state in (R, C, X, M, D):
        with pytest.raises(InvalidTransitionError, match="can be resolved"):
            lifecycle.check_resolve(TaskState.IN_PROGRESS, "b", state)
    with pytest.raises(InvalidTransitionError, match="uncancelled"):
        lifecycle.check_resolve(TaskState.CANCELLED, "b", E)


def test_reopens() -> None:
    assert lifecycle.reopens(TaskState.ERROR) and lifecycle.reopens(TaskState.COMPLETE)
    for state in (TaskState.PENDING, TaskState.IN_PROGRESS, TaskState.CANCELLED):
        assert not lifecycle.reopens(state)


def test_the_request_hash_ignores_key_order_but_not_content() -> None:
    one = lifecycle.request_hash("reg", "ns", "1.0.0", {"a": 1, "b": {"c": [1, 2]}})
    assert one == lifecycle.request_hash("reg", "ns", "1.0.0", {"b": {"c": [1, 2]}, "a": 1})
    assert one != lifecycle.request_hash("reg", "ns", "1.0.0", {"a": 1, "b": {"c": [2, 1]}})
    assert one != lifecycle.request_hash("reg", "ns", "1.0.1", {"a": 1, "b": {"c": [1, 2]}})
    assert one != lifecycle.request_hash("other", "ns", "1.0.0", {"a": 1, "b": {"c": [1, 2]}})


def test_a_reused_key_must_name_the_same_request() -> None:
    lifecycle.check_resubmission("k", "t1", "abc", "abc")
    lifecycle.check_resubmission("k", "t1", None, "abc")  # stored before hashes were kept
    named = r"'k' was already used .*\(task t1\)"
    with pytest.raises(IdempotencyKeyConflictError, match=named) as e:
        lifecycle.check_resubmission("k", "t1", "abc", "def")
    assert (e.value.key, e.value.task_id) == ("k", "t1")


def test_the_request_hash_is_stable_across_releases() -> None:
    # Stored hashes are compared with new ones: the document hashed may never change shape.
    document = b'{"context":{"a":1},"name":"reg","namespace":"ns","version":"1.0.0"}'
    expected = hashlib.sha256(document).hexdigest()
    assert lifecycle.request_hash("reg", "ns", "1.0.0", {"a": 1}) == expected
    assert expected == "ebb4632dbf3870febdbf4db722b1a87fb19caa28e745f9cfd1a47726bc48546b"


def test_a_waiting_step_without_a_time_is_due_from_the_epoch() -> None:
    assert lifecycle.is_due(W, None, 0.5)
    assert lifecycle.is_due(W, 0.0, 0.0)


def test_the_last_lost_attempt_is_given_back_too() -> None:
    bound = lifecycle.MAX_LOST_IN_A_ROW
    assert lifecycle.lost_attempt("w1", 4, bound, 5.0).attempts == 3
    assert lifecycle.lost_attempt("w1", 0, 1, 5.0).attempts == 0  # never below zero
    assert "(last: w1)" in lifecycle.lost_attempt("w1", 4, bound, 5.0).error.message


def test_a_refused_operator_action_names_the_state_it_found() -> None:
    with pytest.raises(InvalidTransitionError) as info:
        lifecycle.check_retry("t1", TaskState.CANCELLED, "b", E)
    assert info.value.current_state == TaskState.CANCELLED
    with pytest.raises(InvalidTransitionError) as info:
        lifecycle.check_resolve(TaskState.IN_PROGRESS, "b", C)
    assert info.value.current_state == C
    with pytest.raises(InvalidTransitionError) as info:
        lifecycle.check_resolve(TaskState.CANCELLED, "b", E)
    assert info.value.current_state == E
    assert "step 'b' is error in a task that is cancelled" in str(info.value)


def test_only_pending_and_waiting_steps_are_claimable() -> None:
    assert {s for s in StepState if lifecycle.is_claimable(s)} == {P, W}
