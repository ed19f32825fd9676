"""The selected task's DAG as text: layers from the template, boxes, box-drawing edges.

Any template, not a drawing of fixed boxes: steps are put in layers by their longest path from a
root (a step sits one layer below its deepest parent), each layer is a row of boxes centred in
equal slots, and between two layers one "bus" row joins every parent to its children with
box-drawing characters, so fan-out and convergence are visible. An edge that skips a layer is
not drawn through the boxes in between; the child's box names that parent instead
(``also after: …``).

How much a box says adapts to the room: three lines (state and name, attempt and what it waits
for, the last error) when the height allows, fewer when not, and one line per step with no boxes
at all when even that does not fit. Pure: a function of a :class:`~dashboard.model.TaskModel`,
the size and the time, giving a :class:`rich.text.Text`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text

from dashboard.marks import Mark, mark
from dashboard.model import DEFERRED, StepSnapshot, TaskModel
from orchestrator.models import DONE_STEP_STATES, FAILED_STEP_STATES, StepState


def layers(depends_on: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Steps by layer (longest path from a root), in the template's order within a layer."""
    depth: dict[str, int] = {}

    def visit(name: str, seen: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        parents = [p for p in depends_on.get(name, ()) if p in depends_on and p not in seen]
        level = 1 + max((visit(p, seen | {name}) for p in parents), default=-1)
        depth[name] = level
        return level

    for name in depends_on:
        visit(name, frozenset())
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in depends_on:
        out[depth[name]].append(name)
    return out


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min"


def status_line(step: StepSnapshot, steps: Mapping[str, StepSnapshot], now: float) -> str:
    """The second line of a node: attempt k/N and what the step is doing or waiting for."""
    state = step.display_state
    budget = f"{step.attempt}/{step.max_attempts}"
    last = step.attempts[-1] if step.attempts else None
    if state == StepState.IN_PROGRESS and last is not None:
        return f"{budget}  running {_duration(now - last.started_at)}"
    if state == DEFERRED:
        left = max(0.0, (step.next_attempt_at or now) - now)
        return f"{budget}  {step.deferred_by} breaker open, {left:.1f} s"
    if state == StepState.WAITING_FOR_RETRY:
        left = max(0.0, (step.next_attempt_at or now) - now)
        return f"{budget}  retry in {left:.1f} s"
    if state == StepState.COMPLETE:
        took = last.duration_s if last is not None else None
        extra = {"already_exists": "  already exists", "replayed": "  replayed"}.get(
            step.idempotent or "", ""
        )
        return f"{budget}  {_duration(took) if took is not None else ''}{extra}"
    if state == StepState.RESOLVED_MANUALLY:
        return "resolved by operator"
    if state == StepState.DEGRADED:
        return f"{budget}  degraded, fallback used"
    if state == StepState.PENDING:
        failed = [p for p in step.depends_on if steps[p].state in FAILED_STEP_STATES]
        if failed:
            return "blocked: " + ", ".join(_short(p) for p in failed) + " failed"
        if any(steps[p].state == StepState.PENDING and _blocked(p, steps) for p in step.depends_on):
            return "blocked upstream"
        waiting = [p for p in step.depends_on if steps[p].state not in DONE_STEP_STATES]
        if waiting:
            return "waits for " + ", ".join(_short(p) for p in waiting)
        return "ready" if step.attempt == 0 else f"{budget}  ready"
    if state == StepState.ERROR:
        code = (step.last_error or {}).get("error_code") or "failed"
        return f"{budget}  {code}"
    return f"{budget}  {mark(state).word}"


def _blocked(name: str, steps: Mapping[str, StepSnapshot]) -> bool:
    """Whether a failed step lies upstream of ``name`` (it cannot run until an operator acts)."""
    parents = steps[name].depends_on
    return any(
        steps[p].state in FAILED_STEP_STATES
        or (steps[p].state == StepState.PENDING and _blocked(p, steps))
        for p in parents
    )


def error_line(step: StepSnapshot) -> str:
    """The third line of a node: the last error in short, when there is one."""
    error = step.last_error
    if not error or (step.state in DONE_STEP_STATES and step.state != StepState.DEGRADED):
        return ""
    status = error.get("http_status")
    message = str(error.get("message") or error.get("error_code") or "")
    return f"HTTP {status}: {message}" if status else message


_VERBS = frozenset({"setup", "initialize", "send", "update", "create"})
_NOUNS = frozenset({"profile", "sequence", "account", "status"})


def _short(name: str) -> str:
    """``setup_billing_profile`` -> ``billing``: the step's name without its leading verb and
    trailing generic noun, for "waits for billing"; ``branch_0`` stays ``branch_0``."""
    words = name.split("_")
    while len(words) > 1 and words[0] in _VERBS:
        words = words[1:]
    while len(words) > 1 and words[-1] in _NOUNS:
        words = words[:-1]
    return "_".join(words)


@dataclass
class _Canvas:
    width: int
    height: int

    def __post_init__(self) -> None:
        self.chars = [[" "] * self.width for _ in range(self.height)]
        self.styles: list[list[str]] = [[""] * self.width for _ in range(self.height)]

    def put(self, x: int, y: int, text: str, style: str = "") -> None:
        if not 0 <= y < self.height:
            return
        for i, ch in enumerate(text):
            if 0 <= x + i < self.width:
                self.chars[y][x + i] = ch
                self.styles[y][x + i] = style

    def get(self, x: int, y: int) -> str:
        return self.chars[y][x] if 0 <= y < self.height and 0 <= x < self.width else " "

    def text(self) -> Text:
        out = Text(no_wrap=True, overflow="crop")
        for y in range(self.height):
            if y:
                out.append("\n")
            row, styles = self.chars[y], self.styles[y]
            end = len("".join(row).rstrip())
            start = 0
            for x in range(1, end + 1):
                if x == end or styles[x] != styles[start]:
                    out.append("".join(row[start:x]), styles[start] or None)
                    start = x
        return out


_LIGHT = ("┌", "┐", "└", "┘", "─", "│")
_HEAVY = ("┏", "┓", "┗", "┛", "━", "┃")  # the picked step

_JOINTS = {
    # (up, down, left, right) -> character
    (True, True, True, True): "┼",
    (False, True, True, True): "┬",
    (True, False, True, True): "┴",
    (True, True, False, True): "├",
    (True, True, True, False): "┤",
    (False, True, False, True): "┌",
    (False, True, True, False): "┐",
    (True, False, False, True): "└",
    (True, False, True, False): "┘",
    (True, True, False, False): "│",
    (False, False, True, True): "─",
}


def render_dag(
    model: TaskModel, width: int, height: int, now: float, selected: str | None = None
) -> Text:
    """The DAG of ``model`` in at most ``width`` by ``height`` cells."""
    steps = model.steps
    if not steps or width < 10 or height < 1:
        return Text("no steps")
    rows = layers({n: s.depends_on for n, s in steps.items()})
    buses = len(rows) - 1
    for boxed, lines in ((True, 3), (True, 2), (True, 1), (False, 2), (False, 1)):
        if len(rows) * (lines + 2 * boxed) + buses <= height:
            return _drawn(model, rows, width, lines, now, selected, boxed=boxed)
    return _listed(model, rows, width, height, now, selected)


def _drawn(
    model: TaskModel,
    rows: list[list[str]],
    width: int,
    lines: int,
    now: float,
    selected: str | None,
    *,
    boxed: bool,
) -> Text:
    """Nodes in layers joined by bus rows; each node a box, or (short of room) its bare lines."""
    steps = model.steps
    box_h = lines + 2 if boxed else lines
    canvas = _Canvas(width, len(rows) * box_h + len(rows) - 1)
    centres: dict[str, int] = {}
    layer_of = {name: i for i, row in enumerate(rows) for name in row}
    for i, row in enumerate(rows):
        slot = min(width // len(row), 44)
        offset = (width - slot * len(row)) // 2
        widest = max(len(line) for n in row for line in _content(steps[n], model, now)[:lines])
        pad = 4 if boxed else 1  # borders and padding
        box_w = max(8, min(slot - 1, max(widest + pad, 30 if boxed else 0)))
        y = i * (box_h + 1)
        for j, name in enumerate(row):
            centres[name] = offset + j * slot + slot // 2
            x = centres[name] - box_w // 2
            if boxed:
                _box(canvas, x, y, box_w, lines, steps[name], model, now, name == selected)
            else:
                _bare(canvas, x, y, box_w, lines, steps[name], model, now, name == selected)
            skipped = [p for p in steps[name].depends_on if layer_of.get(p, i - 1) < i - 1]
            if skipped and lines >= 2 and boxed:
                canvas.put(x + 2, y + box_h - 1, f" also after: {', '.join(skipped)} "[: box_w - 4])
    for i in range(len(rows) - 1):
        _bus(canvas, i * (box_h + 1) + box_h, rows[i], rows[i + 1], steps, centres)
    return canvas.text()


def _box(
    canvas: _Canvas,
    x: int,
    y: int,
    w: int,
    lines: int,
    step: StepSnapshot,
    model: TaskModel,
    now: float,
    selected: bool,
) -> None:
    m = _mark_of(step)
    border = "bold white" if selected else m.style
    tl, tr, bl, br, hz, vt = _HEAVY if selected else _LIGHT
    canvas.put(x, y, tl + hz * (w - 2) + tr, border)
    for k in range(lines):
        canvas.put(x, y + 1 + k, vt + " " * (w - 2) + vt, border)
    canvas.put(x, y + lines + 1, bl + hz * (w - 2) + br, border)
    inner = w - 4
    content = _content(step, model, now)
    for k in range(lines):
        style = f"bold {m.style}" if k == 0 else (m.style if k == 1 else "red")
        canvas.put(x + 2, y + 1 + k, _fit(content[k], inner), style)


def _bare(
    canvas: _Canvas,
    x: int,
    y: int,
    w: int,
    lines: int,
    step: StepSnapshot,
    model: TaskModel,
    now: float,
    selected: bool,
) -> None:
    """A node without a box: its lines centred on the node's column (the picked one reversed)."""
    m = _mark_of(step)
    for k, line in enumerate(_content(step, model, now)[:lines]):
        text = _fit(line, w)
        left = x + (w - len(text)) // 2
        style = f"bold {m.style}" if k == 0 else m.style
        canvas.put(left, y + k, text, f"{style} reverse" if selected and k == 0 else style)


def _mark_of(step: StepSnapshot) -> Mark:
    """The step's mark; a step the service had done before (already exists) has its own."""
    if step.display_state == StepState.COMPLETE and step.idempotent == "already_exists":
        return mark("already_exists")
    return mark(step.display_state)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def _content(step: StepSnapshot, model: TaskModel, now: float) -> list[str]:
    symbol = _mark_of(step).symbol
    return [f"{symbol} {step.name}", status_line(step, model.steps, now), error_line(step)]


def _bus(
    canvas: _Canvas,
    y: int,
    parents: list[str],
    children: list[str],
    steps: Mapping[str, StepSnapshot],
    centres: Mapping[str, int],
) -> None:
    """One row joining each parent (above) to its children (below) in the next layer."""
    ups = {centres[p] for p in parents if any(p in steps[c].depends_on for c in children)}
    downs = {centres[c] for c in children if any(p in steps[c].depends_on for p in parents)}
    if not ups or not downs:
        return
    lo, hi = min(ups | downs), max(ups | downs)
    for x in range(lo, hi + 1):
        key = (x in ups, x in downs, x > lo, x < hi)
        canvas.put(x, y, _JOINTS.get(key, "│" if key[0] or key[1] else "─"), "bright_black")
    # the boxes' own borders get the joints where the lines meet them
    for x in ups:
        if canvas.get(x, y - 1) in "─━":
            canvas.put(x, y - 1, "┬", canvas.styles[y - 1][x])
    for x in downs:
        if canvas.get(x, y + 1) in "─━":
            canvas.put(x, y + 1, "┴", canvas.styles[y + 1][x])


def _listed(
    model: TaskModel,
    rows: list[list[str]],
    width: int,
    height: int,
    now: float,
    selected: str | None,
) -> Text:
    """One line per step, indented by layer: for a box too small for boxes."""
    out = Text(no_wrap=True, overflow="crop")
    count = 0
    for depth, row in enumerate(rows):
        for name in row:
            if count >= height:
                return out
            step = model.steps[name]
            m = mark(step.display_state)
            if count:
                out.append("\n")
            pointer = "▶" if name == selected else " "
            out.append(f"{pointer}{'  ' * depth}{m.symbol} {name}", f"bold {m.style}")
            out.append(f"  {status_line(step, model.steps, now)}"[: max(0, width)], m.style)
            count += 1
    return out
