"""The Interlock dashboard: one screen that shows what every registration is doing, and why.

A client of HTTP APIs only. Live data comes from ``/events/stream`` (:mod:`dashboard.stream`,
which reconnects and resumes by sequence number when the orchestrator is killed), folded into
three models: the task list (:class:`~dashboard.fleet.Fleet`), the services
(:class:`~dashboard.service_stats.ServiceBoard`) and the selected task
(:class:`~dashboard.model.TaskModel`). Events are folded as they arrive, but the screen is redrawn
on a timer (:data:`REDRAW_S`), so a burst of thousands of events a second costs a few redraws,
not one per event, and a key press is answered between two redraws.

Replay folds the first k events of the selected task into a fresh model: the DAG, the timeline
and the step detail then show the task as it was at event k.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Final

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog

from dashboard.client import Client, DashboardError
from dashboard.config import DashboardConfig, DemoEntry
from dashboard.demo_screen import DemoScreen
from dashboard.dialogs import ConfirmScreen, NumberScreen, ResolveScreen
from dashboard.fault_screens import FaultScreen, PresetScreen
from dashboard.fleet import Fleet, TaskRow
from dashboard.info_screens import AnalyticsScreen, HelpScreen
from dashboard.marks import mark
from dashboard.model import DashEvent, TaskModel
from dashboard.presets import PRESETS, Preset
from dashboard.service_stats import ServiceBoard
from dashboard.step_detail import StepDetailScreen, clock
from dashboard.stream import Link, follow
from dashboard.task_table import TaskTable
from dashboard.widgets import (
    FAILURE_TYPES,
    DagPane,
    EventLog,
    FixedLine,
    ServicesPane,
    TimelinePane,
    event_line,
    task_mark,
)
from orchestrator.event_types import TASK_END_EVENTS, EventType
from orchestrator.models import JSON, StepState

#: Seconds between two redraws of the live view. Keys redraw at once; the timer only brings the
#: stream's changes in: at 0.5 s a burst costs the dashboard 45 % less than at 0.25 s
#: (docs/benchmarks.md), and a countdown still moves twice a second.
REDRAW_S: Final = 0.5
#: Events a second past which the stream is a burst: the panes then redraw every
#: :data:`BUSY_REDRAW_S` instead of every :data:`REDRAW_S` (the header still every tick, keys
#: at once). Twenty registrations a second make about 500.
BUSY_EVENTS_PER_S: Final = 500
#: Seconds between two redraws of the panes during a burst, when nobody can read faster than
#: the panes change and the dashboard's redraws compete with the sandbox for the cores.
BUSY_REDRAW_S: Final = 1.0
#: A redraw this soon after a key waits for the next tick (at most until the panes are
#: :data:`BUSY_REDRAW_S` old): the key's frame then paints what the key changed, not every pane
#: as well (a frame of every pane at 200x60 took up to 38 ms in a burst).
AFTER_KEY_S: Final = 0.15
#: Seconds between two redraws of the task list while the stream changes it (the table is the
#: dearest pane: about half of a redraw); a key that changes the list draws it at once.
TABLE_EVERY_S: Final = 1.0
#: A pick that comes this soon after the previous one, or while keys come this close together
#: (a key held down, a filter cycled), loads its task only once the picks and the keys have
#: paused this long: the list moves at once, and the tasks it passes over cost neither the
#: orchestrator two reads each nor the dashboard a DAG each. The keys count as well as the
#: picks because most keys of a storm pick nothing (a filter that lists no task): cycling the
#: filter twenty times a second had picked every 150-200 ms, each pick a load of its own.
SELECT_SETTLE_S: Final = 0.15
#: Rows the task list shows (the newest of the current filter; `s`, `/` and `m` reach the rest):
#: the table is the dearest pane to redraw.
LIST_ROWS: Final = 100
#: Events the log keeps for re-filtering.
LOG_KEEP: Final = 5_000
#: Lines the log writes per redraw at most; the rest are counted in one line.
LOG_LINES_PER_REDRAW: Final = 60
#: Joins a redraw's log lines; each is cut with an ellipsis at the pane's edge, as event lines are.
_LOG_LINE_BREAK: Final = Text("\n", no_wrap=True, overflow="ellipsis")

STATE_FILTERS: Final = (
    None,
    "pending",
    "in_progress",
    "retrying",
    "deferred",
    "complete",
    "error",
    "cancelled",
)
LOG_FILTERS: Final = ("all", "failures", "task", "step", "correlation")
REPLAY_SPEEDS: Final = (1.0, 4.0, 16.0)
_MUTATING: Final = frozenset(
    {"new", "burst", "faults", "presets", "retry", "resolve", "cancel", "kill", "demos"}
)


class DashboardApp(App[None]):
    """The TUI. ``clock`` is injectable so snapshots and countdowns are deterministic in tests."""

    CSS_PATH = "dashboard.tcss"
    _main: Screen[Any]  #: the main screen, set on mount
    TITLE = "Interlock"
    HORIZONTAL_BREAKPOINTS = [
        (0, "-narrow"),
        (120, "-wide"),
    ]
    BINDINGS = [
        Binding("question_mark", "help", "help"),  # first: in the footer even at 80 columns
        Binding("q", "quit", "quit"),
        Binding("n", "new", "new"),
        Binding("b", "burst", "burst"),
        Binding("f", "faults", "faults"),
        Binding("p", "presets", "presets"),
        Binding("r", "retry", "retry"),
        Binding("R", "resolve", "resolve"),
        Binding("x", "cancel", "cancel"),
        Binding("K", "kill", "kill+restart"),
        Binding("D", "demos", "demos"),
        Binding("space", "pause", "pause"),
        Binding("left_square_bracket", "replay(-1)", "replay ◀"),
        Binding("right_square_bracket", "replay(1)", "▶"),
        Binding("left_curly_bracket", "replay_start", "replay start", show=False),
        Binding("right_curly_bracket", "replay_live", "live"),
        Binding("P", "replay_play", "play"),
        Binding("greater_than_sign", "replay_speed", "speed", show=False),
        Binding("s", "state_filter", "state"),
        Binding("slash", "find", "find"),
        Binding("m", "more", "older"),
        Binding("l", "log_filter", "log"),
        Binding("d", "detail", "detail"),
        Binding("a", "analytics", "analytics"),
        Binding("1", "view('tasks')", "tasks", show=False),
        Binding("2", "view('task')", "task", show=False),
        Binding("3", "view('log')", "events", show=False),
    ]

    def __init__(
        self, config: DashboardConfig, *, clock_fn: Callable[[], float] = time.time
    ) -> None:
        super().__init__()
        self.config = config
        self.new_context = config.new_context
        self.template = config.template
        self.now = clock_fn
        self.client = Client(config.api_url, config.service_urls)
        self.fleet = Fleet()
        self.board = ServiceBoard(config.service_urls)
        self.link = Link("connecting")
        self.last_seq = 0
        self.paused = False
        self.view_name = "tasks"
        self.state_filter: str | None = None
        self.find_text = ""
        self.log_filter = "all"
        self.selected_id: str | None = None
        self.follow_newest = True  #: the cursor is on the top row: show the newest task
        self._followed_at = 0.0
        self._picked_at = -1e9  #: when the selection last changed (monotonic)
        self.selected_view: JSON | None = None
        self.model: TaskModel | None = None
        self.task_events: list[DashEvent] = []
        self._loading: list[DashEvent] | None = None
        self.replay_pos: int | None = None
        self.replay_speed = 1.0
        self._playing = False
        #: the log's entries: events, and the alerts written between them
        self._buffer: deque[DashEvent | Text] = deque(maxlen=LOG_KEEP)
        self._log_new: list[DashEvent | Text] = []
        self._drawn_fleet = -1
        self._table_drawn_at = 0.0
        self._panes_drawn_at = 0.0
        self._key_at = -1e9  #: when the last key arrived (monotonic)
        self._key_before = -1e9  #: when the key before it arrived
        self._events_since_redraw = 0
        self._ends: deque[float] = deque(maxlen=20_000)
        self._saved_ms: list[float] = []
        self._alerted: dict[str, float] = {}
        self._demo_running: str | None = None  #: the demo started with D, until its verdict
        self._failed_pending = 0

    # -- layout -------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield FixedLine(id="header")
        yield FixedLine(id="tabs")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield FixedLine(id="counts")
                yield Input(placeholder="find a task: id or person", id="find")
                yield TaskTable(id="tasks")
                yield ServicesPane(self.board, self.now, id="services")
            with Vertical(id="right"):
                yield FixedLine(id="task-title")
                yield DagPane(self.now, id="dag")
                yield TimelinePane(self.now, id="timeline")
                yield EventLog(id="events", max_lines=2_000, wrap=False, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        # The main screen, not whichever screen is on top: a dialog may be open when a redraw
        # or an event needs the panes.
        self._main = self.screen
        table = self._main.query_one("#tasks", TaskTable)
        table.add_column("state", key="state", width=12)
        table.add_column("task", key="task", width=7)
        table.add_column("who", key="who")
        table.add_column("time", key="age", width=6)
        self._main.query_one("#find", Input).display = False
        table.focus()
        self._main.query_one("#services").border_title = "Services"
        self._main.query_one("#events").border_title = "Events"
        self._main.query_one("#timeline").border_title = "Timeline"
        self._set_view("tasks")
        self.set_interval(REDRAW_S, self._redraw)
        self.set_interval(2.0, self._poll_services)
        self.set_interval(5.0, self._reload_counts)
        self._start()
        self._redraw()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self._key_before, self._key_at = self._key_at, time.monotonic()
        await super().on_event(event)

    async def on_unmount(self) -> None:
        self.workers.cancel_all()
        await self.client.close()

    @work(exclusive=True, group="start")
    async def _start(self) -> None:
        """Find where the log stands, follow it from there, then load what is already there."""
        after = 0
        try:
            health = await self.client.health()
            after = int(health.get("last_seq") or 0)
        except DashboardError as exc:
            self.link = Link("reconnecting", str(exc))
        self.last_seq = after
        self._follow(after)
        await self._load_snapshot()

    async def _load_snapshot(self) -> None:
        """Counts, the newest tasks and the breakers; each on its own, so one refusal (an older
        orchestrator without ``/tasks/counts``, say) does not leave the rest unloaded."""

        async def tasks() -> JSON:
            return await self.client.api("GET", "/tasks", limit=LIST_ROWS)

        async def breakers() -> JSON:
            return await self.client.api("GET", "/breakers")

        loads: tuple[tuple[Callable[[], Awaitable[JSON]], Callable[[JSON], None]], ...] = (
            (self.client.counts, self._use_counts),
            (tasks, lambda got: self.fleet.load_summaries(got.get("tasks", []))),
            (breakers, lambda got: self.board.load_breakers(got.get("breakers", []))),
        )
        for fetch, use in loads:
            try:
                use(await fetch())
            except DashboardError:
                continue
        self._drawn_fleet = -1
        self._redraw()  # show what was loaded now, not at the next tick
        await self._poll_services_now()

    # -- the live stream ----------------------------------------------------------------------
    @work(exclusive=True, group="stream")
    async def _follow(self, after: int) -> None:
        async for item in follow(self.client.session, self.client.api_url, after):
            if isinstance(item, Link):
                self._link_changed(item)
            else:
                self._apply(item)

    def _link_changed(self, link: Link) -> None:
        was = self.link.state
        self.link = link
        if link.state == "reconnecting" and was != "reconnecting":
            self._alert(f"orchestrator unreachable: {link.reason}; reconnecting", "error", "link")
        elif link.state == "live" and was == "reconnecting":
            self._alert(
                f"orchestrator back; caught up from seq {link.after:,}", "information", "link-back"
            )
            self._reload_after_reconnect()

    @work(group="reload")
    async def _reload_after_reconnect(self) -> None:
        await self._load_snapshot()
        if self.selected_id is not None:
            self._select(self.selected_id, force=True)

    def _apply(self, event: DashEvent) -> None:
        self._events_since_redraw += 1
        self.last_seq = max(self.last_seq, event.seq)
        self._buffer.append(event)
        self._log_new.append(event)
        self.fleet.apply(event)
        alert = self.board.apply(event)
        if alert:
            self._alert(alert, "warning" if "OPEN" in alert else "information", alert)
        self._note_alerts(event)
        if event.type in TASK_END_EVENTS:
            self._ends.append(event.at)
            summary = event.data.get("summary")
            if isinstance(summary, dict) and summary.get("parallel_saved_ms") is not None:
                self._saved_ms.append(float(summary["parallel_saved_ms"]))
        if event.task_id is not None and event.task_id == self.selected_id:
            if self._loading is not None:
                self._loading.append(event)
            elif self.model is not None:
                self.task_events.append(event)
                if self.replay_pos is None:
                    self.model.apply(event)
                if event.type in (EventType.STEP_COMPLETED, *TASK_END_EVENTS):
                    self._refresh_results()

    def _note_alerts(self, event: DashEvent) -> None:
        if event.type == EventType.TASK_FAILED:
            self._failed_pending += 1  # one toast for all those of a moment, at the redraw
            steps = ", ".join(event.data.get("failed_steps") or [])
            self._log_alert(f"task …{(event.task_id or '')[-6:]} failed for good ({steps})")
        elif event.type == EventType.SERVICE_CALL_FAILED and event.data.get("status") == 429:
            service = str(event.data.get("service"))
            self._alert(
                f"{service} is rate-limiting (429 with Retry-After)",
                "warning",
                f"429-{service}",
                every_s=10,
            )

    def _alert(self, text: str, severity: str, key: str, every_s: float = 0.0) -> None:
        """A toast and a log line; the same alert at most once per ``every_s`` seconds."""
        now = time.monotonic()
        if every_s and now - self._alerted.get(key, -1e9) < every_s:
            return
        self._alerted[key] = now
        self.notify(text, severity=severity, timeout=4)  # type: ignore[arg-type]
        self._log_alert(text)

    def _log_alert(self, text: str) -> None:
        line = Text(f"{clock(self.now())} ⚑ {text}", "bold")
        self._buffer.append(line)
        self._log_new.append(line)  # in order with the events, at the next redraw

    # -- redraw -------------------------------------------------------------------------------
    def _redraw(self) -> None:
        if not self._main.is_attached:
            return  # the app is closing: its panes are gone
        try:
            self._redraw_panes()
        except NoMatches:
            return  # the app is closing, its panes going while the timer fired

    def _redraw_panes(self) -> None:
        self._header()
        if self._failed_pending and time.monotonic() - self._alerted.get("failed", -1e9) >= 2:
            n, self._failed_pending = self._failed_pending, 0
            self._alerted["failed"] = time.monotonic()
            self.notify(f"{n} task{'s' if n > 1 else ''} failed for good", severity="error")
        if self.fleet.counts_stale:
            self.fleet.counts_stale = False
            self._reload_counts()  # an event moved a task older than the loaded list
        if self.paused:
            return
        forced = self._drawn_fleet == -1  # a key changed what the list shows: draw it now
        now = time.monotonic()
        busy = self._events_since_redraw >= BUSY_EVENTS_PER_S * REDRAW_S
        self._events_since_redraw = 0
        age = now - self._panes_drawn_at
        if not forced and age < BUSY_REDRAW_S - 0.05:
            if busy:
                return  # a burst: the panes every other tick
            if now - self._key_at < AFTER_KEY_S:
                return  # a key is being answered: the panes at the next tick
        self._panes_drawn_at = now
        due = time.monotonic() - self._table_drawn_at >= TABLE_EVERY_S
        if self.fleet.version != self._drawn_fleet and (forced or due):
            self._draw_counts()
            self._draw_tasks()
            self._drawn_fleet = self.fleet.version
            self._table_drawn_at = time.monotonic()
        elif self.fleet.version == self._drawn_fleet:
            self._draw_ages()
        self._main.query_one(ServicesPane).redraw()
        self._draw_task()
        self._draw_log()

    def _header(self) -> None:
        now = self.now()
        recent = sum(1 for t in self._ends if t > now - 5) / 5
        link = {
            "live": Text("● live", "green"),
            "reconnecting": Text("⚠ reconnecting", "bold red"),
            "connecting": Text("… connecting", "yellow"),
        }.get(self.link.state, Text(self.link.state))
        if self.paused:
            link = Text("⏸ paused", "bold yellow")
        out = Text.assemble(
            (" Interlock ", "bold reverse"),
            f"  {self.config.label}  " if self.size.width >= 120 else " ",
            link,
            f"  seq {self.last_seq:,}  {recent:.0f} done/s",
        )
        if self.config.readonly:
            out.append("  read-only", "bold cyan")
        if self.replay_pos is not None and self.task_events:
            at = self.task_events[self.replay_pos - 1].at if self.replay_pos else None
            play = " ▶" if self._playing else ""
            out.append(
                f"  replay {self.replay_pos}/{len(self.task_events)} {clock(at)}{play}",
                "bold reverse magenta",
            )
        opened = self.board.open_breakers()
        if opened:
            parts = []
            for h in opened:
                left = max(0.0, (h.open_until or now) - now)
                word = "OPEN" if h.breaker == "open" else h.breaker.upper()
                parts.append(f"{h.name} {word} {left:.0f}s")
            out.append("  breakers: " + ", ".join(parts), "bold red")
        out.append(f"  {clock(now)[:8]}", "dim")
        self._main.query_one("#header", FixedLine).show(out)
        tabs = Text()
        for key, name, label in (
            ("1", "tasks", "Tasks"),
            ("2", "task", "Task"),
            ("3", "log", "Events"),
        ):
            style = "bold reverse" if self.view_name == name else "dim"
            tabs.append(f" {key} {label} ", style)
            tabs.append(" ")
        self._main.query_one("#tabs", FixedLine).show(tabs)

    def _draw_counts(self) -> None:
        counts = self.fleet.counts
        retrying = self.fleet.waiting_counts["retrying"]
        deferred = self.fleet.waiting_counts["deferred"]
        out = Text(no_wrap=False)
        out.append(f"Tasks {self.fleet.total:,}", "bold")
        shown = self.state_filter or "all"
        out.append(
            f"   filter: {shown}" + (f" '{self.find_text}'" if self.find_text else ""),
            "bold cyan" if self.state_filter or self.find_text else "dim",
        )
        if self.follow_newest:
            out.append("  ⇡ following newest", "dim")
        lines = (
            (
                # disjoint, so the counts add up to the total: a task waiting for a retry
                # or held back by a breaker is not also counted as running
                ("in_progress", max(0, counts.get("in_progress", 0) - retrying - deferred)),
                ("retrying", retrying),
                ("deferred", deferred),
            ),
            (("pending", counts.get("pending", 0)), ("complete", counts.get("complete", 0))),
            (("error", counts.get("error", 0)), ("cancelled", counts.get("cancelled", 0))),
        )
        for line in lines:
            out.append("\n")
            for state, value in line:
                m = mark(state)
                style = m.style + (" reverse" if self.state_filter == state else "")
                out.append(f"{m.symbol} {m.word} {value:,}", style)
                out.append("  ")
        self._main.query_one("#counts", FixedLine).show(out)

    def _rows(self) -> list[TaskRow]:
        rows = self.fleet.newest(self.state_filter, LIST_ROWS if not self.find_text else 5_000)
        if self.find_text:
            needle = self.find_text.lower()
            rows = [r for r in rows if needle in r.task_id.lower() or needle in r.label.lower()]
        return rows[:LIST_ROWS]

    def _draw_tasks(self) -> None:
        table = self._main.query_one("#tasks", TaskTable)
        rows = self._rows()
        now = self.now()
        table.show(
            (
                row.task_id,
                (task_mark(row.activity), f"…{row.task_id[-6:]}", row.label, _age(row.age_s(now))),
            )
            for row in rows
        )
        keys = [r.task_id for r in rows]
        newest = rows[0].task_id if rows else None
        if newest is not None and (self.selected_id is None or self._follow_due(newest)):
            self._select(newest)
        if self.selected_id in keys:
            table.move_cursor(row=keys.index(self.selected_id))

    def _follow_due(self, newest: str) -> bool:
        """Follow the newest task (cursor on the top row), switching at most once a second so a
        burst does not reload the DAG on every redraw."""
        if not self.follow_newest or newest == self.selected_id:
            return False
        now = time.monotonic()
        if now - self._followed_at < 1.0:
            return False
        self._followed_at = now
        return True

    @on(TaskTable.UserMoved)
    def _user_moved(self, message: TaskTable.UserMoved) -> None:
        following = message.row == 0
        if following != self.follow_newest:
            self.follow_newest = following
            self._draw_counts()

    def _draw_ages(self) -> None:
        table = self._main.query_one("#tasks", TaskTable)
        now = self.now()
        for key in table.rows[:60]:
            row = self.fleet.rows.get(key)
            if row is not None and row.completed_at is None:
                age = _age(row.age_s(now))
                if table.get_cell(key, "age") != age:
                    table.update_cell(key, "age", age)

    def _draw_task(self) -> None:
        model = self._shown_model()
        at = self._replay_at()
        self._main.query_one(DagPane).show(model, at)
        self._main.query_one(TimelinePane).show(model, at)
        timeline = self._main.query_one(TimelinePane)
        timeline.styles.height = (len(model.steps) + 3) if model else 3
        title = self._main.query_one("#task-title", FixedLine)
        if model is None:
            title.show(Text("no task selected", "dim"))
            return
        m = mark(model.state)
        started = model.created_at or self.now()
        took = (model.completed_at or at or self.now()) - started
        out = Text.assemble(
            (f"{model.name} ", "bold"),
            f"…{model.task_id[-6:]}  ",
            (self.fleet.rows[model.task_id].label if model.task_id in self.fleet.rows else ""),
            "  ",
            (f"{m.symbol} {m.word}", m.style),
            f"  {_age(max(0.0, took))}",
        )
        saved = (model.summary or {}).get("parallel_saved_ms")
        if saved is not None:
            out.append(f"  parallel branches saved {float(saved):.0f} ms", "dim")
        if model.degraded:
            out.append(f"  degraded: {', '.join(model.degraded)}", "dark_orange")
        title.show(out)

    def _draw_log(self) -> None:
        log = self._main.query_one("#events", RichLog)
        new, self._log_new = self._log_new, []
        shown = [e for e in new if self._log_match(e)]
        lines: list[Text] = []
        most = max(5, min(LOG_LINES_PER_REDRAW, log.size.height))  # no more than can be seen
        if len(shown) > most:
            # Events are skipped, never alerts or a demo's narration: those are few, and the
            # reason a person is looking.
            older = shown[:-most]
            kept: list[DashEvent | Text] = [e for e in older if isinstance(e, Text)]
            skipped = len(older) - len(kept)
            what = "event" if skipped == 1 else "events"
            lines.append(Text(f"… {skipped:,} more {what} (l filters the log)", "dim"))
            shown = kept + shown[-most:]
        lines += (e if isinstance(e, Text) else event_line(e) for e in shown)
        if lines:
            # One write for the redraw's lines: RichLog renders, resizes and scrolls once per
            # write, which line by line cost about 7 % of the dashboard's CPU in a burst.
            self._write_log(log, _LOG_LINE_BREAK.join(lines))

    @staticmethod
    def _write_log(log: RichLog, entry: DashEvent | Text) -> None:
        # RichLog measures a line against its min_width (78), not the pane: give it the pane's
        # width, so a long line is cut at the edge of the pane, not at column 78.
        width = log.scrollable_content_region.width or None
        log.write(entry if isinstance(entry, Text) else event_line(entry), width=width)

    def _log_match(self, event: DashEvent | Text) -> bool:
        if isinstance(event, Text):
            return True  # an alert
        if self.log_filter == "failures":
            return event.type in FAILURE_TYPES
        if self.log_filter == "task":
            return event.task_id is not None and event.task_id == self.selected_id
        if self.log_filter == "step":
            step = self._main.query_one(DagPane).selected
            return step is not None and event.step_name == step
        if self.log_filter == "correlation":
            corr = self.model.correlation_id if self.model else None
            return corr is not None and event.correlation_id == corr
        return True

    def _relog(self) -> None:
        log = self._main.query_one("#events", RichLog)
        log.clear()
        log.border_title = f"Events ({self.log_filter})"
        matching = [e for e in self._buffer if self._log_match(e)][-200:]
        for entry in matching:
            self._write_log(log, entry)
        self._log_new = []

    # -- selection ----------------------------------------------------------------------------
    @on(TaskTable.RowHighlighted, "#tasks")
    def _row_highlighted(self, event: TaskTable.RowHighlighted) -> None:
        if event.cursor_row != event.table.cursor_row:
            return  # a stale highlight: the cursor moved on since (a rebuild, then the redraw)
        if event.row_key != self.selected_id:
            self._select(event.row_key)

    @on(TaskTable.RowSelected, "#tasks")
    def _row_selected(self, event: TaskTable.RowSelected) -> None:
        if self.screen.has_class("-narrow"):
            self._set_view("task")

    def _select(self, task_id: str, force: bool = False) -> None:
        if task_id == self.selected_id and not force:
            return
        self.selected_id = task_id
        self.replay_pos = None
        self._playing = False
        now = time.monotonic()
        storm = now - self._picked_at < SELECT_SETTLE_S or self._keys_flowing(now)
        self._picked_at = now
        self._loading = []  # its events from now on wait for its model, not the one shown
        self._load_task(task_id, settle=storm)
        if self.log_filter in ("task", "correlation"):
            self._relog()

    def _keys_flowing(self, now: float) -> bool:
        """The last two keys came less than :data:`SELECT_SETTLE_S` apart, the last one that
        recently: someone is typing fast (a single key after a pause loads at once)."""
        return (
            now - self._key_at < SELECT_SETTLE_S
            and self._key_at - self._key_before < SELECT_SETTLE_S
        )

    @work(exclusive=True, group="select")
    async def _load_task(self, task_id: str, settle: bool = False) -> None:
        # exclusive: the next pick cancels this one while it waits
        while settle:  # until the picks and the keys have paused SELECT_SETTLE_S
            quiet_s = time.monotonic() - max(self._picked_at, self._key_at)
            if quiet_s >= SELECT_SETTLE_S:
                break
            await asyncio.sleep(SELECT_SETTLE_S - quiet_s)
        try:
            view = await self.client.task(task_id)
            raw = await self.client.task_events(task_id)
        except DashboardError as exc:
            self._loading = None
            self.notify(f"cannot load …{task_id[-6:]}: {exc}", severity="error", timeout=4)
            return
        if task_id != self.selected_id:
            return
        events = [DashEvent.from_json(e) for e in raw]
        model = TaskModel.from_view(view, as_created=True).apply_all(events)
        model.set_results(view)
        late = [e for e in self._loading or () if e.seq > model.last_seq]
        model.apply_all(late)
        self.selected_view, self.model = view, model
        self.task_events = events + late
        self._loading = None
        self._draw_task()

    @work(exclusive=True, group="results")
    async def _refresh_results(self) -> None:
        task_id = self.selected_id
        if task_id is None:
            return
        await asyncio.sleep(0.2)  # coalesce the completions of a burst into one read
        try:
            view = await self.client.task(task_id)
        except DashboardError:
            return
        if self.model is not None and self.model.task_id == task_id:
            self.selected_view = view
            self.model.set_results(view)
            self.model.summary = view.get("summary") or self.model.summary

    def _shown_model(self) -> TaskModel | None:
        if self.model is None or self.replay_pos is None or self.selected_view is None:
            return self.model
        replayed = TaskModel.from_view(self.selected_view, as_created=True)
        replayed.apply_all(self.task_events[: self.replay_pos])
        replayed.set_results(self.selected_view)
        return replayed

    def _replay_at(self) -> float | None:
        if self.replay_pos is None:
            return None
        if self.replay_pos == 0 or not self.task_events:
            return self.model.created_at if self.model else None
        return self.task_events[self.replay_pos - 1].at

    def _step(self, *wanted: str) -> str | None:
        """The step an action applies to: the one picked in the DAG if it is in a wanted state,
        else the first step that is."""
        model = self.model
        if model is None:
            return None
        picked = self._main.query_one(DagPane).selected
        if picked in model.steps and (not wanted or model.steps[picked].state in wanted):
            return picked
        return next((n for n, s in model.steps.items() if not wanted or s.state in wanted), None)

    # -- views and filters --------------------------------------------------------------------
    def _set_view(self, name: str) -> None:
        self.view_name = name
        for view in ("tasks", "task", "log"):
            self.screen.set_class(view == name, f"-view-{view}")
        self._header()

    def action_view(self, name: str) -> None:
        self._set_view(name)
        target = {"tasks": "#tasks", "task": "#dag", "log": "#events"}[name]
        self._main.query_one(target).focus()

    def action_state_filter(self) -> None:
        i = STATE_FILTERS.index(self.state_filter)
        self.state_filter = STATE_FILTERS[(i + 1) % len(STATE_FILTERS)]
        self._draw_list()

    def _draw_list(self) -> None:
        """A key that changed what the task list shows draws the counts and the list now, and
        nothing else: the DAG, timeline, services and log wait for the next redraw (at most
        :data:`REDRAW_S`), so the key's frame costs what it changed (docs/benchmarks.md)."""
        if self.paused or not self._main.is_attached:
            self._drawn_fleet = -1  # drawn when the view resumes
            return
        self._draw_counts()
        self._draw_tasks()
        self._drawn_fleet = self.fleet.version
        self._table_drawn_at = time.monotonic()

    def action_find(self) -> None:
        find = self._main.query_one("#find", Input)
        find.display = True
        find.focus()

    @on(Input.Submitted, "#find")
    def _find_submitted(self, event: Input.Submitted) -> None:
        self.find_text = event.value.strip()
        event.input.display = bool(self.find_text)
        self._main.query_one("#tasks").focus()
        self._draw_list()

    def action_log_filter(self) -> None:
        i = LOG_FILTERS.index(self.log_filter)
        self.log_filter = LOG_FILTERS[(i + 1) % len(LOG_FILTERS)]
        self._relog()
        self.notify(f"event log: {self.log_filter}", timeout=2)

    def action_pause(self) -> None:
        self.paused = not self.paused
        self._drawn_fleet = -1  # resumed: every pane at once, not at the next tick
        self._redraw()

    @work(exclusive=True, group="more")
    async def action_more(self) -> None:
        state = (
            self.state_filter
            if self.state_filter in {"pending", "in_progress", "complete", "error", "cancelled"}
            else None
        )
        have = len(self.fleet.newest(state, 1_000_000))
        try:
            older = await self.client.tasks(state=state, limit=500, offset=have)
        except DashboardError as exc:
            self.notify(f"cannot load older tasks: {exc}", severity="error")
            return
        self.fleet.load_summaries(older)
        self._draw_list()  # listed now, not at the next redraw
        self.notify(f"{len(older)} older tasks loaded", timeout=2)

    @work(exclusive=True, group="counts")
    async def _reload_counts(self) -> None:
        try:
            self._use_counts(await self.client.counts())
        except DashboardError:
            return

    def _use_counts(self, got: JSON) -> None:
        self.fleet.load_counts(got.get("counts", {}), int(got.get("last_seq") or 0))

    def _poll_services(self) -> None:
        self._poll_services_worker()

    @work(exclusive=True, group="services")
    async def _poll_services_worker(self) -> None:
        await self._poll_services_now()

    async def _poll_services_now(self) -> None:
        for name in list(self.config.service_urls):
            try:
                self.board.load_faults(name, await self.client.faults(name))
            except DashboardError:
                self.board.load_faults(name, None)
        # shown now, not at the next redraw: a fault just added appears at once
        if self._main.is_attached and not self.paused:
            with contextlib.suppress(NoMatches):
                self._main.query_one(ServicesPane).redraw()

    # -- actions that change something --------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in _MUTATING and self.config.readonly:
            return False
        if action == "kill" and self.config.restart_orchestrator is None:
            return False
        if action == "demos" and not self.config.demos:
            return False
        return not (action in ("new", "burst") and self.new_context is None)

    @work(group="submit")
    async def action_new(self) -> None:
        await self._submit(1)

    def action_burst(self) -> None:
        def go(count: int | None) -> None:
            if count:
                self._burst(count)

        self.push_screen(NumberScreen("How many registrations?", 100, 1, 10_000), go)

    @work(group="submit")
    async def _burst(self, count: int) -> None:
        await self._submit(count)

    async def _submit(self, count: int) -> None:
        assert self.new_context is not None
        make = self.new_context
        gate = asyncio.Semaphore(16)
        problems: list[str] = []

        async def one() -> None:
            async with gate:
                try:
                    await self.client.submit(self.template, make())
                except DashboardError as exc:
                    problems.append(str(exc))

        await asyncio.gather(*(one() for _ in range(count)))
        if problems:
            self.notify(f"{len(problems)} of {count} refused: {problems[0]}", severity="error")
        else:
            self.notify(f"{count} registration{'s' if count > 1 else ''} submitted", timeout=2)

    def action_faults(self) -> None:
        services = list(self.config.service_urls)
        if not services:
            self.notify("no service URLs known to this dashboard", severity="error")
            return
        self.push_screen(FaultScreen(self.client, services, None), self._fault_done)

    def _fault_done(self, said: str | None) -> None:
        if said:
            self.notify(said, timeout=3)
            self._poll_services()

    def action_presets(self) -> None:
        self.push_screen(PresetScreen(), self._apply_preset)

    def _apply_preset(self, preset: Preset | str | None) -> None:
        if preset is not None:
            self._preset_worker(preset)

    @work(group="presets")
    async def _preset_worker(self, preset: Preset | str) -> None:
        try:
            if isinstance(preset, str):
                for name in self.config.service_urls:
                    await self.client.clear_faults(name)
                self.notify("faults cleared on every service", timeout=3)
            else:
                for service, rule in preset.rules:
                    await self.client.add_fault(service, rule)
                self.notify(f"preset: {preset.name}: {preset.description}", timeout=4)
        except DashboardError as exc:
            self.notify(f"preset refused: {exc}", severity="error")
        await self._poll_services_now()

    def action_retry(self) -> None:
        step = self._step(StepState.ERROR)
        if self.selected_id is None or step is None:
            self.notify("no failed step to retry in the selected task", severity="warning")
            return
        self._act("retry", self.selected_id, step, None)

    def action_resolve(self) -> None:
        step = self._step(StepState.ERROR, StepState.PENDING, StepState.WAITING_FOR_RETRY)
        task_id = self.selected_id
        if task_id is None or step is None:
            self.notify("no step to resolve in the selected task", severity="warning")
            return

        def go(answer: tuple[JSON | None] | None) -> None:
            if answer is not None:
                self._act("resolve", task_id, step, answer[0])

        self.push_screen(ResolveScreen(task_id, step), go)

    def action_cancel(self) -> None:
        task_id = self.selected_id
        if task_id is None:
            return

        def go(yes: bool | None) -> None:
            if yes:
                self._act("cancel", task_id, None, None)

        self.push_screen(ConfirmScreen(f"Cancel task …{task_id[-6:]}? Its open steps stop."), go)

    @work(group="act")
    async def _act(self, what: str, task_id: str, step: str | None, results: JSON | None) -> None:
        try:
            if what == "retry" and step is not None:
                await self.client.retry(task_id, step)
            elif what == "resolve" and step is not None:
                await self.client.resolve(task_id, step, results)
            else:
                await self.client.cancel(task_id)
        except DashboardError as exc:
            self.notify(f"{what} refused: {exc}", severity="error", timeout=6)
            return
        self.notify(f"{what}: …{task_id[-6:]} {step or ''}", timeout=2)

    @work(exclusive=True, group="kill")
    async def action_kill(self) -> None:
        restart = self.config.restart_orchestrator
        if restart is None:
            return
        self.notify("killing the orchestrator (SIGKILL) and starting it again", severity="warning")
        try:
            await restart()
        except Exception as exc:
            self.notify(f"restart failed: {exc}", severity="error", timeout=10)

    def action_demos(self) -> None:
        self.push_screen(DemoScreen(self.config.demos, self._demo_running), self._demo_picked)

    def _demo_picked(self, demo: DemoEntry | None) -> None:
        if demo is not None and self._demo_running is None:
            self._demo_running = demo.name
            self._run_demo(demo)

    @work(exclusive=True, group="demo")
    async def _run_demo(self, demo: DemoEntry) -> None:
        """The demo runs in this loop as an HTTP client, like every other action; its
        narration goes to the event log between the events it talks about."""
        self.notify(f"demo {demo.name}: {demo.title}", timeout=4)
        try:
            result = await demo.run(lambda line: self._log_alert(f"demo: {line}"))
        except Exception as exc:  # a demo that cannot run says why, it never ends the app
            self._alert(f"demo {demo.name} could not run: {exc}", "error", f"demo-{demo.name}")
            return
        finally:
            self._demo_running = None
        for passed, text in result.checks:
            self._log_alert(f"demo verdict: {'✓' if passed else '✗'} {text}")
        word = "PASS" if result.passed else "FAIL"
        held = sum(passed for passed, _ in result.checks)
        self.notify(
            f"demo {demo.name}: {word} ({held} of {len(result.checks)} checks held; "
            "the event log has them)",
            severity="information" if result.passed else "error",
            timeout=8,
        )

    # -- step detail, analytics, help ---------------------------------------------------------
    @on(DagPane.OpenStep)
    def _open_step(self, message: DagPane.OpenStep) -> None:
        self._detail(message.step)

    def action_detail(self) -> None:
        step = self._main.query_one(DagPane).selected or self._step()
        if step is not None:
            self._detail(step)

    def _detail(self, step: str) -> None:
        model = self._shown_model()
        if model is None or step not in model.steps:
            return
        at = self._replay_at() or self.now()

        def go(what: str | None) -> None:
            self._main.query_one(DagPane).selected = step
            if what == "retry":
                self.action_retry()
            elif what == "resolve":
                self.action_resolve()

        self.push_screen(StepDetailScreen(model, step, at, self.config.readonly), go)

    def action_analytics(self) -> None:
        saved = ""
        if self._saved_ms:
            mean = sum(self._saved_ms) / len(self._saved_ms)
            saved = (
                f"parallel branches saved {mean:.0f} ms per task on average over the "
                f"{len(self._saved_ms):,} tasks finished while this dashboard watched"
            )
        self.push_screen(AnalyticsScreen(self.client, saved))

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    # -- replay -------------------------------------------------------------------------------
    def action_replay(self, delta: int) -> None:
        if self.model is None or not self.task_events:
            return
        pos = len(self.task_events) if self.replay_pos is None else self.replay_pos
        pos = max(0, min(len(self.task_events), pos + delta))
        self.replay_pos = pos
        self._draw_task()
        self._header()

    def action_replay_start(self) -> None:
        if self.model is not None:
            self.replay_pos = 0
            self._draw_task()
            self._header()

    def action_replay_live(self) -> None:
        self.replay_pos = None
        self._playing = False
        self._draw_task()
        self._header()

    def action_replay_speed(self) -> None:
        i = REPLAY_SPEEDS.index(self.replay_speed)
        self.replay_speed = REPLAY_SPEEDS[(i + 1) % len(REPLAY_SPEEDS)]
        self.notify(f"replay speed x{self.replay_speed:g}", timeout=2)

    def action_replay_play(self) -> None:
        if self._playing:
            self._playing = False
            return
        if self.model is None or not self.task_events:
            return
        if self.replay_pos is None or self.replay_pos >= len(self.task_events):
            self.replay_pos = 0
        self._playing = True
        self._play()

    @work(exclusive=True, group="play")
    async def _play(self) -> None:
        while self._playing and self.replay_pos is not None:
            if self.replay_pos >= len(self.task_events):
                self._playing = False
                break
            prev = self.task_events[self.replay_pos - 1].at if self.replay_pos else None
            nxt = self.task_events[self.replay_pos].at
            gap = 0.0 if prev is None else (nxt - prev) / self.replay_speed
            await asyncio.sleep(min(1.0, max(0.02, gap)))
            if self._playing and self.replay_pos is not None:
                self.replay_pos += 1
                self._draw_task()
                self._header()

    # -- the command palette ------------------------------------------------------------------
    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in _COMMANDS:
            if self.check_action(action, ()) is not False:
                yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))
        for preset in PRESETS:
            if not self.config.readonly:
                yield SystemCommand(
                    f"Preset: {preset.name}",
                    preset.description,
                    lambda p=preset: self._preset_worker(p),
                )


