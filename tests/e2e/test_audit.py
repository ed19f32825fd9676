"""The audit against the real services: what it reports is what the services hold."""

from __future__ import annotations

import aiohttp
import pytest

from interlock.audit import AuditError, audit_people
from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.models import TaskState
from tests.e2e.conftest import add_fault


async def test_registered_people_are_on_record_once_and_strangers_are_not(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    contexts = [fake.registration(plan) for plan in ("free", "pro", "enterprise")]
    for context in contexts:
        _, state = await orch.engine.run(TEMPLATE_NAME, context, timeout_s=20)
        assert state == TaskState.COMPLETE
    emails = [c["user_info"]["email"] for c in contexts]

    audit = await audit_people(admin, services.urls, [*emails, "nobody@example.com"])

    assert [p.email for p in audit.people] == [*emails, "nobody@example.com"]
    *people, stranger = audit.people
    for person, context in zip(people, contexts, strict=True):
        user = services.data.users.by_email(person.email)
        assert user is not None
        assert (person.users_found, person.user_id, person.user_status) == (1, user["id"], "active")
        assert person.profile and person.preferences and person.registered
        assert person.profile_plan == context["user_info"]["plan"]
        sent = [m for m in services.data.notifications.messages if m["user_id"] == user["id"]]
        assert person.messages == len(sent) > 0
        assert person.welcome_messages == sum(m["kind"] == "welcome" for m in sent) > 0
        assert person.duplicate_messages == person.duplicates == 0
    assert audit.person(emails[1].upper()) is people[1]
    with pytest.raises(KeyError):
        audit.person("someone-else@example.com")
    assert stranger.untouched and not stranger.user_found and not stranger.registered
    assert (stranger.users_found, stranger.user_id, stranger.messages) == (0, None, 0)
    assert audit.registered == 3 and audit.duplicates == 0 and audit.duplicated_people == ()
    assert set(audit.services) == {"users", "billing", "preferences", "notifications"}
    assert audit.services["users"].requests > 0


async def test_a_welcome_sent_twice_is_a_duplicate_and_a_missing_step_shows(
    services: RunningServices, fake: RegistrationFaker, admin: aiohttp.ClientSession
) -> None:
    urls = services.urls
    person = fake.registration("pro")["user_info"]
    async with admin.post(f"{urls['users']}/users", json=person) as resp:
        user = await resp.json()
    welcome = {"user_id": user["id"], "email": person["email"], "name": "Ada", "plan": "pro"}
    for _ in range(2):  # no idempotency key: the service sends it twice
        async with admin.post(f"{urls['notifications']}/welcome", json=welcome) as resp:
            assert resp.status == 202

    audit = await audit_people(admin, urls, [person["email"].upper()])

    (found,) = audit.people
    assert (found.user_found, found.user_status, found.profile, found.preferences) == (
        True,
        "pending",
        False,
        False,
    )
    assert (found.messages, found.welcome_messages, found.duplicate_messages) == (4, 2, 2)
    assert audit.duplicates == 2 and audit.duplicated_people == (found,)
    assert not found.registered and not found.untouched


async def test_stats_count_faults_by_kind_and_replays(
    services: RunningServices, fake: RegistrationFaker, admin: aiohttp.ClientSession
) -> None:
    url = services.urls["users"]
    await add_fault(admin, services, "users", {"kind": "error", "status": 503, "times": 1})
    await add_fault(
        admin, services, "users", {"kind": "latency", "delay_ms": 1, "match": {"method": "POST"}}
    )
    body = fake.registration()["user_info"]
    # A 503 (the rule before the latency one: that request is not slowed, nor stored), then
    # created, then replayed.
    for _ in range(3):
        async with admin.post(f"{url}/users", json=body, headers={"Idempotency-Key": "k"}):
            pass

    audit = await audit_people(admin, services.urls, [])

    users = audit.services["users"]
    assert users.faults_fired == {"error": 1, "latency": 2}
    assert users.idempotent_replays == 1
    assert audit.faults_fired == {"error": 1, "latency": 2}
    assert audit.idempotent_replays == 1
    assert audit.services["billing"].faults_fired == {}


async def test_a_read_that_fails_is_asked_again_and_one_that_keeps_failing_is_an_error(
    services: RunningServices, fake: RegistrationFaker, admin: aiohttp.ClientSession
) -> None:
    email = fake.registration()["user_info"]["email"]
    reads = {"match": {"method": "GET"}}
    await add_fault(admin, services, "users", {"kind": "error", "status": 503, "times": 2, **reads})
    await add_fault(admin, services, "users", {"kind": "reset", "times": 1, **reads})

    (person,) = (await audit_people(admin, services.urls, [email])).people
    assert person.untouched

    await add_fault(admin, services, "users", {"kind": "down", **reads})
    with pytest.raises(AuditError, match=r"/users\?email=.*HTTP 503 \(4 tries\)"):
        await audit_people(admin, services.urls, [email])


async def test_every_service_needs_a_url(
    services: RunningServices, admin: aiohttp.ClientSession
) -> None:
    urls = {s: u for s, u in services.urls.items() if s != "billing"}
    with pytest.raises(AuditError, match="billing"):
        await audit_people(admin, urls, ["a@example.com"])
    with pytest.raises(ValueError, match="concurrency"):
        await audit_people(admin, services.urls, [], concurrency=0)
