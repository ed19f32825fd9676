"""The fold of events into a task: states, attempts, waits, and replay as a prefix of the fold."""

from __future__ import annotations

from dashboard.dag_view import render_dag
from dashboard.model import DEFERRED, DashEvent, TaskModel
from orchestrator.event_types import EventType
from orchestrator.models import StepState
from tests.dashboard.factories import T0, Script, diamond_retrying, iso, view


def test_a_retry_closes_the_attempt_and_opens_a_backoff_wait() -> None:
    model, _ = diamond_retrying()
    billing = model.steps["setup_billing_profile"]
    assert billing.state == "waiting_for_retry"
    assert billing.attempt == 1
    assert billing.next_attempt_at is not None
    assert abs(billing.next_attempt_at - (T0 + 0.053 + 1.2)) < 1e-6
    (bar,) = billing.attempts
    assert (bar.outcome, bar.status, bar.error_code, bar.retry_in_s) == (
        "retry",
        503,
        "HTTP_503",
        1.2,
    )
    assert bar.service == "billing"
    assert [(w.kind, w.end) for w in billing.waits] == [("backoff", billing.next_attempt_at)]
    assert model.steps["initialize_preferences"].state == "complete"
    assert model.steps["send_welcome_sequence"].state == "pending"
    assert model.state == "in_progress"


def test_the_next_attempt_ends_the_wait_and_the_task_ends_with_its_summary() -> None:
    model, s = diamond_retrying()
    s.run(1.3, "setup_billing_profile", attempt=2, service="billing")
    s.add(1.4, "task.completed", summary={"parallel_saved_ms": 20.0})
    model.apply_all(s.events)
    billing = model.steps["setup_billing_profile"]
    assert [b.outcome for b in billing.attempts] == ["retry", "completed"]
    assert billing.waits[0].end == T0 + 1.3
    assert billing.last_error is None
    assert (model.state, model.completed_at, model.summary) == (
        "complete",
        T0 + 1.4,
        {"parallel_saved_ms": 20.0},
    )


def test_a_deferral_is_shown_as_its_own_state_until_the_step_runs() -> None:
    s = Script().add(0, "task.created")
    s.run(0.0, "create_user_account")
    s.add(0.1, "step.started", "setup_billing_profile", 1, worker_id="w")  # the claim
    s.add(
        0.1,
        "step.deferred",
        "setup_billing_profile",
        1,
        reason="circuit_open",
        service="billing",
        next_attempt_at=iso(T0 + 30),
        delay_s=29.9,
    )
    model = TaskModel.from_view(view(), as_created=True).apply_all(s.events)
    billing = model.steps["setup_billing_profile"]
    assert billing.display_state == DEFERRED
    assert billing.deferred_by == "billing"
    assert billing.attempts == []  # a deferral spends no attempt
    assert billing.attempt == 0
    s.run(30, "setup_billing_profile", service="billing")
    model.apply_all(s.events)
    assert billing.display_state == "complete"
    assert [w.kind for w in billing.waits] == ["deferred"]


def test_a_lost_attempt_keeps_its_outcome_when_the_retry_follows() -> None:
    s = Script().add(0, "task.created")
    s.add(0.0, "step.started", "create_user_account", 1)
    s.add(15.0, "step.worker_lost", "create_user_account", 1, worker_id="w")
    s.add(
        15.0,
        "step.retry_scheduled",
        "create_user_account",
        1,
        error={"kind": "retryable", "error_code": "WORKER_LOST", "message": "lost"},
        next_attempt_at=iso(T0 + 15),
        delay_s=0,
    )
    model = TaskModel.from_view(view(), as_created=True).apply_all(s.events)
    step = model.steps["create_user_account"]
    assert step.lost == 1
    assert [(b.outcome, b.error_code) for b in step.attempts] == [("lost", "WORKER_LOST")]


def test_operator_actions_fold_in() -> None:
    s = Script().add(0, "task.created")
    s.add(0.0, "step.started", "create_user_account", 1)
    s.add(
        0.1,
        "step.failed",
        "create_user_account",
        1,
        error={"kind": "permanent", "error_code": "USER_CONFLICT", "message": "taken"},
    )
    s.add(0.1, "task.failed", failed_steps=["create_user_account"])
    model = TaskModel.from_view(view(), as_created=True).apply_all(s.events)
    assert (model.state, model.steps["create_user_account"].state) == ("error", "error")
    s.add(1.0, "step.retry_requested", "create_user_account", by="operator")
    s.add(1.0, "task.resumed")
    model.apply_all(s.events)
    step = model.steps["create_user_account"]
    assert (model.state, step.state, step.attempt, model.completed_at) == (
        "in_progress",
        "pending",
        0,
        None,
    )
    s.add(2.0, "step.resolved", "create_user_account", by="operator", results={"user_id": "u"})
    model.apply_all(s.events)
    assert (step.state, step.results) == ("resolved_manually", {"user_id": "u"})


def test_a_degraded_step_shows_as_degraded_and_the_task_lists_it() -> None:
    s = Script().add(0, "task.created")
    s.run(0.0, "create_user_account")
    s.add(0.1, "step.started", "initialize_preferences", 3, worker_id="w")
    error = {"kind": "retryable", "error_code": "CONNECTION_ERROR", "message": "refused"}
    fallback = {"status": "defaults", "preferences": {"newsletter": False}}
    s.add(
        0.2,
        EventType.STEP_DEGRADED,
        "initialize_preferences",
        3,
        error=error,
        fallback_results=fallback,
    )
    model = TaskModel.from_view(view(), as_created=True).apply_all(s.events)
    prefs = model.steps["initialize_preferences"]
    assert (prefs.state, prefs.display_state) == (StepState.DEGRADED, StepState.DEGRADED)
    assert model.degraded == ["initialize_preferences"]
    (bar,) = prefs.attempts
    assert (bar.outcome, bar.error_code) == ("failed", "CONNECTION_ERROR")  # closed, not running
    assert prefs.results == fallback  # what its dependents got
    drawn = render_dag(model, 120, 30, T0 + 1).plain
    assert "◐ initialize_preferences" in drawn and "fallback" in drawn and "refused" in drawn
    s.add(1.0, EventType.STEP_RETRY_REQUESTED, "initialize_preferences", by="operator")
    model.apply_all(s.events)
    assert prefs.state == StepState.PENDING and model.degraded == []


def test_events_of_other_tasks_and_repeats_are_ignored() -> None:
    model, s = diamond_retrying()
    before = model.applied
    other = DashEvent(
        s.seq + 1, T0 + 5, "step.started", "t_other", "create_user_account", None, 1, {}
    )
    model.apply(other)
    model.apply(s.events[3])  # an old seq again
    assert model.applied == before


def test_replay_of_a_prefix_is_the_task_as_it_was() -> None:
    model, s = diamond_retrying()
    cut = next(i for i, e in enumerate(s.events) if e.type == "step.retry_scheduled")
    early = TaskModel.from_view(view(), as_created=True).apply_all(s.events[:cut])
    assert early.steps["setup_billing_profile"].state == "in_progress"
    assert model.steps["setup_billing_profile"].state == "waiting_for_retry"
    start = TaskModel.from_view(view(), as_created=True).apply_all([])
    assert {st.state for st in start.steps.values()} == {"pending"}


def test_already_exists_comes_from_the_results() -> None:
    model, _ = diamond_retrying()
    v = view()
    v["steps"][0]["results"] = {"user_id": "u", "status": "already_exists"}
    model.set_results(v)
    assert model.steps["create_user_account"].idempotent == "already_exists"
    assert model.steps["initialize_preferences"].idempotent is None
