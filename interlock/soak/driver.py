"""The soak itself: the sandbox as child processes, registrations over the API under seeded
faults, the orchestrator SIGKILLed and restarted at seeded moments, then the evidence.

:func:`run_soak` starts the services and the orchestrator with :class:`~interlock.supervisor.
Supervisor` on a fresh SQLite file and free ports, installs the fault mix on all four services,
and submits the registrations at a steady rate (``POST /tasks``, each with its idempotency key,
tried again with the same key while the orchestrator is down). The kills come at seeded points
of the run's progress (acknowledged submissions plus terminal tasks, out of twice the
registrations), so they land among submissions and among running steps alike; a kill whose
point comes while the previous restart is under way waits for it, plus :data:`KILL_GAP_S`, so
the engine runs steps between two kills. Wall-clock moments still vary with the machine's
speed, so runs with one seed differ in which calls fail, never in what must hold. Once every
task is terminal it clears the fault rules (their counts stay), reads every task and its
attempts from the API, submits every key once more, audits the services' records
(:mod:`interlock.audit`) and hands it all to :func:`~interlock.soak.verdict.judge`.

On PostgreSQL (:attr:`SoakConfig.db` a ``postgresql://`` URL, whose schema holds no Interlock
table yet) it runs :attr:`SoakConfig.workers` orchestrator workers on that database. The kills
go to them in turn (kill ``k``, from 0, hits worker ``k mod N``) while the others keep working;
the submissions go round-robin to the workers that are up, a try that finds one down going to
the next, and so do the reads and the resubmissions at the end: a key first submitted to one
worker is resubmitted to another.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import aiohttp

from interlock.audit import audit_people
from interlock.registration.template import TEMPLATE_NAME
from interlock.soak.faults import DEFAULT_MIX, FaultMix
from interlock.soak.progress import SoakStatus, StatusLine
from interlock.soak.verdict import (
    Kill,
    Resubmission,
    SoakReport,
    StepEnd,
    Submission,
    TaskEnd,
    judge,
)
from interlock.supervisor import Supervisor, SupervisorConfig
from mock_services.payloads import RegistrationFaker
from mock_services.services import SERVICE_NAMES
from orchestrator.errors import InterlockError
from orchestrator.models import ACTIVE_TASK_STATES, TERMINAL_TASK_STATES, AttemptOutcome
from orchestrator.store.postgres import find_tables, is_postgres_url, redact

T = TypeVar("T")
X = TypeVar("X")

#: Where in the run's progress (0 to 1) the kills may fall: not before anything happened, and
#: not so late that nothing is left running.
KILL_WINDOW: Final = (0.03, 0.9)
#: After a restart, the least time before the next kill: the engine gets to run steps again.
KILL_GAP_S: Final = 0.5
#: The most a kill waits, seeded, once its point was reached (so kills do not land on polls).
KILL_JITTER_S: Final = 0.2
#: How often the task counts are read while the soak runs.
POLL_EVERY_S: Final = 0.2
#: The pause before a submission is tried again (the orchestrator is down).
SUBMIT_RETRY_S: Final = 0.05
#: How many reads of the API (tasks, attempts, resubmissions) are made at once at the end.
READ_CONCURRENCY: Final = 16
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=15)
_NOT_ANSWERING = (aiohttp.ClientError, TimeoutError, ConnectionError)


class SoakError(InterlockError):
    """The soak could not be run as asked (not: the soak found a problem, which its report
    says): its database exists already (or holds Interlock's tables), several workers were
    asked for on SQLite, or the API refused a submission or did not answer."""


@dataclass(frozen=True, slots=True)
class SoakConfig:
    """What to run."""

    #: How many registrations to submit.
    registrations: int = 2000
    #: How many times to SIGKILL and restart the orchestrator.
    kills: int = 10
    #: The seed of the people, the fault rules and the kill moments.
    seed: int = 1
    #: Submissions per second.
    rate_per_s: float = 100.0
    #: The faults every service gets.
    mix: FaultMix = DEFAULT_MIX
    #: The SQLite file (must not exist), or a ``postgresql://`` URL (a ``str``) whose schema
    #: holds no Interlock table; None: a SQLite file in a temporary directory, removed after.
    db: Path | str | None = None
    #: The children's log; None: ``<db>.soak.log`` for a SQLite file, else a temporary file
    #: (removed after).
    log_path: Path | None = None
    #: How long every task may take to become terminal, from the first submission.
    timeout_s: float = 900.0
    #: At most this many submissions in flight at once.
    in_flight: int = 64
    #: How many orchestrator workers share the work; more than one only on PostgreSQL.
    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SoakError(f"the soak needs at least one worker, not {self.workers}")
        if self.workers > 1 and not self.on_postgres:
            raise SoakError(
                f"{self.workers} workers need a PostgreSQL database (--db postgresql://...): "
                "on SQLite the soak runs one orchestrator"
            )

    @property
    def on_postgres(self) -> bool:
        """Whether :attr:`db` is a PostgreSQL URL."""
        return isinstance(self.db, str) and is_postgres_url(self.db)

    @property
    def db_label(self) -> str:
        """Where the state is kept, for messages: a temporary file, a path, a URL without its
        password."""
        if self.db is None:
            return "a temporary SQLite file"
        return redact(str(self.db)) if self.on_postgres else str(self.db)


@dataclass
class _Live:
    """What the running soak knows, for the killer and the progress line."""

    started: float = field(default_factory=time.monotonic)
    acknowledged: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    #: The workers (their indexes) killed and not answering yet.
    down: set[int] = field(default_factory=set)
    open_breakers: tuple[str, ...] = ()

    @property
    def terminal(self) -> int:
        return sum(self.counts.get(state, 0) for state in TERMINAL_TASK_STATES)

    @property
    def running(self) -> int:
        return sum(self.counts.get(state, 0) for state in ACTIVE_TASK_STATES)

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


async def run_soak(config: SoakConfig, progress: StatusLine | None = None) -> SoakReport:
    """Run the soak of ``config`` and return its report (see the module's docstring)."""
    async with (
        _sandbox(config) as supervisor,
        aiohttp.ClientSession(timeout=_REQUEST_TIMEOUT) as session,
    ):
        return await _Soak(config, supervisor, session, progress).run()


@contextlib.asynccontextmanager
async def _sandbox(config: SoakConfig) -> AsyncIterator[Supervisor]:
    with contextlib.ExitStack() as stack:

        def temporary() -> Path:
            prefix = "interlock-soak-"
            return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))

        db: Path | str
        if isinstance(config.db, str) and config.on_postgres:
            db = config.db
            await _check_unused(db)
            log_path = config.log_path or temporary() / "soak.log"
        else:
            db = _new_sqlite_file(config.db) if config.db is not None else temporary() / "soak.db"
            log_path = config.log_path or Path(f"{db}.soak.log")
        supervisor = Supervisor(
            SupervisorConfig(
                db=db,
                api_port=0,
                service_ports=dict.fromkeys(SERVICE_NAMES, 0),
                log_path=log_path,
                workers=config.workers,
                worker_id_prefix="soak",
            )
        )
        await asyncio.to_thread(supervisor.start)
        try:
            yield supervisor
        finally:
            await asyncio.to_thread(supervisor.stop)


