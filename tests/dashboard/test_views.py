"""The DAG, timeline, task list and services as pure functions of what the events said."""

from __future__ import annotations

import pytest

from dashboard.dag_view import layers, render_dag
from dashboard.fleet import MAX_ROWS, Fleet, label_of
from dashboard.model import DashEvent, TaskModel
from dashboard.service_stats import ServiceBoard
from dashboard.timeline_view import render_timeline
from tests.dashboard.factories import T0, Script, diamond_retrying, iso, view


def test_layers_follow_the_longest_path_whatever_the_template() -> None:
    diamond = {
        "a": (),
        "b": ("a",),
        "c": ("a",),
        "d": ("b", "c"),
        "e": ("d",),
    }
    assert layers(diamond) == [["a"], ["b", "c"], ["d"], ["e"]]
    skip = {"a": (), "b": ("a",), "c": ("a", "b"), "x": ()}
    assert layers(skip) == [["a", "x"], ["b"], ["c"]]


def test_the_diamond_shows_fan_out_convergence_and_the_countdown() -> None:
    model, _ = diamond_retrying()
    text = render_dag(model, 100, 30, T0 + 0.553).plain
    lines = text.splitlines()
    assert "retry in 0.7 s" in text
    assert "1/3" in text and "HTTP 503: billing answered 503" in text
    assert "waits for billing" in text  # the welcome waits for the unfinished parent only
    bus = [ln for ln in lines if "┴" in ln and "┌" in ln and "┐" in ln]
    assert bus, "fan-out: one bus row with both corners and the parent's joint"
    merge = [ln for ln in lines if "└" in ln and "┘" in ln and "┬" in ln]
    assert merge, "convergence: the branches join into one line"
    for name in model.steps:
        assert name in text
    assert all(len(ln) <= 100 for ln in lines)


def test_a_small_pane_gets_one_line_per_step_and_marks_not_only_colour() -> None:
    model, _ = diamond_retrying()
    text = render_dag(model, 60, 6, T0 + 0.5, selected="setup_billing_profile").plain
    lines = text.splitlines()
    assert len(lines) == 5
    assert lines[1].startswith("▶") and "⟳ setup_billing_profile" in lines[1]
    assert "✓ create_user_account" in lines[0]


def test_the_timeline_shows_attempts_and_the_backoff_gap_on_one_axis() -> None:
    model, s = diamond_retrying()
    s.run(1.3, "setup_billing_profile", attempt=2, service="billing")
    model.apply_all(s.events)
    rows = render_timeline(model, 80, T0 + 1.4).plain.splitlines()
    billing = next(r for r in rows if r.startswith("setup_billing_profile"))
    bar = billing[23:]
    assert "█" in bar and "░" in bar
    assert bar.index("█") < bar.index("░") < bar.rindex("█")  # attempt, wait, attempt
    prefs = next(r for r in rows if r.startswith("initialize_preferences"))
    assert prefs[23:].index("█") == bar.index("█")  # the branches start together
    assert rows[-1].strip().startswith("0ms") and rows[-1].rstrip().endswith("1.4s")


def _event(seq: int, type_: str, task: str, **data: object) -> DashEvent:
    return DashEvent(seq, T0 + seq, type_, task, data.pop("step", None), None, None, dict(data))


def test_the_fleet_moves_tasks_between_states_and_counts_them() -> None:
    fleet = Fleet()
    fleet.load_counts({"complete": 7})
    fleet.apply(_event(1, "task.created", "t1", context={"user_info": {"email": "a@x.io"}}))
    fleet.apply(_event(2, "task.started", "t1"))
    fleet.apply(_event(3, "step.retry_scheduled", "t1", step="s"))
    assert fleet.rows["t1"].activity == "retrying"
    assert fleet.rows["t1"].label == "a@x.io"
    assert fleet.counts["in_progress"] == 1
    fleet.apply(_event(4, "step.started", "t1", step="s"))
    assert fleet.rows["t1"].activity == "in_progress"
    fleet.apply(_event(5, "task.completed", "t1"))
    assert (fleet.counts["complete"], fleet.counts["in_progress"], fleet.total) == (8, 0, 8)
    fleet.apply(_event(6, "task.failed", "t_unknown"))
    assert fleet.counts_stale
    assert [r.task_id for r in fleet.newest("complete")] == ["t1"]


def test_the_fleet_keeps_a_bounded_number_of_rows() -> None:
    fleet = Fleet()
    for i in range(MAX_ROWS + 50):
        fleet.apply(_event(2 * i + 1, "task.created", f"t{i}"))
        fleet.apply(_event(2 * i + 2, "task.completed", f"t{i}"))
    assert len(fleet.rows) == MAX_ROWS
    assert fleet.newest(limit=1)[0].task_id == f"t{MAX_ROWS + 49}"


def test_label_of_finds_the_person() -> None:
    assert label_of({"user_info": {"email": "e@x.io", "name": "E"}}) == "e@x.io"
    assert label_of({"name": "n"}) == "n"
    assert label_of(None) == ""


