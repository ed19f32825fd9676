"""Which event loops async tests run on: asyncio's, and uvloop's too where marked ``both_loops``.

The ``interlock`` command runs on uvloop (``interlock.loop``), whose transports are not asyncio's
classes; code that talks to transports directly is tested on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item,
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.get_closest_marker("both_loops"):
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}
