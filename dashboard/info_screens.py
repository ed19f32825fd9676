"""Help (every key and the meaning of every mark) and analytics (how each step performs)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from dashboard.client import Client, DashboardError
from dashboard.marks import MARKS
from orchestrator.models import JSON

KEYS: Sequence[tuple[str, str]] = (
    ("↑ ↓ / enter", "pick a task; enter shows its DAG (on a small screen)"),
    ("tab", "move between the task list, the DAG and the event log"),
    ("← → (DAG)", "pick a step; enter or d opens its detail"),
    ("1 2 3", "small screen: tasks / the task / events"),
    ("s", "filter the task list by state (cycles)"),
    ("/", "find a task by id or person"),
    ("m", "load older tasks"),
    ("l", "event log filter: all / failures / this task / this step (any task) / correlation id"),
    ("n  b", "submit one registration / a burst of N"),
    ("f  p", "fault form / fault presets"),
    ("r  R  x", "retry the step / resolve it / cancel the task"),
    ("K", "kill the orchestrator (SIGKILL) and restart it (when the dashboard started it)"),
    ("D", "run a demo: faults, registrations, narration in the event log, a checked verdict"),
    ("[ ]  { }", "replay: one event back / forward; to the start / back to live"),
    ("P  >", "replay: play / pause; speed x1 x4 x16"),
    ("a", "analytics per step"),
    ("space", "pause the live view"),
    ("ctrl+p", "command palette"),
    ("q", "quit (stops what the dashboard started)"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss(None)", "back")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog huge"):
            yield Label("Keys")
            for key, what in KEYS:
                yield Static(Text.assemble((f"{key:<14}", "bold"), what))
            yield Label("Marks (colour is never the only signal)")
            seen: set[str] = set()
            for state, m in MARKS.items():
                if m.word in seen:
                    continue
                seen.add(m.word)
                yield Static(
                    Text.assemble(
                        (f" {m.symbol} ", f"bold {m.style}"), (m.word, m.style), f"   ({state})"
                    )
                )
            yield Static(
                Text.assemble(
                    ("█", "green"),
                    " attempt  ",
                    ("░", "yellow dim"),
                    " backoff wait  ",
                    ("▒", "magenta dim"),
                    " deferred by a breaker (timeline)",
                )
            )


def analytics_rows(steps: Sequence[JSON]) -> list[tuple[str, ...]]:
    return [
        (
            str(s.get("workflow")),
            str(s.get("step_name")),
            str(s.get("executions")),
            f"{float(s.get('mean_duration_ms') or 0):.1f}",
            f"{float(s.get('p95_duration_ms') or 0):.1f}",
            f"{float(s.get('retry_rate') or 0) * 100:.1f} %",
            f"{float(s.get('error_rate') or 0) * 100:.1f} %",
        )
        for s in steps
    ]


class AnalyticsScreen(ModalScreen[None]):
    """``GET /analytics/bottlenecks``, re-read every two seconds while it is open."""

    BINDINGS = [Binding("escape,q,a", "dismiss(None)", "back")]

    def __init__(self, client: Client, saved: str) -> None:
        super().__init__()
        self.client = client
        self.saved = saved

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog huge"):
            yield Label("Analytics per step (slowest mean first)")
            table: DataTable[str] = DataTable(id="analytics")
            table.add_columns(
                "workflow", "step", "attempts", "mean ms", "p95 ms", "retried", "attempts failed"
            )
            yield table
            yield Static("", id="openings")
            yield Static(self.saved, id="saved")
            yield Static("", id="problem", classes="problem")

    def on_mount(self) -> None:
        self.load()
        self.set_interval(2.0, self.load)

    @work(exclusive=True, group="analytics")
    async def load(self) -> None:
        try:
            report = await self.client.bottlenecks()
        except DashboardError as exc:
            self.query_one("#problem", Static).update(str(exc))
            return
        table = self.query_one("#analytics", DataTable)
        table.clear()
        table.add_rows(analytics_rows(report.get("steps", [])))
        openings = report.get("breaker_openings") or {}
        said = ", ".join(f"{svc} {n}x" for svc, n in openings.items()) or "none"
        self.query_one("#openings", Static).update(f"breaker openings: {said}")
