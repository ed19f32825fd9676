"""The HTTP/1.1 client that step handlers' service calls go through: keep-alive, JSON-sized.

It is the real :class:`~orchestrator.http.transport.Transport` behind
:class:`~orchestrator.http.adapter.ServiceCaller`.

Why not aiohttp's client (the CLI and the tests still use it): for the small JSON exchanges a
workflow makes, most of aiohttp's per-request cost is machinery they do not need (request and
response objects, multidicts, tracing hooks, payload machinery, stream readers), and that cost
was a large share of the orchestrator's event-loop time. This client does one thing: send a
request on a pooled connection and hand back status, headers and body, for much less CPU per
request than aiohttp's client (measured, see docs/benchmarks.md, "The service-call HTTP client").
Parsing is httptools (llhttp, the parser Node.js uses); connections, TLS and timeouts are
asyncio's.

What it does: a keep-alive pool per origin with a cap on connections in use; ``Content-Length``,
chunked and read-until-close bodies; interim 1xx answers skipped; ``Connection: close`` and
HTTP/1.0 honoured; idle connections the server closed are dropped, and any left idle for
:data:`IDLE_EXPIRY_S` are closed when next looked at; https with the system's trust store;
percent-encoding of the URL as aiohttp does it (yarl); headers checked for CR/LF/NUL so nothing
can be injected.

What it does not, on purpose: follow redirects (a service URL that redirects is misconfigured:
the 3xx comes back as it is), retry (the engine owns retries, and a lost response must show as
a failed attempt), cookies, proxies, HTTP/2. It asks for no compression; a gzip or deflate body
sent anyway is decoded, any other encoding is an ``ExchangeError``.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from orchestrator.errors import ExchangeError
from orchestrator.http.transport import HttpResponse

IDLE_EXPIRY_S: Final = 15.0  #: an idle pooled connection older than this is closed, not reused
USER_AGENT: Final = "interlock"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_UNSAFE_VALUE = re.compile(r"[\r\n\x00]")
_BODYLESS_STATUS: Final = frozenset({204, 304})
#: headers that frame the message: the client writes them, a caller may not
_FRAMING: Final = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True, slots=True)
class _Origin:
    host: str  #: to connect to (an IPv6 address without brackets)
    port: int
    tls: bool
    host_header: str  #: ``host`` or ``host:port``, bracketed for IPv6


class _Connection(asyncio.Protocol):
    """One socket, one exchange at a time. The parser lives as long as the connection."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._head_only = False
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._headers_done = False
        self.keep_alive = False

    # -- driven by the caller ---------------------------------------------------------------
    def send(self, data: bytes, *, head_only: bool) -> asyncio.Future[HttpResponse]:
        assert self.transport is not None, "send() before the connection was made"
        assert self._waiter is None, "one exchange at a time per connection"
        self._waiter = asyncio.get_running_loop().create_future()
        self._head_only = head_only
        self.transport.write(data)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self) -> bool:
        """Open at both ends as far as this side knows: safe to send the next request on."""
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    # -- asyncio.Protocol -------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports behave as asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing was asked: a confused server; don't reuse it
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail("the service switched protocols; only HTTP/1.1 is spoken here")
        except httptools.HttpParserError as exc:
            self._fail(f"the service's answer is not valid HTTP/1.1 ({exc})")

    def eof_received(self) -> bool:
        self.closed = True  # not to be handed out again, even before connection_lost runs
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None or self._waiter.done():
            return
        if self._headers_done and self._reads_until_close():
            self._complete(keep_alive=False)
        elif exc is not None:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            self._fail(f"the connection was lost before a complete answer ({reason})")
        else:
            self._fail("the service closed the connection before a complete answer")

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._headers = []
        self._body = []
        self._headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        if self._head_only and self._parser.get_status_code() >= 200:
            self._complete(keep_alive=False)  # the parser would wait for the announced body

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self._parser.get_status_code() < 200:
            return  # an interim answer (100 Continue, 103 Early Hints): the real one follows
        self._complete(keep_alive=self._parser.should_keep_alive())

    # -- outcomes ---------------------------------------------------------------------------
    def _reads_until_close(self) -> bool:
        """A body framed by the end of the connection: no length, not chunked (RFC 9112 6.3)."""
        names = {name.lower(): value for name, value in self._headers}
        status = self._parser.get_status_code()
        return (
            "content-length" not in names
            and "chunked" not in names.get("transfer-encoding", "").lower()
            and status not in _BODYLESS_STATUS
            and status >= 200
        )

    def _complete(self, *, keep_alive: bool) -> None:
        waiter, self._waiter = self._waiter, None
        self.keep_alive = keep_alive and not self.closed
        if waiter is not None and not waiter.done():
            waiter.set_result(
                HttpResponse(
                    self._parser.get_status_code(),
                    CIMultiDictProxy(CIMultiDict(self._headers)),
                    b"".join(self._body),
                )
            )

    def _fail(self, message: str) -> None:
        waiter, self._waiter = self._waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(ExchangeError(message))


