"""The PostgreSQL store: asyncpg, many workers on one database, group commit per worker.

Each worker queues its writes and applies them in batches on four write connections ("lanes"),
each committing one batch at a time; all the writes of one task go to the same lane, so a task's
writes commit in the order they were queued, as on SQLite. Reads use a small pool. Every write
transaction is READ COMMITTED, whatever the server's default: a statement after a lock wait
must see what the lock's holder committed. Workers on other hosts coordinate only through the
database:

- **Row locks, taken in one order.** A batch first locks the rows of every task its operations
  name (``FOR UPDATE``, sorted by id; idempotency keys first, as advisory locks, sorted too), so
  two workers finishing the parallel branches of one task take turns and the second sees the
  first's commit, and task locks never wait on each other in a cycle. Claims and lease
  reclaims pick their tasks with ``FOR UPDATE SKIP LOCKED``: a task another worker is changing
  is left for the next pass instead of waited for. Every transition is still a compare-and-swap
  on the expected state, lease owner and attempt (a reclaim too: a lease renewed, or a step
  finished, since it was read is not lost). Lease renewals and breaker rows are locked without
  that order, so two batches can still deadlock, rarely; PostgreSQL detects it and the batch it
  aborts (as for a serialization failure) is replayed whole.
- **One global event order.** Events are numbered from a counter row that a batch takes last
  and holds until it commits (``event_counter`` in ``pg_schema.sql``), so commits that carry
  events happen in the order of their numbers and a reader that saw event N can never later
  find an event below N appear. A plain sequence would be the classic trap: numbers handed out
  in one order, transactions committing in another, a follower skipping the late one for good.
- **LISTEN/NOTIFY.** Each batch with events notifies its last sequence number when it commits.
  Every store listens: it publishes the other workers' events to its own listeners (the API's
  stream, the dashboard) in one gap-free order with its own, and wakes its engine at once.
  Polling stays the fallback: an engine still claims on its poll interval if a notification is
  lost with a broken connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from orchestrator.errors import StoreError
from orchestrator.models import Event
from orchestrator.store import transitions as tr
from orchestrator.store.base import (
    EventListener,
)
from orchestrator.store.migrations import VERSION_TABLE, Migrations
from orchestrator.store.reads import event_from_row
from orchestrator.store.writes import Op, SqlWrites

log = logging.getLogger("interlock.store")

#: PostgreSQL's schema scripts: its own first, then SQLite's ALTERs, which it runs as they are.
MIGRATIONS = Migrations.load(
    "pg_schema.sql", "migration_request_hash.sql", "migration_degradation.sql"
)
SCHEMA_VERSION = MIGRATIONS.version
#: The tables of an Interlock database, read from its scripts (``schema_version`` first).
TABLES: Final = (
    "schema_version",
    *(t for script in MIGRATIONS.scripts for t in re.findall(r"^CREATE TABLE (\w+)", script, re.M)),
)
MAX_BATCH = 512
#: Replays of a batch PostgreSQL aborted for a deadlock or a serialization failure.
MAX_REPLAYS = 8
#: Advisory lock key under which one worker at a time migrates the schema.
_MIGRATION_LOCK = 0x1E7E_10C4
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
#: A batch that failed with one of these failed for its connection, not for what it did.
_CONNECTION_LOST = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)
#: Events read per query while catching up with other workers' commits.
_CATCH_UP_CHUNK = 1000


def is_postgres_url(db: str) -> bool:
    """True if ``db`` names a PostgreSQL database (``postgresql://`` or ``postgres://``)."""
    return db.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter), for
    messages and logs."""
    try:
        parts = urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:  # a port that is not a number, say: show nothing of it
        return "(a database URL that cannot be read)"
    netloc = parts.netloc
    if password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if port is not None:
            host = f"{host}:{port}"
        netloc = f"{parts.username}:***@{host}" if parts.username else host
    query = "&".join(
        "password=***" if item.split("=", 1)[0].lower() == "password" else item
        for item in parts.query.split("&")
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query if parts.query else ""))


_UNUSABLE = "cannot be used as an Interlock database"


@contextlib.asynccontextmanager
async def connection(url: str, failing: str = _UNUSABLE) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own to ``url`` for the block (closed after it); one that cannot be
    made is a :class:`StoreError` with one line: ``<url, redacted> <failing>: <why>``."""
    try:
        conn = await asyncpg.connect(url, timeout=10)
    except TimeoutError:  # an OSError too: first
        raise StoreError(f"{redact(url)}: the server did not answer within 10 s") from None
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise StoreError(f"{redact(url)} {failing}: {exc}") from None
    try:
        yield conn
    finally:
        await conn.close()


