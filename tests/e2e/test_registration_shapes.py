"""Both request shapes of the reference design, through the orchestrator's HTTP API.

The nested one (``user_info``, the schema's) and the flat one (the fields at the top level,
``marketing_consent``) register the same way; a mix of the two is a 400 saying how to fix it,
and a flat context's errors name the paths that were sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from interlock.sandbox import Orchestrator, run_api
from mock_services.runner import RunningServices
from orchestrator.models import TaskState


@pytest.fixture
async def api(orch: Orchestrator) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    async with run_api(orch, port=0) as base, aiohttp.ClientSession() as session:
        yield base, session


async def submit(api: tuple[str, aiohttp.ClientSession], context: Any) -> tuple[int, Any]:
    base, session = api
    body = {"name": "user_registration", "context": context}
    async with session.post(f"{base}/tasks", json=body) as resp:
        return resp.status, await resp.json()


async def test_the_flat_shape_registers_as_the_nested_one(
    orch: Orchestrator, services: RunningServices, api: tuple[str, aiohttp.ClientSession]
) -> None:
    # The reference's own example (post 03), plus its marketing_consent.
    flat = {"email": "test@example.com", "name": "Test User", "plan": "pro"}
    status, created = await submit(api, {**flat, "marketing_consent": True})
    assert status == 201, created
    assert await orch.engine.wait_for_end(created["task_id"], 20) is TaskState.COMPLETE
    task = await orch.engine.get_task(created["task_id"])
    assert task.context["user_info"] == {**flat, "source": "web"}  # stored nested, defaulted
    assert task.context["preferences"]["marketing_emails"] is True
    assert "email" not in task.context and "marketing_consent" not in task.context
    user = services.data.users.by_email("test@example.com")
    assert user is not None and user["status"] == "active" and user["plan"] == "pro"
    assert services.data.preferences[user["id"]]["preferences"]["marketing_emails"] is True


async def test_the_nested_shape_with_a_signup_form_source_registers(
    orch: Orchestrator, services: RunningServices, api: tuple[str, aiohttp.ClientSession]
) -> None:
    # The reference's own example (post 04), as it is written there.
    info = {"email": "new.user@example.com", "name": "Jane Developer", "plan": "pro"}
    status, created = await submit(api, {"user_info": {**info, "source": "signup_form"}})
    assert status == 201, created
    assert await orch.engine.wait_for_end(created["task_id"], 20) is TaskState.COMPLETE
    user = services.data.users.by_email(info["email"])
    assert user is not None and user["source"] == "signup_form"


async def test_a_flat_context_errors_at_the_paths_it_was_sent_with(
    services: RunningServices, api: tuple[str, aiohttp.ClientSession]
) -> None:
    status, body = await submit(
        api, {"email": "nope", "name": "Ada", "plan": "gold", "marketing_consent": "yes"}
    )
    assert status == 400
    assert {d["path"] for d in body["details"]} == {"/email", "/plan", "/marketing_consent"}
    assert services.runtimes["users"].journal.total == 0


async def test_a_mix_of_the_two_shapes_is_a_400_that_says_how_to_fix_it(
    services: RunningServices, api: tuple[str, aiohttp.ClientSession]
) -> None:
    status, body = await submit(
        api,
        {
            "user_info": {"email": "a@example.com", "name": "Ada"},
            "plan": "pro",
            "marketing_consent": True,
            "preferences": {"marketing_emails": False},
        },
    )
    assert status == 400
    messages = {d["path"]: d["message"] for d in body["details"]}
    assert set(messages) == {"/plan", "/marketing_consent"}
    assert "move 'plan' into user_info" in messages["/plan"]
    assert "preferences.marketing_emails" in messages["/marketing_consent"]
    assert services.runtimes["users"].journal.total == 0