_COMMANDS: Final = (
    ("New registration", "submit one Faker registration", "new"),
    ("Burst of registrations", "submit N Faker registrations", "burst"),
    ("Inject a fault", "the fault form: kind, status, probability, latency…", "faults"),
    ("Fault presets", "billing outage, flaky email, rate limits…", "presets"),
    ("Retry the failed step", "give the selected task's failed step fresh attempts", "retry"),
    ("Resolve a step by hand", "mark the selected step done, with optional results", "resolve"),
    ("Cancel the task", "cancel the selected task (asks first)", "cancel"),
    ("Kill and restart the orchestrator", "SIGKILL, then start it again", "kill"),
    ("Run a demo", "a fault-injection story that checks its own outcome", "demos"),
    ("Pause / resume the live view", "freeze the screen; events still arrive", "pause"),
    ("Filter tasks by state", "cycle all / pending / running / retrying / …", "state_filter"),
    ("Find a task", "by id or person", "find"),
    ("Load older tasks", "page in 500 more from the orchestrator", "more"),
    (
        "Event log filter",
        "all / failures / this task / this step / this correlation id",
        "log_filter",
    ),
    ("Step detail", "every attempt of the selected step", "detail"),
    ("Analytics", "per step: runs, mean, p95, retry and error rates", "analytics"),
    ("Replay: start", "the selected task as it was at its first event", "replay_start"),
    ("Replay: play / pause", "play the selected task's history", "replay_play"),
    ("Replay: back to live", "leave the replay", "replay_live"),
    ("Help", "every key and mark", "help"),
)


