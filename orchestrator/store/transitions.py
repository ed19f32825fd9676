"""State transitions, written once for every store, run inside a write batch.

Each function is a compare-and-swap on the expected state; events and attempt rows are
collected on the :class:`Tx` and written once per batch. They talk to the database only through
:class:`Db`, in SQLite's dialect (``?`` parameters): the SQLite store drives them synchronously on
its writer thread (its :class:`Db` never suspends, see :func:`run_sync`), the PostgreSQL store
awaits them on asyncpg. Where the two databases differ (ids of inserted rows, the order of
events, row locks) :class:`Db` has a method for it, so the domain's SQL is written once.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from orchestrator import codec, lifecycle
from orchestrator.errors import StepNotFoundError, TaskNotFoundError
from orchestrator.event_types import SERVICE_CALL_END_EVENTS, EventType
from orchestrator.models import (
    ACTIVE_TASK_STATES,
    CLAIMABLE_STEP_STATES,
    JSON,
    OPEN_STEP_STATES,
    RETRYABLE_STEP_STATES,
    AttemptOutcome,
    BreakerView,
    ClaimedStep,
    ErrorInfo,
    OnFailure,
    StepState,
    TaskState,
)
from orchestrator.store.base import (
    Claim,
    CreatedTask,
    NewEvent,
    NewStep,
    NewTask,
    StepFailure,
    StepSuccess,
    Transition,
)
from orchestrator.store.sqltext import in_list, literal
from orchestrator.summary import StepTiming, task_summary

log = logging.getLogger("interlock.store")
Row = Sequence[Any]
T = TypeVar("T")


class Db(Protocol):
    """One write transaction's connection, as the transitions use it."""

    #: appended to a ``SELECT ... FROM ... JOIN tasks t`` that picks rows to change: on a database
    #: with row locks, it takes the tasks' locks and skips tasks another writer holds
    skip_locked_tasks: str
    #: the same for a ``SELECT ... FROM steps`` that picks steps to change
    skip_locked_steps: str

    async def execute(self, sql: str, params: Row = ()) -> int:
        """Run one statement; how many rows it changed."""

    async def executemany(self, sql: str, rows: Sequence[Row]) -> None: ...

    async def fetchall(self, sql: str, params: Row = ()) -> list[Row]: ...

    async def fetchone(self, sql: str, params: Row = ()) -> Row | None: ...

    async def insert_ids(self, sql: str, rows: Sequence[Row]) -> list[int]:
        """Insert ``rows`` with ``sql`` (an INSERT into a table with an integer ``id``); the
        ids they got, in the order of ``rows``."""

    async def insert_events(self, rows: Sequence[Row]) -> int:
        """Insert event rows (at, type, task_id, step_name, correlation_id, attempt, data
        text); the sequence number of the first, the rest following it without a gap. No
        event numbered after them may become visible before they do (see the stores)."""


def one(conn: sqlite3.Connection, sql: str, params: Row = ()) -> Any:
    """The first row of a query, with its cursor closed at once.

    A half-read cursor keeps SQLite's implicit read snapshot open past COMMIT; once another
    connection writes, that stale snapshot can never take the write lock (a deadlock the busy
    timeout cannot break). Closing resets the statement and releases the snapshot.
    """
    cur = conn.execute(sql, params)
    try:
        return cur.fetchone()
    finally:
        cur.close()


class SqliteDb:
    """:class:`Db` on a sqlite3 connection. Its methods never suspend, so a transition on it
    runs to its end in one :func:`run_sync`."""

    skip_locked_tasks = ""  # one writer at a time: nothing to skip
    skip_locked_steps = ""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, params: Row = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    async def executemany(self, sql: str, rows: Sequence[Row]) -> None:
        self.conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Row = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    async def fetchone(self, sql: str, params: Row = ()) -> Row | None:
        row: Row | None = one(self.conn, sql, params)
        return row

    async def insert_ids(self, sql: str, rows: Sequence[Row]) -> list[int]:
        self.conn.executemany(sql, rows)
        # One writer holds the lock, so one executemany gets consecutive ids.
        last = int(one(self.conn, "SELECT last_insert_rowid()")[0])
        return list(range(last - len(rows) + 1, last + 1))

    async def insert_events(self, rows: Sequence[Row]) -> int:
        self.conn.executemany(
            "INSERT INTO events (at, type, task_id, step_name, correlation_id, attempt, data) "
            "VALUES (?,?,?,?,?,?,?)",
            rows,
        )
        # One writer holds the lock, so AUTOINCREMENT hands this batch consecutive numbers
        # and no later commit can show a smaller one.
        last = int(one(self.conn, "SELECT last_insert_rowid()")[0])
        return last - len(rows) + 1


