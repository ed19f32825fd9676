"""Which step a log line belongs to, for the lines a handler or the engine writes while it runs.

The engine sets :data:`CURRENT` when it starts running a step; each step runs in an asyncio
task of its own, which has its own copy of the context, so the value is that step's for
everything logged inside it (the handler's own logging included) and no other's. A log
formatter (``interlock/logs.py``) adds it to each line; this module holds only the value, so
the core stays free of any logging set-up.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class StepLogContext:
    """The step a log line was written for."""

    correlation_id: str
    task_id: str
    step: str
    attempt: int


#: The running step's context, or None outside any step.
CURRENT: Final[ContextVar[StepLogContext | None]] = ContextVar(
    "interlock_step_log_context", default=None
)
