"""The API's request handlers: parse the request, call the engine, answer with serialized JSON.

They read what they need from the app under typed keys (:data:`ENGINE`, :data:`BREAKERS`,
:data:`STREAM`, set by :func:`~orchestrator.api.app.create_api`), raise
:class:`~orchestrator.api.middleware.ApiError` for a bad request, and leave the engine's own
errors to the middleware.

``GET /events/stream?after=SEQ`` streams events as newline-delimited JSON: first the stored ones
after ``SEQ``, then live ones as they commit, without polling the database. It is complete: a
client that reads slowly falls behind the live events, and the gap is re-read from the store
(:meth:`Engine.follow <orchestrator.engine.Engine.follow>`), so it gets every event once, in
strictly increasing ``seq`` order, and a client that reconnects with ``after=<the last seq it
saw>`` gets exactly the rest. After ``keepalive_s`` without an event it writes a blank line
(clients skip blank lines), so a client can tell an idle stream from a dead connection. A
client going away ends the handler quietly.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from httpedge import json_body
from httpedge.limits import MAX_IDEMPOTENCY_KEY_CHARS
from orchestrator import codec
from orchestrator.api.middleware import ApiError
from orchestrator.api.openapi import openapi_spec
from orchestrator.api.serialize import (
    attempt_json,
    bottleneck_json,
    breaker_json,
    counts_json,
    event_json,
    submission_json,
    summary_json,
    task_json,
)
from orchestrator.breaker import CircuitBreakers
from orchestrator.engine import Engine
from orchestrator.events import DEFAULT_MAX_BUFFERED
from orchestrator.models import JSON, TaskState


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How ``GET /events/stream`` treats its clients."""

    #: Write a blank line after this long without an event, so a client can tell an idle stream
    #: from a dead connection (and the server notices a client that went away).
    keepalive_s: float = 5.0
    #: Live events held for a client that reads slowly; past it, they are re-read from the store.
    max_buffered: int = DEFAULT_MAX_BUFFERED
    #: After a write, wait this long before the next: a burst's events then go out a few
    #: hundred at a time instead of one commit's worth per write (each write a wake-up, a
    #: chunk and a send of the orchestrator, which is the busiest process in a burst), at
    #: the price of that much delay on an event that follows another closely. The first event
    #: after a quiet moment goes out at once.
    coalesce_s: float = 0.025


ENGINE: Final = web.AppKey("engine", Engine)
BREAKERS: Final = web.AppKey("breakers", CircuitBreakers)
STREAM: Final = web.AppKey("stream", StreamConfig)
#: What the stream writes after ``keepalive_s`` without an event; clients skip blank lines.
KEEPALIVE: Final = b"\n"


async def _body(request: web.Request, *, required: bool) -> JSON:
    body = await json_body(request)  # parsed, within httpedge's limits, by the edge middleware
    if body is None and not required:
        return {}
    if body is None:
        raise ApiError(400, "malformed_json", "the request body must be a JSON object, not empty")
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
    if "name" in body and not isinstance(body["name"], str):
        problems.append({"path": "name", "message": "must be a string"})
    for key in ("namespace", "version", "idempotency_key"):
        if body.get(key) is not None and not isinstance(body[key], str):
            problems.append({"path": key, "message": "must be a string or null"})
    given_key = body.get("idempotency_key")
    if isinstance(given_key, str) and not 1 <= len(given_key) <= MAX_IDEMPOTENCY_KEY_CHARS:
        problems.append(
            {
                "path": "idempotency_key",
                "message": f"must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters",
            }
        )
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
        submission_json(sub, task.state),
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
    offset = _int_query(request, "offset", 0, 0, 2**62)
    tasks = await request.app[ENGINE].list_tasks(state, limit, offset)
    return web.json_response({"tasks": [summary_json(t) for t in tasks]})


async def task_counts(request: web.Request) -> web.Response:
    return web.json_response(counts_json(await request.app[ENGINE].task_counts()))


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
        {"events": [event_json(e) for e in events], "last_seq": events[-1].seq if events else after}
    )


async def stream_events(request: web.Request) -> web.StreamResponse:
    config = request.app[STREAM]
    after = _int_query(request, "after", 0, 0, 2**62)
    task_id = request.query.get("task_id") or None
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    batches = request.app[ENGINE].follow_batches(
        after, task_id, idle_s=config.keepalive_s, max_buffered=config.max_buffered
    )
    try:
        await response.prepare(request)
        async with aclosing(batches):
            async for batch in batches:
                # one write per batch: a burst's events go out in a few sends, not one each
                # (one per event cost the orchestrator about a tenth of a burst's CPU)
                await response.write(
                    KEEPALIVE
                    if batch is None
                    else b"".join(codec.dumpb(event_json(e)) + b"\n" for e in batch)
                )
                if batch is not None and config.coalesce_s > 0:
                    await asyncio.sleep(config.coalesce_s)
    except ConnectionError:
        # The client went away (aiohttp raises ClientConnectionResetError, a ConnectionError):
        # the normal end of a stream, not an error. It resumes with ?after=<the last seq>.
        pass
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
    return web.json_response({"breakers": [breaker_json(b) for b in views]})


async def bottlenecks(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    namespace = request.query.get("namespace") or None
    task_name = request.query.get("task_name") or None
    window_s = _int_query(request, "window_s", 1, 1, 10**9) if "window_s" in request.query else None
    rows = await engine.bottlenecks(namespace, task_name, window_s)
    return web.json_response(
        {
            "steps": [bottleneck_json(r) for r in rows],
            "breaker_openings": await engine.breaker_openings(window_s),
            "namespace": namespace,
            "task_name": task_name,
            "window_s": window_s,
        }
    )


async def health(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return web.json_response(
        {
            "status": "ok",
            "worker_id": engine.worker_id,
            "running_steps": engine.running_steps,
            "last_seq": await engine.last_event_seq(),
        }
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec())
