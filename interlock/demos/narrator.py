"""The events of a demo's registrations, told in plain words as they arrive.

One sentence per event worth a person's attention: a retry and when it will run, a deferral by
an open breaker (once per step, not every time it is held back again), a breaker opening or
closing, an idempotent replay, a verified 409, a crash noticed, a registration done or failed.
A registration is named by its person (``Ada Lovelace``), not by its task id.

With many registrations (a burst) the per-registration sentences stop after the first
:attr:`Narrator.detail_tasks` people, and a line of progress says how many have ended instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from dashboard.model import DashEvent
from orchestrator.event_types import EventType

#: Seconds between two progress lines once the per-registration sentences have stopped.
PROGRESS_EVERY_S: Final = 2.0
#: The events a progress line reports on.
_PROGRESS: Final = frozenset(
    {
        EventType.TASK_COMPLETED,
        EventType.TASK_FAILED,
        EventType.TASK_CANCELLED,
        EventType.STEP_WORKER_LOST,
    }
)


class Narrator:
    """Turns events into sentences for ``say``."""

    def __init__(self, say: Callable[[str], None], detail_tasks: int = 12) -> None:
        self._say = say
        self.detail_tasks = detail_tasks
        self._names: dict[str, str] = {}
        self._deferred: set[tuple[str, str]] = set()
        self._ended = 0
        self._lost = 0
        self._lost_told = 0
        self._last_progress = 0.0

    def who(self, task_id: str | None) -> str:
        return self._names.get(task_id or "", "a registration")

    def on_event(self, e: DashEvent) -> None:
        if e.type == EventType.TASK_CREATED and e.task_id is not None:
            user = e.data.get("context", {}).get("user_info", {})
            self._names[e.task_id] = str(user.get("name") or user.get("email") or e.task_id)
            return
        if e.type.startswith("breaker."):
            self._breaker(e)
            return
        if e.type in (EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED):
            self._ended += 1
        if e.type == EventType.STEP_WORKER_LOST:
            self._lost += 1
        detailed = e.task_id in self._names and len(self._names) <= self.detail_tasks
        if detailed:
            sentence = self.sentence(e)
            if sentence:
                self._say(sentence)
        elif e.type in _PROGRESS and time.monotonic() - self._last_progress >= PROGRESS_EVERY_S:
            self.progress()

    def progress(self) -> None:
        """One line for a burst: how many have ended, and what a crash cut short."""
        self._last_progress = time.monotonic()
        line = f"{self._ended} of {len(self._names)} registrations have ended"
        if self._lost > self._lost_told:
            line += (
                f"; {self._lost} steps were running when the orchestrator died: they run again,"
                " and those attempts do not count against them"
            )
            self._lost_told = self._lost
        self._say(line)

    def sentence(self, e: DashEvent) -> str | None:
        """The sentence for one event of a registration, or None for one not worth it."""
        who, step = self.who(e.task_id), e.step_name
        error = e.data.get("error") or {}
        code = error.get("error_code") or error.get("kind") or "an error"
        match e.type:
            case EventType.STEP_RETRY_SCHEDULED:
                return (
                    f"{who}: {step} attempt {e.attempt} failed ({code}); attempt "
                    f"{(e.attempt or 0) + 1} in {float(e.data.get('delay_s', 0)):.1f} s"
                )
            case EventType.STEP_DEFERRED:
                key = (e.task_id or "", step or "")
                if key in self._deferred:
                    return None
                self._deferred.add(key)
                return (
                    f"{who}: {step} held back, {e.data.get('service')}'s breaker is "
                    f"{e.data.get('breaker', 'open')}: it waits "
                    f"{float(e.data.get('delay_s', 0)):.1f} s without spending an attempt"
                )
            case EventType.SERVICE_CALL_COMPLETED if e.data.get("replayed"):
                return (
                    f"{who}: {e.data.get('service')} replayed its first answer to "
                    f"{e.data.get('method')} {e.data.get('path')} (same Idempotency-Key): "
                    "the work is not done twice"
                )
            case EventType.SERVICE_CALL_COMPLETED if e.data.get("status") == 409:
                return (
                    f"{who}: {e.data.get('service')} answered 409 to {e.data.get('method')} "
                    f"{e.data.get('path')}: checking that the existing record is this person's"
                )
            case EventType.STEP_WORKER_LOST:
                return (
                    f"{who}: {step} was running when its orchestrator died: it runs again, "
                    "and the lost attempt does not count against it"
                )
            case EventType.STEP_DEGRADED:
                return f"{who}: {step} failed for good ({code}); going on without it (degraded)"
            case EventType.STEP_FAILED:
                return f"{who}: {step} failed for good ({code}: {error.get('message', '')})"
            case EventType.STEP_RETRY_REQUESTED:
                return f"{who}: an operator asked for {step} to run again"
            case EventType.TASK_COMPLETED:
                degraded = e.data.get("degraded_steps") or []
                extra = f", degraded: {', '.join(degraded)}" if degraded else ""
                return f"{who}: registration complete{extra}"
            case EventType.TASK_FAILED:
                return f"{who}: registration failed ({', '.join(e.data.get('failed_steps', []))})"
        return None

    def _breaker(self, e: DashEvent) -> None:
        service = e.data.get("service")
        match e.type:
            case EventType.BREAKER_OPENED:
                self._say(
                    f"⚡ {service}'s circuit breaker opened after {e.data.get('failures')} "
                    "failures in a row: its calls wait instead of piling on"
                )
            case EventType.BREAKER_HALF_OPEN:
                self._say(f"{service}'s breaker is half-open: one probe call may go")
            case EventType.BREAKER_CLOSED:
                self._say(f"✓ {service}'s breaker closed: calls flow again")
