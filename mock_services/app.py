"""``create_app``: one mock service as an aiohttp application, with its cross-cutting layers.

Middlewares, outermost first:

1. ``access``      correlation id (read or made, echoed), JSON errors for anything unhandled,
                   the request journal and one JSON log line per request;
2. ``edge``        the shared edge (:func:`httpedge.edge`): ``Host``, ``Origin``,
                   ``Content-Type`` and the JSON limits checked, the body read and parsed
                   once, and every ``ApiError`` raised below it or aiohttp error (404, 405 with
                   ``Allow``, 413) answered as JSON;
3. ``faults``      the injector's decision: delay, replace the answer, drop the connection, or
                   run the request and lose its answer (``lost_response``);
4. ``idempotency`` replay / mismatch / in-flight for requests with ``Idempotency-Key``;
5. ``api_errors``  ``ApiError`` and routing errors (404, 405) as JSON responses, inside the
                   idempotency layer so that a refusal (a 409, a 422) is stored and replayed.

Idempotency sits inside the fault layer on purpose: a ``lost_response`` stores the real answer
before losing it, so the client's retry with the same key is replayed instead of run twice.
The admin API (``/__admin``) passes only through ``access``, ``edge`` and ``api_errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
import time
import uuid
from datetime import UTC, datetime
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler

from httpedge import MAX_BODY_BYTES, JsonLimitError, MalformedJsonError, edge, parse_json
from httpedge.limits import repaired, valid_string
from mock_services.admin import admin_routes
from mock_services.errors import FaultRuleError
from mock_services.faults import FaultInjector, FaultPlan, FaultRule, parse_rule
from mock_services.idempotency import MAX_KEY_CHARS, IdempotencyStore, StoredResponse, fingerprint
from mock_services.journal import RequestJournal, RequestRecord
from mock_services.metrics import METRICS_PATH, metrics
from mock_services.runtime import RUNTIME, ServiceConfig, ServiceRuntime
from mock_services.services import SandboxData, service_routes
from mock_services.validation import ApiError

ADMIN_PREFIX: Final = "/__admin"
FAULT_HEADER: Final = "X-Interlock-Fault"
REPLAY_HEADER: Final = "Idempotent-Replayed"
_MUTATING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_KEPT_HEADERS: Final = ("Location", "Retry-After")
_log = logging.getLogger(__name__)


CORRELATION_ID: Final = web.RequestKey("correlation_id", str)
FAULTS_FIRED: Final = web.RequestKey("faults_fired", str)
REPLAYED: Final = web.RequestKey("replayed", bool)


class ConnectionDroppedError(Exception):
    """The fault layer closed the connection; there is no response to send."""


def create_app(
    service: str, data: SandboxData, config: ServiceConfig | None = None
) -> web.Application:
    config = config or ServiceConfig()
    runtime = ServiceRuntime(
        name=service,
        config=config,
        data=data,
        injector=FaultInjector(data.monotonic),
        idempotency=IdempotencyStore(
            config.idempotency_ttl_s, data.monotonic, config.idempotency_max_keys
        ),
        journal=RequestJournal(config.journal_size),
    )
    middlewares = [_access_middleware, edge]
    if config.faults_enabled:
        middlewares.append(_fault_middleware)
    middlewares += [_idempotency_middleware, _api_error_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[RUNTIME] = runtime
    app.add_routes(service_routes(service, data))
    app.add_routes(admin_routes())
    app.router.add_get(METRICS_PATH, metrics)

    async def on_shutdown(_: web.Application) -> None:
        runtime.stopping.set()  # releases held ("hang") requests so shutdown is quick

    app.on_shutdown.append(on_shutdown)
    return app


def _is_admin(request: web.Request) -> bool:
    """The admin API and the metrics: never faulted, never journaled."""
    return request.path.startswith(ADMIN_PREFIX) or request.path == METRICS_PATH


@web.middleware
async def _access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get("X-Correlation-ID")
    # an id that is not UTF-8 text is refused by the edge; the refusal gets an id of its own
    correlation_id = given if given and valid_string(given) else f"cid-{uuid.uuid4().hex}"
    request[CORRELATION_ID] = correlation_id
    arrived = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    status: int | None = None
    try:
        response = await handler(request)
    except ConnectionDroppedError:
        raise asyncio.CancelledError from None  # aiohttp closes quietly on cancellation
    except ConnectionResetError:  # the client went away before its request was read
        _log.info("client went away during %s %s", request.method, request.path)
        raise asyncio.CancelledError from None
    except Exception:
        _log.exception("unhandled error in %s %s", request.method, request.path)
        response = web.json_response(
            {"error": "internal_error", "message": "the service failed unexpectedly"}, status=500
        )
        status = response.status  # answered: a 500, not "no_response"
    else:
        status = response.status
    finally:
        if not _is_admin(request):
            _record(request, status, started, arrived)
    response.headers["X-Correlation-ID"] = correlation_id
    return response


def _record(request: web.Request, status: int | None, started: float, arrived: str) -> None:
    runtime = request.app[RUNTIME]
    runtime.journal.record(
        RequestRecord(
            seq=runtime.journal.next_seq(),
            at=arrived,
            service=runtime.name,
            method=request.method,
            path=request.path_qs,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            correlation_id=request[CORRELATION_ID],
            idempotency_key=_text(request.headers.get("Idempotency-Key")),
            fault=request.get(FAULTS_FIRED),
            replayed=request.get(REPLAYED, False),
        )
    )


def _text(value: str | None) -> str | None:
    return repaired(value) if value is not None else None


@web.middleware
async def _fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    runtime = request.app[RUNTIME]
    # The fast path: no rules and no header rules allowed leave the request untouched.
    if not runtime.injector.active and not runtime.config.allow_fault_headers:
        return await handler(request)
    if _is_admin(request):
        return await handler(request)
    extra = _header_rule(request)  # a bad one is a 400 ApiError, answered by the edge
    plan = runtime.injector.plan(
        request.method, request.path, extra, key=request.headers.get("Idempotency-Key")
    )
    if plan.fired:
        request[FAULTS_FIRED] = ",".join(plan.fired)
    if plan.delay_ms > 0:
        # A slow service has the whole request before it is slow (the edge read the body), so a
        # client that gives up (or dies) meanwhile leaves the work done and its answer lost.
        await asyncio.sleep(plan.delay_ms / 1000)
    if plan.terminal is None:
        return await handler(request)
    return await _apply(plan, plan.terminal, request, handler)


async def _apply(
    plan: FaultPlan, rule: FaultRule, request: web.Request, handler: Handler
) -> web.StreamResponse:
    kind, params = rule.kind, rule.params
    if kind == "error":
        headers = {}
        if params.get("retry_after_s") is not None:
            headers["Retry-After"] = _seconds(params["retry_after_s"])
        message = params.get("message", f"injected fault: HTTP {params['status']}")
        return web.json_response(
            {"error": "injected_fault", "message": message},
            status=int(params["status"]),
            headers=headers,
        )
    if kind == "rate_limit":
        return web.json_response(
            {"error": "rate_limited", "message": "too many requests (injected rate limit)"},
            status=429,
            headers={"Retry-After": _seconds(plan.retry_after_s or 1)},
        )
    if kind == "down":
        return web.json_response(
            {"error": "service_unavailable", "message": "the service is down (injected)"},
            status=503,
        )
    if kind == "malformed":
        return web.Response(
            status=int(params["status"]), body=b'{"id": "usr_trunc', content_type="application/json"
        )
    if kind == "missing_fields":
        return _without_fields(await handler(request), params["fields"])
    if kind == "hang":
        stopping = request.app[RUNTIME].stopping
        with contextlib.suppress(TimeoutError):  # a client that hangs up cancels the wait
            async with asyncio.timeout(float(params["hold_ms"]) / 1000):
                await stopping.wait()
    if kind == "lost_response":
        await handler(request)  # the request takes effect ...
        if params.get("status") is not None:  # ... and the client sees an error instead
            return web.json_response(
                {"error": "injected_fault", "message": "the response was lost (injected)"},
                status=int(params["status"]),
            )
    _drop_connection(request)  # reset, hang, lost_response: no answer at all
    raise ConnectionDroppedError


def _without_fields(response: web.StreamResponse, fields: list[str]) -> web.StreamResponse:
    """The answer as the handler gave it, minus ``fields`` when its body is a JSON object."""
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes):
        return response
    try:
        parsed = json.loads(body)
    except ValueError:
        return response
    if not isinstance(parsed, dict):
        return response
    kept = {k: v for k, v in parsed.items() if k not in fields}
    names = (*_KEPT_HEADERS, REPLAY_HEADER)
    headers = {h: response.headers[h] for h in names if h in response.headers}
    return web.json_response(kept, status=response.status, headers=headers)


def _seconds(value: float) -> str:
    return str(max(0, round(float(value))))


def _drop_connection(request: web.Request) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashed peer or a middlebox would."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _header_rule(request: web.Request) -> FaultRule | None:
    """A one-shot rule from ``X-Interlock-Fault``, when the sandbox allows them."""
    raw = request.headers.get(FAULT_HEADER)
    if raw is None or not request.app[RUNTIME].config.allow_fault_headers:
        return None
    try:
        return parse_rule(parse_json(raw), "header")
    except (MalformedJsonError, JsonLimitError, FaultRuleError) as exc:
        raise ApiError(400, "bad_fault_header", f"{FAULT_HEADER}: {exc}") from None


@web.middleware
async def _idempotency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.headers.get("Idempotency-Key")
    if key is None or request.method not in _MUTATING or _is_admin(request):
        return await handler(request)
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise ApiError(
            400,
            "bad_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} characters, got {len(key)}",
        )
    store = request.app[RUNTIME].idempotency
    begin = store.begin(key, fingerprint(request.method, request.path_qs, await request.read()))
    if begin.outcome == "mismatch":
        return ApiError(
            422, "idempotency_key_reused", "this Idempotency-Key was used with a different request"
        ).to_response()
    if begin.outcome == "in_flight":
        return ApiError(
            409,
            "idempotency_key_in_flight",
            "a request with this Idempotency-Key is still being processed",
            headers={"Retry-After": "1"},
        ).to_response()
    if begin.outcome == "replay" and begin.response is not None:
        request[REPLAYED] = True
        stored = begin.response
        return web.Response(
            status=stored.status,
            body=stored.body,
            content_type=stored.content_type,
            headers={**dict(stored.headers), REPLAY_HEADER: "true"},
        )
    try:
        response = await handler(request)
    except BaseException:
        store.release(key)
        raise
    body = response.body if isinstance(response, web.Response) else None
    if response.status >= 500 or response.status == 429 or not isinstance(body, bytes):
        store.release(key)
    else:
        kept = tuple((h, response.headers[h]) for h in _KEPT_HEADERS if h in response.headers)
        store.complete(key, StoredResponse(response.status, body, response.content_type, kept))
    return response


@web.middleware
async def _api_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.to_response()
    except web.HTTPException as exc:  # routing: unknown path (404), wrong method (405)
        return ApiError(
            exc.status,
            exc.reason.lower().replace(" ", "_"),
            f"{exc.reason}: {request.method} {request.path}",
            headers={k: v for k, v in exc.headers.items() if k == "Allow"},
        ).to_response()