async def check_database(url: str) -> None:
    """Nothing if ``url`` is a PostgreSQL database this Interlock can use (reachable, and not of
    a newer schema), else a :class:`StoreError` with one line saying why. Writes nothing: a
    command calls it before it starts anything."""
    async with connection(url) as conn:
        if await conn.fetchval("SELECT current_schema()") is None:
            raise StoreError(f"{redact(url)}: no schema of its search_path exists")
        try:
            found = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
            version = await conn.fetchval("SELECT MAX(version) FROM schema_version") if found else 0
        except asyncpg.PostgresError as exc:
            raise StoreError(f"{redact(url)} {_UNUSABLE}: {exc}") from None
    if (version or 0) > SCHEMA_VERSION:
        raise StoreError(f"{redact(url)}: {MIGRATIONS.newer(version)}")


async def find_tables(url: str) -> list[str]:
    """The Interlock tables (:data:`TABLES`) already in the schema ``url``'s connections make
    tables in (the first of its ``search_path`` that exists): ``[]`` for a database or schema
    no Interlock has used. :class:`StoreError` when it cannot be read, or that schema is
    missing."""
    async with connection(url, "cannot be reached") as conn:
        schema = await conn.fetchval("SELECT current_schema()")
        if schema is None:
            raise StoreError(f"{redact(url)}: no schema of its search_path exists")
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = $1 AND table_name = ANY($2::text[])",
            schema,
            list(TABLES),
        )
    found = {str(r[0]) for r in rows}
    return [t for t in TABLES if t in found]


@contextlib.asynccontextmanager
async def hold_worker_id(url: str, worker_id: str, wait_s: float = 5.0) -> AsyncIterator[None]:
    """Hold ``worker_id`` on the database ``url`` for as long as the block runs, so that no other
    live process runs with it (it would take this one's running steps for its own leftovers).

    A session advisory lock on a connection of its own: it ends with the process, however it
    ends, so a restart after SIGKILL gets the id back. Waits up to ``wait_s`` for a process that
    just died to let go; then a :class:`StoreError` with one line.
    """
    async with connection(url) as conn:
        deadline = time.monotonic() + wait_s
        while not await conn.fetchval(
            "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || ':' || $1, 1))",
            f"interlock-worker:{worker_id}",
        ):
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"worker id {worker_id!r} is in use by another running orchestrator on "
                    f"{redact(url)}: give each process its own --worker-id"
                )
            await asyncio.sleep(0.1)
        yield


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """SQLite's ``?`` parameters as PostgreSQL's ``$1, $2, ...`` (our SQL has no ``?`` in a
    string literal, which this would also rewrite)."""
    pieces = sql.split("?")
    out = [pieces[0]]
    for i, piece in enumerate(pieces[1:], start=1):
        out.append(f"${i}{piece}")
    return "".join(out)


