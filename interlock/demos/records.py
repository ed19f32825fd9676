"""What the services themselves hold for one person: the ground truth a demo's verdict is
checked against (never the orchestrator's own account of what it did)."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from interlock.demos.stage import DemoError
from mock_services.payloads import RegistrationFaker
from orchestrator.models import JSON

if TYPE_CHECKING:
    from interlock.demos.stage import Stage


@dataclass(frozen=True, slots=True)
class PersonRecords:
    """One e-mail address across the four services."""

    email: str
    users: tuple[JSON, ...]  #: users with this email (the users service allows one)
    profile: JSON | None  #: billing's profile of the user, if any
    preferences: JSON | None  #: preferences' record of the user, if any
    messages: tuple[JSON, ...]  #: every message notifications sent the user

    @property
    def user(self) -> JSON | None:
        return self.users[0] if self.users else None

    @property
    def duplicate_messages(self) -> int:
        """Messages beyond the first of each (channel, kind): a welcome sent twice."""
        seen = Counter((m.get("channel"), m.get("kind")) for m in self.messages)
        return sum(n - 1 for n in seen.values())

    @property
    def untouched(self) -> bool:
        """No service holds anything for this person."""
        return not self.users and self.profile is None and self.preferences is None


async def person(stage: Stage, email: str) -> PersonRecords:
    """Read ``email``'s records from every service. A read the service does not answer with
    200 (or 404: nothing there) is a :class:`DemoError`, never "nothing there": a verdict
    must not pass because a service was down when it looked."""
    users = tuple(
        (await _read(stage, "users", f"/users?email={urllib.parse.quote(email)}") or {}).get(
            "users", []
        )
    )
    if not users:
        return PersonRecords(email, (), None, None, ())
    user_id = urllib.parse.quote(str(users[0]["id"]), safe="")
    profile, prefs, sent = await asyncio.gather(
        _read(stage, "billing", f"/profiles/{user_id}"),
        _read(stage, "preferences", f"/preferences/{user_id}"),
        _read(stage, "notifications", f"/messages?user_id={user_id}"),
    )
    return PersonRecords(email, users, profile, prefs, tuple((sent or {}).get("messages", [])))


async def _read(stage: Stage, service: str, path: str) -> JSON | None:
    status, body = await stage.service(service, path)
    if status == 404:
        return None
    if status != 200 or not isinstance(body, dict):
        raise DemoError(f"{service} answered {status} to GET {path}: its records cannot be read")
    return body


async def requests_of_run(stage: Stage) -> dict[str, int]:
    """How many requests carrying this run's correlation ids each service has journaled
    (its last 1,000): what a registration made a service do, whether or not it kept anything."""
    counts = {}
    for service in stage.target.service_urls:
        journal = await _read(stage, service, "/__admin/requests?limit=1000") or {}
        counts[service] = sum(
            1
            for r in journal.get("requests", [])
            if str(r.get("correlation_id") or "").startswith(f"{stage.tag}-")
        )
    return counts


async def people(stage: Stage, emails: list[str]) -> list[PersonRecords]:
    return list(await asyncio.gather(*(person(stage, e) for e in emails)))


def email_of(context: JSON) -> str:
    return str(context["user_info"]["email"])


def registrations(
    stage: Stage, count: int, seed: int, *, plan: str | None = None, domain: str | None = None
) -> list[JSON]:
    """``count`` Faker registrations (seeded), their e-mails made unique to this run, so a
    demo run twice on one sandbox meets new people, not the first run's; ``domain`` replaces
    the e-mail's domain."""
    fake = RegistrationFaker(seed)
    contexts = []
    for _ in range(count):
        context = fake.registration(plan=plan)
        local, own = context["user_info"]["email"].rsplit("@", 1)
        context["user_info"]["email"] = f"{local}+{stage.tag.removeprefix('demo-')}@{domain or own}"
        contexts.append(context)
    return contexts