def settle(future: asyncio.Future[Any] | None, ok: bool, value: Any) -> None:
    """Hand an operation's outcome to its waiter; a queued-only write has none, so log it."""
    if future is None:
        if not ok:
            log.error("queued events could not be written: %s", value)
    elif not future.done():
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def tell(listeners: Sequence[Any], events: Sequence[Any]) -> None:
    """Hand committed events to every listener; one that raises is logged and does not keep
    the others (the engine's bus among them) from the events, nor the batch from settling."""
    for listener in listeners:
        try:
            listener(events)
        except Exception:
            log.exception("an event listener failed")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a transition on :class:`SqliteDb` to its end, here, without an event loop.

    Nothing it awaits suspends, so the first ``send`` finishes it; one that did suspend would
    be a bug (a Db that blocks), and is refused rather than left half-run.
    """
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("a transition suspended on a synchronous database")


dumps = codec.dumps


@dataclass(frozen=True, slots=True)
class StaticStep:
    """The parts of a step row that never change after the task is created."""

    id: int
    name: str
    handler: str
    depends_on: tuple[str, ...]
    dependents: tuple[str, ...]
    max_attempts: int
    retry: JSON
    timeout_s: float | None
    handler_config: JSON
    on_failure: str = OnFailure.FAIL
    fallback_results: JSON | None = None


@dataclass(frozen=True, slots=True)
class StaticTask:
    """The immutable shape of a task, cached so hot transitions need not re-read and re-parse it."""

    id: str
    name: str
    correlation_id: str
    context: str  #: JSON text; parsed afresh for each handler so none can alter another's copy
    steps: tuple[StaticStep, ...]
    created_at: float

    def step(self, name: str) -> StaticStep:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


class StaticCache:
    """A bounded LRU of :class:`StaticTask` by task id (safe across engines: it never changes)."""

    def __init__(self, capacity: int = 20_000) -> None:
        self._items: OrderedDict[str, StaticTask] = OrderedDict()
        self._capacity = capacity
        self._encoded: dict[int, tuple[NewStep, tuple[str, str, str, str | None]]] = {}

    def get(self, task_id: str) -> StaticTask | None:
        item = self._items.get(task_id)
        if item is not None:
            self._items.move_to_end(task_id)
        return item

    def encoded(self, step: NewStep) -> tuple[str, str, str, str | None]:
        """JSON texts of a new step's depends_on, retry, handler_config and fallback_results.

        Engines reuse one NewStep per template step, so its encodings are computed once; the
        entry holds the step itself, so its id cannot be reused while cached.
        """
        hit = self._encoded.get(id(step))
        if hit is not None and hit[0] is step:
            return hit[1]
        fallback = None if step.fallback_results is None else dumps(step.fallback_results)
        texts = (
            dumps(list(step.depends_on)),
            dumps(step.retry),
            dumps(step.handler_config),
            fallback,
        )
        if len(self._encoded) > 1024:
            self._encoded.clear()
        self._encoded[id(step)] = (step, texts)
        return texts

    def put(self, task: StaticTask) -> None:
        self._items[task.id] = task
        if len(self._items) > self._capacity:
            self._items.popitem(last=False)


@dataclass(slots=True)
class StepRow:
    static: StaticStep
    state: str
    deps_remaining: int
    attempts: int
    results: str | None
    next_attempt_at: float | None

    @property
    def id(self) -> int:
        return self.static.id

    @property
    def name(self) -> str:
        return self.static.name

    @property
    def depends_on(self) -> tuple[str, ...]:
        return self.static.depends_on


@dataclass(slots=True)
class TaskRow:
    static: StaticTask
    state: str
    steps: list[StepRow] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.static.id

    @property
    def name(self) -> str:
        return self.static.name

    @property
    def correlation_id(self) -> str:
        return self.static.correlation_id

    def by_name(self, name: str) -> StepRow:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)


def _static_steps(rows: list[tuple[Any, ...]]) -> tuple[StaticStep, ...]:
    """Build static steps from (id, name, handler, depends_on, max_attempts, retry, timeout_s,
    handler_config, on_failure, fallback_results) with parsed JSON."""
    deps = {r[1]: tuple(r[3]) for r in rows}
    return tuple(
        StaticStep(
            r[0],
            r[1],
            r[2],
            tuple(r[3]),
            tuple(n for n, d in deps.items() if r[1] in d),
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            r[9],
        )
        for r in rows
    )


class Tx:
    """One write transaction: the connection plus the events and attempts it will append."""

    def __init__(self, db: Db, cache: StaticCache) -> None:
        self.db = db
        self.cache = cache
        self.events: list[tuple[Any, ...]] = []
        self.attempts: list[tuple[Any, ...]] = []
        #: data of this batch's service_call.completed/failed events by task (for summaries)
        self.service_calls: dict[str, list[JSON]] = {}

    # -- bookkeeping --------------------------------------------------------------------------
    def mark(self) -> tuple[int, int]:
        return len(self.events), len(self.attempts)

    def rollback_to(self, mark: tuple[int, int]) -> None:
        del self.events[mark[0] :]
        del self.attempts[mark[1] :]
        self.service_calls = {}
        for row in self.events:
            self._note_service_call(row[1], row[2], row[6])

    def event(
        self,
        at: float,
        type_: str,
        task: TaskRow | None,
        step: str | None = None,
        attempt: int | None = None,
        data: JSON | None = None,
    ) -> None:
        self.events.append(
            (
                at,
                type_,
                task.id if task else None,
                step,
                task.correlation_id if task else None,
                attempt,
                data or {},
            )
        )

    def add_event(self, ev: NewEvent) -> None:
        self.events.append(
            (ev.at, ev.type, ev.task_id, ev.step_name, ev.correlation_id, ev.attempt, ev.data)
        )
        self._note_service_call(ev.type, ev.task_id, ev.data)

    def _note_service_call(self, type_: str, task_id: str | None, data: JSON) -> None:
        if task_id is not None and type_ in SERVICE_CALL_END_EVENTS:
            self.service_calls.setdefault(task_id, []).append(data)

    def attempt_row(
        self,
        task: TaskRow,
        step: str,
        attempt: int,
        worker: str,
        started_at: float,
        ended_at: float,
        duration_s: float,
        outcome: AttemptOutcome,
        error: ErrorInfo | None,
    ) -> None:
        self.attempts.append(
            (
                task.id,
                task.name,
                step,
                attempt,
                worker,
                started_at,
                ended_at,
                duration_s,
                outcome,
                dumps(error.to_json()) if error else None,
            )
        )

    async def flush(self) -> list[tuple[Any, ...]]:
        """Write collected attempts and events; return event rows with their sequence numbers.

        Event rows keep their data as a dict (encoded only for the INSERT), so publishing them
        to live subscribers costs no JSON round trip.
        """
        if self.attempts:
            await self.db.executemany(
                "INSERT INTO attempts (task_id, task_name, step_name, attempt, worker_id, "
                "started_at, ended_at, duration_s, outcome, error) VALUES (?,?,?,?,?,?,?,?,?,?)",
                self.attempts,
            )
        if not self.events:
            return []
        first = await self.db.insert_events(
            [(*row[:6], dumps(row[6]) if row[6] else "{}") for row in self.events]
        )
        return [(first + i, *row) for i, row in enumerate(self.events)]

    # -- loading ------------------------------------------------------------------------------
    async def load_task(self, task_id: str) -> TaskRow:
        static = self.cache.get(task_id) or await self._load_static(task_id)
        rows = await self.db.fetchall(
            "SELECT t.state, s.state, s.deps_remaining, s.attempts, s.results, s.next_attempt_at "
            "FROM tasks t JOIN steps s ON s.task_id = t.id WHERE t.id = ? ORDER BY s.position",
            (task_id,),
        )
        if not rows:
            raise TaskNotFoundError(task_id)
        return TaskRow(
            static,
            rows[0][0],
            [StepRow(st, *row[1:]) for st, row in zip(static.steps, rows, strict=True)],
        )

    async def static_step(self, task_id: str, step_name: str) -> StaticStep:
        """A step's immutable part (its failure policy, fallback), from the cache if there."""
        static = self.cache.get(task_id) or await self._load_static(task_id)
        return static.step(step_name)

    async def _load_static(self, task_id: str) -> StaticTask:
        row = await self.db.fetchone(
            "SELECT id, name, correlation_id, context, created_at FROM tasks WHERE id = ?",
            (task_id,),
        )
        if row is None:
            raise TaskNotFoundError(task_id)
        steps = await self.db.fetchall(
            "SELECT id, name, handler, depends_on, max_attempts, retry, timeout_s, "
            "handler_config, on_failure, fallback_results FROM steps WHERE task_id = ? "
            "ORDER BY position",
            (task_id,),
        )
        parsed = [
            (
                r[0],
                r[1],
                r[2],
                codec.loads(r[3]),
                r[4],
                codec.loads(r[5]),
                r[6],
                codec.loads(r[7]),
                r[8],
                None if r[9] is None else codec.loads(r[9]),
            )
            for r in steps
        ]
        static = StaticTask(row[0], row[1], row[2], row[3], _static_steps(parsed), row[4])
        self.cache.put(static)
        return static

    # -- shared pieces ------------------------------------------------------------------------
    async def claim(self, task: TaskRow, step: StepRow, claim: Claim) -> ClaimedStep | None:
        """Compare-and-swap one ready step to in_progress under ``claim``'s lease."""
        changed = await self.db.execute(
            f"UPDATE steps SET state = {_IN_PROGRESS}, attempts = attempts + 1, lease_owner = ?, "
            "lease_expires_at = ?, started_at = ?, next_attempt_at = NULL "
            f"WHERE id = ? AND state IN {_CLAIMABLE} AND deps_remaining = 0",
            (claim.owner, claim.now + claim.lease_s, claim.now, step.id),
        )
        if changed != 1:
            return None
        step.state = StepState.IN_PROGRESS
        step.attempts += 1
        if task.state == TaskState.PENDING:
            await self.db.execute(
                f"UPDATE tasks SET state = {_TASK_IN_PROGRESS}, started_at = ? "
                f"WHERE id = ? AND state = {_TASK_PENDING}",
                (claim.now, task.id),
            )
            task.state = TaskState.IN_PROGRESS
            self.event(claim.now, EventType.TASK_STARTED, task)
        self.event(
            claim.now,
            EventType.STEP_STARTED,
            task,
            step.name,
            step.attempts,
            {"worker_id": claim.owner},
        )
        dep_results = {d: codec.loads(task.by_name(d).results or "{}") for d in step.depends_on}
        st = step.static
        return ClaimedStep(
            step_id=st.id,
            task_id=task.id,
            task_name=task.name,
            step_name=st.name,
            handler=st.handler,
            attempt=step.attempts,
            max_attempts=st.max_attempts,
            timeout_s=st.timeout_s,
            retry=st.retry,
            handler_config=st.handler_config,
            context=codec.loads(task.static.context),
            dependency_results=dep_results,
            correlation_id=task.correlation_id,
            started_at=claim.now,
        )

    async def claim_ready_in_task(self, task: TaskRow, claim: Claim | None) -> list[ClaimedStep]:
        if claim is None or claim.limit <= 0 or task.state not in ACTIVE_TASK_STATES:
            return []
        claimed: list[ClaimedStep] = []
        for step in task.steps:
            if len(claimed) >= claim.limit:
                break
            if step.deps_remaining == 0 and lifecycle.is_due(
                step.state, step.next_attempt_at, claim.now
            ):
                got = await self.claim(task, step, claim)
                if got is not None:
                    claimed.append(got)
        return claimed

    async def mark_done(self, task: TaskRow, step: StepRow) -> None:
        """Count ``step`` as done for each of its dependents still waiting for it.

        Only pending dependents wait: one that already ran (on the fallback of a degraded step
        that an operator retried) neither runs again nor counts the step twice.
        """
        dependents = step.static.dependents
        children = [s for s in task.steps if s.name in dependents and s.state == StepState.PENDING]
        for child in children:
            child.deps_remaining -= 1
        if children:
            await self.db.executemany(
                "UPDATE steps SET deps_remaining = deps_remaining - 1 WHERE id = ?",
                [(c.id,) for c in children],
            )

    async def finish_task_if_done(self, task: TaskRow, now: float) -> None:
        """End the task if :func:`lifecycle.task_outcome` says nothing in it can run any more."""
        new_state = lifecycle.task_outcome(task.state, task.steps)
        if new_state is None:
            return
        summary = await self.task_summary(task, now)
        await self.db.execute(
            "UPDATE tasks SET state = ?, completed_at = ?, summary = ? WHERE id = ? AND state = ?",
            (new_state.value, now, dumps(summary), task.id, task.state),
        )
        task.state = new_state
        if new_state is TaskState.ERROR:
            failed_steps = lifecycle.failed_step_names(task.steps)
            data = {"failed_steps": failed_steps, "summary": summary}
            self.event(now, EventType.TASK_FAILED, task, data=data)
        else:
            data = {"summary": summary, "degraded_steps": summary["degraded_steps"]}
            self.event(now, EventType.TASK_COMPLETED, task, data=data)

    async def task_summary(self, task: TaskRow, now: float) -> JSON:
        """Read what :func:`summary.task_summary` needs, this batch's unwritten rows included."""
        rows = await self.db.fetchall(
            "SELECT s.name, COALESCE((SELECT MIN(a.started_at) FROM attempts a "
            "WHERE a.task_id = s.task_id AND a.step_name = s.name), s.started_at), "
            "s.completed_at, s.attempts FROM steps s WHERE s.task_id = ? ORDER BY s.position",
            (task.id,),
        )
        pending = [(a[2], a[5]) for a in self.attempts if a[0] == task.id]  # not yet inserted
        timings = []
        for static, (name, first_start, completed_at, attempts) in zip(
            task.static.steps, rows, strict=True
        ):
            for step_name, started_at in pending:
                if step_name == name and (first_start is None or started_at < first_start):
                    first_start = started_at
            timings.append(StepTiming(name, static.depends_on, first_start, completed_at, attempts))
        calls = [
            codec.loads(r[0])
            for r in await self.db.fetchall(
                f"SELECT data FROM events WHERE task_id = ? AND type IN {_SERVICE_CALL_ENDS}",
                (task.id,),
            )
        ]
        calls += self.service_calls.get(task.id, ())
        degraded = lifecycle.degraded_step_names(task.steps)
        return task_summary(timings, calls, task.static.created_at, now, degraded)


