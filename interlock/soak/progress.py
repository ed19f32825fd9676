"""The soak's progress while it runs: one updating line on a terminal, a line now and then
otherwise (a pipe, CI), so a long run shows it is alive without flooding a log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TextIO

#: How often a line is printed when the output is not a terminal.
LINE_EVERY_S: Final = 5.0
#: How often the line is redrawn on a terminal.
REDRAW_EVERY_S: Final = 0.2


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
    #: Whether the orchestrator is down (killed, not answering yet).
    down: bool
    #: The services whose circuit breaker is open or half-open (their steps wait).
    open_breakers: tuple[str, ...] = ()

    def describe(self) -> str:
        down = " (orchestrator down)" if self.down else ""
        breakers = f", breaker open: {', '.join(self.open_breakers)}" if self.open_breakers else ""
        return (
            f"soak {self.elapsed_s:6.1f} s: submitted {self.acknowledged}/{self.registrations}, "
            f"complete {self.complete}, failed {self.failed}, running {self.running}, "
            f"kills {self.kills_done}/{self.kills}{breakers}{down}"
        )


class StatusLine:
    """Shows :class:`SoakStatus` updates on ``stream`` (stderr by default), and notes."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream or sys.stderr
        self._clock = clock
        self._tty = self._stream.isatty() if tty is None else tty
        self._shown_at = -float("inf")
        self._width = 0

    def update(self, status: SoakStatus) -> None:
        """Show ``status`` if it is time to (a terminal redraws often, a log seldom)."""
        now = self._clock()
        if now - self._shown_at < (REDRAW_EVERY_S if self._tty else LINE_EVERY_S):
            return
        self._shown_at = now
        self._show(status.describe())

    def note(self, text: str) -> None:
        """A line that stays: a kill, say."""
        self._clear()
        self._stream.write(f"{text}\n")
        self._stream.flush()

    def close(self) -> None:
        """End the updating line, so what follows starts on a line of its own."""
        self._clear()

    def _show(self, text: str) -> None:
        if not self._tty:
            self._stream.write(f"{text}\n")
        else:
            self._stream.write(f"\r{text.ljust(self._width)}")
            self._width = len(text)
        self._stream.flush()

    def _clear(self) -> None:
        if self._tty and self._width:
            self._stream.write(f"\r{' ' * self._width}\r")
            self._width = 0
