"""The PostgreSQL store's own parts: which Interlock tables a schema holds already; one order
of events across writers and workers."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from orchestrator.errors import StoreError
from orchestrator.store.base import NewEvent
from orchestrator.store.postgres import TABLES, PostgresStore, find_tables


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
