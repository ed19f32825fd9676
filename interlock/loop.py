"""The event loop the ``interlock`` command runs on: uvloop where it is installed.

The orchestrator process spends about a fifth of its time in the event loop itself (callbacks,
timers, socket readiness). uvloop's loop, written in C on libuv, cut the CPU per registration by
12-15 % and raised registrations/s by 14-18 % in interleaved runs on the project's machine.
``INTERLOCK_UVLOOP=0`` runs asyncio's own loop instead (for debugging, or to compare).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_name() -> str:
    """``uvloop`` or ``asyncio``: the loop :func:`run` uses."""
    if os.environ.get("INTERLOCK_UVLOOP", "1") == "0":
        return "asyncio"
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, on uvloop unless it is missing or switched off."""
    if loop_name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
