"""What ``interlock up`` prints while it runs: a line per notable event, and the final tally.

Text by default; after :func:`use_json`, every line is a JSON log record instead
(``interlock/logs.py``): the URLs, the event lines (with their task, step and correlation id),
the warnings and the tally.
"""

from __future__ import annotations

import logging
import sys
from contextlib import aclosing
from typing import Any

from interlock.logs import log_event, use_json_lines
from interlock.sandbox import Orchestrator
from orchestrator.event_types import BREAKER_EVENTS, EventType
from orchestrator.ids import short_id
from orchestrator.models import Event

#: Event types worth a line on the console (service calls and starts would drown the rest).
PRINTED = frozenset(
    {t for t in EventType if t.value.startswith("task.")}
    | {
        EventType.STEP_FAILED,
        EventType.STEP_DEGRADED,
        EventType.STEP_RETRY_SCHEDULED,
        EventType.STEP_DEFERRED,
    }
    | BREAKER_EVENTS
)


_log = logging.getLogger("interlock.up")
_json = False


def use_json() -> None:
    """From now on, lines are JSON log records on stderr."""
    global _json
    _json = True
    use_json_lines()


def say(text: str, *, warning: bool = False) -> None:
    """One line for the person (or the log collector) watching ``interlock up``."""
    if _json:
        _log.log(logging.WARNING if warning else logging.INFO, text)
    else:
        print(text, file=sys.stderr if warning else sys.stdout, flush=True)


async def print_events(orch: Orchestrator) -> None:
    """A line per printed event from now on; a burst the console falls behind on is re-read."""
    async with aclosing(orch.engine.follow(after=None)) as events:
        async for event in events:
            if event is not None and event.type in PRINTED:
                if _json:
                    log_event(event, " ".join(describe(event).split()))
                else:
                    print(describe(event), flush=True)


def describe(event: Event) -> str:
    task = short_id(event.task_id or "")
    step = f" {event.step_name}" if event.step_name else ""
    attempt = f" #{event.attempt}" if event.attempt else ""
    extra = ""
    data: dict[str, Any] = event.data
    if "error" in data and isinstance(data["error"], dict):
        extra = f"  {data['error'].get('error_code')}: {str(data['error'].get('message'))[:80]}"
    if "delay_s" in data:
        extra += f"  (again in {data['delay_s']:.2f} s)"
    if "failed_steps" in data:
        extra = f"  failed: {', '.join(data['failed_steps'])}"
    summary = data.get("summary")
    if event.type == EventType.TASK_COMPLETED and isinstance(summary, dict):
        extra = (
            f"  {summary.get('total_duration_ms')} ms, "
            f"{summary.get('parallel_saved_ms')} ms saved by running branches in parallel"
        )
        if data.get("degraded_steps"):
            extra += f"; degraded: {', '.join(data['degraded_steps'])}"
    if event.type in BREAKER_EVENTS:
        extra = f"  {data.get('service')}: {data.get('from')} -> {data.get('to')}"
    return f"{event.seq:>6} {task:<8} {event.type:<22}{step}{attempt}{extra}"


async def print_summary(orch: Orchestrator) -> None:
    counts = {s.value: n for s, n in (await orch.engine.task_counts()).by_state.items() if n}
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    blank = "" if _json else "\n"  # a terminal gets the tally a line apart
    say(f"{blank}{sum(counts.values())} tasks in the database: {summary or 'none'}")
