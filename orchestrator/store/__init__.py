"""Persistence behind an interface: the engine never sees SQL."""

from orchestrator.store.base import (
    Claim,
    NewEvent,
    NewStep,
    NewTask,
    StepFailure,
    StepSuccess,
    Store,
)

__all__ = ["Claim", "NewEvent", "NewStep", "NewTask", "StepFailure", "StepSuccess", "Store"]