_IN_PROGRESS = literal(StepState.IN_PROGRESS)
_PENDING = literal(StepState.PENDING)
_WAITING = literal(StepState.WAITING_FOR_RETRY)
_COMPLETE = literal(StepState.COMPLETE)
_CANCELLED = literal(StepState.CANCELLED)
_RESOLVED = literal(StepState.RESOLVED_MANUALLY)
_CLAIMABLE = in_list(CLAIMABLE_STEP_STATES)
_RETRYABLE = in_list(RETRYABLE_STEP_STATES)
_TASK_PENDING = literal(TaskState.PENDING)
_TASK_IN_PROGRESS = literal(TaskState.IN_PROGRESS)
_TASK_CANCELLED = literal(TaskState.CANCELLED)
_ACTIVE_TASKS = in_list(ACTIVE_TASK_STATES)
_SERVICE_CALL_ENDS = in_list(SERVICE_CALL_END_EVENTS)


# -- operations (each runs inside a savepoint of a batch) -------------------------------------


async def create_task(tx: Tx, new: NewTask, claim: Claim | None) -> CreatedTask:
    if new.idempotency_key is not None:
        row = await tx.db.fetchone(
            "SELECT id, request_hash FROM tasks WHERE idempotency_key = ?",
            (new.idempotency_key,),
        )
        if row is not None:
            if new.request_hash is not None:
                lifecycle.check_resubmission(new.idempotency_key, row[0], row[1], new.request_hash)
            return CreatedTask(task_id=row[0], created=False)
    context = dumps(new.context)
    await tx.db.execute(
        "INSERT INTO tasks (id, name, namespace, version, state, correlation_id, context, "
        "idempotency_key, created_at, request_hash) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            new.task_id,
            new.name,
            new.namespace,
            new.version,
            TaskState.PENDING.value,
            new.correlation_id,
            context,
            new.idempotency_key,
            new.now,
            new.request_hash,
        ),
    )
    ids = await tx.db.insert_ids(
        "INSERT INTO steps (task_id, position, name, handler, depends_on, "
        "retry, handler_config, fallback_results, deps_remaining, state, max_attempts, "
        "timeout_s, on_failure) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                new.task_id,
                pos,
                s.name,
                s.handler,
                *tx.cache.encoded(s),
                len(s.depends_on),
                StepState.PENDING.value,
                s.max_attempts,
                s.timeout_s,
                s.on_failure.value,
            )
            for pos, s in enumerate(new.steps)
        ],
    )
    static = StaticTask(
        new.task_id,
        new.name,
        new.correlation_id,
        context,
        _static_steps(
            [
                (
                    ids[i],
                    s.name,
                    s.handler,
                    s.depends_on,
                    s.max_attempts,
                    s.retry,
                    s.timeout_s,
                    s.handler_config,
                    s.on_failure.value,
                    s.fallback_results,
                )
                for i, s in enumerate(new.steps)
            ]
        ),
        new.now,
    )
    tx.cache.put(static)
    task = TaskRow(
        static,
        TaskState.PENDING,
        [StepRow(st, StepState.PENDING, len(st.depends_on), 0, None, None) for st in static.steps],
    )
    tx.event(
        new.now,
        EventType.TASK_CREATED,
        task,
        data={
            "name": new.name,
            "version": new.version,
            "namespace": new.namespace,
            "context": new.context,
        },
    )
    return CreatedTask(
        task_id=new.task_id, created=True, claimed=await tx.claim_ready_in_task(task, claim)
    )


