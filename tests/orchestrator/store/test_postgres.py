"""The PostgreSQL store's own parts: which Interlock tables a schema holds already; one order
of events across writers and workers."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from orchestrator.errors import StoreError
from orchestrator.models import StepState
from orchestrator.store import transitions as tr
from orchestrator.store.base import NewEvent
from orchestrator.store.postgres import TABLES, PostgresStore, find_tables
from tests.orchestrator.store.test_transitions import _started


async def test_find_tables_sees_a_schema_an_interlock_used_and_not_a_fresh_one(
    pg_url: str,
) -> None:
    assert await find_tables(pg_url) == []
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    assert await find_tables(pg_url) == list(TABLES)
    assert {"schema_version", "tasks", "steps", "events", "breakers"} <= set(TABLES)


async def test_find_tables_refuses_a_search_path_with_no_schema_or_no_server(
    pg_database: str,
) -> None:
    with pytest.raises(StoreError, match="no schema of its search_path exists"):
        await find_tables(f"{pg_database}?search_path=no_such_schema")
    parts = urlsplit(pg_database)
    nobody = parts._replace(netloc=f"{parts.username}:sekret@127.0.0.1:9").geturl()
    with pytest.raises(StoreError, match="cannot be reached") as info:
        await find_tables(nobody)
    assert "sekret" not in str(info.value)


async def test_events_from_all_writers_and_all_workers_reach_listeners_in_one_gapless_order(
    pg_url: str,
) -> None:
    """Four writers per store and two stores commit side by side; each store's listeners get
    every event once, in seq order, the other store's included."""
    one, two = PostgresStore(pg_url, writers=4), PostgresStore(pg_url, writers=4)
    await one.open()
    await two.open()
    seen: dict[str, list[int]] = {"one": [], "two": []}
    one.add_listener(lambda events: seen["one"].extend(e.seq for e in events))
    two.add_listener(lambda events: seen["two"].extend(e.seq for e in events))
    try:
        writes = [
            store.append_events(
                [NewEvent(type="test.event", task_id=f"t{i}", data={"i": i, "k": k})]
            )
            for i in range(200)
            for k, store in enumerate((one, two))
        ]
        await asyncio.gather(*writes)
        last = await one.last_event_seq()
        assert last == 400
        deadline = asyncio.get_running_loop().time() + 10
        while len(seen["one"]) < last or len(seen["two"]) < last:
            assert asyncio.get_running_loop().time() < deadline, {
                k: len(v) for k, v in seen.items()
            }
            await asyncio.sleep(0.01)
    finally:
        await one.close()
        await two.close()
    assert seen["one"] == list(range(1, 401)) == seen["two"]


class _RenewedMeanwhile:
    """A ``Db`` whose lease reclaim read is followed, before the reclaim writes, by another
    worker renewing the lease (a renewal takes no task lock, so it can land there)."""

    def __init__(self, inner: Any, url: str) -> None:
        self._inner = inner
        self._url = url
        self.skip_locked_tasks = inner.skip_locked_tasks
        self.skip_locked_steps = inner.skip_locked_steps

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def fetchall(self, sql: str, params: Any = ()) -> Any:
        rows = await self._inner.fetchall(sql, params)
        if "lease_expires_at <" in sql and rows:
            other = await asyncpg.connect(self._url)
            try:
                await other.execute("UPDATE steps SET lease_expires_at = 1e12 WHERE name = 'a'")
            finally:
                await other.close()
        return rows


async def test_a_lease_renewed_after_the_reclaim_read_it_is_not_taken(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    try:
        await _started(store)  # a: claimed by w1 at 100, its lease until 130

        async def reclaim_while_renewed(tx: tr.Tx) -> int:
            tx.db = _RenewedMeanwhile(tx.db, pg_url)
            return await tr.reclaim_expired_leases(tx, 200.0, None)

        assert await store.write(reclaim_while_renewed) == 0
        task = await store.get_task("t1")
        assert task.step("a").state is StepState.IN_PROGRESS  # still w1's, not lost
        assert [a.outcome for a in await store.list_attempts("t1")] == []
        assert [e.type for e in await store.list_events(0, 100)][-1] == "step.started"
    finally:
        await store.close()
