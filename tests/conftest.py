"""Which event loops async tests run on: asyncio's, and uvloop's too where marked ``both_loops``.

The ``interlock`` command runs on uvloop (``interlock.cli.loop``), whose transports are not
asyncio's classes; code that talks to transports directly is tested on both (where uvloop is
installed: it is not on Windows).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Mapping

import pytest

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def _loop_factories() -> dict[str, LoopFactory]:
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    if item.get_closest_marker("both_loops"):
        return _loop_factories()
    return {"asyncio": asyncio.new_event_loop}