async def add_events(tx: Tx, events: Iterable[NewEvent]) -> None:
    for ev in events:
        tx.add_event(ev)


async def complete_step(tx: Tx, done: StepSuccess, claim: Claim | None) -> Transition:
    changed = await tx.db.execute(
        f"UPDATE steps SET state = {_COMPLETE}, results = ?, completed_at = ?, last_error = NULL, "
        "lease_owner = NULL, lease_expires_at = NULL "
        f"WHERE id = ? AND state = {_IN_PROGRESS} AND lease_owner = ? AND attempts = ?",
        (dumps(done.results), done.now, done.step_id, done.owner, done.attempt),
    )
    if changed != 1:
        return Transition(accepted=False)
    task = await tx.load_task(done.task_id)
    step = task.by_name(done.step_name)
    tx.attempt_row(
        task,
        step.name,
        done.attempt,
        done.owner,
        done.started_at,
        done.now,
        done.duration_s,
        AttemptOutcome.COMPLETED,
        None,
    )
    tx.event(
        done.now,
        EventType.STEP_COMPLETED,
        task,
        step.name,
        done.attempt,
        {"duration_s": round(done.duration_s, 6)},
    )
    await tx.mark_done(task, step)
    claimed = await tx.claim_ready_in_task(task, claim)
    await tx.finish_task_if_done(task, done.now)
    return Transition(accepted=True, claimed=claimed)


