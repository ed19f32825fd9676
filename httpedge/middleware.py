"""The edge middleware every Interlock server runs first: who may ask, what a body may be, and
every error as JSON.

:func:`edge`, in order, for each request:

1. ``Host`` must name this server (DNS rebinding): ``127.0.0.1:PORT``, ``localhost:PORT``, the
   address the connection came in on, or a name the runner was given (:data:`HOST_NAMES`); else
   403 ``host_not_allowed``. A request without ``Host`` (HTTP/1.0) passes: browsers always send it.
2. An ``Origin`` (sent by browsers) must be this server's own, ``http://`` + one of those
   hosts; else 403 ``cross_origin``. A web page cannot reach the sandbox, even with a CORS
   "simple" request.
3. A body (of a POST, PUT or PATCH; others are ignored) must say ``Content-Type:
   application/json`` (else 415 ``unsupported_media_type``), fit in
   :data:`~httpedge.limits.MAX_BODY_BYTES` (else 413 ``body_too_large``) and be JSON within
   :mod:`httpedge.limits` (else 400 ``malformed_json`` or ``json_limit_exceeded`` naming the
   limit); handlers get it from :func:`json_body`, parsed once. Header values must be UTF-8
   text too (400 ``bad_header``); paths and queries always are (yarl decodes invalid UTF-8 in
   them to U+FFFD).
4. Whatever the handlers raise as an :class:`HttpError`, and aiohttp's own errors (404; 405 with
   its ``Allow`` header; 413), become JSON: ``{"error", "message", "details"?}``.

What never reaches a middleware (a request line or header over aiohttp's limits, a request that
is not HTTP) is answered as JSON too by :class:`~httpedge.runner.EdgeRunner`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web
from aiohttp.typedefs import Handler

from httpedge.limits import (
    MAX_BODY_BYTES,
    JsonLimitError,
    MalformedJsonError,
    parse_json,
    valid_string,
)

JSON = dict[str, Any]
#: Host names besides the loopback ones and the bound address that name this server (the
#: ``--host`` it was started with); set by :class:`~httpedge.runner.EdgeRunner`.
HOST_NAMES: Final = web.AppKey("httpedge_host_names", frozenset[str])
_BODY: Final = web.RequestKey("httpedge_body", object)
_LOOPBACK: Final = ("127.0.0.1", "localhost")
#: The methods whose body is read (and must be JSON); another method's body is ignored.
BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})


class HttpError(Exception):
    """A request refused with ``status``: answered ``{"error", "message", "details"?, **extra}``
    with ``headers``. Each server's own ``ApiError`` is one."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        details: list[JSON] | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        extra: JSON | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message
        self.details = details
        self.headers = dict(headers or {})
        self.extra = extra or {}

    def to_response(self) -> web.Response:
        body: JSON = {"error": self.error, "message": self.message, **self.extra}
        if self.details is not None:
            body["details"] = self.details
        return web.json_response(body, status=self.status, headers=self.headers)


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        _check_headers(request)  # first: the refusals below quote Host and Origin
        _check_host(request)
        if request.method in BODY_METHODS and request.body_exists:
            request[_BODY] = await _read_body(request)
        return await handler(request)
    except HttpError as exc:
        return exc.to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_http_exception(request, exc).to_response()


async def json_body(request: web.Request) -> Any:
    """The request's JSON body as :func:`edge` parsed it (None when there is none)."""
    if _BODY in request:
        return request[_BODY]
    if request.method not in BODY_METHODS or not request.body_exists:
        return None
    body = await _read_body(request)  # an app without the edge middleware (a test's)
    request[_BODY] = body
    return body


def from_http_exception(request: web.Request, exc: web.HTTPException) -> HttpError:
    """aiohttp's own error (routing, body size) as an :class:`HttpError`, ``Allow`` kept."""
    headers = {k: v for k, v in exc.headers.items() if k == "Allow"}
    if exc.status == 413:
        return HttpError(
            413,
            "body_too_large",
            f"the request body is over {MAX_BODY_BYTES} bytes (limit max_body_bytes)",
            extra={"limit": "max_body_bytes"},
        )
    return HttpError(
        exc.status,
        exc.reason.lower().replace(" ", "_"),
        f"{exc.reason}: {request.method} {request.path}",
        headers=headers,
    )


def allowed_hosts(request: web.Request) -> frozenset[str]:
    """Every ``Host`` value that names this server, lower-case, ``name:port``."""
    transport = request.transport
    sockname = transport.get_extra_info("sockname") if transport is not None else None
    if not isinstance(sockname, tuple) or len(sockname) < 2:
        return frozenset()
    return _hosts(str(sockname[0]), int(sockname[1]), request.app.get(HOST_NAMES, frozenset()))


@functools.lru_cache(maxsize=64)  # a server has one or two addresses: computed once each
def _hosts(address: str, port: int, extra: frozenset[str]) -> frozenset[str]:
    names = {*_LOOPBACK, *extra, address}
    hosts = {_authority(name, port) for name in names}
    if port == 80:
        hosts |= {_authority(name, None) for name in names}
    return frozenset(h.lower() for h in hosts)


def _authority(name: str, port: int | None) -> str:
    host = f"[{name}]" if ":" in name and not name.startswith("[") else name
    return host if port is None else f"{host}:{port}"


def _check_host(request: web.Request) -> None:
    host = request.headers.get("Host")
    origin = request.headers.get("Origin")
    if host is None and origin is None:
        return
    allowed = allowed_hosts(request)
    if host is not None and host.lower() not in allowed:
        raise HttpError(
            403,
            "host_not_allowed",
            f"Host {host!r} does not name this server; use one of {', '.join(sorted(allowed))}",
        )
    if origin is not None and origin.lower() not in {f"http://{h}" for h in allowed}:
        raise HttpError(
            403,
            "cross_origin",
            f"requests from {origin!r} are refused: only this server's own pages may call it",
        )


def _check_headers(request: web.Request) -> None:
    for name, value in request.headers.items():
        if not valid_string(value):
            raise HttpError(
                400,
                "bad_header",
                f"the {name} header is not UTF-8 text (limit valid_strings)",
                extra={"limit": "valid_strings"},
            )


async def _read_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise HttpError(
            415,
            "unsupported_media_type",
            f"a request body must be JSON sent as Content-Type: application/json, "
            f"not {request.headers.get('Content-Type', 'none')!r}",
        )
    raw = await request.read()
    if not raw:
        return None
    try:
        return parse_json(raw)
    except MalformedJsonError as exc:
        raise HttpError(400, "malformed_json", f"the request body is {exc}") from None
    except JsonLimitError as exc:
        details = [{"path": exc.path, "message": str(exc)}] if exc.path is not None else None
        raise HttpError(
            400,
            "json_limit_exceeded",
            f"the request body is outside a limit: {exc}",
            details,
            extra={"limit": exc.limit},
        ) from None
