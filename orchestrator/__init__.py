"""Interlock's durable, SQL-driven workflow engine.

The core (engine, dag, retry, models, templates, errors, clock, handlers) imports no aiohttp,
aiosqlite or Textual: it talks to a :class:`~orchestrator.store.base.Store`, a
:class:`~orchestrator.handlers.HandlerRegistry` and a :class:`~orchestrator.clock.Clock`.
"""

from orchestrator.errors import (
    ContextValidationError,
    InterlockError,
    PermanentError,
    RetryableError,
    StepError,
    TemplateError,
)
from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.models import StepState, TaskState

__all__ = [
    "ContextValidationError",
    "HandlerRegistry",
    "InterlockError",
    "PermanentError",
    "RetryableError",
    "StepError",
    "StepInput",
    "StepState",
    "TaskState",
    "TemplateError",
]
