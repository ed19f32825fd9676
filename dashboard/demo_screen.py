"""The demo picker: every fault-injection demo the sandbox offers, with the story it tells."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from dashboard.config import DemoEntry


class DemoScreen(ModalScreen[DemoEntry | None]):
    """Pick a demo (arrows and Enter); its narration then goes to the event log."""

    BINDINGS = [Binding("escape", "dismiss(None)", "back")]

    def __init__(self, demos: tuple[DemoEntry, ...], running: str | None) -> None:
        super().__init__()
        self.demos = demos
        self.running = running

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Demos: each sets up faults, runs registrations and checks the outcome")
            if self.running:
                yield Static(f"[b]{self.running}[/b] is running: wait for its verdict")
            yield OptionList(
                *(Option(f"[b]{d.name}[/b]  {d.title}", id=d.name) for d in self.demos),
                id="demo-list",
            )
            yield Static(id="demo-story")
            yield Static("[dim]enter  run it    esc  back[/dim]")

    def on_mount(self) -> None:
        self._show(0)

    @on(OptionList.OptionHighlighted, "#demo-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show(event.option_index)

    @on(OptionList.OptionSelected, "#demo-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        if self.running is None:
            self.dismiss(self.demos[event.option_index])

    def _show(self, index: int) -> None:
        if 0 <= index < len(self.demos):
            self.query_one("#demo-story", Static).update(self.demos[index].story)
