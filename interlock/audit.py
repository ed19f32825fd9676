"""What the mock services themselves hold for a list of registrations, read over HTTP.

The engine's word that a registration completed is not proof; the services' own records are.
:func:`audit_people` asks each service, for every e-mail, what it has — the user and its
status, the billing profile, the preferences, the welcome messages — and each service's
``/__admin/stats`` (faults fired by kind, idempotent replays), so a demo checking 5 people and
the chaos soak checking 2,000 reach the same verdicts the same way::

    async with aiohttp.ClientSession() as session:
        audit = await audit_people(session, services.urls, ["ada@example.com"])
    audit.people[0].user_status        # "active"
    audit.duplicates                   # 0: no second user, no message sent twice
    audit.services["billing"].faults_fired   # {"error": 3, "lost_response": 1}

Only reads are made (``GET``), so auditing changes nothing but the services' request counters.
A read answered with a 5xx or a 429, cut off or garbled, is asked again (:data:`READ_ATTEMPTS`
tries in all), so a stray fault rule does not spoil an audit; one that keeps failing, or a 4xx
other than the 404 meaning "none", raises :class:`AuditError`. Fault rules still count the
audit's reads they fire on: clear the rules first (``DELETE /__admin/faults``, which keeps the
counts) or match them to writes, for figures that are the workload's alone.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from orchestrator.errors import InterlockError

#: The services an audit reads, by the names ``service_urls`` must have.
AUDITED_SERVICES: Final = ("users", "billing", "preferences", "notifications")
#: How many times one read is tried before the audit gives up on it.
READ_ATTEMPTS: Final = 4
#: The pause before the next try of a read that failed.
READ_RETRY_DELAY_S: Final = 0.05
#: The message kind every welcome sequence sends on each channel.
WELCOME_KIND: Final = "welcome"
#: The user status of a finished registration.
ACTIVE: Final = "active"


class AuditError(InterlockError):
    """A service's records could not be read: it is missing from ``service_urls``, kept
    failing, or answered something an audit cannot read (the message names the URL)."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url  #: the read that failed
        self.problem = problem  #: what went wrong, last
        super().__init__(f"cannot audit {url}: {problem}")


@dataclass(frozen=True, slots=True)
class PersonAudit:
    """What the services hold for one registration e-mail."""

    #: The e-mail as asked about.
    email: str
    #: How many users the users service has with this e-mail (any case): 0 or 1 by
    #: construction (a second create is a 409); reported so a broken service would show.
    users_found: int
    #: The user's id, when there is one.
    user_id: str | None
    #: The user's status (``pending``, ``active``, …), when there is one.
    user_status: str | None
    #: Whether billing has a profile for the user.
    profile: bool
    #: The profile's plan, when there is one.
    profile_plan: str | None
    #: Whether preferences has a record for the user.
    preferences: bool
    #: How many messages notifications sent the user, of every kind and channel.
    messages: int
    #: How many of those are of the ``welcome`` kind (one per channel when sent once).
    welcome_messages: int
    #: Messages beyond the first of each (channel, kind): a welcome sequence sent twice.
    duplicate_messages: int

    @property
    def user_found(self) -> bool:
        """Whether the users service has this person."""
        return self.users_found > 0

    @property
    def duplicates(self) -> int:
        """Records this person has more than once: extra users plus repeated messages."""
        return max(self.users_found - 1, 0) + self.duplicate_messages

    @property
    def registered(self) -> bool:
        """The full registration is on record: an active user with a profile, preferences and
        a welcome (a degraded registration, without preferences, is not counted here)."""
        return (
            self.user_status == ACTIVE
            and self.profile
            and self.preferences
            and self.welcome_messages > 0
        )

    @property
    def untouched(self) -> bool:
        """No service has anything for this person (a registration refused before any call)."""
        return not (self.user_found or self.profile or self.preferences or self.messages)


@dataclass(frozen=True, slots=True)
class ServiceStats:
    """One service's own totals, from ``GET /__admin/stats``."""

    #: The service's name.
    service: str
    #: Requests it answered (admin ones included).
    requests: int
    #: Fault rules that fired, by kind (a latency rule counts each request it slowed).
    faults_fired: Mapping[str, int]
    #: Writes answered from the idempotency store instead of being performed again.
    idempotent_replays: int


