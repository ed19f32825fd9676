"""The orchestrator's HTTP API (aiohttp): tasks, operator actions, events, breakers, analytics.

:func:`create_api` builds the app: the engine (and the breakers, when there are any) under typed
keys, the JSON error middleware, and the route table below, which is the whole API at a glance.
``GET /openapi.json`` describes it (``orchestrator/api/openapi.py``; a test checks real
responses against it); ``orchestrator/api/serialize.py`` is the one place its JSON is made.
"""

from __future__ import annotations

from aiohttp import web

from httpedge import MAX_BODY_BYTES, edge
from orchestrator.api import handlers
from orchestrator.api.handlers import BREAKERS, ENGINE, STREAM, StreamConfig
from orchestrator.api.metrics import METRICS, EngineMetrics, metrics
from orchestrator.api.middleware import json_errors
from orchestrator.breaker import CircuitBreakers
from orchestrator.engine import Engine


def create_api(
    engine: Engine, breakers: CircuitBreakers | None = None, stream: StreamConfig | None = None
) -> web.Application:
    app = web.Application(middlewares=[edge, json_errors], client_max_size=MAX_BODY_BYTES)
    app[ENGINE] = engine
    app[STREAM] = stream or StreamConfig()
    if breakers is not None:
        app[BREAKERS] = breakers
    app[METRICS] = EngineMetrics(engine)
    app.add_routes(
        [
            web.post("/tasks", handlers.submit_task),
            web.get("/tasks", handlers.list_tasks),
            web.get("/tasks/counts", handlers.task_counts),  # before /tasks/{task_id}
            web.get("/tasks/{task_id}", handlers.get_task),
            web.get("/tasks/{task_id}/attempts", handlers.list_attempts),
            web.post("/tasks/{task_id}/cancel", handlers.cancel_task),
            web.post("/tasks/{task_id}/steps/{step}/retry", handlers.retry_step),
            web.post("/tasks/{task_id}/steps/{step}/resolve", handlers.resolve_step),
            web.get("/events", handlers.list_events),
            web.get("/events/stream", handlers.stream_events),
            web.get("/breakers", handlers.breakers),
            web.get("/analytics/bottlenecks", handlers.bottlenecks),
            web.get("/health", handlers.health),
            web.get("/metrics", metrics),
            web.get("/openapi.json", handlers.openapi),
        ]
    )
    return app
