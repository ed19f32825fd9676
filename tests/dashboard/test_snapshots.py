"""What the main screen looks like, at 80x24 and 200x60, with tasks in every interesting state.

The data is a recorded orchestrator (``tests/dashboard/canned.py``) and the dashboard's clock is
fixed, so the pictures do not move between runs. ``pytest --snapshot-update`` rewrites them;
look at the SVGs before committing them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import pytest
from textual.pilot import Pilot

from dashboard.app import DashboardApp
from dashboard.config import DashboardConfig
from dashboard.task_table import TaskTable
from tests.dashboard.canned import NOW, Canned, scenario, serve

Compare = Callable[..., bool]


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """The log and the header show local times: make "local" the same everywhere."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def canned() -> Iterator[Canned]:
    yield from serve(scenario())


def app_for(canned: Canned) -> DashboardApp:
    config = DashboardConfig(
        canned.api_url, canned.service_urls, label="sandbox 127.0.0.1:8700", new_context=dict
    )
    return DashboardApp(config, clock_fn=lambda: NOW)


async def until(pilot: Pilot[None], done: Callable[[], bool], never: str) -> None:
    deadline = time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, never
        await pilot.pause(0.05)


def settled(*keys: str) -> Callable[[Pilot[None]], object]:
    """Press ``keys`` once the screen shows every recorded event, then wait for the task they
    leave under the cursor to be loaded and drawn."""

    async def run(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, DashboardApp)
        last = max(e["seq"] for e in scenario().events)

        def loaded() -> bool:
            return (
                len(app.fleet.rows) == 6
                and app.model is not None
                and app.last_seq == last
                and app._drawn_fleet == app.fleet.version  # the list shows every event folded
                and len(app.board.services) == 4  # and every service's faults were asked
                and all(h.reachable is not None for h in app.board.services.values())
            )

        def cursor_task_drawn() -> bool:  # _load_task draws the task as it sets the model
            table = app.query_one("#tasks", TaskTable)
            key = table.rows[table.cursor_row]
            shown = app.model.task_id if app.model is not None else None
            return app.selected_id == key == shown and app._loading is None

        await until(pilot, loaded, "the recorded orchestrator was never loaded")
        app.clear_notifications()
        app._relog()  # the log as a filter change draws it: not cut by how events were batched
        for key in keys:
            await pilot.press(key)
        await until(pilot, cursor_task_drawn, "the task under the cursor was never loaded")
        app.clear_notifications()
        await pilot.pause()

    return run


def test_main_screen_large(snap_compare: Compare, canned: Canned) -> None:
    assert snap_compare(app_for(canned), terminal_size=(200, 60), run_before=settled())


def test_main_screen_large_parallel_branches(snap_compare: Compare, canned: Canned) -> None:
    assert snap_compare(app_for(canned), terminal_size=(200, 60), run_before=settled("down"))


def test_main_screen_large_deferred_by_breaker(snap_compare: Compare, canned: Canned) -> None:
    assert snap_compare(
        app_for(canned), terminal_size=(200, 60), run_before=settled("down", "down")
    )


def test_main_screen_large_failed(snap_compare: Compare, canned: Canned) -> None:
    keys = ("down", "down", "down")
    assert snap_compare(app_for(canned), terminal_size=(200, 60), run_before=settled(*keys))


def test_small_task_list(snap_compare: Compare, canned: Canned) -> None:
    assert snap_compare(app_for(canned), terminal_size=(80, 24), run_before=settled())


def test_small_task_view_retrying(snap_compare: Compare, canned: Canned) -> None:
    assert snap_compare(app_for(canned), terminal_size=(80, 24), run_before=settled("2"))


def test_small_task_view_already_exists(snap_compare: Compare, canned: Canned) -> None:
    keys = ("down", "down", "down", "down", "2")
    assert snap_compare(app_for(canned), terminal_size=(80, 24), run_before=settled(*keys))


def test_small_events_view(snap_compare: Compare, canned: Canned) -> None:
    assert snap_compare(app_for(canned), terminal_size=(80, 24), run_before=settled("3"))
