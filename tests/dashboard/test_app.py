"""The dashboard driven by keys (Textual's Pilot) against a real sandbox on loopback."""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from textual.pilot import Pilot
from textual.widgets import Button, Checkbox, Input, RichLog, Select, Static

from dashboard import app as dashboard_app
from dashboard.app import LOG_LINES_PER_REDRAW, DashboardApp
from dashboard.demo_screen import DemoScreen
from dashboard.dialogs import ConfirmScreen, NumberScreen, ResolveScreen
from dashboard.fault_screens import FaultScreen, PresetScreen
from dashboard.info_screens import AnalyticsScreen, HelpScreen
from dashboard.model import DashEvent
from dashboard.step_detail import StepDetailScreen
from dashboard.task_table import TaskTable
from dashboard.widgets import DagPane
from interlock.cli.dashboard import demo_entries
from interlock.demos import Target
from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator, open_orchestrator, run_api
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.engine import EngineConfig
from tests.dashboard.conftest import Sandbox
from tests.e2e.conftest import add_fault

pytestmark = pytest.mark.slow
SIZE = (160, 50)


async def until(pilot: Pilot[None], condition: Callable[[], object], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the dashboard never got there")
        await pilot.pause(0.05)


def states(app: DashboardApp) -> dict[str, str]:
    return {r.task_id: r.state for r in app.fleet.rows.values()}


def header(app: DashboardApp) -> str:
    return str(app.query_one("#header", Static).render())


async def faults(session: aiohttp.ClientSession, url: str) -> list[dict[str, object]]:
    async with session.get(f"{url}/__admin/faults") as resp:
        return list((await resp.json())["faults"])


async def test_a_new_registration_appears_runs_and_completes_on_the_dag(sandbox: Sandbox) -> None:
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n")
        await until(pilot, lambda: "complete" in states(app).values())
        (task_id,) = states(app)
        await until(pilot, lambda: app.model is not None and app.model.state == "complete")
        assert app.selected_id == task_id
        assert app.model is not None
        assert {s.state for s in app.model.steps.values()} == {"complete"}
        assert app.fleet.counts["complete"] == 1
        assert "✓ create_user_account" in str(app.query_one(DagPane).render())
        assert "@" in app.fleet.rows[task_id].label  # the person, from task.created's context


async def test_a_burst_and_the_billing_outage_preset_open_the_breaker(
    sandbox: Sandbox, admin: aiohttp.ClientSession
) -> None:
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("p")
        assert isinstance(app.screen, PresetScreen)
        await pilot.press("1")
        await until(pilot, lambda: app.board.services["billing"].faults)
        assert [f["kind"] for f in await faults(admin, sandbox.services.urls["billing"])] == [
            "down"
        ]
        await pilot.press("b")
        assert isinstance(app.screen, NumberScreen)
        app.screen.query_one(Input).value = "5"
        await pilot.press("enter")
        await until(pilot, lambda: len(app.fleet.rows) == 5)
        await until(pilot, lambda: app.board.services["billing"].breaker == "open")
        await until(pilot, lambda: "billing OPEN" in header(app))
        await until(pilot, lambda: any(r.activity == "deferred" for r in app.fleet.rows.values()))
        assert "⏸ deferred" in str(app.query_one("#counts", Static).render())
        async with admin.get(f"{sandbox.api_url}/analytics/bottlenecks?window_s=60") as resp:
            report = await resp.json()
        assert report["breaker_openings"] == {"billing": 1}
        await pilot.press("a")
        assert isinstance(app.screen, AnalyticsScreen)
        openings = app.screen.query_one("#openings", Static)
        await until(pilot, lambda: "billing 1x" in str(openings.render()))


async def test_the_fault_form_adds_a_rule_and_shows_the_services_refusal(
    sandbox: Sandbox, admin: aiohttp.ClientSession
) -> None:
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        form = app.screen
        assert isinstance(form, FaultScreen)
        form.query_one("#service", Select).value = "notifications"
        form.query_one("#kind", Select).value = "error"
        await pilot.pause()
        form.query_one("#field-status", Input).value = "700"
        form.query_one("#add", Button).press()
        await until(pilot, lambda: "refused" in str(form.query_one("#problem", Static).render()))
        assert "status" in str(form.query_one("#problem", Static).render())
        assert isinstance(app.screen, FaultScreen)  # still open, nothing added
        form.query_one("#field-status", Input).value = "503"
        form.query_one("#field-times", Input).value = "2"
        form.query_one("#per-key", Checkbox).value = True
        form.query_one("#add", Button).press()
        await until(pilot, lambda: not isinstance(app.screen, FaultScreen))
        (rule,) = await faults(admin, sandbox.services.urls["notifications"])
        assert (rule["kind"], rule["times"], rule["per_key"]) == ("error", 2, True)


async def test_retry_a_failed_step_after_the_fault_is_cleared(
    sandbox: Sandbox, admin: aiohttp.ClientSession
) -> None:
    users = sandbox.services.urls["users"]
    await add_fault(
        admin,
        sandbox.services,
        "users",
        {"kind": "error", "status": 400, "match": {"method": "PATCH"}},
    )
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n")
        await until(pilot, lambda: "error" in states(app).values())
        await until(pilot, lambda: app.model is not None and app.model.state == "error")
        async with admin.delete(f"{users}/__admin/faults") as resp:
            assert resp.status == 200
        await pilot.press("r")
        await until(pilot, lambda: "complete" in states(app).values())
        assert app.fleet.counts["error"] == 0


async def test_resolve_a_failed_step_by_hand_and_the_task_completes(
    sandbox: Sandbox, admin: aiohttp.ClientSession
) -> None:
    await add_fault(
        admin,
        sandbox.services,
        "users",
        {"kind": "error", "status": 400, "match": {"method": "PATCH"}},
    )
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n")
        await until(pilot, lambda: app.model is not None and app.model.state == "error")
        await pilot.press("R")
        dialog = app.screen
        assert isinstance(dialog, ResolveScreen)
        assert dialog.step == "update_user_status"
        dialog.query_one("#resolve", Button).press()
        await until(pilot, lambda: "complete" in states(app).values())
        await until(
            pilot,
            lambda: (
                app.model is not None
                and app.model.steps["update_user_status"].state == "resolved_manually"
            ),
        )


async def test_cancel_asks_first(sandbox: Sandbox, admin: aiohttp.ClientSession) -> None:
    await add_fault(admin, sandbox.services, "users", {"kind": "latency", "delay_ms": 3000})
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n")
        await until(pilot, lambda: "in_progress" in states(app).values())
        await until(pilot, lambda: app.selected_id is not None)
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause(0.2)
        assert "cancelled" not in states(app).values()
        await pilot.press("x", "y")
        await until(pilot, lambda: "cancelled" in states(app).values())


async def test_readonly_changes_nothing(sandbox: Sandbox) -> None:
    app = sandbox.app(readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n", "b", "f", "p", "x")
        await pilot.pause(0.3)
        assert not isinstance(app.screen, (NumberScreen, FaultScreen, PresetScreen, ConfirmScreen))
        assert app.fleet.rows == {}
        await until(pilot, lambda: "read-only" in header(app))
        shown = {b.binding.key for b in app.active_bindings.values() if b.enabled}
        assert "n" not in shown and "q" in shown


async def test_filters_by_state_and_failures_only(
    sandbox: Sandbox, admin: aiohttp.ClientSession
) -> None:
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n")
        await until(pilot, lambda: "complete" in states(app).values())
        await add_fault(
            admin,
            sandbox.services,
            "users",
            {"kind": "error", "status": 400, "match": {"method": "PATCH"}},
        )
        await pilot.press("n")
        await until(pilot, lambda: "error" in states(app).values())
        while app.state_filter != "error":
            await pilot.press("s")
        await pilot.pause(0.3)
        table = app.query_one("#tasks")
        assert table.row_count == 1  # type: ignore[attr-defined]
        assert "filter: error" in str(app.query_one("#counts", Static).render())
        await pilot.press("l")
        assert app.log_filter == "failures"
        lines = [str(line.text) for line in app.query_one("#events").lines]  # type: ignore[attr-defined]
        assert lines and all(
            any(t in ln for t in ("failed", "retry", "deferred", "breaker", "⚑")) for ln in lines
        )


async def test_replay_steps_through_a_finished_task(
    sandbox: Sandbox, admin: aiohttp.ClientSession
) -> None:
    await add_fault(
        admin, sandbox.services, "billing", {"kind": "error", "status": 503, "times": 1}
    )
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n")
        await until(pilot, lambda: app.model is not None and app.model.state == "complete")
        total = len(app.task_events)
        await pilot.press("left_curly_bracket")
        shown = app._shown_model()
        assert shown is not None and {s.state for s in shown.steps.values()} == {"pending"}
        assert f"replay 0/{total}" in header(app)
        retry_at = next(
            i for i, e in enumerate(app.task_events) if e.type == "step.retry_scheduled"
        )
        for _ in range(retry_at + 1):
            await pilot.press("right_square_bracket")
        shown = app._shown_model()
        assert shown is not None
        assert shown.steps["setup_billing_profile"].state == "waiting_for_retry"
        assert shown.steps["send_welcome_sequence"].state == "pending"
        assert f"replay {retry_at + 1}/{total}" in header(app)
        await pilot.press("d")
        assert isinstance(app.screen, StepDetailScreen)
        await pilot.press("escape")
        await pilot.press("right_curly_bracket")
        assert app.replay_pos is None and "replay" not in header(app)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_it_says_when_the_orchestrator_goes_away_and_catches_up_when_it_is_back(
    services: RunningServices, tmp_path: Path
) -> None:
    db, port = tmp_path / "restart.db", free_port()
    fake = RegistrationFaker(5)

    def orchestrator() -> contextlib.AbstractAsyncContextManager[Orchestrator]:
        return open_orchestrator(
            db, services.urls, config=EngineConfig(worker_id="w", seed=1), durable=False
        )

    first = contextlib.AsyncExitStack()
    orch = await first.enter_async_context(orchestrator())
    api_url = await first.enter_async_context(run_api(orch, "127.0.0.1", port))
    await orch.engine.run(TEMPLATE_NAME, fake.registration(), timeout_s=10)
    app = Sandbox(orch, services, api_url).app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live" and len(app.fleet.rows) == 1)
        await first.aclose()  # the orchestrator goes away
        await until(pilot, lambda: app.link.state == "reconnecting")
        await until(pilot, lambda: "reconnecting" in header(app))
        async with orchestrator() as again:
            # work done while the dashboard was away: it must arrive from the backlog
            await again.engine.run(TEMPLATE_NAME, fake.registration(), timeout_s=10)
            async with run_api(again, "127.0.0.1", port):
                await until(pilot, lambda: app.link.state == "live")
                await until(
                    pilot,
                    lambda: len(app.fleet.rows) == 2 and set(states(app).values()) == {"complete"},
                )
                await until(pilot, lambda: "● live" in header(app))
                assert app.fleet.counts["complete"] == 2


async def test_find_pause_help_analytics_and_the_palette(sandbox: Sandbox) -> None:
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n", "n")
        await until(pilot, lambda: list(states(app).values()) == ["complete", "complete"])
        await pilot.pause(0.3)
        wanted = next(iter(app.fleet.rows.values()))
        await pilot.press("slash")
        find = app.query_one("#find", Input)
        assert find.has_focus
        find.value = wanted.label
        await pilot.press("enter")
        await pilot.pause(0.3)
        assert app.query_one("#tasks").row_count == 1  # type: ignore[attr-defined]
        await pilot.press("space")
        assert "paused" in header(app)
        await pilot.press("n")  # arrives while paused: the table does not move
        await until(pilot, lambda: len(app.fleet.rows) == 3)
        await pilot.pause(0.3)
        assert app.query_one("#tasks").row_count == 1  # type: ignore[attr-defined]
        await pilot.press("space")
        assert "paused" not in header(app)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape", "a")
        assert isinstance(app.screen, AnalyticsScreen)
        table = app.screen.query_one("#analytics")
        await until(pilot, lambda: table.row_count == 5)  # type: ignore[attr-defined]
        await pilot.press("escape")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Burst of registrations", "Preset: billing outage", "Replay: start"} <= titles


async def test_kill_calls_the_restart_hook_and_readonly_hides_it(sandbox: Sandbox) -> None:
    calls: list[str] = []

    async def restart() -> None:
        calls.append("restart")

    app = sandbox.app()
    app.config = dataclasses.replace(app.config, restart_orchestrator=restart)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("K")
        await until(pilot, lambda: calls == ["restart"])
    ro = sandbox.app(readonly=True)
    ro.config = dataclasses.replace(ro.config, restart_orchestrator=restart)
    async with ro.run_test(size=SIZE) as pilot:
        await pilot.press("K")
        await pilot.pause(0.2)
        assert calls == ["restart"]


async def test_a_demo_started_with_shift_d_narrates_in_the_log_and_shows_its_verdict(
    sandbox: Sandbox,
) -> None:
    app = sandbox.app()
    target = Target(sandbox.api_url, dict(sandbox.services.urls))  # attached: no restart hook
    app.config = dataclasses.replace(app.config, demos=demo_entries(target))
    assert "crash-recovery" not in {d.name for d in app.config.demos}
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DemoScreen))
        names = [d.name for d in app.config.demos]
        for _ in range(names.index("duplicate-signup")):
            await pilot.press("down")
        await pilot.press("enter")
        lines = lambda: [str(e) for e in app._buffer if not isinstance(e, DashEvent)]  # noqa: E731
        await until(pilot, lambda: any("demo verdict" in line for line in lines()), 30)
        await until(pilot, lambda: app._demo_running is None)
        told = lines()
        assert any("demo: " in line and "answered 409" in line for line in told)
        verdict = [line for line in told if "demo verdict" in line]
        assert verdict and all("✓" in line for line in verdict), verdict
        assert len(app.fleet.rows) == 3  # its registrations are on the list, to watch


