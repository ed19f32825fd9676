"""What a demo stands on: a sandbox reached over HTTP, its event stream, and the verdict.

A demo is a client, as a person at a terminal would be: it talks to the orchestrator's API and
to the services' own endpoints and admin API, never to the engine or its database, so the same
demo runs headless against a sandbox it started, against one started by hand
(``interlock demo NAME --attach URL``), and inside the dashboard.

:class:`Stage` follows ``/events/stream`` from the moment the demo starts (across orchestrator
restarts, resuming by ``seq``), keeps the events of the demo's own registrations (their
correlation ids carry the run's tag) and of the breakers, hands each to the narrator, and lets
the demo wait for what the events say rather than for a fixed time. The verdict is a list of
:class:`Check`: each a sentence and whether it held, checked against the services' records.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from dashboard.model import DashEvent
from dashboard.stream import Link, follow
from interlock.demos.narrator import Narrator
from interlock.registration.template import TEMPLATE_NAME
from orchestrator import codec
from orchestrator.errors import InterlockError
from orchestrator.event_types import EventType
from orchestrator.models import JSON

#: Called with each line of narration, as it happens.
Narrate = Callable[[str], None]
#: SIGKILLs the orchestrator and starts it again, returning once it answers.
Restart = Callable[[], Awaitable[None]]

_TERMINAL: Final = frozenset(
    {EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TASK_CANCELLED}
)
_JSON: Final = {"Content-Type": "application/json"}


class DemoError(InterlockError):
    """A demo could not be run: the sandbox is unreachable, refused a request, or lacks what
    the demo needs (a way to restart the orchestrator). Not a failed verdict: that is a
    :class:`Verdict` whose checks did not all hold."""


@dataclass(frozen=True, slots=True)
class Check:
    """One claim of the demo's verdict, and whether the services' records bore it out."""

    passed: bool
    text: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a demo ended: every check, and how long it took."""

    demo: str
    checks: tuple[Check, ...]
    elapsed_s: float

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


@dataclass(frozen=True, slots=True)
class Target:
    """The sandbox a demo runs against."""

    api_url: str
    service_urls: Mapping[str, str]
    #: None when the sandbox was not started by us (``--attach``): no crash-recovery demo then.
    restart: Restart | None = None


@dataclass
class _Waiter:
    predicate: Callable[[DashEvent], bool]
    found: asyncio.Future[DashEvent]


