"""Add and clear faults per service: a form for one rule, and a menu of one-key presets.

The form builds the same JSON rule the admin API takes (``POST /__admin/faults``) from the fields
that are filled in, and the service judges it: a bad rule shows the service's own error in the
form, never a traceback. The presets are :data:`dashboard.presets.PRESETS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from dashboard.client import Client, DashboardError
from dashboard.presets import PRESETS, Preset
from orchestrator.models import JSON

KINDS = (
    "error",
    "down",
    "latency",
    "rate_limit",
    "lost_response",
    "reset",
    "hang",
    "malformed",
    "missing_fields",
)

#: form field -> (label, the kinds it applies to, how to parse it)
_FIELDS: dict[str, tuple[str, tuple[str, ...], type]] = {
    "status": ("status", ("error", "lost_response", "malformed"), int),
    "probability": ("probability 0-1", KINDS, float),
    "times": ("times (empty: unlimited)", KINDS, int),
    "after": ("after N requests", KINDS, int),
    "delay_ms": ("delay ms", ("latency",), float),
    "jitter_ms": ("jitter ms", ("latency",), float),
    "retry_after_s": ("Retry-After s", ("error",), float),
    "limit": ("limit per window", ("rate_limit",), int),
    "window_s": ("window s", ("rate_limit",), float),
    "hold_ms": ("hold ms", ("hang",), float),
    "fields": ("fields (comma-separated)", ("missing_fields",), str),
}


def build_rule(
    kind: str, values: dict[str, str], method: str, path: str, *, per_key: bool = False
) -> JSON:
    """The rule JSON from the form's text fields; raises ValueError naming a field that is not
    a number. ``per_key``: ``times`` and ``after`` count for each Idempotency-Key on its own
    ("fail every request twice, then let it through")."""
    rule: JSON = {"kind": kind}
    for name, (label, kinds, parse) in _FIELDS.items():
        text = values.get(name, "").strip()
        if not text or kind not in kinds:
            continue
        try:
            rule[name] = (
                [f.strip() for f in text.split(",") if f.strip()] if parse is str else (parse(text))
            )
        except ValueError:
            raise ValueError(f"{label}: {text!r} is not a number") from None
    match: dict[str, Any] = {}
    if method.strip():
        match["method"] = method.strip().upper()
    if path.strip():
        match["path"] = path.strip()
    if match:
        rule["match"] = match
    if per_key:
        rule["per_key"] = True
    return rule


class FaultScreen(ModalScreen[str | None]):
    """The fault form for one service; dismisses with a line saying what was done."""

    BINDINGS = [Binding("escape", "dismiss(None)", "back")]

    def __init__(self, client: Client, services: Sequence[str], service: str | None) -> None:
        super().__init__()
        self.client = client
        self.services = list(services)
        self.service = service or (self.services[0] if self.services else "")

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="fault-form"):
            yield Label("Inject a fault (empty fields take the service's defaults)")
            with Grid(id="fault-grid"):
                yield Label("service")
                yield Select(
                    [(s, s) for s in self.services],
                    value=self.service,
                    id="service",
                    allow_blank=False,
                )
                yield Label("kind")
                yield Select([(k, k) for k in KINDS], value="error", id="kind", allow_blank=False)
                yield Label("match method")
                yield Input(placeholder="any", id="method")
                yield Label("match path")
                yield Input(placeholder="any (a glob: /profiles*)", id="path")
                for name, (label, _kinds, parse) in _FIELDS.items():
                    yield Label(label, id=f"label-{name}")
                    yield Input(id=f"field-{name}", type="integer" if parse is int else "number")
                yield Label("per request key")
                yield Checkbox("times / after", id="per-key")
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Add rule", variant="warning", id="add")
                yield Button("Clear this service", id="clear")
                yield Button("Back", id="back")

    def on_mount(self) -> None:
        self._show_fields("error")

    @on(Select.Changed, "#kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        self._show_fields(str(event.value))

    def _show_fields(self, kind: str) -> None:
        for name, (_label, kinds, _parse) in _FIELDS.items():
            shown = kind in kinds
            self.query_one(f"#label-{name}").display = shown
            self.query_one(f"#field-{name}").display = shown

    def _value(self, selector: str) -> str:
        return str(self.query_one(selector, Select).value)

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#add")
    def _add(self) -> None:
        values = {name: self.query_one(f"#field-{name}", Input).value for name in _FIELDS}
        try:
            rule = build_rule(
                self._value("#kind"),
                values,
                self.query_one("#method", Input).value,
                self.query_one("#path", Input).value,
                per_key=self.query_one("#per-key", Checkbox).value,
            )
        except ValueError as exc:
            self._problem(str(exc))
            return
        self._send(self._value("#service"), rule)

    @on(Button.Pressed, "#clear")
    def _clear(self) -> None:
        self._send(self._value("#service"), None)

    @work(exclusive=True, group="fault-form")
    async def _send(self, service: str, rule: JSON | None) -> None:
        try:
            if rule is None:
                await self.client.clear_faults(service)
                self.dismiss(f"faults cleared on {service}")
            else:
                made = await self.client.add_fault(service, rule)
                self.dismiss(f"{service}: {rule['kind']} fault {made.get('id', '')} added")
        except DashboardError as exc:
            self._problem(f"{service} refused it: {exc}")

    def _problem(self, text: str) -> None:
        self.query_one("#problem", Static).update(text)


class PresetScreen(ModalScreen[Preset | str | None]):
    """One key per preset; ``c`` clears every service's faults."""

    BINDINGS = [
        *(Binding(p.key, f"pick('{p.key}')", p.name) for p in PRESETS),
        Binding("c", "pick('clear')", "clear all"),
        Binding("escape", "dismiss(None)", "back"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("Fault presets")
            for p in PRESETS:
                yield Static(f"[b]{p.key}[/b]  {p.name}: [dim]{p.description}[/dim]")
            yield Static("[b]c[/b]  clear every service's faults")
            yield Static("[dim]esc  back[/dim]")

    def action_pick(self, key: str) -> None:
        if key == "clear":
            self.dismiss("clear")
            return
        self.dismiss(next(p for p in PRESETS if p.key == key))
