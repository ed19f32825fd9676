"""The transport interface: the one call the step adapter makes to reach a service.

As in httpx (``BaseTransport`` / ``MockTransport``), the adapter talks to a :class:`Transport`,
not to sockets: :class:`~orchestrator.http.client.HttpClient` is the real one (keep-alive
HTTP/1.1), and :class:`MockTransport` answers each request with a function, so a test can drive
:class:`~orchestrator.http.adapter.ServiceCaller` through every answer and failure without a
server.

A transport's contract, whatever carries the bytes:

- an answer, of any status, comes back as an :class:`HttpResponse` (redirects not followed);
- no complete answer (no connection, a reset, an early close, bytes that are not HTTP) raises
  :class:`~orchestrator.errors.ExchangeError`;
- no answer within ``timeout_s`` raises :class:`TimeoutError`;
- a method, URL or header that HTTP cannot carry raises :class:`ValueError`, before anything is
  sent.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDict, CIMultiDictProxy


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: CIMultiDictProxy[str]  #: case-insensitive; repeated headers keep every value
    body: bytes

    @classmethod
    def of(
        cls, status: int, body: bytes | str = b"", headers: Mapping[str, str] | None = None
    ) -> HttpResponse:
        """A response built from plain values (a ``str`` body is encoded as UTF-8)."""
        data = body.encode() if isinstance(body, str) else body
        return cls(status, CIMultiDictProxy(CIMultiDict(headers or {})), data)


class Transport(Protocol):
    """Sends one request and returns the answer (see the module docstring for the errors)."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout_s: float,
    ) -> HttpResponse: ...


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as a :class:`MockTransport` handler sees it."""

    method: str  #: upper case
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    timeout_s: float


MockHandler = Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]


class MockTransport:
    """A transport that answers every request with ``handler(request)``, sync or async.

    The handler may raise what a real transport raises (``ExchangeError``, ``TimeoutError``,
    ``ValueError``) to stand for a lost answer, a timeout or an unsendable request.
    """

    def __init__(self, handler: MockHandler) -> None:
        self.handler = handler

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout_s: float,
    ) -> HttpResponse:
        request = HttpRequest(method.upper(), url, dict(headers or {}), body, timeout_s)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            return await answer
        return answer