@dataclass(frozen=True, slots=True)
class Audit:
    """The services' records for a list of people, in the order asked, and their stats."""

    #: One entry per e-mail, in the order given.
    people: tuple[PersonAudit, ...]
    #: Each service's stats by name, read after the people.
    services: Mapping[str, ServiceStats]

    def person(self, email: str) -> PersonAudit:
        """The entry for ``email`` (compared without case); KeyError if it was not asked about."""
        wanted = email.strip().lower()
        for person in self.people:
            if person.email.strip().lower() == wanted:
                return person
        raise KeyError(email)

    @property
    def duplicates(self) -> int:
        """Records held more than once, over everyone (0 when every write happened once)."""
        return sum(p.duplicates for p in self.people)

    @property
    def duplicated_people(self) -> tuple[PersonAudit, ...]:
        """The people with any duplicate record."""
        return tuple(p for p in self.people if p.duplicates)

    @property
    def registered(self) -> int:
        """How many people are fully on record (:attr:`PersonAudit.registered`)."""
        return sum(p.registered for p in self.people)

    @property
    def faults_fired(self) -> dict[str, int]:
        """Faults fired by kind, summed over the services."""
        total: Counter[str] = Counter()
        for stats in self.services.values():
            total.update(stats.faults_fired)
        return dict(sorted(total.items()))

    @property
    def idempotent_replays(self) -> int:
        """Idempotent replays, summed over the services."""
        return sum(s.idempotent_replays for s in self.services.values())


async def audit_people(
    session: aiohttp.ClientSession,
    service_urls: Mapping[str, str],
    emails: Sequence[str],
    *,
    concurrency: int = 16,
) -> Audit:
    """Read what the four services hold for each of ``emails``, and their stats.

    ``service_urls`` maps each of :data:`AUDITED_SERVICES` to its base URL (extra entries are
    ignored). At most ``concurrency`` people are looked up at once; a person costs one read of
    the users service and, when a user exists, one read of each other service. Raises
    :class:`AuditError` when a read cannot be made (see the module's docstring).
    """
    missing = [s for s in AUDITED_SERVICES if s not in service_urls]
    if missing:
        raise AuditError(", ".join(missing), "no URL given for this service")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    reader = _Reader(session, service_urls)
    gate = asyncio.Semaphore(concurrency)

    async def one(email: str) -> PersonAudit:
        async with gate:
            return await reader.person(email)

    people = await asyncio.gather(*(one(email) for email in emails))
    stats = await asyncio.gather(*(reader.stats(s) for s in AUDITED_SERVICES))
    return Audit(tuple(people), {s.service: s for s in stats})


class _Reader:
    """The reads of one audit: each service's records for a person, and its stats."""

    def __init__(self, session: aiohttp.ClientSession, service_urls: Mapping[str, str]) -> None:
        self._session = session
        self._urls = {s: service_urls[s].rstrip("/") for s in AUDITED_SERVICES}

    async def person(self, email: str) -> PersonAudit:
        found = await self._get("users", f"/users?email={quote(email, safe='')}")
        users: list[dict[str, Any]] = [] if found is None else list(found.get("users", []))
        user = users[0] if users else None
        if user is None:
            return PersonAudit(email, 0, None, None, False, None, False, 0, 0, 0)
        user_id = str(user["id"])
        quoted = quote(user_id, safe="")
        profile, preferences, sent = await asyncio.gather(
            self._get("billing", f"/profiles/{quoted}"),
            self._get("preferences", f"/preferences/{quoted}"),
            self._get("notifications", f"/messages?user_id={quoted}"),
        )
        messages: list[dict[str, Any]] = [] if sent is None else list(sent.get("messages", []))
        kinds = Counter((m.get("channel"), m.get("kind")) for m in messages)
        return PersonAudit(
            email=email,
            users_found=len(users),
            user_id=user_id,
            user_status=user.get("status"),
            profile=profile is not None,
            profile_plan=None if profile is None else profile.get("plan"),
            preferences=preferences is not None,
            messages=len(messages),
            welcome_messages=sum(n for (_, kind), n in kinds.items() if kind == WELCOME_KIND),
            duplicate_messages=sum(n - 1 for n in kinds.values()),
        )

    async def stats(self, service: str) -> ServiceStats:
        body = await self._get(service, "/__admin/stats")
        if body is None:
            raise AuditError(f"{self._urls[service]}/__admin/stats", "404")
        return ServiceStats(
            service=service,
            requests=int(body.get("requests", 0)),
            faults_fired={str(k): int(v) for k, v in body.get("faults_fired", {}).items()},
            idempotent_replays=int(body.get("idempotent_replays", 0)),
        )

    async def _get(self, service: str, path: str) -> dict[str, Any] | None:
        """The JSON object at ``path``; None for a 404 (the service has no such record)."""
        url = f"{self._urls[service]}{path}"
        problem = ""
        for attempt in range(READ_ATTEMPTS):
            if attempt:
                await asyncio.sleep(READ_RETRY_DELAY_S)
            try:
                async with self._session.get(url) as resp:
                    if resp.status == 404:
                        return None
                    if resp.status >= 500 or resp.status == 429:
                        problem = f"HTTP {resp.status}"
                        continue
                    if resp.status != 200:
                        raise AuditError(url, f"HTTP {resp.status}: {await resp.text()}")
                    body = await resp.json()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if not isinstance(body, dict):
                raise AuditError(url, "the answer is not a JSON object")
            return body
        raise AuditError(url, f"{problem} ({READ_ATTEMPTS} tries)")
