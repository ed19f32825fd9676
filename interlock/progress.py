"""Progress for the long commands (``interlock bench``, the soak): one updating line on a
terminal, a line now and then otherwise (a pipe, CI), so a long run shows it is alive without
flooding a log.

A command keeps a :class:`Progress` current (cheap: it only stores what it is told) and a
:class:`StatusLine` shows it: redrawn from a timer, never from the hot path it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Final, Protocol, TextIO

#: How often a line is printed when the output is not a terminal.
LINE_EVERY_S: Final = 5.0
#: How often the line is redrawn on a terminal.
REDRAW_EVERY_S: Final = 0.2


class Describable(Protocol):
    def describe(self) -> str: ...


class StatusLine:
    """Shows updates on ``stream`` (stderr by default), and notes that stay."""

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

    def update(self, status: str | Describable) -> None:
        """Show ``status`` if it is time to (a terminal redraws often, a log seldom)."""
        now = self._clock()
        if now - self._shown_at < (REDRAW_EVERY_S if self._tty else LINE_EVERY_S):
            return
        self._shown_at = now
        self._show(status if isinstance(status, str) else status.describe())

    def note(self, text: str) -> None:
        """A line that stays: a kill, a finished phase."""
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


@dataclass
class Progress:
    """Where a long command stands: a phase, and how far through it."""

    phase: str = ""
    done: int = 0
    total: int | None = None
    started: float = field(default_factory=time.monotonic)

    def begin(self, phase: str, total: int | None = None) -> None:
        self.phase, self.done, self.total, self.started = phase, 0, total, time.monotonic()

    def advance(self, n: int = 1) -> None:
        self.done += n

    def describe(self) -> str:
        of = f"/{self.total:,}" if self.total else ""
        count = f": {self.done:,}{of}" if self.done or self.total else ""
        return f"{self.phase}{count}  ({time.monotonic() - self.started:.0f} s)"


@contextlib.asynccontextmanager
async def shown(progress: Progress, line: StatusLine | None) -> AsyncIterator[Progress]:
    """Redraw ``progress`` on ``line`` from a timer while inside (nothing when ``line`` is
    None, for ``--json``)."""
    if line is None:
        yield progress
        return

    async def redraw() -> None:
        while True:
            line.update(progress)
            await asyncio.sleep(REDRAW_EVERY_S)

    task = asyncio.create_task(redraw())
    try:
        yield progress
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        line.close()