async def fail_step(tx: Tx, failed: StepFailure, claim: Claim | None = None) -> Transition:
    final = failed.next_attempt_at is None
    static = await tx.static_step(failed.task_id, failed.step_name)
    new_state = lifecycle.failure_state(failed.next_attempt_at, static.on_failure)
    changed = await tx.db.execute(
        "UPDATE steps SET state = ?, last_error = ?, next_attempt_at = ?, completed_at = ?, "
        "results = COALESCE(?, results), lease_owner = NULL, lease_expires_at = NULL "
        f"WHERE id = ? AND state = {_IN_PROGRESS} AND lease_owner = ? AND attempts = ?",
        (
            new_state.value,
            dumps(failed.error.to_json()),
            failed.next_attempt_at,
            failed.now if final else None,
            _fallback_text(static) if new_state is StepState.DEGRADED else None,
            failed.step_id,
            failed.owner,
            failed.attempt,
        ),
    )
    if changed != 1:
        return Transition(accepted=False)
    task = await tx.load_task(failed.task_id)
    tx.attempt_row(
        task,
        failed.step_name,
        failed.attempt,
        failed.owner,
        failed.started_at,
        failed.now,
        failed.duration_s,
        AttemptOutcome.FAILED,
        failed.error,
    )
    claimed = await _record_failure(
        tx,
        task,
        failed.step_name,
        failed.attempt,
        failed.error,
        failed.next_attempt_at,
        failed.now,
        claim,
    )
    return Transition(accepted=True, claimed=claimed)


