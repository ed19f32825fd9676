"""What the dashboard is attached to, and what it may do: the one object its caller builds.

The dashboard is a client of HTTP APIs only (the orchestrator's and the services' admin API): it
never opens the database and never shares an event loop with the engine. Whoever starts it
(``interlock dashboard``) builds a :class:`DashboardConfig` with the URLs and, when it started
the sandbox itself as child processes, a hook to kill and restart the orchestrator, so the
crash-recovery story can be played from the keyboard.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def _no_services() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class DemoResult:
    """How a demo ended: each check of its verdict (held?, what it claims)."""

    passed: bool
    checks: tuple[tuple[bool, str], ...]


@dataclass(frozen=True, slots=True)
class DemoEntry:
    """A fault-injection demo the dashboard can start (the composition root supplies them: the
    dashboard does not know what a demo does, only how to show it)."""

    name: str
    title: str
    story: str
    #: Runs the demo, calling its argument with each line of narration as it happens.
    run: Callable[[Callable[[str], None]], Awaitable[DemoResult]]


@dataclass(frozen=True, slots=True)
class DashboardConfig:
    """Where the dashboard looks and what it may change."""

    #: The orchestrator's API, e.g. ``http://127.0.0.1:8700``.
    api_url: str
    #: Each mock service's base URL by name (``users``, ``billing``, ...), for its admin API.
    service_urls: Mapping[str, str] = field(default_factory=_no_services)
    #: ``--readonly``: nothing that changes state (submit, faults, retry, resolve, cancel).
    readonly: bool = False
    #: Set when the dashboard's caller runs the orchestrator as a child process: SIGKILL it and
    #: start it again on the same database (the crash-recovery demo). None when attached.
    restart_orchestrator: Callable[[], Awaitable[None]] | None = None
    #: Seed for the Faker registrations the dashboard submits.
    seed: int = 1
    #: Makes the context of one new submission (a Faker registration, from the composition
    #: root: the dashboard does not know what a registration is). None: nothing to submit.
    new_context: Callable[[], dict[str, Any]] | None = None
    #: The template new submissions name.
    template: str = "user_registration"
    #: What the header says it is attached to (``sandbox`` when it started one itself).
    label: str = "attached"
    #: The demos it offers (``D``); they change the sandbox, so none in read-only mode.
    demos: tuple[DemoEntry, ...] = ()
