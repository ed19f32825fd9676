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
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from orchestrator.errors import StoreError
from orchestrator.models import (
    ACTIVE_TASK_STATES,
    CLAIMABLE_STEP_STATES,
)
from orchestrator.store import transitions as tr
from orchestrator.store.base import (
    EventListener,
)
from orchestrator.store.migrations import VERSION_TABLE, Migrations
from orchestrator.store.reads import event_from_row
from orchestrator.store.sqltext import in_list
from orchestrator.store.writes import Op, SqlWrites

log = logging.getLogger("interlock.store")

#: SQLite's schema scripts (see ``migrations``).
MIGRATIONS = Migrations.load(
    "schema.sql", "migration_request_hash.sql", "migration_degradation.sql"
)
SCHEMA_VERSION = MIGRATIONS.version
MAX_BATCH = 512
_CLAIMABLE = in_list(CLAIMABLE_STEP_STATES)
_ACTIVE_TASKS = in_list(ACTIVE_TASK_STATES)
#: Batches up to this size are applied on the event loop (see the module docstring).
INLINE_MAX_OPS = 2


class SqliteStore(SqlWrites):
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

    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run a query to completion in one hop to the database thread.

        aiosqlite's cursor API takes three hops (execute, fetch, close), and a read snapshot
        left open between them would hold back WAL checkpoints. ``execute_fetchall`` runs the
        statement to its end in one hop and leaves nothing open.
        """
        return list(await self.db.execute_fetchall(sql, params))

    newest_first = "created_at DESC, rowid DESC"

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.{key}')"

    async def write(
        self,
        op: Op,
        tasks: tuple[str, ...] = (),
        keys: tuple[str, ...] = (),
        lane: str | None = None,
    ) -> Any:
        # One writer, under SQLite's write lock: no row to lock, one order for everything.
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue(op, future)
        return await future

    def post(self, op: Op, lane: str | None) -> None:
        self._enqueue(op, None)

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
                        tr.settle(future, False, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                self.batches_committed += 1
                self.ops_committed += len(batch)
                self.observer.committed(len(batch), time.perf_counter() - started)
                if events:
                    published = [event_from_row(row) for row in events]
                    tr.tell(self._listeners, published)
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    tr.settle(future, ok, value)
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
        raise StoreError(f"{path}: {MIGRATIONS.newer(version)}")


def _migrate(conn: sqlite3.Connection, wait_s: float) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` in one write transaction."""
    _begin(conn, wait_s)
    try:
        conn.execute(VERSION_TABLE)
        row = tr.one(conn, "SELECT MAX(version) FROM schema_version")
        for version, script in MIGRATIONS.pending(row[0] or 0):
            for statement in script:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