class HttpClient:
    """Pooled HTTP/1.1 connections to the services; at most ``max_connections`` in use at once.

    Close it with :meth:`close` (or ``async with``) when done: idle connections stay open.
    """

    def __init__(
        self, *, max_connections: int = 100, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        self._slots = asyncio.Semaphore(max_connections)
        self._max_idle = max_connections
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._closed = False

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection, idle or in use; later requests raise ``RuntimeError``."""
        self._closed = True
        closing = list(self._open)
        for conn in closing:
            conn.close()
        self._open.clear()
        self._idle.clear()
        if closing:  # let the transports finish closing before the caller closes the loop
            await asyncio.sleep(0)

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
        timeout_s: float,
    ) -> HttpResponse:
        """One exchange. Raises ``ExchangeError`` when no complete answer came (no connection,
        a reset, an early close, an answer that is not HTTP) and ``TimeoutError`` after
        ``timeout_s``; a bad method, URL or header raises ``ValueError`` before anything is sent.
        """
        if self._closed:
            raise RuntimeError("the HTTP client is closed")
        method = method.upper()
        target = URL(url)
        origin = _origin(target)
        data = _request_bytes(method, target, origin, headers or {}, body, content_type)
        async with asyncio.timeout(timeout_s), self._slots:
            conn = await self._acquire(origin)
            finished = False
            try:
                response = await conn.send(data, head_only=method == "HEAD")
                finished = True
            finally:
                self._release(origin, conn, reuse=finished)
        return _decoded(response)

    async def _acquire(self, origin: _Origin) -> _Connection:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if conn.usable and now - conn.idle_since < IDLE_EXPIRY_S:
                return conn
            self._forget(conn)
        return await self._connect(origin)

    async def _connect(self, origin: _Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if origin.tls:
            context = self._ssl_context or _default_ssl_context()
        try:
            _, conn = await loop.create_connection(
                _Connection,
                origin.host,
                origin.port,
                ssl=context,
                server_hostname=origin.host if context else None,
            )
        except OSError as exc:
            raise ExchangeError(
                f"cannot connect to {origin.host_header}: {exc.strerror or exc}"
            ) from None
        self._open.add(conn)
        return conn

    def _release(self, origin: _Origin, conn: _Connection, *, reuse: bool) -> None:
        pool = self._idle.get(origin)
        if (
            reuse
            and conn.keep_alive
            and conn.usable
            and not self._closed
            and (pool is None or len(pool) < self._max_idle)
        ):
            conn.idle_since = time.monotonic()
            self._idle.setdefault(origin, deque()).append(conn)
        else:  # an unfinished exchange (timeout, cancel) leaves the connection in a bad state
            self._forget(conn)

    def _forget(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)


def _origin(url: URL) -> _Origin:
    if url.scheme not in ("http", "https") or not url.raw_host:
        raise ValueError(f"not an http(s) URL: {str(url)!r}")
    port = url.port
    assert port is not None  # yarl fills in the scheme's default
    return _Origin(url.raw_host, port, url.scheme == "https", url.host_port_subcomponent or "")


def _request_bytes(
    method: str,
    url: URL,
    origin: _Origin,
    headers: Mapping[str, str],
    body: bytes | None,
    content_type: str,
) -> bytes:
    """The request head (and body) as sent; ``method`` is upper case already."""
    if not _TOKEN.fullmatch(method):
        raise ValueError(f"not an HTTP method: {method!r}")
    given = {name.lower() for name in headers}
    if given & _FRAMING:
        raise ValueError(f"the client sets {', '.join(sorted(given & _FRAMING))} itself")
    parts = [f"{method} {url.raw_path_qs} HTTP/1.1\r\nHost: {origin.host_header}\r\n"]
    if "user-agent" not in given:
        parts.append(f"User-Agent: {USER_AGENT}\r\n")
    if "accept" not in given:
        parts.append("Accept: application/json, */*\r\n")
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"header {name!r} has a name or value that HTTP cannot carry")
        parts.append(f"{name}: {value}\r\n")
    if body is not None:
        if "content-type" not in given:
            parts.append(f"Content-Type: {content_type}\r\n")
        parts.append(f"Content-Length: {len(body)}\r\n\r\n")
        return "".join(parts).encode() + body
    if method in ("POST", "PUT", "PATCH"):
        parts.append("Content-Length: 0\r\n")
    parts.append("\r\n")
    return "".join(parts).encode()


def _decoded(response: HttpResponse) -> HttpResponse:
    """The body as sent, had the server not compressed it unasked (gzip or deflate)."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding in ("", "identity") or not response.body:
        return response
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ExchangeError(f"the answer is {encoding}-encoded, which this client cannot decode")
    try:  # wbits 47: a gzip or zlib header, found out from the data; -15: raw deflate
        body = zlib.decompress(response.body, wbits=47)
    except zlib.error:
        try:
            body = zlib.decompress(response.body, wbits=-15)
        except zlib.error as exc:
            raise ExchangeError(f"the {encoding} body is corrupt ({exc})") from None
    return HttpResponse(response.status, response.headers, body)


_ssl_context: ssl.SSLContext | None = None


def _default_ssl_context() -> ssl.SSLContext:
    global _ssl_context
    if _ssl_context is None:
        _ssl_context = ssl.create_default_context()
    return _ssl_context
