"""The small Python API: open an engine on a SQLite file or a PostgreSQL URL, with templates
and handlers.

::

    registry = HandlerRegistry()
    registry.register("noop", noop)
    async with open_engine("state.db", registry, templates=["workflows/"]) as engine:
        sub = await engine.submit("diamond", {"n": 1})
        task = await engine.wait(sub.task_id)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from orchestrator.clock import Clock
from orchestrator.engine import Engine, EngineConfig
from orchestrator.handlers import HandlerRegistry
from orchestrator.store.base import Store
from orchestrator.store.postgres import PostgresStore, is_postgres_url
from orchestrator.store.sqlite import SqliteStore
from orchestrator.templates import TemplateCatalog, WorkflowTemplate, load_template


def build_catalog(
    registry: HandlerRegistry, templates: Iterable[str | Path | WorkflowTemplate]
) -> TemplateCatalog:
    """Templates from objects, files and directories (every ``*.yaml`` / ``*.yml`` in them)."""
    catalog = TemplateCatalog()
    names = registry.names()
    for item in templates:
        if isinstance(item, WorkflowTemplate):
            catalog.add(item)
        elif Path(item).is_dir():
            catalog.load_directory(item, names)
        else:
            catalog.add(load_template(item, names))
    return catalog


def store_for(db: str | Path, *, durable: bool = True) -> Store:
    """The store ``db`` names: a ``postgresql://`` URL, or else the path of a SQLite file."""
    if isinstance(db, str) and is_postgres_url(db):
        return PostgresStore(db, durable=durable)
    return SqliteStore(str(db), durable=durable)


@contextlib.asynccontextmanager
async def open_engine(
    db_path: str | Path,
    registry: HandlerRegistry,
    templates: Iterable[str | Path | WorkflowTemplate],
    *,
    config: EngineConfig | None = None,
    clock: Clock | None = None,
    durable: bool = True,
    start: bool = True,
) -> AsyncIterator[Engine]:
    """Open the store (:func:`store_for`), start the engine, and stop and close both on exit."""
    catalog = build_catalog(registry, templates)
    store = store_for(db_path, durable=durable)
    await store.open()
    engine = Engine(store, registry, catalog, clock=clock, config=config)
    try:
        if start:
            await engine.start()
        yield engine
    finally:
        await engine.stop()
        await store.close()
