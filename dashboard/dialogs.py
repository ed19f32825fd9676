"""Small modal dialogs: confirm an action, ask for a number, give a step's results by hand.

Each dismisses with its answer (or None when the operator backs out with Escape), so the app's
actions read as "ask, then act". Errors from the server are shown by the caller as a toast.
"""

from __future__ import annotations

import json

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from orchestrator.models import JSON


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no, for an action that cannot be undone (cancelling a task)."""

    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", variant="error", id="yes")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class NumberScreen(ModalScreen[int | None]):
    """Ask for a whole number in a range (the size of a burst)."""

    BINDINGS = [Binding("escape", "dismiss(None)", "back")]

    def __init__(self, question: str, default: int, low: int, high: int) -> None:
        super().__init__()
        self.question, self.default, self.low, self.high = question, default, low, high

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            yield Input(placeholder=f"{self.default} (enter takes it)", id="number", type="integer")
            yield Static("", id="problem", classes="problem")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            value = int(event.value) if event.value.strip() else self.default
        except ValueError:
            value = self.low - 1
        if not self.low <= value <= self.high:
            self.query_one("#problem", Static).update(
                f"a whole number from {self.low} to {self.high}, please"
            )
            return
        self.dismiss(value)


class ResolveScreen(ModalScreen[tuple[JSON | None] | None]):
    """Resolve a step by hand: optional results as a JSON object.

    Dismisses with ``(results,)``: ``(None,)`` when left empty (the step's dependents then get
    what the template declares), or None when the operator backs out.
    """

    BINDINGS = [Binding("escape", "dismiss(None)", "back")]

    def __init__(self, task_id: str, step: str) -> None:
        super().__init__()
        self.task_id, self.step = task_id, step

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(f"Resolve {self.step} of …{self.task_id[-6:]} by hand")
            yield Label("Results its dependents get (a JSON object; leave empty for none):")
            yield TextArea("", id="results", language="json")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Resolve", variant="warning", id="resolve")
                yield Button("Back", id="back")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "back":
            self.dismiss(None)
            return
        text = self.query_one("#results", TextArea).text.strip()
        if not text:
            self.dismiss((None,))
            return
        try:
            value = json.loads(text)
        except ValueError as exc:
            self.query_one("#problem", Static).update(f"not valid JSON: {exc}")
            return
        if not isinstance(value, dict):
            self.query_one("#problem", Static).update("the results must be a JSON object {…}")
            return
        self.dismiss((value,))