def _fallback_text(static: StaticStep) -> str:
    """The results a degraded step hands its dependents, as stored: its fallback or ``{}``."""
    return dumps(lifecycle.resolution_results(None, static.fallback_results))


async def _record_failure(
    tx: Tx,
    task: TaskRow,
    step_name: str,
    attempt: int,
    error: ErrorInfo,
    next_attempt_at: float | None,
    now: float,
    claim: Claim | None = None,
) -> list[ClaimedStep]:
    """The events of a failed attempt; a degraded step also frees its dependents."""
    step = task.by_name(step_name)
    claimed: list[ClaimedStep] = []
    if step.state == StepState.DEGRADED:
        fallback = codec.loads(step.results or "{}")
        data = {"error": error.to_json(), "fallback_results": fallback}
        tx.event(now, EventType.STEP_DEGRADED, task, step_name, attempt, data)
        await tx.mark_done(task, step)
        claimed = await tx.claim_ready_in_task(task, claim)
        await tx.finish_task_if_done(task, now)
    elif next_attempt_at is None:
        tx.event(now, EventType.STEP_FAILED, task, step_name, attempt, {"error": error.to_json()})
        await tx.finish_task_if_done(task, now)
    else:
        tx.event(
            now,
            EventType.STEP_RETRY_SCHEDULED,
            task,
            step_name,
            attempt,
            {
                "error": error.to_json(),
                "next_attempt_at": next_attempt_at,
                "delay_s": round(max(0.0, next_attempt_at - now), 6),
            },
        )
    return claimed


async def claim_ready_steps(tx: Tx, claim: Claim) -> list[ClaimedStep]:
    rows = await tx.db.fetchall(
        "SELECT s.task_id FROM steps s JOIN tasks t ON t.id = s.task_id "
        f"WHERE s.state IN {_CLAIMABLE} AND s.deps_remaining = 0 "
        "AND (s.next_attempt_at IS NULL OR s.next_attempt_at <= ?) "
        f"AND t.state IN {_ACTIVE_TASKS} "
        "ORDER BY COALESCE(s.next_attempt_at, 0), s.id LIMIT ?" + tx.db.skip_locked_tasks,
        (claim.now, claim.limit),
    )
    claimed: list[ClaimedStep] = []
    for task_id in dict.fromkeys(r[0] for r in rows):
        remaining = claim.limit - len(claimed)
        if remaining <= 0:
            break
        task = await tx.load_task(task_id)
        sub = Claim(claim.owner, claim.lease_s, remaining, claim.now)
        claimed.extend(await tx.claim_ready_in_task(task, sub))
    return claimed


