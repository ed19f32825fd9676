"""What a benchmark or a soak asks a PostgreSQL server beside the store: make and drop a
database, and read the server's own counters (WAL written, commits, rows) for the costs per
workflow that ``docs/scaling.md`` reasons from."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from orchestrator.store.postgres import connection

#: The tables whose rows a workflow leaves (``pg_schema.sql``).
TABLES = ("tasks", "steps", "attempts", "events")


def database_url(server_url: str, name: str) -> str:
    """``server_url`` with its database replaced by ``name``."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {name!r}")
    return f'"{name}"'


async def create_database(server_url: str, name: str) -> str:
    """Create an empty database ``name`` on the server; its URL."""
    async with connection(server_url, "cannot be reached") as conn:
        await conn.execute(f"CREATE DATABASE {_identifier(name)}")
    return database_url(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    async with connection(server_url, "cannot be reached") as conn:
        await conn.execute(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")


async def wal_position(url: str) -> int:
    """The server's WAL insert position in bytes (the difference of two is WAL written)."""
    async with connection(url, "cannot be reached") as conn:
        value = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
    return int(value)


async def counters(url: str) -> dict[str, int]:
    """Commits of this database so far, and the rows in each of :data:`TABLES`."""
    async with connection(url, "cannot be reached") as conn:
        commits = await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        out = {"commits": int(commits)}
        for table in TABLES:
            out[table] = int(await conn.fetchval(f"SELECT COUNT(*) FROM {table}"))
    return out