def _new_sqlite_file(given: Path | str) -> Path:
    db = Path(given).resolve()
    if db.exists():
        raise SoakError(f"{db} exists: the soak needs a database of its own")
    return db


async def _check_unused(url: str) -> None:
    """Refuse a PostgreSQL schema an Interlock used already, as a SQLite file that exists is
    refused: the audit counts every task in the database as this soak's."""
    tables = await find_tables(url)
    if tables:
        raise SoakError(
            f"{redact(url)} holds Interlock's tables already ({', '.join(tables)}): the soak "
            "needs a database (or a search_path schema) of its own"
        )


class _Soak:
    def __init__(
        self,
        config: SoakConfig,
        supervisor: Supervisor,
        session: aiohttp.ClientSession,
        progress: StatusLine | None,
    ) -> None:
        self.config = config
        self.supervisor = supervisor
        self.session = session
        self.progress = progress
        self.apis = supervisor.api_urls
        self.workers = supervisor.worker_names
        self._turn = 0  #: the round-robin's counter over the workers
        self.live = _Live()
        fake = RegistrationFaker(config.seed)
        self.contexts = [fake.registration() for _ in range(config.registrations)]
        self.keys = [f"soak-{config.seed}-{i:06d}" for i in range(config.registrations)]

    async def run(self) -> SoakReport:
        await self._install_faults()
        self.live = _Live()
        monitor = asyncio.create_task(self._monitor())
        killer = asyncio.create_task(self._kill_at_seeded_moments())
        submitting = asyncio.create_task(self._submit_all())
        try:
            # A restart that fails ends the soak at once, not after the submissions time out.
            await asyncio.wait({killer, submitting}, return_when=asyncio.FIRST_EXCEPTION)
            if killer.done():
                killer.result()
            submissions = await submitting
            await killer
            ended = await self._wait_terminal()
            elapsed_s = self.live.elapsed_s()
        finally:
            for task in (monitor, killer, submitting):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if ended:
            self._note(f"every task terminal after {elapsed_s:.1f} s; collecting the evidence")
        else:
            self._note(f"tasks still running after {elapsed_s:.1f} s; collecting the evidence")
        await self._clear_faults()
        tasks = await self._read_tasks()
        openings = (await self._get("/analytics/bottlenecks"))["breaker_openings"]
        resubmissions = await self._resubmit_all()
        emails = [c["user_info"]["email"] for c in self.contexts]
        audit = await audit_people(self.session, self.supervisor.service_urls, emails)
        return judge(
            submissions,
            tasks,
            resubmissions,
            audit,
            self.live.kills,
            elapsed_s=elapsed_s,
            breaker_openings={str(k): int(v) for k, v in openings.items()},
            workers=self.workers,
        )

    # -- faults --------------------------------------------------------------------------

    async def _install_faults(self) -> None:
        urls = self.supervisor.service_urls
        for service, rules in self.config.mix.rules(self.config.seed).items():
            for rule in rules:
                async with self.session.post(f"{urls[service]}/__admin/faults", json=rule) as resp:
                    if resp.status != 201:
                        raise SoakError(f"{service} refused fault {rule}: {await resp.text()}")

    async def _clear_faults(self) -> None:
        for url in self.supervisor.service_urls.values():
            async with self.session.delete(f"{url}/__admin/faults") as resp:
                await resp.read()

    # -- submissions ---------------------------------------------------------------------

    async def _submit_all(self) -> list[Submission]:
        gate = asyncio.Semaphore(self.config.in_flight)

        async def one(index: int) -> Submission:
            try:
                return await self._submit(index)
            finally:
                gate.release()

        pending: list[asyncio.Task[Submission]] = []
        for index in range(self.config.registrations):
            due = self.live.started + index / self.config.rate_per_s
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await gate.acquire()
            pending.append(asyncio.create_task(one(index)))
        return list(await asyncio.gather(*pending))

    async def _submit(self, index: int) -> Submission:
        body = {
            "name": TEMPLATE_NAME,
            "context": self.contexts[index],
            "idempotency_key": self.keys[index],
        }
        tries = 0
        deadline = self.live.started + self.config.timeout_s
        while True:
            tries += 1
            answer = await self._post_task(body)
            if answer is not None:
                self.live.acknowledged += 1
                return Submission(
                    key=self.keys[index],
                    email=self.contexts[index]["user_info"]["email"],
                    task_id=str(answer["task_id"]),
                    tries=tries,
                    found_existing=tries > 1 and not answer.get("created", True),
                )
            if time.monotonic() > deadline:
                email = self.contexts[index]["user_info"]["email"]
                return Submission(self.keys[index], email, None, tries)
            await asyncio.sleep(SUBMIT_RETRY_S)

    async def _post_task(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to one submission, from the next worker that is up; None when it did
        not answer (it is down)."""
        try:
            async with self.session.post(f"{self._api()}/tasks", json=body) as resp:
                if resp.status >= 500:
                    return None
                if resp.status not in (200, 201):
                    raise SoakError(f"POST /tasks answered {resp.status}: {await resp.text()}")
                answer: dict[str, Any] = await resp.json()
                return answer
        except _NOT_ANSWERING:
            return None

    def _api(self) -> str:
        """The next worker's API, in turn, skipping the ones killed and not back yet (if all
        are, the next in turn: its try fails and is made again)."""
        order = [(self._turn + i) % len(self.apis) for i in range(len(self.apis))]
        index = next((i for i in order if i not in self.live.down), order[0])
        self._turn = index + 1
        return self.apis[index]

    # -- kills ---------------------------------------------------------------------------

    def kill_points(self) -> list[tuple[float, float]]:
        """Each kill's point in the run's progress and its extra wait, from the seed."""
        rng = random.Random(f"kills-{self.config.seed}")
        points = sorted(rng.uniform(*KILL_WINDOW) for _ in range(self.config.kills))
        return [(point, rng.uniform(0, KILL_JITTER_S)) for point in points]

    def _progress(self) -> float:
        return (self.live.acknowledged + self.live.terminal) / (2 * self.config.registrations)

    async def _kill_at_seeded_moments(self) -> None:
        for point, jitter_s in self.kill_points():
            # Polled: progress is the monitor's reading of another process's counts.
            while self._progress() < point:  # noqa: ASYNC110
                await asyncio.sleep(POLL_EVERY_S / 2)
            await asyncio.sleep(jitter_s)
            at_s, through = self.live.elapsed_s(), self._progress()
            index = len(self.live.kills) % len(self.workers)  # in turn
            self.live.down.add(index)
            try:
                await self.supervisor.restart_worker(index)
            finally:
                self.live.down.discard(index)
            down_s = round(self.live.elapsed_s() - at_s, 2)
            kill = Kill(at_s=round(at_s, 2), down_s=down_s, worker=self.workers[index])
            self.live.kills.append(kill)
            who = "the orchestrator" if len(self.workers) == 1 else f"worker {kill.worker}"
            self._note(
                f"kill {len(self.live.kills)}/{self.config.kills} at {kill.at_s:.1f} s "
                f"({through:.0%} through): {who} was back after {kill.down_s:.1f} s"
            )
            await asyncio.sleep(KILL_GAP_S)

    # -- watching ------------------------------------------------------------------------

    async def _monitor(self) -> None:
        while True:
            counts = await self._counts()
            if counts is not None:
                self.live.counts = counts
                self.live.open_breakers = await self._open_breakers()
            self._show()
            await asyncio.sleep(POLL_EVERY_S)

    async def _open_breakers(self) -> tuple[str, ...]:
        """The services whose breaker is not closed, as the orchestrator last said."""
        try:
            async with self.session.get(f"{self._api()}/breakers") as resp:
                if resp.status != 200:
                    return self.live.open_breakers
                body = await resp.json()
        except _NOT_ANSWERING:
            return self.live.open_breakers
        return tuple(b["service"] for b in body["breakers"] if b["state"] != "closed")

    async def _counts(self) -> dict[str, int] | None:
        try:
            async with self.session.get(f"{self._api()}/tasks/counts") as resp:
                if resp.status != 200:
                    return None
                body = await resp.json()
        except _NOT_ANSWERING:
            return None
        return {str(k): int(v) for k, v in body["counts"].items()}

    async def _wait_terminal(self) -> bool:
        """Whether every acknowledged task became terminal before the timeout."""
        deadline = self.live.started + self.config.timeout_s
        while time.monotonic() < deadline:
            counts = await self._counts()
            if counts is not None:
                self.live.counts = counts
                total = sum(counts.values())
                if total >= self.live.acknowledged and not self.live.running:
                    return True
            await asyncio.sleep(POLL_EVERY_S)
        return False

    def _show(self) -> None:
        if self.progress is None:
            return
        live = self.live
        self.progress.update(
            SoakStatus(
                elapsed_s=live.elapsed_s(),
                registrations=self.config.registrations,
                acknowledged=live.acknowledged,
                complete=live.counts.get("complete", 0),
                failed=live.counts.get("error", 0),
                running=live.running,
                kills_done=len(live.kills),
                kills=self.config.kills,
                down=tuple(self.workers[i] for i in sorted(live.down)),
                open_breakers=live.open_breakers,
            )
        )

    def _note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.note(text)

    # -- evidence ------------------------------------------------------------------------

    async def _read_tasks(self) -> list[TaskEnd]:
        ids: list[str] = []
        while True:
            page = await self._get(f"/tasks?limit=10000&offset={len(ids)}")
            found = [str(t["task_id"]) for t in page["tasks"]]
            if not found:
                break
            ids.extend(found)
        return await _map_limited(self._read_task, ids)

    async def _read_task(self, task_id: str) -> TaskEnd:
        task = await self._get(f"/tasks/{task_id}")
        attempts = (await self._get(f"/tasks/{task_id}/attempts"))["attempts"]
        steps = []
        for step in task["steps"]:
            mine = [a for a in attempts if a["step_name"] == step["name"]]
            error = step["last_error"] or {}
            steps.append(
                StepEnd(
                    name=step["name"],
                    state=step["state"],
                    attempts=int(step["attempts"]),
                    max_attempts=int(step["max_attempts"]),
                    error_code=error.get("error_code"),
                    error_kind=error.get("kind"),
                    attempt_codes=tuple(
                        a["error"]["error_code"]
                        for a in mine
                        if a["outcome"] == AttemptOutcome.FAILED and a["error"]
                    ),
                    lost_attempts=sum(a["outcome"] == AttemptOutcome.LOST for a in mine),
                    completions=sum(a["outcome"] == AttemptOutcome.COMPLETED for a in mine),
                )
            )
        return TaskEnd(task_id=task_id, state=task["state"], steps=tuple(steps))

    async def _resubmit_all(self) -> dict[str, Resubmission]:
        async def again(index: int) -> tuple[str, Resubmission]:
            body = {
                "name": TEMPLATE_NAME,
                "context": self.contexts[index],
                "idempotency_key": self.keys[index],
            }
            answer = await self._post_task(body)
            if answer is None:
                raise SoakError("the orchestrator stopped answering at the end")
            created = bool(answer.get("created", True))
            return self.keys[index], Resubmission(str(answer["task_id"]), created)

        return dict(await _map_limited(again, range(self.config.registrations)))

    async def _get(self, path: str) -> dict[str, Any]:
        async with self.session.get(f"{self._api()}{path}") as resp:
            if resp.status != 200:
                raise SoakError(f"GET {path} answered {resp.status}: {await resp.text()}")
            body: dict[str, Any] = await resp.json()
            return body


async def _map_limited(call: Callable[[X], Awaitable[T]], items: Iterable[X]) -> list[T]:
    """``call`` on every item, :data:`READ_CONCURRENCY` at a time, results in order."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def one(item: X) -> T:
        async with gate:
            return await call(item)

    return list(await asyncio.gather(*(one(item) for item in items)))
