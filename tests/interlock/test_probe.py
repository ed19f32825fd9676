"""``probe``: why nothing usable answers at a URL, in a few words a person can act on."""

from __future__ import annotations

import asyncio

from interlock.probe import probe
from mock_services.runner import start_services


async def test_an_error_answer_says_what_the_server_said() -> None:
    running = await start_services({"users": 0})
    try:
        url = running.urls["users"]
        assert await asyncio.to_thread(probe, f"{url}/__admin/stats", timeout_s=5) is None
        said = await asyncio.to_thread(probe, f"{url}/nowhere", timeout_s=5)
        assert said == "HTTP 404: Not Found: GET /nowhere"
    finally:
        await running.stop()
