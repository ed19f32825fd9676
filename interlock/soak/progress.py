"""The soak's progress while it runs: :class:`SoakStatus`, shown by the status line every long
command uses (:class:`interlock.progress.StatusLine`: one updating line on a terminal, a line
now and then otherwise)."""

from __future__ import annotations

from dataclasses import dataclass

from interlock.progress import StatusLine

__all__ = ["SoakStatus", "StatusLine"]


@dataclass(frozen=True, slots=True)
class SoakStatus:
    """Where a running soak stands."""

    elapsed_s: float
    registrations: int
    #: Registrations the API has acknowledged so far.
    acknowledged: int
    complete: int
    failed: int
    #: Tasks pending or in progress, as last counted.
    running: int
    kills_done: int
    kills: int
    #: The orchestrator workers killed and not answering yet (``orchestrator`` on SQLite).
    down: tuple[str, ...]
    #: The services whose circuit breaker is open or half-open (their steps wait).
    open_breakers: tuple[str, ...] = ()

    def describe(self) -> str:
        down = f" ({', '.join(self.down)} down)" if self.down else ""
        breakers = f", breaker open: {', '.join(self.open_breakers)}" if self.open_breakers else ""
        return (
            f"soak {self.elapsed_s:6.1f} s: submitted {self.acknowledged}/{self.registrations}, "
            f"complete {self.complete}, failed {self.failed}, running {self.running}, "
            f"kills {self.kills_done}/{self.kills}{breakers}{down}"
        )
