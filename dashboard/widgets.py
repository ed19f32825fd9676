"""The main screen's panes: the selected task's DAG and timeline, the services, the event log lines.

Each pane draws from the app's models (:class:`~dashboard.model.TaskModel`,
:class:`~dashboard.service_stats.ServiceBoard`) when the app asks it to refresh; none of them
does I/O. The DAG and timeline render at whatever size they get, so the same panes serve a
200x60 terminal and an 80x24 one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.geometry import Region, Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import RichLog, Sparkline, Static

from dashboard.dag_view import layers, render_dag
from dashboard.marks import mark
from dashboard.model import DashEvent, TaskModel
from dashboard.service_stats import ServiceBoard, ServiceHealth
from dashboard.step_detail import clock
from dashboard.task_table import quiet_virtual_size
from dashboard.timeline_view import render_timeline
from orchestrator.event_types import EventType

Now = Callable[[], float]


def same_text(text: Text, drawn: Text | None) -> bool:
    """Whether ``text`` draws what ``drawn`` drew (``Text.__eq__`` ignores the base style)."""
    return drawn is not None and text == drawn and text.style == drawn.style


class DrawnPane(Widget):
    """A pane drawn as one ``Text`` from what it shows (:meth:`draw`). The redraw asks it to
    show its model twice a second; it repaints only when the text it would draw changed: a
    finished task's DAG and timeline stay as they are, and their repaint was a fifth of the
    dashboard's painting in a burst (a DAG 2-3 ms each time at 200x60)."""

    _drawn: Text | None = None

    def draw(self) -> Text:
        raise NotImplementedError

    def repaint_if_changed(self) -> None:
        if not same_text(self.draw(), self._drawn):
            self.refresh()

    def render(self) -> Text:
        # drawn afresh whenever Textual paints (a resize, focus, a dialog closing), and kept
        # as what the screen shows
        self._drawn = self.draw()
        return self._drawn


