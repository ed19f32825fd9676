"""The PostgreSQL store's own helpers: which Interlock tables a schema holds already."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from orchestrator.errors import StoreError
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