async def defer_step(
    tx: Tx, step_id: int, owner: str, until: float, reason: JSON, now: float
) -> bool:
    row = await tx.db.fetchone("SELECT task_id, name, attempts FROM steps WHERE id = ?", (step_id,))
    if row is None:
        return False
    changed = await tx.db.execute(
        f"UPDATE steps SET state = {_WAITING}, attempts = attempts - 1, "
        "next_attempt_at = ?, lease_owner = NULL, lease_expires_at = NULL "
        f"WHERE id = ? AND state = {_IN_PROGRESS} AND lease_owner = ?",
        (until, step_id, owner),
    )
    if changed != 1:
        return False
    task = await tx.load_task(row[0])
    tx.event(
        now,
        EventType.STEP_DEFERRED,
        task,
        row[1],
        row[2],
        {**reason, "next_attempt_at": until, "delay_s": round(max(0.0, until - now), 6)},
    )
    return True


async def renew_leases(tx: Tx, owner: str, step_ids: Iterable[int], until: float) -> int:
    ids = list(step_ids)
    marks = ",".join("?" * len(ids))
    # A step another writer holds is being finished or cancelled: it needs no renewal.
    return await tx.db.execute(
        f"UPDATE steps SET lease_expires_at = ? WHERE id IN (SELECT id FROM steps "
        f"WHERE id IN ({marks}) AND state = {_IN_PROGRESS} AND lease_owner = ?"
        f"{tx.db.skip_locked_steps})",
        (until, *ids, owner),
    )


async def reclaim_expired_leases(tx: Tx, now: float, owner: str | None) -> int:
    """Expired leases (and ``owner``'s, which just restarted) become lost, retryable attempts."""
    rows = await tx.db.fetchall(
        "SELECT s.id, s.task_id, s.name, s.attempts, s.max_attempts, s.lease_owner, s.started_at "
        f"FROM steps s JOIN tasks t ON t.id = s.task_id WHERE s.state = {_IN_PROGRESS} "
        "AND (s.lease_expires_at < ? OR s.lease_owner = ?) ORDER BY s.id" + tx.db.skip_locked_tasks,
        (now, owner),
    )
    reclaimed = 0
    for step_id, task_id, name, attempts, _max_attempts, lost_owner, started_at in rows:
        static = await tx.static_step(task_id, name)
        in_a_row = 1 + await _lost_in_a_row(tx, task_id, name)
        lost = lifecycle.lost_attempt(lost_owner, attempts, in_a_row, now, static.on_failure)
        error, retry_at = lost.error, lost.retry_at
        # A compare-and-swap on the lease as it was read: on a database with other writers the
        # row may have moved on since (completed, renewed, claimed again); then it is not lost.
        same_owner = "lease_owner IS NULL" if lost_owner is None else "lease_owner = ?"
        changed = await tx.db.execute(
            "UPDATE steps SET state = ?, last_error = ?, next_attempt_at = ?, completed_at = ?, "
            "attempts = ?, results = COALESCE(?, results), lease_owner = NULL, "
            "lease_expires_at = NULL "
            f"WHERE id = ? AND state = {_IN_PROGRESS} AND attempts = ? AND {same_owner} "
            "AND (lease_expires_at < ? OR lease_owner = ?)",
            (
                lost.state.value,
                dumps(error.to_json()),
                retry_at,
                None if retry_at else now,
                lost.attempts,
                _fallback_text(static) if lost.state is StepState.DEGRADED else None,
                step_id,
                attempts,
                *(() if lost_owner is None else (lost_owner,)),
                now,
                owner,
            ),
        )
        if changed != 1:
            continue
        reclaimed += 1
        task = await tx.load_task(task_id)
        started = started_at or now
        tx.attempt_row(
            task,
            name,
            attempts,
            lost_owner or "?",
            started,
            now,
            now - started,
            AttemptOutcome.LOST,
            error,
        )
        tx.event(now, EventType.STEP_WORKER_LOST, task, name, attempts, {"worker_id": lost_owner})
        await _record_failure(tx, task, name, attempts, error, retry_at, now)
    return reclaimed


async def _lost_in_a_row(tx: Tx, task_id: str, step_name: str) -> int:
    """How many of the step's latest recorded attempts, in a row, were lost to crashes."""
    rows = await tx.db.fetchall(
        "SELECT outcome FROM attempts WHERE task_id = ? AND step_name = ? ORDER BY id DESC LIMIT ?",
        (task_id, step_name, lifecycle.MAX_LOST_IN_A_ROW),
    )
    count = 0
    for (outcome,) in rows:
        if outcome != AttemptOutcome.LOST:
            break
        count += 1
    return count


