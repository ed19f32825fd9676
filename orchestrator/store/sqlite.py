"""The SQLite store: aiosqlite, WAL mode, and group commit for the write path.

Writes are queued and applied in batches: while one batch commits, the next one gathers, so under
load many transitions share one durable commit and when idle a single transition commits at once.
Writes have a connection of their own. A batch of one or two operations (the engine is idle) is
applied right on the event loop: nothing else is waiting, and the two thread hops would cost more
than the commit's fsync. A larger batch runs as one function on a writer thread, so the loop keeps
serving while it commits. Reads go through aiosqlite's connection and thread. If an operation of a
batch fails, the batch is replayed with a savepoint per operation, so only that one is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

from orchestrator import codec
from orchestrator.errors import StoreError, TaskNotFoundError
from orchestrator.event_types import EventType
from orchestrator.models import (
    ACTIVE_TASK_STATES,
    CLAIMABLE_STEP_STATES,
    JSON,
    AttemptOutcome,
    AttemptStat,
    AttemptView,
    BreakerState,
    BreakerView,
    ClaimedStep,
    ErrorInfo,
    ErrorKind,
    Event,
    StepState,
    StepView,
    TaskCounts,
    TaskState,
    TaskSummary,
    TaskView,
)
from orchestrator.store import transitions as tr
from orchestrator.store.base import (
    Claim,
    CreatedTask,
    EventListener,
    NewEvent,
    NewTask,
    StepFailure,
    StepSuccess,
    Store,
    Transition,
)
from orchestrator.store.sqltext import in_list, literal

log = logging.getLogger("interlock.store")
Op = Callable[[tr.Tx], Coroutine[Any, Any, Any]]

#: Schema migrations in order; entry N brings the database to version N + 1.
MIGRATIONS: tuple[str, ...] = tuple(
    resources.files("orchestrator.store").joinpath(name).read_text(encoding="utf-8")
    for name in ("schema.sql", "migration_request_hash.sql", "migration_degradation.sql")
)
SCHEMA_VERSION = len(MIGRATIONS)
MAX_BATCH = 512
_CLAIMABLE = in_list(CLAIMABLE_STEP_STATES)
_ACTIVE_TASKS = in_list(ACTIVE_TASK_STATES)
#: Batches up to this size are applied on the event loop (see the module docstring).
INLINE_MAX_OPS = 2


class SqliteStore(Store):
    """A :class:`Store` on one SQLite file.

    ``durable=True`` (the default) uses ``synchronous=FULL``: every commit reaches the disk before
    a transition is acknowledged. ``durable=False`` (``NORMAL``) survives a process crash but may
    lose the last commits on power loss.
    """

    def __init__(self, path: str, *, durable: bool = True, busy_timeout_s: float = 30.0) -> None:
        self.path = str(path)
        self.durable = durable
        self.busy_timeout_s = busy_timeout_s
        self._db: aiosqlite.Connection | None = None
        self._wconn: sqlite3.Connection | None = None  #: the write connection
        self._wthread: ThreadPoolExecutor | None = None
        self._queue: list[tuple[Op, asyncio.Future[Any] | None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._listeners: list[EventListener] = []
        self._static = tr.StaticCache()
        #: How many batches and operations were committed (for benchmarks and tests).
        self.batches_committed = 0
        self.ops_committed = 0

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Set the file up (WAL, schema migrations) on the write connection, then open reads.

        Every write, the migrations included, goes through one connection (``_wconn``); reads
        use aiosqlite's connection and thread, through its public API only.
        """
        synchronous = "FULL" if self.durable else "NORMAL"
        # No busy timeout on the write connection: an inline BEGIN must never block the loop
        # (see _begin); batches are only ever used by one thread at a time (_drain).
        try:
            wconn = sqlite3.connect(
                self.path, timeout=0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:  # a directory, a FIFO, a file it may not open
            raise StoreError(unusable(self.path, exc)) from None
        self._wconn = wconn
        self._wthread = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="interlock-sqlite-writer"
        )

        def configure() -> None:
            # fetchall() runs each pragma to completion: a half-read cursor would pin a read
            # snapshot on this connection and deadlock its next write (see transitions.one).
            wconn.execute("PRAGMA journal_mode = WAL").fetchall()
            wconn.execute(f"PRAGMA synchronous = {synchronous}").fetchall()
            _migrate(wconn, self.busy_timeout_s)

        try:
            await asyncio.get_running_loop().run_in_executor(self._wthread, configure)
            self._db = await aiosqlite.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None
            )
        except sqlite3.Error as exc:
            await self.close()  # a failed open leaves no thread or connection behind
            raise StoreError(unusable(self.path, exc)) from exc
        except StoreError as exc:  # a newer schema
            await self.close()
            raise StoreError(f"{self.path}: {exc}") from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.shield(self._writer)
        if self._wthread is not None:
            self._wthread.shutdown(wait=True)
            self._wthread = None
        if self._wconn is not None:
            self._wconn.close()
            self._wconn = None
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    async def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run a query to completion in one hop to the database thread.

        aiosqlite's cursor API takes three hops (execute, fetch, close), and a read snapshot
        left open between them would hold back WAL checkpoints. ``execute_fetchall`` runs the
        statement to its end in one hop and leaves nothing open.
        """
        return list(await self.db.execute_fetchall(sql, params))

    async def _fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = await self._fetchall(sql, params)
        return rows[0] if rows else None

    async def _write(self, op: Op) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(op, future)
        return await future

    def _enqueue(self, op: Op, future: asyncio.Future[Any] | None) -> None:
        """Queue ``op`` for the next batch; ``future`` (if any) gets its outcome."""
        self._queue.append((op, future))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
                started = time.perf_counter()
                try:
                    outcomes, events = await self._commit([b[0] for b in batch])
                except BaseException as exc:  # the whole batch failed (disk, lock timeout)
                    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                        exc = StoreError(
                            f"the database stayed locked by another writer for "
                            f"{self.busy_timeout_s:g} s"
                        )
                    for _, future in batch:
                        _settle(future, False, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self.batches_committed += 1
                self.ops_committed += len(batch)
                self.observer.committed(len(batch), time.perf_counter() - started)
                if events:
                    published = [_event(row) for row in events]
                    for listener in self._listeners:
                        listener(published)
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    _settle(future, ok, value)
        finally:
            self._writer = None

    async def _commit(self, ops: list[Op]) -> tuple[list[tuple[bool, Any]], list[Any]]:
        """Apply one batch: small ones on the loop, others on the writer thread."""
        if self._wconn is None or self._wthread is None:
            raise StoreError("the store is not open")
        if len(ops) <= INLINE_MAX_OPS:
            try:
                return _apply_batch(ops, self._static, self._wconn, wait_s=0.0)
            except _WriteLockBusyError:
                pass  # another process is writing: wait for its lock off the loop
        return await asyncio.get_running_loop().run_in_executor(
            self._wthread,
            partial(_apply_batch, ops, self._static, self._wconn, wait_s=self.busy_timeout_s),
        )

    # -- hot path -------------------------------------------------------------------------------
    async def create_task(self, task: NewTask, claim: Claim | None) -> CreatedTask:
        result: CreatedTask = await self._write(lambda tx: tr.create_task(tx, task, claim))
        return result

    async def complete_step(self, success: StepSuccess, claim: Claim | None) -> Transition:
        result: Transition = await self._write(lambda tx: tr.complete_step(tx, success, claim))
        return result

    async def fail_step(self, failure: StepFailure, claim: Claim | None = None) -> Transition:
        result: Transition = await self._write(lambda tx: tr.fail_step(tx, failure, claim))
        return result

    async def claim_ready_steps(self, claim: Claim) -> list[ClaimedStep]:
        started = time.perf_counter()
        result: list[ClaimedStep] = await self._write(lambda tx: tr.claim_ready_steps(tx, claim))
        self.observer.claimed(len(result), time.perf_counter() - started)
        return result

    async def defer_step(
        self, step_id: int, owner: str, until: float, reason: JSON, now: float
    ) -> bool:
        result: bool = await self._write(
            lambda tx: tr.defer_step(tx, step_id, owner, until, reason, now)
        )
        return result

    async def append_events(self, events: Sequence[NewEvent]) -> None:
        await self._write(partial(tr.add_events, events=events))

    def post_events(self, events: Sequence[NewEvent]) -> None:
        self._enqueue(partial(tr.add_events, events=events), None)

    async def renew_leases(self, owner: str, step_ids: Sequence[int], until: float) -> int:
        if not step_ids:
            return 0
        result: int = await self._write(lambda tx: tr.renew_leases(tx, owner, step_ids, until))
        return result

    async def reclaim_expired_leases(self, now: float, owner: str | None = None) -> int:
        result: int = await self._write(lambda tx: tr.reclaim_expired_leases(tx, now, owner))
        return result

    async def next_wakeup(self) -> float | None:
        row = await self._fetchone(
            "SELECT MIN(s.next_attempt_at) FROM steps s JOIN tasks t ON t.id = s.task_id "
            f"WHERE s.state IN {_CLAIMABLE} AND s.deps_remaining = 0 "
            f"AND t.state IN {_ACTIVE_TASKS}"
        )
        return row[0] if row else None

    # -- operator actions -----------------------------------------------------------------------
    async def cancel_task(self, task_id: str, now: float) -> None:
        await self._write(lambda tx: tr.cancel_task(tx, task_id, now))

    async def retry_step(self, task_id: str, step_name: str, now: float) -> None:
        await self._write(lambda tx: tr.retry_step(tx, task_id, step_name, now))

    async def resolve_step(
        self, task_id: str, step_name: str, results: JSON | None, now: float, claim: Claim | None
    ) -> list[ClaimedStep]:
        result: list[ClaimedStep] = await self._write(
            lambda tx: tr.resolve_step(tx, task_id, step_name, results, now, claim)
        )
        return result

    async def save_breaker(self, breaker: BreakerView, events: Sequence[NewEvent]) -> None:
        await self._write(partial(tr.save_breaker, breaker=breaker, events=events))

    async def load_breakers(self) -> list[BreakerView]:
        rows = await self._fetchall(
            "SELECT service, state, failures, successes, opened_at, updated_at, data "
            "FROM breakers ORDER BY service"
        )
        return [
            BreakerView(
                r[0],
                BreakerState(r[1]),
                r[2],
                r[3],
                r[4],
                codec.loads(r[6]).get("open_until"),
                r[5],
            )
            for r in rows
        ]

    # -- reads ----------------------------------------------------------------------------------
    async def get_task(self, task_id: str) -> TaskView:
        # One statement, so one snapshot: the task and its steps as of the same commit.
        rows = await self._fetchall(
            "SELECT t.id, t.name, t.namespace, t.version, t.state, t.correlation_id, t.context, "
            "t.created_at, t.completed_at, t.idempotency_key, t.summary, s.name, s.handler, "
            "s.state, s.depends_on, s.attempts, s.max_attempts, s.results, s.last_error, "
            "s.next_attempt_at, s.started_at, s.completed_at "
            "FROM tasks t LEFT JOIN steps s ON s.task_id = t.id WHERE t.id = ? ORDER BY s.position",
            (task_id,),
        )
        if not rows:
            raise TaskNotFoundError(task_id)
        row = rows[0]
        step_rows = [r[11:] for r in rows if r[11] is not None]
        return TaskView(
            task_id=row[0],
            name=row[1],
            namespace=row[2],
            version=row[3],
            state=TaskState(row[4]),
            correlation_id=row[5],
            context=codec.loads(row[6]),
            created_at=row[7],
            completed_at=row[8],
            idempotency_key=row[9],
            steps=tuple(_step_view(s) for s in step_rows),
            summary=codec.loads(row[10]) if row[10] else None,
        )

    async def task_state(self, task_id: str) -> TaskState:
        row = await self._fetchone("SELECT state FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            raise TaskNotFoundError(task_id)
        return TaskState(row[0])

    async def list_tasks(
        self, state: TaskState | None = None, limit: int = 100, offset: int = 0
    ) -> list[TaskSummary]:
        sql = (
            "SELECT id, name, namespace, version, state, correlation_id, context, created_at, "
            "completed_at FROM tasks"
        )
        params: tuple[Any, ...] = (limit, offset)
        if state is not None:
            sql += " WHERE state = ?"
            params = (state.value, *params)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?"
        rows = await self._fetchall(sql, params)
        return [
            TaskSummary(
                r[0], r[1], r[2], r[3], TaskState(r[4]), r[5], codec.loads(r[6]), r[7], r[8]
            )
            for r in rows
        ]

    async def count_tasks(self) -> TaskCounts:
        # One statement, so one snapshot: the counts and the last seq they include agree.
        rows = await self._fetchall(
            "SELECT NULL, (SELECT COALESCE(MAX(seq), 0) FROM events), 0 UNION ALL "
            "SELECT state, 0, COUNT(*) FROM tasks GROUP BY state"
        )
        counts = dict.fromkeys(TaskState, 0)
        for state, _seq, n in rows[1:]:
            counts[TaskState(state)] = n
        return TaskCounts(counts, int(rows[0][1]))

    async def count_steps(self) -> dict[StepState, int]:
        rows = await self._fetchall("SELECT state, COUNT(*) FROM steps GROUP BY state")
        counts = dict.fromkeys(StepState, 0)
        for state, n in rows:
            counts[StepState(state)] = n
        return counts

    async def last_event_seq(self) -> int:
        row = await self._fetchone("SELECT COALESCE(MAX(seq), 0) FROM events")
        return int(row[0]) if row else 0

    async def list_attempts(self, task_id: str) -> list[AttemptView]:
        rows = await self._fetchall(
            "SELECT task_id, step_name, attempt, worker_id, started_at, ended_at, duration_s, "
            "outcome, error FROM attempts WHERE task_id = ? ORDER BY id",
            (task_id,),
        )
        return [
            AttemptView(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], ErrorInfo.from_json(_loads(r[8]))
            )
            for r in rows
        ]

    async def list_events(
        self, after: int = 0, limit: int = 1000, task_id: str | None = None
    ) -> list[Event]:
        sql = (
            "SELECT seq, at, type, task_id, step_name, correlation_id, attempt, data "
            "FROM events WHERE seq > ?"
        )
        params: tuple[Any, ...] = (after,)
        if task_id is not None:
            sql += " AND task_id = ?"
            params += (task_id,)
        sql += " ORDER BY seq LIMIT ?"
        rows = await self._fetchall(sql, (*params, limit))
        return [_event(tuple(r)) for r in rows]

    async def attempt_stats(
        self,
        namespace: str | None = None,
        task_name: str | None = None,
        since: float | None = None,
    ) -> list[AttemptStat]:
        sql = "SELECT a.task_name, a.step_name, a.duration_s, a.outcome, a.error FROM attempts a"
        where: list[str] = []
        params: list[Any] = []
        if namespace is not None:
            sql += " JOIN tasks t ON t.id = a.task_id"
            where.append("t.namespace = ?")
            params.append(namespace)
        if task_name is not None:
            where.append("a.task_name = ?")
            params.append(task_name)
        if since is not None:
            where.append("a.ended_at >= ?")
            params.append(since)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self._fetchall(sql + " ORDER BY a.task_name, a.step_name", tuple(params))
        return [
            AttemptStat(r[0], r[1], r[2], AttemptOutcome(r[3]), _error_kind(r[4])) for r in rows
        ]

    async def breaker_openings(self, since: float | None = None) -> dict[str, int]:
        sql = (
            "SELECT json_extract(data, '$.service'), COUNT(*) FROM events "
            f"WHERE type = {literal(EventType.BREAKER_OPENED)}"
        )
        params: tuple[Any, ...] = ()
        if since is not None:
            sql += " AND at >= ?"
            params = (since,)
        rows = await self._fetchall(sql + " GROUP BY 1 ORDER BY 1", params)
        return {str(r[0]): int(r[1]) for r in rows}


def _apply_batch(
    ops: list[Op], cache: tr.StaticCache, conn: sqlite3.Connection, *, wait_s: float
) -> tuple[list[tuple[bool, Any]], list[tuple[Any, ...]]]:
    """Apply ``ops`` in one transaction and commit once.

    Operations check their preconditions before writing, so the fast path runs them without
    savepoints. If one still raises, the transaction is rolled back and the batch replayed with a
    savepoint per operation, so only the failing one is lost. ``wait_s``: how long to wait for
    another process's write lock (0: raise ``_WriteLockBusyError`` at once).
    """
    try:
        return _run_ops(ops, cache, conn, isolate=False, wait_s=wait_s)
    except _OpFailedError:
        return _run_ops(ops, cache, conn, isolate=True, wait_s=wait_s)


class _OpFailedError(Exception):
    pass


class _WriteLockBusyError(Exception):
    """Another connection holds the write lock and we were told not to wait."""


def _begin(conn: sqlite3.Connection, wait_s: float) -> None:
    """BEGIN IMMEDIATE, retrying while another process writes, for up to ``wait_s``.

    This is SQLite's own busy handler, moved here so that the loop's inline batches can refuse
    to wait at all while the writer thread's batches wait as long as configured.
    """
    deadline = time.monotonic() + wait_s
    pause = 0.001
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            if wait_s <= 0:
                raise _WriteLockBusyError from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)


def _run_ops(
    ops: list[Op],
    cache: tr.StaticCache,
    conn: sqlite3.Connection,
    *,
    isolate: bool,
    wait_s: float,
) -> tuple[list[tuple[bool, Any]], list[tuple[Any, ...]]]:
    tx = tr.Tx(tr.SqliteDb(conn), cache)
    outcomes: list[tuple[bool, Any]] = []
    _begin(conn, wait_s)
    try:
        for op in ops:
            if not isolate:
                try:
                    outcomes.append((True, tr.run_sync(op(tx))))
                except Exception as exc:
                    raise _OpFailedError from exc
                continue
            mark = tx.mark()
            conn.execute("SAVEPOINT op")
            try:
                value = tr.run_sync(op(tx))
            except Exception as exc:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                tx.rollback_to(mark)
                outcomes.append((False, exc))
            else:
                conn.execute("RELEASE op")
                outcomes.append((True, value))
        events = tr.run_sync(tx.flush())
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes, events


def unusable(path: str | Path, reason: object) -> str:
    """The one line that says why ``path`` cannot be opened as a store."""
    return f"{path} cannot be used as an Interlock database: {reason}"


def check_database(path: str | Path) -> None:
    """Nothing if ``path`` is absent (it will be created) or an SQLite file this Interlock can
    open, else a :class:`StoreError` naming the file and why. Reads only, creates nothing, and
    starts no thread: a command calls it before it starts anything, so that a bad file stops it
    at once with one line."""
    file = Path(path)
    directory = file.absolute().parent
    if directory.is_dir() and not os.access(directory, os.W_OK | os.X_OK):
        # SQLite's -wal and -shm files, and the worker lock, are made beside the database
        raise StoreError(unusable(path, f"its directory {directory} is not writable"))
    if not file.exists() and not file.is_symlink():
        return
    if not file.is_file():
        what = "a directory" if file.is_dir() else "not a regular file"
        raise StoreError(unusable(path, f"it is {what}"))
    if not os.access(file, os.R_OK | os.W_OK):
        raise StoreError(unusable(path, "permission denied (it must be readable and writable)"))
    uri = f"{file.resolve().as_uri()}?mode=rw"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as conn:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchall()
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
            ).fetchall()
            version = 0
            if found:
                version = conn.execute("SELECT MAX(version) FROM schema_version").fetchall()[0][0]
    except sqlite3.Error as exc:
        raise StoreError(unusable(path, exc)) from None
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise StoreError(f"{path}: {_newer(version)}")


def _newer(version: int) -> str:
    return (
        f"database schema version {version} is newer than this "
        f"Interlock understands ({SCHEMA_VERSION}); upgrade Interlock"
    )


def _migrate(conn: sqlite3.Connection, wait_s: float) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` in one write transaction."""
    _begin(conn, wait_s)
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = tr.one(conn, "SELECT MAX(version) FROM schema_version")
        current = row[0] or 0
        if current > SCHEMA_VERSION:
            raise StoreError(_newer(current))
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _settle(future: asyncio.Future[Any] | None, ok: bool, value: Any) -> None:
    """Hand an operation's outcome to its waiter; a queued-only write has none, so log it."""
    if future is None:
        if not ok:
            log.error("queued events could not be written: %s", value)
    elif not future.done():
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _statements(script: str) -> list[str]:
    lines = [ln.split("--", 1)[0] for ln in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _loads(text: str | None) -> Any:
    return codec.loads(text) if text else None


def _event(row: tuple[Any, ...]) -> Event:
    seq, at, type_, task_id, step_name, corr, attempt, data = row
    return Event(
        seq,
        at,
        type_,
        task_id,
        step_name,
        corr,
        attempt,
        codec.loads(data) if isinstance(data, str) else data,
    )


def _step_view(s: Any) -> StepView:
    return StepView(
        name=s[0],
        handler=s[1],
        state=StepState(s[2]),
        depends_on=tuple(codec.loads(s[3])),
        attempts=s[4],
        max_attempts=s[5],
        results=_loads(s[6]),
        last_error=ErrorInfo.from_json(_loads(s[7])),
        next_attempt_at=s[8],
        started_at=s[9],
        completed_at=s[10],
    )


def _error_kind(text: str | None) -> ErrorKind | None:
    info = ErrorInfo.from_json(_loads(text))
    return info.kind if info else None
