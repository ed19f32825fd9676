"""Step handlers: async functions registered in code by name, never imported from YAML."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.models import JSON


class StepEvents(Protocol):
    """Lets a running handler add its own events (e.g. ``service_call.started``) to the log."""

    async def emit(self, event_type: str, data: JSON) -> None: ...


class _NoEvents:
    async def emit(self, event_type: str, data: JSON) -> None:
        return None


# Not frozen: built for every transition, and a frozen one is slower to construct
# (docs/benchmarks.md, "Measured choices in the code").
@dataclass(slots=True)
class StepInput:
    """What a handler receives for one attempt."""

    task_id: str
    task_name: str
    step_name: str
    context: JSON  #: the task's validated context, defaults applied
    dependency_results: Mapping[str, JSON]  #: results of the steps it depends on, by name
    handler_config: JSON  #: the step's ``handler_config`` from the template
    correlation_id: str
    attempt: int  #: 1-based
    max_attempts: int
    events: StepEvents = field(default_factory=_NoEvents)


Handler = Callable[[StepInput], Awaitable[JSON | None]]


class HandlerRegistry:
    """Maps handler names used in templates to the async functions that run them."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, handler: Handler) -> None:
        if not name or not isinstance(name, str):
            raise ValueError("a handler name must be a non-empty string")
        if name in self._handlers:
            raise ValueError(f"handler {name!r} is already registered")
        self._handlers[name] = handler

    def handler(self, name: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register`."""

        def decorate(fn: Handler) -> Handler:
            self.register(name, fn)
            return fn

        return decorate

    def get(self, name: str) -> Handler:
        try:
            return self._handlers[name]
        except KeyError:
            raise KeyError(f"no handler registered as {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __iter__(self) -> Iterator[str]:
        return iter(self._handlers)

    def names(self) -> frozenset[str]:
        return frozenset(self._handlers)