async def save_breaker(tx: Tx, breaker: BreakerView, events: Sequence[NewEvent]) -> None:
    """Write a breaker's row and the events of its transition."""
    b = breaker
    await tx.db.execute(
        "INSERT INTO breakers (service, state, failures, successes, opened_at, "
        "updated_at, data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (service) DO UPDATE "
        "SET state = excluded.state, failures = excluded.failures, "
        "successes = excluded.successes, opened_at = excluded.opened_at, "
        "updated_at = excluded.updated_at, data = excluded.data",
        (
            b.service,
            b.state.value,
            b.failures,
            b.successes,
            b.opened_at,
            b.updated_at,
            dumps({"open_until": b.open_until}),
        ),
    )
    for ev in events:
        tx.add_event(ev)


async def cancel_task(tx: Tx, task_id: str, now: float) -> None:
    task = await tx.load_task(task_id)
    lifecycle.check_cancel(task_id, task.state)
    await tx.db.execute(
        f"UPDATE tasks SET state = {_TASK_CANCELLED}, completed_at = ? WHERE id = ?", (now, task_id)
    )
    for step in task.steps:
        if step.state in OPEN_STEP_STATES:
            await tx.db.execute(
                f"UPDATE steps SET state = {_CANCELLED}, completed_at = ?, lease_owner = NULL, "
                "lease_expires_at = NULL, next_attempt_at = NULL WHERE id = ?",
                (now, step.id),
            )
            tx.event(
                now,
                EventType.STEP_CANCELLED,
                task,
                step.name,
                step.attempts,
                {"previous_state": step.state},
            )
    task.state = TaskState.CANCELLED
    tx.event(now, EventType.TASK_CANCELLED, task)


async def retry_step(tx: Tx, task_id: str, step_name: str, now: float) -> None:
    task = await tx.load_task(task_id)
    step = _step_or_raise(task, step_name)
    lifecycle.check_retry(task_id, task.state, step_name, step.state)
    await tx.db.execute(
        f"UPDATE steps SET state = {_PENDING}, attempts = 0, next_attempt_at = NULL, "
        f"completed_at = NULL WHERE id = ? AND state IN {_RETRYABLE}",
        (step.id,),
    )
    if step.state == StepState.DEGRADED:
        # It counted as done: dependents that have not run yet wait for its real results now.
        # Its fallback stays in ``results`` until those replace it, for any that already ran.
        await _unmark_done(tx, task, step)
    step.state, step.attempts = StepState.PENDING, 0
    tx.event(now, EventType.STEP_RETRY_REQUESTED, task, step_name, None, {"by": "operator"})
    await _reopen_task(tx, task, now)


async def _unmark_done(tx: Tx, task: TaskRow, step: StepRow) -> None:
    """Undo :meth:`Tx.mark_done` for the dependents of ``step`` that are still pending."""
    children = [
        s for s in task.steps if s.name in step.static.dependents and s.state == StepState.PENDING
    ]
    for child in children:
        child.deps_remaining += 1
    if children:
        await tx.db.executemany(
            "UPDATE steps SET deps_remaining = deps_remaining + 1 WHERE id = ?",
            [(c.id,) for c in children],
        )


async def resolve_step(
    tx: Tx, task_id: str, step_name: str, given: JSON | None, now: float, claim: Claim | None
) -> list[ClaimedStep]:
    task = await tx.load_task(task_id)
    step = _step_or_raise(task, step_name)
    lifecycle.check_resolve(task.state, step_name, step.state)
    results = lifecycle.resolution_results(given, step.static.fallback_results)
    await tx.db.execute(
        f"UPDATE steps SET state = {_RESOLVED}, results = ?, completed_at = ?, "
        "next_attempt_at = NULL WHERE id = ? AND state = ?",
        (dumps(results), now, step.id, step.state),
    )
    step.state, step.results = StepState.RESOLVED_MANUALLY, dumps(results)
    tx.event(
        now,
        EventType.STEP_RESOLVED,
        task,
        step_name,
        step.attempts,
        {"by": "operator", "results": results},
    )
    await tx.mark_done(task, step)
    await _reopen_task(tx, task, now)
    claimed = await tx.claim_ready_in_task(task, claim)
    await tx.finish_task_if_done(task, now)
    return claimed


async def _reopen_task(tx: Tx, task: TaskRow, now: float) -> None:
    if lifecycle.reopens(task.state):
        await tx.db.execute(
            f"UPDATE tasks SET state = {_TASK_IN_PROGRESS}, completed_at = NULL WHERE id = ?",
            (task.id,),
        )
        task.state = TaskState.IN_PROGRESS
        tx.event(now, EventType.TASK_RESUMED, task)


def _step_or_raise(task: TaskRow, name: str) -> StepRow:
    try:
        return task.by_name(name)
    except KeyError:
        raise StepNotFoundError(f"task {task.id} has no step {name!r}") from None