@dataclass
class Stage:
    """One run of one demo: HTTP to the sandbox, the followed events, the checks so far."""

    target: Target
    session: aiohttp.ClientSession
    narrate: Narrate
    #: This run's tag: every registration's correlation id starts with it.
    tag: str = field(default_factory=lambda: f"demo-{secrets.token_hex(3)}")
    checks: list[Check] = field(default_factory=list)
    #: The demo's events (its registrations' and the breakers'), in seq order.
    events: list[DashEvent] = field(default_factory=list)
    #: Terminal state of each of the demo's tasks, by task id, as the events said.
    finished: dict[str, str] = field(default_factory=dict)
    narrator: Narrator = field(init=False)
    _waiters: list[_Waiter] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Every task this run submitted, in the order they were accepted.
    submitted: list[str] = field(default_factory=list)
    _faults: list[tuple[str, str]] = field(default_factory=list)
    _submitted: int = 0
    #: Set when the event stream's follower failed: waiting on events would wait in vain.
    _broken: BaseException | None = None

    def __post_init__(self) -> None:
        self.narrator = Narrator(self.say)

    def say(self, text: str) -> None:
        """Narrate one line (the caller stamps it: the CLI with the time since the start,
        the dashboard's log with the clock)."""
        self.narrate(text)

    def check(self, passed: bool, text: str) -> bool:
        """Record one claim of the verdict."""
        self.checks.append(Check(bool(passed), text))
        return bool(passed)

    # --- the sandbox over HTTP ------------------------------------------------------------

    async def call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        """One JSON request; the status and the decoded answer (None if it was not JSON)."""
        data = None if body is None else codec.dumpb(body)
        try:
            async with self.session.request(method, url, data=data, headers=_JSON) as resp:
                raw = await resp.read()
                try:
                    return resp.status, codec.loads(raw) if raw else None
                except ValueError:
                    return resp.status, None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DemoError(f"{method} {url}: {type(exc).__name__}: {exc}") from None

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        """The orchestrator's answer; :class:`DemoError` for anything but a 2xx."""
        status, data = await self.call(method, f"{self.target.api_url}{path}", body)
        if status >= 300:
            raise DemoError(f"{method} {path} answered {status}: {data}")
        return data

    async def service(self, name: str, path: str) -> tuple[int, Any]:
        """A GET on a service's own endpoint (its records, as the service sees them)."""
        return await self.call("GET", f"{self.target.service_urls[name]}{path}")

    async def fault(self, service: str, rule: JSON, what: str) -> str:
        """Add a fault rule to ``service`` (removed again by :meth:`clear_faults`)."""
        url = f"{self.target.service_urls[service]}/__admin/faults"
        status, body = await self.call("POST", url, rule)
        if status != 201:
            raise DemoError(f"{service} refused the fault rule {rule}: {body}")
        rule_id = str(body["id"])
        self._faults.append((service, rule_id))
        self.say(f"fault on {service}: {what} (rule {rule_id})")
        return rule_id

    async def remove_fault(self, service: str, rule_id: str, what: str) -> None:
        url = f"{self.target.service_urls[service]}/__admin/faults/{rule_id}"
        await self.call("DELETE", url)
        self._faults = [f for f in self._faults if f != (service, rule_id)]
        self.say(f"{what} (rule {rule_id} removed from {service})")

    async def clear_faults(self) -> None:
        """Remove every rule this demo added, whatever happened (the sandbox goes on)."""
        for service, rule_id in list(self._faults):
            with contextlib.suppress(DemoError):
                await self.call(
                    "DELETE", f"{self.target.service_urls[service]}/__admin/faults/{rule_id}"
                )
        self._faults.clear()

    async def submit(
        self, contexts: Sequence[JSON], template: str = TEMPLATE_NAME, *, concurrency: int = 16
    ) -> list[str]:
        """Submit registrations (each with a correlation id of this run); their task ids."""
        what = "registration" if len(contexts) == 1 else "registrations"
        suffix = "" if template == TEMPLATE_NAME else f" ({template})"
        self.say(f"submitting {len(contexts)} {what}{suffix}")
        jobs: list[tuple[int, JSON]] = []
        for context in contexts:
            self._submitted += 1
            jobs.append((self._submitted, {**context, "correlation_id": self.cid()}))
        ids: dict[int, str] = {}
        queue = iter(jobs)

        async def submitter() -> None:
            for n, context in queue:
                body = {"name": template, "context": context}
                answer = await self.api("POST", "/tasks", body)
                ids[n] = str(answer["task_id"])
                self.submitted.append(ids[n])

        try:  # one refusal stops the other submitters too
            async with asyncio.TaskGroup() as group:
                for _ in range(min(concurrency, len(jobs))):
                    group.create_task(submitter())
        except* DemoError as failed:
            raise failed.exceptions[0] from None
        return [ids[n] for n, _ in jobs]

    def cid(self) -> str:
        return f"{self.tag}-{self._submitted}"

    async def task(self, task_id: str) -> JSON:
        data: JSON = await self.api("GET", f"/tasks/{task_id}")
        return data

    async def tasks(self, task_ids: Sequence[str]) -> list[JSON]:
        return list(await asyncio.gather(*(self.task(t) for t in task_ids)))

    async def attempts(self, task_id: str) -> list[JSON]:
        data = await self.api("GET", f"/tasks/{task_id}/attempts")
        return list(data["attempts"])

    # --- the event stream -----------------------------------------------------------------

    def mine(self, event: DashEvent) -> bool:
        """Whether ``event`` belongs to this demo: one of its registrations, or a breaker."""
        if event.type.startswith("breaker."):
            return True
        return bool(event.correlation_id and event.correlation_id.startswith(f"{self.tag}-"))

    async def pump(self, after: int) -> None:
        """Follow the stream from ``after`` for ever (until cancelled)."""
        async for item in follow(self.session, self.target.api_url, after):
            if isinstance(item, Link):
                if item.state == "reconnecting":
                    self.say(f"⚠ lost the event stream: {item.reason}; reconnecting")
                elif item.after > after:
                    self.say("event stream back: catching up from where it broke off")
                continue
            if not self.mine(item):
                continue
            self.events.append(item)
            if item.type in _TERMINAL and item.task_id is not None:
                self.finished[item.task_id] = item.type.removeprefix("task.")
            self.narrator.on_event(item)
            for waiter in list(self._waiters):
                if not waiter.found.done() and waiter.predicate(item):
                    waiter.found.set_result(item)
            self._changed.set()

    async def until(
        self, predicate: Callable[[DashEvent], bool], timeout_s: float, what: str
    ) -> DashEvent | None:
        """The first event from now on that ``predicate`` accepts (earlier events count too,
        so nothing is missed between two awaits); None, and a failed check, at the timeout."""
        for event in self.events:
            if predicate(event):
                return event
        self._check_stream()
        waiter = _Waiter(predicate, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:  # not asyncio.wait_for: on 3.11 it loses a cancel that lands with the event
            async with asyncio.timeout(timeout_s):
                return await waiter.found
        except TimeoutError:
            self.check(False, f"{what} within {timeout_s:g} s")
            return None
        finally:
            self._waiters.remove(waiter)

    async def settle(self, task_ids: Sequence[str], timeout_s: float) -> list[JSON]:
        """Wait until every task has ended (as the events say), then read them; a failed
        check naming how many had not, at the timeout."""
        deadline = time.monotonic() + timeout_s
        while not all(t in self.finished for t in task_ids):
            self._check_stream()
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sum(1 for t in task_ids if t not in self.finished)
                self.check(
                    False,
                    f"{missing} of {len(task_ids)} registrations had not ended after "
                    f"{timeout_s:g} s",
                )
                break
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, 1.0)):
                    await self._changed.wait()
        return await self.tasks(task_ids)

    def stream_failed(self, task: asyncio.Task[None]) -> None:
        """The follower's done-callback: a follower that failed wakes every waiter at once."""
        if task.cancelled() or task.exception() is None:
            return
        self._broken = task.exception()
        for waiter in self._waiters:
            if not waiter.found.done():
                waiter.found.set_exception(self._stream_error())
        self._changed.set()

    def _check_stream(self) -> None:
        if self._broken is not None:
            raise self._stream_error()

    def _stream_error(self) -> DemoError:
        return DemoError(f"the demo stopped following the event stream: {self._broken!r}")

    def count(self, event_type: EventType, **data: Any) -> int:
        """How many of the demo's events are of ``event_type`` with those ``data`` fields."""
        return sum(
            1
            for e in self.events
            if e.type == event_type and all(e.data.get(k) == v for k, v in data.items())
        )


