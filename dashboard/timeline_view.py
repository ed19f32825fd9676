"""The attempt timeline (a Gantt chart) of one task: one row per step, one bar per attempt.

All rows share one time axis, from the task's creation to its end (or now, while it runs), so
the parallel branches' overlap and the backoff gaps are visible at a glance: ``█`` is an attempt,
coloured by its outcome; ``░`` a backoff wait, ``▒`` a deferral by an open breaker. Every
attempt gets at least one cell, however short. Pure, like :mod:`dashboard.dag_view`.
"""

from __future__ import annotations

from rich.text import Text

from dashboard.marks import OUTCOME_STYLES
from dashboard.model import TaskModel

LABEL_W = 24


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else f"{seconds:.1f}s"


def span(model: TaskModel, now: float) -> tuple[float, float]:
    """The time axis: from the task's creation (or first attempt) to its end, or to ``now``
    while it runs (a wait scheduled past now is drawn up to now; the DAG shows its countdown)."""
    start = model.created_at or model.started_at() or now
    if model.completed_at is None:
        end = now
    else:
        ends = [b.ended_at or now for s in model.steps.values() for b in s.attempts]
        end = max([model.completed_at, *ends])
    return start, max(end, start + 0.001)


def render_timeline(model: TaskModel, width: int, now: float) -> Text:
    """The chart in ``width`` columns: a row per step and an axis line."""
    longest = max((len(n) for n in model.steps), default=8)
    label_w = min(LABEL_W, longest, max(8, width // 3))
    bar_w = max(10, width - label_w - 1)
    start, end = span(model, now)
    scale = bar_w / (end - start)

    def col(t: float) -> int:
        return min(bar_w - 1, max(0, int((t - start) * scale)))

    out = Text(no_wrap=True, overflow="crop")
    for i, step in enumerate(model.steps.values()):
        cells = [" "] * bar_w
        styles = [""] * bar_w
        for wait in step.waits:
            a, b = col(wait.start), col(min(wait.end or now, end))
            ch, style = ("░", "yellow dim") if wait.kind == "backoff" else ("▒", "magenta dim")
            for x in range(a, b + 1):
                cells[x], styles[x] = ch, style
        for bar in step.attempts:
            a, b = col(bar.started_at), col(bar.ended_at or now)
            style = OUTCOME_STYLES.get(bar.outcome, "white")
            for x in range(a, max(a, b) + 1):
                cells[x], styles[x] = "█", style
        if i:
            out.append("\n")
        name = step.name if len(step.name) <= label_w else step.name[: label_w - 1] + "…"
        out.append(f"{name:<{label_w}} ", "bold" if step.attempts else "dim")
        run = 0
        for x in range(1, bar_w + 1):
            if x == bar_w or styles[x] != styles[run] or cells[x] != cells[run]:
                out.append("".join(cells[run:x]), styles[run] or None)
                run = x
    out.append("\n")
    out.append(" " * (label_w + 1) + _axis(bar_w, end - start), "dim")
    return out


def _axis(width: int, total_s: float) -> str:
    """Tick labels at the start, the quarters and the end of the axis."""
    line = [" "] * width
    for k in range(5):
        x = min(width - 1, round(k * (width - 1) / 4))
        label = _fmt(total_s * k / 4)
        x0 = max(0, min(width - len(label), x - (0 if k == 0 else len(label) // 2)))
        if k == 4:
            x0 = width - len(label)
        if all(c == " " for c in line[max(0, x0 - 1) : x0 + len(label) + 1]):
            line[x0 : x0 + len(label)] = label
    return "".join(line)
