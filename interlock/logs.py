"""How ``interlock up`` writes its lines: text for a person at a terminal (the default), or JSON
lines for a log collector (``--log-format json`` / ``INTERLOCK_LOG_FORMAT=json``).

In JSON every line is one object with ``at`` (ISO 8601 UTC), ``level``, ``logger`` and
``message``, and, where the line belongs to one, the ``correlation_id``, ``task_id``, ``step`` and
``attempt`` of its step: for a task event they come from the event, for anything logged while a
step runs (the engine's and the handler's own lines) from :data:`orchestrator.log_context.CURRENT`.
A failure's traceback goes in ``exception``, as one string, so a line is always one line.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from orchestrator import codec, log_context
from orchestrator.models import Event

LOG_FORMATS: Final = ("text", "json")
#: The logger event lines are written to in JSON (in text they are printed as before).
EVENTS_LOGGER: Final = "interlock.events"


class JsonLines(logging.Formatter):
    """One JSON object per record, with the running step's context when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        step = log_context.CURRENT.get()
        if step is not None:
            line.update(
                correlation_id=step.correlation_id,
                task_id=step.task_id,
                step=step.step,
                attempt=step.attempt,
            )
        fields = getattr(record, "interlock", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in fields.items() if v is not None})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return codec.dumps(line)


def use_json_lines(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Send every log record, the event lines' too, to ``stream`` (stderr) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def log_event(event: Event, message: str) -> None:
    """An event's line, as a JSON record carrying the event's own task, step and correlation."""
    logging.getLogger(EVENTS_LOGGER).info(
        message,
        extra={
            "interlock": {
                "event": event.type,
                "seq": event.seq,
                "correlation_id": event.correlation_id,
                "task_id": event.task_id,
                "step": event.step_name,
                "attempt": event.attempt,
            }
        },
    )
