"""schemathesis against the orchestrator API's own ``/openapi.json``: generated requests, valid
and invalid, get no 5xx and only the statuses, content types and bodies the document describes.

The sandbox (four services, an engine on a SQLite file, the API) runs on its own event loop in
a thread, since schemathesis calls it synchronously. The run is derandomized (the same examples
every time) and bounded per operation, to keep it to a few seconds.
``GET /events/stream`` never ends, so it is left to ``tests/e2e/test_event_stream.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from interlock.sandbox import open_orchestrator, run_api
from mock_services.runner import start_services
from orchestrator.engine import EngineConfig

ALL = {"users": 0, "billing": 0, "preferences": 0, "notifications": 0}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    ready: list[str] = []
    started = threading.Event()

    async def serve(db: Path) -> None:
        services = await start_services(ALL)
        try:
            async with (
                open_orchestrator(
                    db, services.urls, config=EngineConfig(worker_id="fuzz"), durable=False
                ) as orch,
                run_api(orch, port=0) as url,
            ):
                ready.append(url)
                started.set()
                await stop.wait()
        finally:
            started.set()
            await services.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(db),), daemon=True)
    thread.start()
    started.wait(30)
    assert ready, "the sandbox did not start"
    yield ready[0]
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()


@pytest.fixture(scope="module")
def api_schema(api_url: str) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{api_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema").exclude(path="/events/stream")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_does_what_its_document_says(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS, timeout=10)
