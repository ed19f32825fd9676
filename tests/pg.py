"""PostgreSQL for the tests: a database of this run, a fresh schema for each test.

The server is ``INTERLOCK_TEST_PG_URL`` (default: the one on 127.0.0.1:5432, trust auth). Where
none answers, the tests that need it skip and say why; with ``INTERLOCK_TEST_PG`` set (``.ci/run``
sets it) they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit

import asyncpg
import pytest

from orchestrator.errors import StoreError
from orchestrator.store import pg_admin
from orchestrator.store.postgres import connection

SERVER_URL = os.environ.get(
    "INTERLOCK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def required() -> bool:
    return os.environ.get("INTERLOCK_TEST_PG", "") not in ("", "0")


async def run_sql(url: str, *statements: str) -> None:
    async with connection(url, "cannot be reached") as conn:
        for statement in statements:
            await conn.execute(statement)


def create_run_database() -> str:
    """A new database for this test run (its URL); skips, or fails, if there is no server."""
    name = f"interlock_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        return asyncio.run(pg_admin.create_database(SERVER_URL, name))
    except (StoreError, asyncpg.PostgresError) as exc:
        reason = f"no usable PostgreSQL ({exc})"
        if required():
            pytest.fail(f"INTERLOCK_TEST_PG is set but there is {reason}", pytrace=False)
        pytest.skip(f"{reason}; set INTERLOCK_TEST_PG=1 to make this a failure")


def drop_run_database(url: str) -> None:
    asyncio.run(pg_admin.drop_database(SERVER_URL, urlsplit(url).path.lstrip("/")))


def new_schema(database_url: str) -> tuple[str, str]:
    """(schema, URL whose connections use it) for a fresh, empty schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(run_sql(database_url, f"CREATE SCHEMA {schema}"))
    return schema, f"{database_url}?search_path={schema}"


def drop_schema(database_url: str, schema: str) -> None:
    asyncio.run(run_sql(database_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
