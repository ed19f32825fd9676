"""PostgreSQL for the tests: a database of this run, a fresh schema for each test.

The server is ``INTERLOCK_TEST_PG_URL`` (default: the one on 127.0.0.1:5432, trust auth). Where
none answers, the tests that need it skip and say why; with ``INTERLOCK_TEST_PG`` set (``.ci/run``
sets it) they fail instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

SERVER_URL = os.environ.get(
    "INTERLOCK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def required() -> bool:
    return os.environ.get("INTERLOCK_TEST_PG", "") not in ("", "0")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def run_sql(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def create_run_database() -> str:
    """A new database for this test run (its URL); skips, or fails, if there is no server."""
    name = f"interlock_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        asyncio.run(run_sql(SERVER_URL, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        reason = f"no usable PostgreSQL at {SERVER_URL} ({exc})"
        if required():
            pytest.fail(f"INTERLOCK_TEST_PG is set but there is {reason}", pytrace=False)
        pytest.skip(f"{reason}; set INTERLOCK_TEST_PG=1 to make this a failure")
    return with_database(SERVER_URL, name)


def drop_run_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    asyncio.run(run_sql(SERVER_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def new_schema(database_url: str) -> tuple[str, str]:
    """(schema, URL whose connections use it) for a fresh, empty schema."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(run_sql(database_url, f"CREATE SCHEMA {schema}"))
    return schema, f"{database_url}?search_path={schema}"


def drop_schema(database_url: str, schema: str) -> None:
    asyncio.run(run_sql(database_url, f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