def test_services_rates_errors_latency_and_breakers_from_events() -> None:
    board = ServiceBoard(["billing"])
    for i in range(10):
        ok = i % 2 == 0
        board.apply(
            DashEvent(
                i,
                T0 + 0.1 * i,
                "service_call.completed" if ok else "service_call.failed",
                "t",
                "s",
                None,
                1,
                {"service": "billing", "status": 201 if ok else 503, "duration_ms": 10.0},
            )
        )
    health = board.services["billing"]
    assert health.rate(T0 + 1) == 2.0  # 10 calls over the 5 s window
    assert health.error_rate(T0 + 1) == 0.5
    assert health.latency_ms(T0 + 1) == 10.0
    alert = board.apply(
        DashEvent(
            11,
            T0 + 1,
            "breaker.opened",
            None,
            None,
            None,
            None,
            {
                "service": "billing",
                "from": "closed",
                "to": "open",
                "failures": 5,
                "open_until": iso(T0 + 31),
            },
        )
    )
    assert alert is not None and "billing" in alert and "5 failures" in alert
    assert [h.name for h in board.open_breakers()] == ["billing"]
    assert health.open_until == T0 + 31
    board.apply(
        DashEvent(
            12,
            T0 + 40,
            "breaker.closed",
            None,
            None,
            None,
            None,
            {"service": "billing", "from": "half_open", "to": "closed"},
        )
    )
    assert board.open_breakers() == []


def test_a_task_model_from_its_view_alone() -> None:
    v = view()
    v["state"] = "in_progress"
    v["steps"][0].update(state="complete", attempts=1)
    model = TaskModel.from_view(v)
    assert model.steps["create_user_account"].state == "complete"
    assert Script().events == []


def test_steps_behind_a_failed_one_say_they_are_blocked() -> None:
    s = Script().add(0, "task.created")
    s.add(0.0, "step.started", "create_user_account", 1)
    s.add(
        0.1,
        "step.failed",
        "create_user_account",
        1,
        error={"kind": "permanent", "error_code": "HTTP_422", "message": "refused"},
    )
    model = TaskModel.from_view(view(), as_created=True).apply_all(s.events)
    text = render_dag(model, 100, 30, T0 + 1).plain
    assert "blocked: user failed" in text
    assert "blocked upstream" in text
    assert "waits for" not in text


def test_a_wide_fan_out_fits_80_columns_without_overlap() -> None:
    v = view()
    v["steps"] = [
        {"name": "start", "depends_on": [], "max_attempts": 1},
        *({"name": f"branch_{i}", "depends_on": ["start"], "max_attempts": 2} for i in range(4)),
        {"name": "join", "depends_on": [f"branch_{i}" for i in range(4)], "max_attempts": 1},
    ]
    model = TaskModel.from_view(v, as_created=True)
    lines = render_dag(model, 80, 20, T0).plain.splitlines()
    assert all(len(line) <= 80 for line in lines)
    row = next(line for line in lines if "branch_0" in line)
    assert all(f"branch_{i}" in row for i in range(4))  # one layer, side by side
    assert any(line.count("┴") + line.count("┬") >= 4 for line in lines)  # the fan-out joints


def test_the_fault_form_builds_the_rule_the_admin_api_takes() -> None:
    from dashboard.fault_screens import build_rule

    rule = build_rule(
        "missing_fields", {"fields": "id, plan", "probability": "0.5"}, "post", "/users*"
    )
    assert rule == {
        "kind": "missing_fields",
        "fields": ["id", "plan"],
        "probability": 0.5,
        "match": {"method": "POST", "path": "/users*"},
    }
    assert build_rule("error", {"status": "503", "delay_ms": "9"}, "", "") == {
        "kind": "error",
        "status": 503,  # delay_ms is not an error's: left out
    }
    with pytest.raises(ValueError, match="delay ms: 'soon' is not a number"):
        build_rule("latency", {"delay_ms": "soon"}, "", "")
    assert build_rule("error", {"status": "503", "times": "2"}, "", "", per_key=True) == {
        "kind": "error",
        "status": 503,
        "times": 2,
        "per_key": True,
    }


def test_a_counts_snapshot_older_than_the_applied_events_keeps_their_changes() -> None:
    fleet = Fleet()
    fleet.load_counts({}, as_of_seq=0)
    for i in range(3):
        fleet.apply(_event(10 * i + 1, "task.created", f"t{i}"))
        fleet.apply(_event(10 * i + 2, "task.started", f"t{i}"))
        fleet.apply(_event(10 * i + 3, "task.completed", f"t{i}"))
    assert fleet.counts["complete"] == 3
    # the server counted as of seq 12: t0 complete, t1 in progress (t2 not yet created)
    fleet.load_counts({"complete": 1, "in_progress": 1}, as_of_seq=12)
    assert (fleet.counts["complete"], fleet.counts["in_progress"], fleet.total) == (3, 0, 3)