@contextlib.asynccontextmanager
async def staged(target: Target, narrate: Narrate) -> AsyncIterator[Stage]:
    """A :class:`Stage` following the stream from now. At the end, however the demo ended, its
    fault rules are removed and its registrations that are still running are cancelled, so
    the sandbox goes on as it was (the next demo on it meets neither)."""
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        stage = Stage(target, session, narrate)
        health = await stage.api("GET", "/health")
        await _ready_for_a_demo(stage)
        pump = asyncio.create_task(stage.pump(int(health.get("last_seq", 0))))
        pump.add_done_callback(stage.stream_failed)
        try:
            yield stage
        finally:
            await stage.clear_faults()
            await _cancel_unfinished(stage)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump


async def _ready_for_a_demo(stage: Stage) -> None:
    """Refuse a sandbox a demo would be misled by: a service that does not answer at its URL,
    or a circuit breaker that is not closed (its calls would wait out another's cooldown)."""
    for name, url in stage.target.service_urls.items():
        status, _body = await stage.call("GET", f"{url}/__admin/stats")
        if status != 200:
            raise DemoError(
                f"{name} does not answer at {url} (GET /__admin/stats: {status}); set "
                f"INTERLOCK_{name.upper()}_URL to the service the orchestrator calls"
            )
    breakers = (await stage.api("GET", "/breakers")).get("breakers", [])
    busy = [b["service"] for b in breakers if b.get("state") != "closed"]
    if busy:
        raise DemoError(
            f"the circuit breaker of {', '.join(busy)} is not closed: run the demo once it has "
            "closed (GET /breakers), so its story is not another outage's"
        )


async def _cancel_unfinished(stage: Stage) -> None:
    """Cancel this run's registrations that have not ended: the ones it knows it submitted, and
    any other carrying its correlation ids (a submission cut short by Ctrl-C may have been
    accepted without its answer arriving)."""
    unfinished = {t for t in stage.submitted if t not in stage.finished}
    for state in ("pending", "in_progress"):
        with contextlib.suppress(DemoError):
            listed = await stage.api("GET", f"/tasks?state={state}&limit=1000")
            unfinished |= {
                str(t["task_id"])
                for t in listed.get("tasks", [])
                if str(t.get("correlation_id") or "").startswith(f"{stage.tag}-")
            }
    for task_id in sorted(unfinished):
        with contextlib.suppress(DemoError):
            await stage.call("POST", f"{stage.target.api_url}/tasks/{task_id}/cancel")