async def test_demos_are_hidden_in_readonly(sandbox: Sandbox) -> None:
    app = sandbox.app(readonly=True)
    target = Target(sandbox.api_url, dict(sandbox.services.urls))
    app.config = dataclasses.replace(app.config, demos=demo_entries(target))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("D")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, DemoScreen)


async def test_a_flood_of_events_skips_events_but_never_the_alerts_between_them(
    sandbox: Sandbox,
) -> None:
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        for i in range(300):
            event = DashEvent(i + 1, 0.0, "step.started", "t1", "s", None, 1, {})
            app._log_new.append(event)
            if i in (10, 150):
                app._log_alert(f"narration {i}")
        app._draw_log()
        await pilot.pause()
        text = [strip.text for strip in app.query_one("#events", RichLog).lines]
        assert any("narration 10" in line for line in text)
        assert any("narration 150" in line for line in text)
        assert any("more events" in line for line in text)


async def test_quitting_during_a_demo_removes_its_faults(
    sandbox: Sandbox, admin: aiohttp.ClientSession
) -> None:
    app = sandbox.app()
    target = Target(sandbox.api_url, dict(sandbox.services.urls))
    app.config = dataclasses.replace(app.config, demos=demo_entries(target))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("D")
        await until(pilot, lambda: isinstance(app.screen, DemoScreen))
        await pilot.press("enter")  # billing-outage, the first
        lines = lambda: [str(e) for e in app._buffer if not isinstance(e, DashEvent)]  # noqa: E731
        await until(pilot, lambda: any("breaker opened" in line for line in lines()), 20)
        assert await faults(admin, sandbox.services.urls["billing"])  # its outage is on
    # the app has quit, the demo's worker cancelled: its fault must not outlive it
    assert await faults(admin, sandbox.services.urls["billing"]) == []


