"""The fleet's indexes (newest first, the waiting counts) against their definitions, over
random streams of events and loaded summaries."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard import fleet as fleet_module
from dashboard.fleet import Fleet
from dashboard.model import DashEvent
from tests.dashboard.factories import iso

TYPES = (
    "task.created",
    "task.started",
    "task.completed",
    "task.failed",
    "task.cancelled",
    "task.resumed",
    "step.retry_scheduled",
    "step.deferred",
    "step.started",
    "step.completed",
)
#: (event type or "summary", task number, step number, time)
actions = st.lists(
    st.tuples(
        st.sampled_from((*TYPES, "summary")),
        st.integers(0, 14),
        st.integers(0, 2),
        st.integers(0, 40),
    ),
    max_size=120,
)


def _check(fleet: Fleet) -> None:
    rows = list(fleet.rows.values())
    by_age = sorted(rows, key=lambda r: (r.created_at, r.task_id), reverse=True)
    assert fleet.newest(limit=10**6) == by_age
    activities = ("pending", "in_progress", "retrying", "deferred", "complete", "error")
    for activity in (*activities, "cancelled"):
        expected = [r for r in by_age if activity in (r.activity, r.state)][:5]
        assert fleet.newest(activity, 5) == expected
    for activity in ("retrying", "deferred"):
        assert fleet.waiting_counts[activity] == sum(r.activity == activity for r in rows)


@settings(max_examples=300, deadline=None)
@given(actions)
def test_the_indexes_follow_every_change(moves: list[tuple[str, int, int, int]]) -> None:
    fleet = Fleet()
    for seq, (kind, task, step, t) in enumerate(moves, start=1):
        task_id = f"t{task:02}"
        if kind == "summary":
            summary: dict[str, Any] = {
                "task_id": task_id,
                "state": "in_progress",
                "created_at": iso(1000.0 + task),
            }
            fleet.load_summaries([summary])
        else:
            data = {"context": {}} if kind == "task.created" else {}
            fleet.apply(DashEvent(seq, 1000.0 + t, kind, task_id, f"s{step}", None, 1, data))
        _check(fleet)


def test_trimming_keeps_the_indexes(monkeypatch: Any) -> None:
    monkeypatch.setattr(fleet_module, "MAX_ROWS", 5)
    fleet = Fleet()
    for i in range(12):
        task_id = f"t{i:02}"
        fleet.apply(DashEvent(2 * i + 1, 1000.0 + i, "task.created", task_id, None, None, 1, {}))
        if i % 3:  # a third stay pending: never trimmed
            ended = DashEvent(2 * i + 2, 1000.5 + i, "task.completed", task_id, None, None, 1, {})
            fleet.apply(ended)
        _check(fleet)
    assert len(fleet.rows) == 5


def test_a_step_event_that_changes_no_wait_leaves_the_version() -> None:
    """Most of a burst's events are steps starting and completing, which change nothing the
    list shows: the version (what the list redraws on) moves only when a row's wait does."""
    fleet = Fleet()
    fleet.apply(DashEvent(1, 1000.0, "task.created", "t1", None, None, None, {"context": {}}))
    fleet.apply(DashEvent(2, 1000.0, "task.started", "t1", None, None, None, {}))
    version = fleet.version
    for seq, kind in enumerate(("step.started", "step.completed", "service_call.started"), 3):
        fleet.apply(DashEvent(seq, 1000.1, kind, "t1", "a", None, 1, {}))
    assert fleet.version == version
    fleet.apply(DashEvent(6, 1000.2, "step.retry_scheduled", "t1", "a", None, 1, {}))
    assert fleet.version == version + 1 and fleet.rows["t1"].activity == "retrying"
    fleet.apply(DashEvent(7, 1000.3, "step.retry_scheduled", "t1", "a", None, 2, {}))
    assert fleet.version == version + 1  # waiting already
    fleet.apply(DashEvent(8, 1000.4, "step.started", "t1", "a", None, 2, {}))
    assert fleet.version == version + 2 and fleet.rows["t1"].activity == "in_progress"