def _count(status: str) -> int:
    """Rows a statement changed, from its status (``UPDATE 3``, ``INSERT 0 1``)."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PgDb:
    """:class:`transitions.Db` on an asyncpg connection inside a transaction."""

    skip_locked_tasks = " FOR UPDATE OF t SKIP LOCKED"
    skip_locked_steps = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: asyncpg.Connection, channel: str) -> None:
        self.conn = conn
        self.channel = channel  #: notified of each batch of events, at its commit

    async def execute(self, sql: str, params: tr.Row = ()) -> int:
        return _count(await self.conn.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Sequence[tr.Row]) -> None:
        await self.conn.executemany(numbered(sql), rows)

    async def fetchall(self, sql: str, params: tr.Row = ()) -> list[tr.Row]:
        return [tuple(r) for r in await self.conn.fetch(numbered(sql), *params)]

    async def fetchone(self, sql: str, params: tr.Row = ()) -> tr.Row | None:
        row = await self.conn.fetchrow(numbered(sql), *params)
        return None if row is None else tuple(row)

    async def insert_ids(self, sql: str, rows: Sequence[tr.Row]) -> list[int]:
        # One multi-row INSERT ... RETURNING: ids come from the table's sequence in the order
        # of the rows, so sorted they match ``rows`` (concurrent writers may leave holes).
        head, values = sql.split(" VALUES ", 1)
        width = values.count("?")
        groups = ",".join(
            "(" + ",".join(f"${i * width + j + 1}" for j in range(width)) + ")"
            for i in range(len(rows))
        )
        params = [value for row in rows for value in row]
        records = await self.conn.fetch(f"{head} VALUES {groups} RETURNING id", *params)
        return sorted(int(r[0]) for r in records)

    async def insert_events(self, rows: Sequence[tr.Row]) -> int:
        # Taken last and held until COMMIT (see the module docstring); the notification of
        # the new last number goes out at the commit, in the same round trip.
        last = await self.conn.fetchval(
            "UPDATE event_counter SET last = last + $1 WHERE id = 1 "
            "RETURNING last, pg_notify($2, last::text)",
            len(rows),
            self.channel,
        )
        first = int(last) - len(rows) + 1
        await self.conn.executemany(
            "INSERT INTO events (seq, at, type, task_id, step_name, correlation_id, attempt, "
            "data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            [(first + i, *row) for i, row in enumerate(rows)],
        )
        return first


@dataclass(slots=True)
class _Queued:
    op: Op
    future: asyncio.Future[Any] | None
    tasks: tuple[str, ...]  #: task rows to lock before the batch runs
    keys: tuple[str, ...]  #: idempotency keys to lock (advisory) before the batch runs


@dataclass(slots=True)
class _Lane:
    """One write connection and its queue: batches on it commit one at a time, in order."""

    conn: asyncpg.Connection
    queue: list[_Queued] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None


class _OpFailedError(Exception):
    pass


class PostgresStore(SqlWrites):
    """A :class:`Store` on a PostgreSQL database (``postgresql://user@host:port/db``).

    ``durable=False`` sets ``synchronous_commit = off`` on the write connections: a crash of
    the database server may lose the last commits, never their order or atomicity.

    ``writers`` connections write at once, each committing its own batches: a statement is a
    round trip, so one connection would leave both the worker and the server waiting on each
    other. Every operation on a task goes to the same connection (by its id), so a task's
    writes still commit in the order they were queued (a handler's events before its step's
    completion); the row locks order the connections among themselves.
    """

    newest_first = "created_at DESC, created_order DESC"

    def __init__(
        self, url: str, *, durable: bool = True, writers: int = 4, pool_size: int = 4
    ) -> None:
        if writers < 1:
            raise ValueError(f"writers must be at least 1, got {writers}")
        self.url = url
        self.durable = durable
        self.writers = writers
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._lanes: list[_Lane] = []
        self._lconn: asyncpg.Connection | None = None  #: LISTENs for other workers' commits
        self._pids: set[int] = set()  #: our write connections' server processes
        self._channel = "interlock"
        self._listeners: list[EventListener] = []
        self._wakers: list[Callable[[], None]] = []
        self._static = tr.StaticCache()
        self._next_seq = 1  #: the seq the listeners get next
        self._backlog: list[Event] = []  #: own committed events waiting behind a gap
        self._notified_seq = 0  #: the highest seq another worker announced
        self._catching_up: asyncio.Task[None] | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False
        self._ready = False  #: set once _next_seq is known (open)
        self.batches_committed = 0
        self.ops_committed = 0
        self.replays = 0  #: batches PostgreSQL aborted (deadlock, serialization) and we re-ran

    # -- lifecycle ------------------------------------------------------------------------------
    async def _connect_writer(self) -> asyncpg.Connection:
        settings = {} if self.durable else {"synchronous_commit": "off"}
        conn = await asyncpg.connect(self.url, server_settings=settings, timeout=10)
        self._pids.add(conn.get_server_pid())
        return conn

    async def open(self) -> None:
        try:
            for _ in range(self.writers):
                self._lanes.append(_Lane(await self._connect_writer()))
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size)
            schema = await self._conn().fetchval("SELECT current_schema()")
            # One channel per schema: deployments side by side in one database stay apart.
            self._channel = f"interlock.{schema}"
            if len(self._channel.encode()) > 63:  # PostgreSQL's longest channel name
                digest = hashlib.sha256(str(schema).encode()).hexdigest()[:32]
                self._channel = f"interlock.{digest}"
            await self._migrate()
            # Listen first, then read where the events stand: a commit in between is both
            # counted in that read and notified, never neither (until then a notification only
            # raises _notified_seq; see _on_notify).
            await self._listen()
            self._next_seq = await self.last_event_seq() + 1
            self._ready = True
            if self._notified_seq >= self._next_seq:
                self._catch_up()
        except StoreError:
            await self.close()
            raise
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
            await self.close()
            raise StoreError(f"{redact(self.url)} {_UNUSABLE}: {exc}") from None

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=10)
        conn.add_termination_listener(self._listener_lost)
        await conn.add_listener(self._channel, self._on_notify)
        self._lconn = conn

    def _listener_lost(self, conn: asyncpg.Connection | PoolConnectionProxy[Any]) -> None:
        """The LISTEN connection died (the server restarted, an operator ended it): until it is
        back, engines poll; once back, everything committed meanwhile is caught up."""
        if self._lconn is not conn or self._closing:
            return
        self._lconn = None
        log.warning("lost the notification connection to %s; reconnecting", redact(self.url))
        self._relisten = asyncio.get_running_loop().create_task(self._relisten_loop())

    async def _relisten_loop(self) -> None:
        pause = 0.1
        while not self._closing:
            try:
                await self._listen()
                last = await self.last_event_seq()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            self._notified_seq = max(self._notified_seq, last)
            if self._notified_seq >= self._next_seq:
                self._catch_up()
            for wake in self._wakers:
                wake()
            return

    async def close(self) -> None:
        self._closing = True
        if self._relisten is not None:
            self._relisten.cancel()
            await asyncio.gather(self._relisten, return_exceptions=True)
        for lane in self._lanes:
            if lane.writer is not None:
                await asyncio.shield(lane.writer)
        if self._catching_up is not None:
            self._catching_up.cancel()
            await asyncio.gather(self._catching_up, return_exceptions=True)
            self._catching_up = None
        for conn in [self._lconn, *(lane.conn for lane in self._lanes)]:
            if conn is not None and not conn.is_closed():
                await conn.close()
        self._lconn = None
        self._lanes = []
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _migrate(self) -> None:
        conn = self._conn()
        async with conn.transaction(isolation="read_committed"):
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(VERSION_TABLE)
            current = await conn.fetchval("SELECT MAX(version) FROM schema_version")
            try:
                pending = MIGRATIONS.pending(current or 0)
            except StoreError as exc:
                raise StoreError(f"{redact(self.url)}: {exc}") from None
            for version, script in pending:
                for statement in script:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", version)

    def add_listener(self, listener: EventListener) -> None:
        self._listeners.append(listener)

    def on_outside_change(self, callback: Callable[[], None]) -> None:
        self._wakers.append(callback)

    # -- plumbing -------------------------------------------------------------------------------
    def _conn(self) -> asyncpg.Connection:
        if not self._lanes:
            raise StoreError("the store is not open")
        return self._lanes[0].conn

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        if self._pool is None:
            raise StoreError("the store is not open")
        async with self._pool.acquire() as conn:
            return [tuple(r) for r in await conn.fetch(numbered(sql), *params)]

    def json_text(self, column: str, key: str) -> str:
        return f"({column}::json ->> '{key}')"

    async def write(
        self,
        op: Op,
        tasks: tuple[str, ...] = (),
        keys: tuple[str, ...] = (),
        lane: str | None = None,
    ) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(_Queued(op, future, tasks, keys), lane)
        return await future

    def post(self, op: Op, lane: str | None) -> None:
        self._enqueue(_Queued(op, None, (), ()), lane)

    async def task_of_step(self, step_id: int) -> str | None:
        row = await self._fetchone("SELECT task_id FROM steps WHERE id = ?", (step_id,))
        return None if row is None else str(row[0])

    def _enqueue(self, item: _Queued, lane_key: str | None = None) -> None:
        """Queue ``item`` on the lane of ``lane_key`` (a task id: all of a task's writes on one
        lane), else of the task it locks, else the first."""
        if not self._lanes or self._closing:
            raise StoreError("the store is not open")
        key = lane_key if lane_key is not None else (item.tasks[0] if item.tasks else None)
        lane = self._lanes[0 if key is None else zlib.crc32(key.encode()) % len(self._lanes)]
        lane.queue.append(item)
        if lane.writer is None:
            lane.writer = asyncio.get_running_loop().create_task(self._drain(lane))

    async def _drain(self, lane: _Lane) -> None:
        try:
            while lane.queue:
                batch, lane.queue = lane.queue[:MAX_BATCH], lane.queue[MAX_BATCH:]
                started = time.perf_counter()
                try:
                    if lane.conn.is_closed():  # lost with the server: a new one for this batch
                        lane.conn = await self._connect_writer()
                    outcomes, rows = await self._commit(lane.conn, batch)
                except BaseException as exc:  # the whole batch failed (connection, server)
                    if isinstance(exc, _CONNECTION_LOST):
                        exc = StoreError(f"lost the database {redact(self.url)}: {exc}")
                    for item in batch:
                        tr.settle(item.future, False, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self.batches_committed += 1
                self.ops_committed += len(batch)
                self.observer.committed(len(batch), time.perf_counter() - started)
                if rows:
                    self._deliver([event_from_row(row) for row in rows])
                for item, (ok, value) in zip(batch, outcomes, strict=True):
                    tr.settle(item.future, ok, value)
        finally:
            lane.writer = None

    async def _commit(
        self, conn: asyncpg.Connection, batch: list[_Queued]
    ) -> tuple[list[tuple[bool, Any]], list[tuple[Any, ...]]]:
        """Apply a batch in one transaction; replay it if PostgreSQL aborted it for a
        deadlock or a serialization failure; isolate a failing operation in a savepoint."""
        isolate = False
        for replay in range(MAX_REPLAYS + 1):
            try:
                return await self._run(conn, batch, isolate=isolate)
            except _OpFailedError:
                isolate = True
            except _RETRYABLE as exc:
                if replay == MAX_REPLAYS:
                    raise StoreError(f"a write batch kept being aborted: {exc}") from exc
                self.replays += 1
                log.info("write batch aborted by PostgreSQL (%s); replaying it", exc)
                await asyncio.sleep(0.001 * (replay + 1))
        return await self._run(conn, batch, isolate=True)

    async def _run(
        self, conn: asyncpg.Connection, batch: list[_Queued], *, isolate: bool
    ) -> tuple[list[tuple[bool, Any]], list[tuple[Any, ...]]]:
        tx = tr.Tx(PgDb(conn, self._channel), self._static)
        outcomes: list[tuple[bool, Any]] = []
        keys = sorted({k for item in batch for k in item.keys})
        tasks = sorted({t for item in batch for t in item.tasks})
        # READ COMMITTED whatever the server's default: each statement after a lock wait must
        # see what the lock's holder committed (the task locks rely on it).
        async with conn.transaction(isolation="read_committed"):
            if keys:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) "
                    "FROM unnest($1::text[]) WITH ORDINALITY AS u (k, n) ORDER BY n",
                    keys,
                )
            if tasks:
                await conn.execute(
                    "SELECT 1 FROM tasks WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE", tasks
                )
            for item in batch:
                if not isolate:
                    try:
                        outcomes.append((True, await item.op(tx)))
                    except _RETRYABLE:
                        raise
                    except Exception as exc:
                        raise _OpFailedError from exc
                    continue
                mark = tx.mark()
                try:
                    async with conn.transaction():  # a savepoint
                        value = await item.op(tx)
                except _RETRYABLE:
                    raise
                except Exception as exc:
                    tx.rollback_to(mark)
                    outcomes.append((False, exc))
                else:
                    outcomes.append((True, value))
            rows = await tx.flush()  # notifies the other workers (PgDb.insert_events)
        return outcomes, rows

    # -- publishing, in one order across workers ------------------------------------------------
    def _deliver(self, events: list[Event]) -> None:
        """Hand our own committed events to the listeners, after any gap before them."""
        if self._catching_up is None and events[0].seq == self._next_seq:
            self._publish(events)
            return
        # Kept in seq order: our writers' commits can reach here out of their order.
        self._backlog.extend(events)
        self._backlog.sort(key=lambda e: e.seq)
        self._catch_up()

    def _publish(self, events: Sequence[Event]) -> None:
        fresh = [e for e in events if e.seq >= self._next_seq]
        if not fresh:
            return
        self._next_seq = fresh[-1].seq + 1
        tr.tell(self._listeners, fresh)

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        try:
            seq = int(str(payload))
        except ValueError:
            return
        if pid in self._pids:
            return  # our own commit: delivered by its writer
        self._notified_seq = max(self._notified_seq, seq)
        if self._ready and seq >= self._next_seq:
            self._catch_up()
        for wake in self._wakers:
            wake()

    def _catch_up(self) -> None:
        if self._catching_up is None:
            self._catching_up = asyncio.get_running_loop().create_task(self._catch_up_loop())

    async def _catch_up_loop(self) -> None:
        """Read the events other workers committed and publish them in seq order, our own
        (held in the backlog) in their place among them."""
        waited = False
        try:
            while True:
                target = self._backlog[0].seq if self._backlog else self._notified_seq + 1
                if self._next_seq < target and not waited:
                    # The gap is often another of our writers' commit, delivered in a moment:
                    # give it that moment before reading the database.
                    waited = True
                    await asyncio.sleep(0.001)
                    continue
                waited = False
                if self._next_seq < target:
                    limit = min(_CATCH_UP_CHUNK, target - self._next_seq)
                    found = await self.list_events(after=self._next_seq - 1, limit=limit)
                    if not found:
                        # Every number below ours committed before us (the counter row), so a
                        # hole means the table was changed behind our back: step over it.
                        log.warning("events %d..%d not found", self._next_seq, target - 1)
                        self._next_seq = target
                    else:
                        self._publish(found)
                    continue
                while self._backlog and self._backlog[0].seq <= self._next_seq:
                    run = [self._backlog.pop(0)]
                    while self._backlog and self._backlog[0].seq == run[-1].seq + 1:
                        run.append(self._backlog.pop(0))
                    self._publish(run)
                if not self._backlog and self._notified_seq < self._next_seq:
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("catching up with other workers' events failed")
        finally:
            self._catching_up = None