async def test_events_of_a_task_just_picked_never_reach_the_task_shown_before(
    sandbox: Sandbox,
) -> None:
    """Between a pick and its load, the stream's events of the picked task wait for its model
    (applied to the one shown, they would draw another task's steps on its DAG)."""
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("n")
        await until(pilot, lambda: "complete" in states(app).values())
        await pilot.press("n")
        await until(pilot, lambda: list(states(app).values()) == ["complete", "complete"])
        first, second = sorted(states(app), key=lambda t: app.fleet.rows[t].created_at)
        app._select(first)
        await until(pilot, lambda: app.model is not None and app.model.task_id == first)
        shown = app.model
        assert shown is not None
        attempts = shown.steps["create_user_account"].attempts
        app._select(second)  # and before its load has begun, an event of it arrives:
        step = "create_user_account"
        app._apply(DashEvent(10**9, time.time(), "step.started", second, step, None, 9, {}))
        assert shown.steps["create_user_account"].attempts == attempts
        await until(pilot, lambda: app.model is not None and app.model.task_id == second)


async def five_listed_and_loads_counted(
    app: DashboardApp, pilot: Pilot[None]
) -> tuple[list[str], list[str]]:
    """A burst of five, finished and listed, the newest loaded; then the list's rows and the
    tasks loaded from here on (each ``GET /tasks/{id}``)."""
    await until(pilot, lambda: app.link.state == "live")
    await pilot.press("b")
    assert isinstance(app.screen, NumberScreen)
    app.screen.query_one(Input).value = "5"
    await pilot.press("enter")
    await until(pilot, lambda: sum(s == "complete" for s in states(app).values()) == 5)
    table = app.query_one("#tasks", TaskTable)
    # the list is drawn at a redraw tick
    await until(pilot, lambda: len(table.rows) == 5 and app.model is not None)
    loads: list[str] = []
    fetch = app.client.task

    async def counted(task_id: str) -> dict[str, object]:
        loads.append(task_id)
        return await fetch(task_id)

    app.client.task = counted  # type: ignore[method-assign]
    return table.rows, loads