class DagPane(DrawnPane, can_focus=True):
    """The DAG of the selected task; ← → ↑ ↓ pick a step, enter opens its detail."""

    BINDINGS = [
        Binding("left,h", "move(-1, 0)", "step ←", show=False),
        Binding("right,l", "move(1, 0)", "step →", show=False),
        Binding("up,k", "move(0, -1)", "step ↑", show=False),
        Binding("down,j", "move(0, 1)", "step ↓", show=False),
        Binding("enter", "open", "step detail", show=False),
    ]

    class OpenStep(Message):
        def __init__(self, step: str) -> None:
            super().__init__()
            self.step = step

    def __init__(self, now: Now, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model: TaskModel | None = None
        self.selected: str | None = None
        self.at: float | None = None  #: the replayed moment, or None for now
        self._now = now

    def show(self, model: TaskModel | None, at: float | None = None) -> None:
        self.model, self.at = model, at
        if model is not None and self.selected not in model.steps:
            self.selected = next(iter(model.steps), None)
        self.repaint_if_changed()

    def draw(self) -> Text:
        if self.model is None:
            return Text("pick a task in the list (↑ ↓) to see its DAG", "dim")
        size = self.content_size
        return render_dag(
            self.model,
            size.width,
            size.height,
            self.at if self.at is not None else self._now(),
            self.selected if self.has_focus else None,
        )

    def action_move(self, dx: int, dy: int) -> None:
        if self.model is None or self.selected is None:
            return
        rows = layers({n: s.depends_on for n, s in self.model.steps.items()})
        where = {n: (i, j) for i, row in enumerate(rows) for j, n in enumerate(row)}
        i, j = where[self.selected]
        i = max(0, min(len(rows) - 1, i + dy))
        j = max(0, min(len(rows[i]) - 1, (j if dy == 0 else min(j, len(rows[i]) - 1)) + dx))
        self.selected = rows[i][j]
        self.repaint_if_changed()

    def action_open(self) -> None:
        if self.selected is not None:
            self.post_message(self.OpenStep(self.selected))

    def on_focus(self) -> None:
        self.repaint_if_changed()

    def on_blur(self) -> None:
        self.repaint_if_changed()


class TimelinePane(DrawnPane):
    """The attempt timeline of the selected task."""

    def __init__(self, now: Now, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.model: TaskModel | None = None
        self.at: float | None = None
        self._now = now

    def show(self, model: TaskModel | None, at: float | None = None) -> None:
        self.model, self.at = model, at
        self.repaint_if_changed()

    def draw(self) -> Text:
        if self.model is None:
            return Text("")
        return render_timeline(
            self.model, self.content_size.width, self.at if self.at is not None else self._now()
        )


def service_line(health: ServiceHealth, now: float) -> Text:
    """``billing  ✗ OPEN 23s  12 r/s  40%  5 ms  2 faults``"""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"{health.name:<13} ", "bold")
    if health.reachable is False:
        out.append("? unreachable ", "red")
    elif health.breaker == "open":
        left = max(0.0, (health.open_until or now) - now)
        out.append(f"✗ OPEN {left:.0f}s ", "bold red")
    elif health.breaker == "half_open":
        out.append("◐ half-open ", "yellow")
    else:
        out.append("● ", "green")
    out.append(f"{health.rate(now):>3.0f}/s ")
    errors = health.error_rate(now)
    out.append(f"{errors * 100:>3.0f}%err ", "red" if errors > 0.05 else "")
    latency = health.latency_ms(now)
    out.append("   -ms " if latency is None else f"{latency:>4.0f}ms ")
    if health.rate_limited(now):
        out.append("429 ", "yellow")
    if health.faults:
        kinds = ",".join(sorted({str(f.get("kind")) for f in health.faults}))
        out.append(f"⚡{kinds}", "magenta")
    return out


class ServicesPane(Vertical):
    """One line and one latency sparkline per service."""

    def __init__(self, board: ServiceBoard, now: Now, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.board = board
        self._now = now

    def compose(self) -> ComposeResult:
        for name in self.board.services:
            with Horizontal(classes="service-row"):
                yield FixedLine(id=f"svc-{name}", classes="service-line")
                yield Sparkline([0.0], id=f"spark-{name}", classes="service-spark")

    def redraw(self) -> None:
        now = self._now()
        for name, health in self.board.services.items():
            try:
                line = self.query_one(f"#svc-{name}", FixedLine)
                spark = self.query_one(f"#spark-{name}", Sparkline)
            except Exception:
                continue
            line.show(service_line(health, now))
            spark.data = health.sparkline(now, max(4, spark.size.width or 12))


_STYLE_BY_TYPE = {
    EventType.STEP_COMPLETED: "green",
    EventType.TASK_COMPLETED: "bold green",
    EventType.STEP_RETRY_SCHEDULED: "yellow",
    EventType.STEP_DEFERRED: "magenta",
    EventType.STEP_FAILED: "red",
    EventType.TASK_FAILED: "bold red",
    EventType.SERVICE_CALL_FAILED: "red",
    EventType.STEP_WORKER_LOST: "magenta",
    EventType.BREAKER_OPENED: "bold magenta",
    EventType.BREAKER_HALF_OPEN: "yellow",
    EventType.BREAKER_CLOSED: "green",
}

FAILURE_TYPES = frozenset(
    {
        EventType.STEP_RETRY_SCHEDULED,
        EventType.STEP_FAILED,
        EventType.TASK_FAILED,
        EventType.SERVICE_CALL_FAILED,
        EventType.STEP_WORKER_LOST,
        EventType.STEP_DEFERRED,
        EventType.BREAKER_OPENED,
        EventType.BREAKER_HALF_OPEN,
    }
)


def describe(event: DashEvent) -> str:
    """What the event says, in a few words after its type."""
    d = event.data
    raw_error = d.get("error")
    error: dict[str, Any] = raw_error if isinstance(raw_error, dict) else {}
    if event.type == EventType.STEP_RETRY_SCHEDULED:
        return f"in {float(d.get('delay_s') or 0):.2f} s  {error.get('error_code') or ''}"
    if event.type == EventType.STEP_FAILED:
        return f"{error.get('error_code') or ''}: {error.get('message') or ''}"
    if event.type == EventType.STEP_DEFERRED:
        return f"{d.get('service')} breaker open, {float(d.get('delay_s') or 0):.1f} s"
    if event.type in (EventType.SERVICE_CALL_COMPLETED, EventType.SERVICE_CALL_FAILED):
        status = d.get("status")
        replay = "  replayed" if d.get("replayed") else ""
        code = f"  {d.get('error_code')}" if event.type == EventType.SERVICE_CALL_FAILED else ""
        return (
            f"{d.get('method')} {d.get('path')}  {status if status is not None else '-'}  "
            f"{float(d.get('duration_ms') or 0):.0f} ms{code}{replay}"
        )
    if event.type == EventType.SERVICE_CALL_STARTED:
        return f"{d.get('method')} {d.get('path')}"
    if event.type == EventType.STEP_COMPLETED:
        return f"{float(d.get('duration_s') or 0) * 1000:.0f} ms"
    if event.type.startswith("breaker."):
        return f"{d.get('service')}  {d.get('from')} → {d.get('to')}  failures {d.get('failures')}"
    if event.type == EventType.TASK_FAILED:
        return f"failed steps: {', '.join(d.get('failed_steps') or [])}"
    if event.type == EventType.TASK_COMPLETED:
        raw = d.get("summary")
        summary: dict[str, Any] = raw if isinstance(raw, dict) else {}
        return f"{float(summary.get('total_duration_ms') or 0):.0f} ms"
    return ""


def event_line(event: DashEvent) -> Text:
    style = _STYLE_BY_TYPE.get(event.type, "")  # type: ignore[call-overload]
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"{clock(event.at)} ", "dim")
    out.append(f"{event.type:<23}", style)
    if event.task_id:
        out.append(f" …{event.task_id[-6:]}", "dim")
    if event.step_name:
        out.append(f" {event.step_name}")
    if event.attempt:
        out.append(f" #{event.attempt}", "dim")
    text = describe(event)
    if text:
        out.append(f"  {text}", style)
    return out


def task_mark(state: str) -> Text:
    m = mark(state)
    return Text(f"{m.symbol} {m.word}", m.style)


class EventLog(RichLog):
    """The event log: a ``RichLog`` whose growth repaints it alone, not the whole screen (see
    :func:`dashboard.task_table.quiet_virtual_size`), and whose newest line stays in view when
    the pane gets shorter.

    ``RichLog`` scrolls to its end when it is written to (after the next refresh), not when its
    height changes: a taller timeline (a task loaded) or a shorter terminal then hid the newest
    lines below the pane until the next event, and which of the scroll and the layout came
    first decided what the pane showed.
    """

    virtual_size = quiet_virtual_size()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: the widget's style and width while a paint is under way (None between paints)
        self._paint: tuple[Style, int] | None = None

    def watch_virtual_size(self, size: Size) -> None:
        self._scroll_update(size)

    def render_lines(self, crop: Region) -> list[Strip]:
        # ``RichLog.render_line`` reads the widget's style (a walk up the DOM) and its content
        # region for every line, and a log that scrolls repaints every line in view: once per
        # paint instead (``RichLog._render_line`` still reads the style for a line it has not
        # cut before, the few a scroll brings in; docs/benchmarks.md, "An event costs less to
        # take in")
        self._paint = (self.rich_style, self.scrollable_content_region.width)
        try:
            return super().render_lines(crop)
        finally:
            self._paint = None

    def render_line(self, y: int) -> Strip:
        if self._paint is None:
            return super().render_line(y)
        style, width = self._paint
        scroll_x, scroll_y = self.scroll_offset
        return self._render_line(scroll_y + y, scroll_x, width).apply_style(style)

    def _size_updated(
        self, size: Size, virtual_size: Size, container_size: Size, layout: bool = True
    ) -> bool:
        # Called by each layout with the pane's new size: at its end before, at its end after;
        # a log the operator scrolled up stays where it was. (Textual's ``anchor()`` would do
        # this, but 8.2 computes the end from the size before the layout: right only after a
        # second one.) A private hook, held by tests/dashboard/test_task_table.py.
        at_end = self.scroll_y >= self.max_scroll_y
        resized = super()._size_updated(size, virtual_size, container_size, layout)
        if at_end and self.scroll_y < self.max_scroll_y:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
        return resized


class FixedLine(Static):
    """A line (or a fixed block of lines) the redraw rewrites: the header, the counts, a
    service's line, the task's title. Its size comes from the stylesheet, never from its text.

    ``Static.update`` asks for a layout of the whole screen by default; the redraw updated seven
    of these twice a second, and each layout reflowed and repainted every widget (41 ms a frame
    at 200x60, most of what a key press cost: docs/benchmarks.md, "Dashboard"). :meth:`show`
    does nothing when the text is the one shown, and otherwise repaints this widget alone.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown: Text | None = None

    def show(self, text: Text) -> None:
        if same_text(text, self._shown):
            return
        self._shown = text
        self.update(text, layout=False)
