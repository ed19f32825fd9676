"""The interlock command's event loop: uvloop where installed, and a 1 ms GIL switch interval."""

from __future__ import annotations

import asyncio
import sys

import pytest

from interlock.cli.loop import SWITCH_INTERVAL_S, loop_name, run


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_runs_on_uvloop_unless_switched_off() -> None:
    before = sys.getswitchinterval()
    try:
        assert loop_name(use_uvloop=True) == "uvloop"
        assert run(loop_module(), use_uvloop=True).startswith("uvloop")
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        assert loop_name(use_uvloop=False) == "asyncio"
        assert run(loop_module(), use_uvloop=False).startswith("asyncio")
    finally:
        sys.setswitchinterval(before)
