"""The event loop the ``interlock`` command runs on: uvloop where it is installed.

The orchestrator process spends a good share of its time in the event loop itself (callbacks,
timers, socket readiness); uvloop's loop, written in C on libuv, does that work for less CPU, so
each registration costs less and more of them fit in a second. ``INTERLOCK_UVLOOP=0`` runs
asyncio's own loop instead (for debugging, or to compare).

It also shortens the interpreter's thread switch interval from 5 ms to 1 ms. The store's writer
thread needs the GIL between SQL statements; while the event loop is busy, each time it asked it
waited up to the full interval, so under load a batch commit took longer and every step waited
for it. The measured effect of both is in docs/benchmarks.md ("What made the difference").
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name(*, use_uvloop: bool) -> str:
    """``uvloop`` or ``asyncio``: the loop :func:`run` uses (``use_uvloop`` is
    :attr:`Settings.uvloop <interlock.settings.Settings.uvloop>`)."""
    if not use_uvloop:
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


SWITCH_INTERVAL_S = 0.001


def run(main: Coroutine[Any, Any, T], *, use_uvloop: bool) -> T:
    """``asyncio.run``, on uvloop unless it is missing or switched off (``use_uvloop=False``)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if loop_name(use_uvloop=use_uvloop) == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
