"""``EdgeRunner``: ``web.AppRunner`` whose own error answers are JSON too.

aiohttp answers some requests before any middleware runs: a request line or a header over its
limits (8190 bytes), a malformed request, a handler that raised past every middleware. It
writes those as ``text/plain``; this runner's connections write ``{"error", "message"}`` with the
same status instead, so every answer of an Interlock server is JSON.

A client's mistake (a 4xx) is logged as one line at INFO, not as an error with a traceback.
aiohttp has no public hook for that answer (``RequestHandler.handle_error``), so the runner's
server makes connections of a subclass that overrides it; ``tests/httpedge`` sends such requests
to a real server and fails if an aiohttp upgrade bypasses the override.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from httpedge.middleware import HOST_NAMES


class EdgeRunner(web.AppRunner):
    """Runs ``app`` with JSON protocol errors; ``host_names`` (the ``--host`` it binds, when it
    is a name) are accepted in ``Host`` besides the loopback names and the bound address."""

    def __init__(self, app: web.Application, *, host_names: Iterable[str] = (), **kwargs: Any):
        app[HOST_NAMES] = frozenset(n.lower() for n in host_names)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # adds no state: only how connections are made
        return server


class _JsonErrorServer(Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class _JsonErrorHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp's: an answer has begun, none can follow
            raise ConnectionError("the response is sent already; no error answer can follow")
        if status >= 500:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
        else:  # the client's mistake: one line, no traceback
            self.logger.info("refused a request from %s: %s %s", request.remote, status, message)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "error"
        if status >= 500:
            text = "the server failed unexpectedly; see its log"
        else:
            text = f"{reason}: {message or exc or 'the request could not be read'}"
        response = web.json_response(
            {"error": reason.lower().replace(" ", "_"), "message": text}, status=status
        )
        response.force_close()
        return response