def _age(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


#: Second-generation collections between two full ones (Python's default is 10).
FULL_GC_EVERY: Final = 100
#: How much lower than the sandbox the dashboard runs (``nice``): see :func:`yield_the_cores`.
NICENESS: Final = 10


def yield_the_cores(niceness: int = NICENESS) -> None:
    """Lower this process's scheduling priority, so drawing never takes a core from the engine.

    On a machine with fewer cores than busy processes the dashboard and the sandbox compete;
    niced, the dashboard draws with what the engine leaves (docs/benchmarks.md, "Dashboard
    attached"). Best effort: where the platform has no ``nice`` (or no autogroups) nothing
    changes.
    """
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(niceness)
    # Linux with autogroups schedules sessions against each other, and a process's nice counts
    # only inside its own session: lower the session's too (the terminal's, where only the
    # dashboard is busy; the sandbox's children run in sessions of their own).
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(f"{niceness}\n")


def calm_the_collector() -> None:
    """Make Python's full garbage collections rare and short in this process.

    A full collection walks every tracked object; with Textual's and the dashboard's own (the
    folded events, the task list) it paused the loop for up to 84 ms during a burst, nine times
    in one, and a key pressed meanwhile waited (docs/benchmarks.md). What exists once the
    imports are done is moved out of the collector's sight (``gc.freeze``: it stays alive for
    the process's life anyway), and a full collection waits for ten times as many younger ones.
    Process-wide, so only for a process that runs the dashboard (not the tests')."""
    gc.collect()
    gc.freeze()
    young, middle, _full = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_GC_EVERY)


def run_dashboard(config: DashboardConfig) -> None:
    """Run the TUI until the operator quits (blocking; Textual's own event loop)."""
    yield_the_cores()
    calm_the_collector()
    DashboardApp(config).run()
