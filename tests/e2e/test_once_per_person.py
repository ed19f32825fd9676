"""Side effects that belong to the person happen once per person, not once per registration.

A second registration of someone already registered completes (``already_exists``) without a
second welcome sequence or a second activation, and its results say so; two registrations of
one person racing each other also send one sequence.
"""

from __future__ import annotations

import asyncio
import copy

import aiohttp

from interlock.sandbox import Orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.models import JSON, TaskState
from tests.e2e.conftest import add_fault, register


async def _messages(admin: aiohttp.ClientSession, services: RunningServices, user_id: str) -> JSON:
    url = f"{services.urls['notifications']}/messages"
    async with admin.get(url, params={"user_id": user_id}) as resp:
        assert resp.status == 200
        body: JSON = await resp.json()
        return body


async def test_registering_the_same_person_twice_sends_one_welcome(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    context = fake.registration("pro")
    first = await register(orch, context)
    second = await register(orch, copy.deepcopy(context))
    assert (first.state, second.state) == (TaskState.COMPLETE, TaskState.COMPLETE)
    user_id = (first.step("create_user_account").results or {})["user_id"]
    assert (second.step("create_user_account").results or {})["status"] == "already_exists"

    sent = await _messages(admin, services, user_id)
    welcome = first.step("send_welcome_sequence").results or {}
    assert welcome["status"] == "sent"
    assert [m["id"] for m in sent["messages"]] == welcome["message_ids"]  # nothing new
    again = second.step("send_welcome_sequence").results or {}
    assert again["status"] == "already_sent"
    assert (again["message_ids"], again["channels"]) == (
        welcome["message_ids"],
        welcome["channels"],
    )
    assert again["subject"] == welcome["subject"]

    assert (first.step("update_user_status").results or {})["status"] == "active"
    activation = second.step("update_user_status").results or {}
    assert activation["status"] == "already_active"
    assert activation["summary"]["task_id"] == first.task_id  # the first activation stands
    user = services.data.users.users[user_id]
    assert user["registration_summary"]["task_id"] == first.task_id
    patches = [r for r in services.runtimes["users"].journal.recent(1000) if r.method == "PATCH"]
    assert len(patches) == 1


async def test_a_person_never_welcomed_is_welcomed_by_the_next_registration(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    """Keyed by the person means once per person, not never again: a first registration that
    stopped before the welcome leaves the person to be welcomed (and activated) by the next."""
    context = fake.registration("free")
    await add_fault(admin, services, "notifications", {"kind": "down"})
    first = await register(orch, context)
    assert first.state is TaskState.ERROR
    async with admin.delete(f"{services.urls['notifications']}/__admin/faults") as resp:
        assert resp.status in (200, 204)
    second = await register(orch, copy.deepcopy(context))
    assert second.state is TaskState.COMPLETE
    welcome = second.step("send_welcome_sequence").results or {}
    assert welcome["status"] == "sent"
    sent = await _messages(admin, services, welcome["user_id"])
    assert [m["id"] for m in sent["messages"]] == welcome["message_ids"]
    assert (second.step("update_user_status").results or {})["status"] == "active"


async def test_two_registrations_of_one_person_at_once_send_one_welcome(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    """Racing, neither may see the other's welcome before sending its own; the person-scoped
    Idempotency-Key makes the service send one sequence. The second copy has another phone, so
    its welcome body differs (other channels) and the key's reuse is reported, not replayed."""
    context = fake.registration("pro")
    other = copy.deepcopy(context)
    other["user_info"]["phone"] = "+1-555-000-0000"
    tasks = await asyncio.gather(register(orch, context), register(orch, other))
    assert [t.state for t in tasks] == [TaskState.COMPLETE, TaskState.COMPLETE]
    results = [t.step("send_welcome_sequence").results or {} for t in tasks]
    assert sorted(r["status"] for r in results) == ["already_sent", "sent"]
    assert results[0]["message_ids"] == results[1]["message_ids"]
    sent = await _messages(admin, services, results[0]["user_id"])
    assert [m["id"] for m in sent["messages"]] == results[0]["message_ids"]
    assert len(services.data.users.users) == 1


async def test_a_welcome_sent_under_the_persons_key_is_not_sent_again(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    """The key, not the look-up: the person exists but has no profile yet (so no look-up is
    made), and their welcome went out under ``welcome/<user_id>`` with another body. The
    service refuses the reused key (422); the step reads what was sent and reports it."""
    context = fake.registration("free")
    info = context["user_info"]
    body = {"email": info["email"], "name": info["name"], "plan": "free"}
    async with admin.post(f"{services.urls['users']}/users", json=body) as resp:
        user_id = (await resp.json())["id"]
    welcome = {**body, "user_id": user_id, "channels": ["email"]}
    headers = {"Idempotency-Key": f"welcome/{user_id}"}
    url = f"{services.urls['notifications']}/welcome"
    async with admin.post(url, json=welcome, headers=headers) as resp:
        assert resp.status == 202
        earlier = await resp.json()

    task = await register(orch, context)
    assert task.state is TaskState.COMPLETE
    assert (task.step("setup_billing_profile").results or {})["status"] == "created"
    results = task.step("send_welcome_sequence").results or {}
    assert results["status"] == "already_sent"
    assert results["message_ids"] == earlier["message_ids"]
    sent = await _messages(admin, services, user_id)
    assert [m["id"] for m in sent["messages"]] == earlier["message_ids"]
    notifications = services.runtimes["notifications"].journal.recent(1000)
    assert [r.status for r in notifications if r.method == "POST"] == [202, 422]
