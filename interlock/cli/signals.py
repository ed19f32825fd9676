"""How a command that started child processes ends when it is told to stop.

SIGTERM (``kill``, ``timeout``, a CI runner) and SIGHUP (the terminal went away) end Python at
once by default, without its ``finally`` blocks: a command that had started a sandbox (the
dashboard, a benchmark, the soak) left its services and orchestrator running.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Final

#: The signals that would end Python at once.
EXIT_SIGNALS: Final = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def exit_on_signals() -> Iterator[None]:
    """While inside, SIGTERM and SIGHUP raise :class:`SystemExit` (status 128 + the signal), so
    the ``finally`` that stops the children runs; a second one is ignored until it has."""

    def leave(signum: int, frame: FrameType | None) -> None:
        for sig in EXIT_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, leave) for sig in EXIT_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
