"""Which event loops async tests run on: asyncio's, and uvloop's too where marked ``both_loops``.

The ``interlock`` command runs on uvloop (``interlock.cli.loop``), whose transports are not
asyncio's classes; code that talks to transports directly is tested on both (where uvloop is
installed: it is not on Windows).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests import pg

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def _loop_factories() -> dict[str, LoopFactory]:
    factories: dict[str, LoopFactory] = {"asyncio": asyncio.new_event_loop}
    if importlib.util.find_spec("uvloop") is not None:
        import uvloop

        factories["uvloop"] = uvloop.new_event_loop
    return factories


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, LoopFactory]:
    if item.get_closest_marker("both_loops"):
        return _loop_factories()
    return {"asyncio": asyncio.new_event_loop}


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """This run's PostgreSQL database (see ``tests/pg.py``)."""
    url = pg.create_run_database()
    yield url
    pg.drop_run_database(url)


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A URL on a fresh, empty schema of this run's PostgreSQL database."""
    schema, url = pg.new_schema(pg_database)
    yield url
    pg.drop_schema(pg_database, schema)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """What a store is opened on: a SQLite file, then a PostgreSQL schema (the same suite
    runs against both stores)."""
    if request.param == "sqlite":
        return str(tmp_path / "interlock.db")
    url: str = request.getfixturevalue("pg_url")
    return url
