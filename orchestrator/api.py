"""The orchestrator's HTTP API (aiohttp): tasks, operator actions, events, breakers, analytics.

Every answer is JSON, errors included (``{"error", "message", "details"?}``), never an HTML 500.
``GET /openapi.json`` describes it (``orchestrator/openapi.py``; a test checks real responses
against it). ``GET /events/stream?after=SEQ`` streams events as newline-delimited JSON: first
the stored ones after ``SEQ``, then live ones as they commit, without polling the database.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from orchestrator.breaker import CircuitBreakers
from orchestrator.engine import Engine
from orchestrator.errors import (
    ContextValidationError,
    InvalidTransitionError,
    StepNotFoundError,
    TaskNotFoundError,
    UnknownTemplateError,
)
from orchestrator.models import JSON, AttemptView, StepView, TaskState, TaskSummary, TaskView
from orchestrator.openapi import openapi_spec

ENGINE: Final = web.AppKey("engine", Engine)
BREAKERS: Final = web.AppKey("breakers", CircuitBreakers)
_log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(
        self, status: int, error: str, message: str, details: list[JSON] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.details = status, error, message, details


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def step_json(step: StepView) -> JSON:
    return {
        "name": step.name,
        "state": step.state.value,
        "depends_on": list(step.depends_on),
        "attempts": step.attempts,
        "max_attempts": step.max_attempts,
        "results": step.results,
        "last_error": step.last_error.to_json() if step.last_error else None,
        "next_attempt_at": iso(step.next_attempt_at),
        "started_at": iso(step.started_at),
        "completed_at": iso(step.completed_at),
    }


def task_json(task: TaskView) -> JSON:
    return {
        "task_id": task.task_id,
        "name": task.name,
        "namespace": task.namespace,
        "version": task.version,
        "state": task.state.value,
        "correlation_id": task.correlation_id,
        "context": task.context,
        "created_at": iso(task.created_at),
        "completed_at": iso(task.completed_at),
        "summary": task.summary,
        "steps": [step_json(s) for s in task.steps],
    }


def summary_json(task: TaskSummary) -> JSON:
    return {
        "task_id": task.task_id,
        "name": task.name,
        "namespace": task.namespace,
        "version": task.version,
        "state": task.state.value,
        "correlation_id": task.correlation_id,
        "created_at": iso(task.created_at),
        "completed_at": iso(task.completed_at),
    }


def attempt_json(a: AttemptView) -> JSON:
    return {
        "step_name": a.step_name,
        "attempt": a.attempt,
        "worker_id": a.worker_id,
        "started_at": iso(a.started_at),
        "ended_at": iso(a.ended_at),
        "duration_ms": round(a.duration_s * 1000, 3),
        "outcome": a.outcome,
        "error": a.error.to_json() if a.error else None,
    }


async def _body(request: web.Request, *, required: bool) -> JSON:
    raw = await request.read()
    if not raw and not required:
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            400, "malformed_json", f"the request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "malformed_json", "the request body must be a JSON object")
    return body


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(
            400, "bad_query", f"{name} must be a whole number from {low} to {high}, got {raw!r}"
        )
    return value


async def submit_task(request: web.Request) -> web.Response:
    body = await _body(request, required=True)
    problems = [{"path": k, "message": "required"} for k in ("name", "context") if k not in body]
    for key in ("name", "namespace", "version", "idempotency_key"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            problems.append({"path": key, "message": "must be a string"})
    if problems:
        raise ApiError(400, "invalid_request", "invalid task submission", problems)
    sub = await request.app[ENGINE].submit(
        body["name"],
        body["context"],
        namespace=body.get("namespace"),
        version=body.get("version"),
        idempotency_key=body.get("idempotency_key"),
    )
    task = await request.app[ENGINE].get_task(sub.task_id)
    return web.json_response(
        {
            "task_id": sub.task_id,
            "correlation_id": sub.correlation_id,
            "state": task.state.value,
            "created": sub.created,
        },
        status=201 if sub.created else 200,
        headers={"Location": f"/tasks/{sub.task_id}"},
    )


async def get_task(request: web.Request) -> web.Response:
    return web.json_response(
        task_json(await request.app[ENGINE].get_task(request.match_info["task_id"]))
    )


async def list_tasks(request: web.Request) -> web.Response:
    raw_state = request.query.get("state")
    try:
        state = TaskState(raw_state) if raw_state else None
    except ValueError:
        allowed = ", ".join(s.value for s in TaskState)
        raise ApiError(
            400, "bad_query", f"state must be one of {allowed}, got {raw_state!r}"
        ) from None
    limit = _int_query(request, "limit", 100, 1, 10_000)
    tasks = await request.app[ENGINE].list_tasks(state, limit)
    return web.json_response({"tasks": [summary_json(t) for t in tasks]})


async def list_attempts(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    task_id = request.match_info["task_id"]
    await engine.get_task(task_id)  # 404 for an unknown task rather than an empty list
    attempts = await engine.attempts(task_id)
    return web.json_response({"attempts": [attempt_json(a) for a in attempts]})


async def list_events(request: web.Request) -> web.Response:
    after = _int_query(request, "after", 0, 0, 2**62)
    limit = _int_query(request, "limit", 1000, 1, 10_000)
    task_id = request.query.get("task_id") or None
    events = await request.app[ENGINE].events(after, limit, task_id)
    return web.json_response(
        {"events": [e.to_json() for e in events], "last_seq": events[-1].seq if events else after}
    )


async def stream_events(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    after = _int_query(request, "after", 0, 0, 2**62)
    task_id = request.query.get("task_id") or None
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await response.prepare(request)
    # Subscribe first, then read the backlog: nothing committed in between is missed, and the
    # sequence numbers drop what both sources saw.
    with engine.subscribe(task_id) as live:
        last = after
        while True:
            backlog = await engine.events(last, 1000, task_id)
            for event in backlog:
                await response.write(json.dumps(event.to_json()).encode() + b"\n")
                last = event.seq
            if len(backlog) < 1000:
                break
        async for event in live:
            if event.seq > last:
                await response.write(json.dumps(event.to_json()).encode() + b"\n")
                last = event.seq
    return response


async def cancel_task(request: web.Request) -> web.Response:
    task = await request.app[ENGINE].cancel_task(request.match_info["task_id"])
    return web.json_response(task_json(task))


async def retry_step(request: web.Request) -> web.Response:
    task = await request.app[ENGINE].retry_step(
        request.match_info["task_id"], request.match_info["step"]
    )
    return web.json_response(task_json(task))


async def resolve_step(request: web.Request) -> web.Response:
    body = await _body(request, required=False)
    results = body.get("results")
    if results is not None and not isinstance(results, dict):
        raise ApiError(
            400,
            "invalid_request",
            "results must be a JSON object",
            [{"path": "results", "message": "must be an object"}],
        )
    task = await request.app[ENGINE].resolve_step(
        request.match_info["task_id"], request.match_info["step"], results
    )
    return web.json_response(task_json(task))


async def breakers(request: web.Request) -> web.Response:
    found = request.app.get(BREAKERS)
    views = found.views() if found else []
    return web.json_response({"breakers": [b.to_json() for b in views]})


async def bottlenecks(request: web.Request) -> web.Response:
    rows = await request.app[ENGINE].bottlenecks()
    return web.json_response(
        {
            "steps": [
                {
                    "workflow": r.workflow,
                    "step_name": r.step_name,
                    "executions": r.executions,
                    "mean_duration_ms": round(r.mean_duration_s * 1000, 3),
                    "p95_duration_ms": round(r.p95_duration_s * 1000, 3),
                    "retry_rate": r.retry_rate,
                    "error_rate": r.error_rate,
                }
                for r in rows
            ]
        }
    )


async def health(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return web.json_response(
        {"status": "ok", "worker_id": engine.worker_id, "running_steps": engine.running_steps}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec())


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return _error(exc.status, exc.error, exc.message, exc.details)
    except ContextValidationError as exc:
        details = [{"path": d.path, "message": d.message} for d in exc.details]
        return _error(400, "invalid_context", str(exc), details)
    except (UnknownTemplateError, TaskNotFoundError, StepNotFoundError) as exc:
        return _error(404, "not_found", str(exc))
    except InvalidTransitionError as exc:
        return _error(409, "invalid_transition", str(exc))
    except web.HTTPException as exc:
        return _error(
            exc.status,
            exc.reason.lower().replace(" ", "_"),
            f"{exc.reason}: {request.method} {request.path}",
        )
    except Exception:
        _log.exception("unhandled error in %s %s", request.method, request.path)
        return _error(500, "internal_error", "the orchestrator failed unexpectedly; see its log")


def _error(
    status: int, error: str, message: str, details: list[JSON] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=status)


def create_api(engine: Engine, breakers_: CircuitBreakers | None = None) -> web.Application:
    app = web.Application(middlewares=[_errors])
    app[ENGINE] = engine
    if breakers_ is not None:
        app[BREAKERS] = breakers_
    app.add_routes(
        [
            web.post("/tasks", submit_task),
            web.get("/tasks", list_tasks),
            web.get("/tasks/{task_id}", get_task),
            web.get("/tasks/{task_id}/attempts", list_attempts),
            web.post("/tasks/{task_id}/cancel", cancel_task),
            web.post("/tasks/{task_id}/steps/{step}/retry", retry_step),
            web.post("/tasks/{task_id}/steps/{step}/resolve", resolve_step),
            web.get("/events", list_events),
            web.get("/events/stream", stream_events),
            web.get("/breakers", breakers),
            web.get("/analytics/bottlenecks", bottlenecks),
            web.get("/health", health),
            web.get("/openapi.json", openapi),
        ]
    )
    return app