async def test_a_storm_of_keys_loads_only_the_task_the_cursor_stops_on(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key held down (auto-repeat) moves the list at once; the task it passes over is not
    fetched each time, only the one the cursor rests on."""
    # longer than any one key of the storm can take to be handled on a slow machine
    monkeypatch.setattr(dashboard_app, "SELECT_SETTLE_S", 0.6)
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        rows, loads = await five_listed_and_loads_counted(app, pilot)
        await pilot.press("down", "down", "down", "down")
        assert app.selected_id == rows[4]  # the list moved at once
        await until(pilot, lambda: app.model is not None and app.model.task_id == rows[4])
        assert loads[-1] == rows[4]  # the last when the keys stopped ...
        assert rows[2] not in loads and rows[3] not in loads  # ... none it only passed over


async def test_keys_that_pick_nothing_still_hold_a_storms_loads_back(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keys typed fast hold every load back until the keyboard pauses, even when the picks
    they make come further apart than the settling time: cycling the state filter picks a task
    only on the filters that list some (most are empty), and each of those picks had been a
    load of its own (two reads on the orchestrator, a DAG on the dashboard)."""
    # long enough that no single key of the storm comes that late, even on a slow machine,
    # and shorter than the presses between two picks take
    monkeypatch.setattr(dashboard_app, "SELECT_SETTLE_S", 0.6)
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        rows, loads = await five_listed_and_loads_counted(app, pilot)
        # a pick, then 40 presses of `s` (five turns of the filter, back on "all"): longer
        # than the settling time, though no two keys are that far apart
        cycle = ["s"] * (5 * len(dashboard_app.STATE_FILTERS))
        await pilot.press("down", *cycle, "down", *cycle, "down")
        assert app.selected_id == rows[3]  # the list moved at once
        await until(pilot, lambda: app.model is not None and app.model.task_id == rows[3])
        assert loads == [rows[3]]  # only the task the keys stopped on


async def test_one_skipped_event_is_one_event(sandbox: Sandbox) -> None:
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        log = app.query_one("#events", RichLog)
        most = max(5, min(LOG_LINES_PER_REDRAW, log.size.height))
        for i in range(most + 1):
            app._log_new.append(DashEvent(i + 1, 0.0, "step.started", "t1", "s", None, 1, {}))
        app._draw_log()
        await pilot.pause()
        text = [strip.text for strip in log.lines]
        assert any("… 1 more event (l filters" in line for line in text), text[:3]


async def test_resuming_the_live_view_draws_what_came_meanwhile_at_once(sandbox: Sandbox) -> None:
    app = sandbox.app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.link.state == "live")
        await pilot.press("space")
        assert app.paused
        await pilot.press("n")
        await until(pilot, lambda: "complete" in states(app).values())
        table = app.query_one("#tasks")
        assert table.row_count == 0  # type: ignore[attr-defined]
        await pilot.press("space")  # the key's own redraw, not the next tick's
        assert table.row_count == 1  # type: ignore[attr-defined]
