"""The step detail: every attempt of one step (status code, error code, duration, the wait after
it, an idempotent replay), its results, and the operator's actions on it."""

from __future__ import annotations

import json
from datetime import datetime

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from dashboard.dag_view import error_line, status_line
from dashboard.marks import OUTCOME_STYLES, mark
from dashboard.model import StepSnapshot, TaskModel


def clock(ts: float | None) -> str:
    """``12:04:30.861`` in local time (the operator's wall clock)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]  # noqa: DTZ006 - local on purpose


def attempt_rows(step: StepSnapshot) -> list[tuple[str | Text, ...]]:
    rows: list[tuple[str | Text, ...]] = []
    for bar in step.attempts:
        took = bar.duration_s
        rows.append(
            (
                f"{bar.attempt}/{step.max_attempts}",
                clock(bar.started_at),
                "" if took is None else f"{took * 1000:.0f} ms",
                Text(bar.outcome, OUTCOME_STYLES.get(bar.outcome, "")),
                bar.request or "",
                "" if bar.status is None else str(bar.status),
                bar.error_code or "",
                "" if bar.retry_in_s is None else f"{bar.retry_in_s:.2f} s",
                "replayed" if bar.replayed else "",
                (bar.message or "")[:60],
            )
        )
    return rows


class StepDetailScreen(ModalScreen[str | None]):
    """Dismisses with ``retry`` or ``resolve`` when the operator picks an action, else None."""

    BINDINGS = [
        Binding("escape,q", "dismiss(None)", "back"),
        Binding("r", "act('retry')", "retry step"),
        Binding("R", "act('resolve')", "resolve step"),
    ]

    def __init__(self, model: TaskModel, step: str, now: float, readonly: bool) -> None:
        super().__init__()
        self.model, self.step_name, self.now, self.readonly = model, step, now, readonly

    def compose(self) -> ComposeResult:
        step = self.model.steps[self.step_name]
        m = mark(step.display_state)
        with Vertical(classes="dialog huge", id="step-detail"):
            yield Label(
                Text.assemble(
                    (f"{m.symbol} {step.name}", f"bold {m.style}"),
                    (f"  {m.word}  ·  {status_line(step, self.model.steps, self.now)}", m.style),
                )
            )
            yield Static(
                f"depends on: {', '.join(step.depends_on) or '(none)'}   "
                f"attempts lost to crashed workers: {step.lost}",
                classes="dim",
            )
            if error_line(step):
                yield Static(Text(f"last error: {error_line(step)}", "red"))
            table: DataTable[str | Text] = DataTable(id="attempts", cursor_type="row")
            table.add_columns(
                "#",
                "started",
                "took",
                "outcome",
                "request",
                "status",
                "error",
                "wait after",
                "idempotency",
                "message",
            )
            table.add_rows(attempt_rows(step))
            yield table
            yield Label("results")
            with VerticalScroll(id="results"):
                yield Static(json.dumps(step.results, indent=2) if step.results else "(none yet)")
            keys = "esc back" if self.readonly else "r retry  R resolve  esc back"
            yield Static(f"[dim]{keys}[/dim]")

    def action_act(self, what: str) -> None:
        self.dismiss(what)
