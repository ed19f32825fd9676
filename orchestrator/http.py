"""The HTTP step adapter: one place where HTTP answers become typed step errors.

Business handlers stay thin: they call :meth:`ServiceCaller.call` and get a parsed response, or
the call raises the right :class:`StepError`:

=====================================  ===========================================
answer                                 becomes
=====================================  ===========================================
2xx (or a status the caller accepts)   the response (JSON body parsed)
400, 422                               permanent ``CLIENT_VALIDATION_ERROR``
401, 403                               permanent ``AUTH_ERROR``
402                                    permanent ``PAYMENT_REQUIRED``
404                                    permanent ``RESOURCE_NOT_FOUND``
409 with ``Retry-After``                retryable ``HTTP_409`` (the same request is still
                                       being processed: an idempotency key in flight)
409 not accepted by the caller         permanent ``CONFLICT``
408, 429, 5xx                          retryable ``HTTP_<status>``, with ``Retry-After``
3xx (redirects are not followed)       permanent ``HTTP_<status>``
connection error / reset               retryable ``CONNECTION_ERROR``
an answer that is not HTTP             retryable ``CONNECTION_ERROR``
no answer within the request timeout   retryable ``REQUEST_TIMEOUT``
a 2xx body that is not JSON            retryable ``MALFORMED_RESPONSE``
a URL or header HTTP cannot carry      permanent ``INVALID_REQUEST``
=====================================  ===========================================

The calls go through :class:`~orchestrator.httpclient.HttpClient`, a keep-alive HTTP/1.1 pool
that costs a third of what aiohttp's client did per request (the module says why and what it
leaves out).

Every call sends ``X-Correlation-ID`` (the task's) and, for writes, an ``Idempotency-Key`` made
from task, step and purpose, the same on every attempt: a retry after a lost response is
replayed by the service instead of run twice. Every call emits ``service_call.started`` and
``service_call.completed`` / ``service_call.failed`` events, and tells the service's circuit
breaker how it went (5xx, 408, timeouts and connection errors count against it; other 4xx
answers, 429 and an in-flight 409 do not: the service answered and is healthy).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final

from orchestrator import codec
from orchestrator.breaker import CircuitBreakers
from orchestrator.errors import ExchangeError, PermanentError, RetryableError, StepError
from orchestrator.event_types import EventType
from orchestrator.handlers import StepInput
from orchestrator.httpclient import HttpClient

DEFAULT_REQUEST_TIMEOUT_S: Final = 10.0
_PERMANENT: Final = {
    400: "CLIENT_VALIDATION_ERROR",
    422: "CLIENT_VALIDATION_ERROR",
    401: "AUTH_ERROR",
    403: "AUTH_ERROR",
    402: "PAYMENT_REQUIRED",
    404: "RESOURCE_NOT_FOUND",
    409: "CONFLICT",
}
_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class ServiceResponse:
    status: int
    body: Any  #: the parsed JSON body
    headers: Mapping[str, str]  #: case-insensitive (a CIMultiDictProxy)
    duration_ms: float
    replayed: bool  #: the service answered from its idempotency store


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def classify(status: int, body_text: str, retry_after: str | None) -> StepError:
    """The step error for a non-success HTTP status."""
    message = f"HTTP {status}: {body_text[:300]}"
    if _transient_conflict(status, retry_after):
        return RetryableError(
            message,
            retry_after_s=parse_retry_after(retry_after),
            error_code="HTTP_409",
            http_status=status,
        )
    if status in _PERMANENT:
        return PermanentError(message, error_code=_PERMANENT[status], http_status=status)
    if status in (408, 429) or status >= 500:
        return RetryableError(
            message,
            retry_after_s=parse_retry_after(retry_after),
            error_code=f"HTTP_{status}",
            http_status=status,
        )
    return PermanentError(message, error_code=f"HTTP_{status}", http_status=status)


class ServiceCaller:
    """Calls the services a workflow coordinates, with one shared connection pool."""

    def __init__(
        self,
        urls: Mapping[str, str] | None = None,
        breakers: CircuitBreakers | None = None,
        *,
        max_connections: int = 200,
    ) -> None:
        self.urls = dict(urls or {})  #: service → base URL; wins over handler_config["url"]
        self.breakers = breakers
        self._max_connections = max_connections
        self._http: HttpClient | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _client(self) -> HttpClient:
        if self._http is None:
            self._http = HttpClient(max_connections=self._max_connections)
        return self._http

    def base_url(self, step: StepInput) -> str:
        service = step.handler_config.get("service")
        url = self.urls.get(str(service)) or step.handler_config.get("url")
        if not isinstance(url, str) or not url:
            raise PermanentError(
                f"no URL configured for service {service!r}", error_code="SERVICE_NOT_CONFIGURED"
            )
        return url.rstrip("/")

    async def call(
        self,
        step: StepInput,
        method: str,
        path: str,
        *,
        body: Any = None,
        purpose: str = "",
        accept: Collection[int] = (),
    ) -> ServiceResponse:
        """One HTTP call for ``step``; raises a classified ``StepError`` unless 2xx/accepted."""
        service = str(step.handler_config.get("service", "service"))
        url = self.base_url(step) + path
        headers = {"X-Correlation-ID": step.correlation_id}
        if method.upper() in _WRITES:
            headers["Idempotency-Key"] = f"{step.task_id}/{step.step_name}/{purpose or path}"
        timeout_s = float(step.handler_config.get("request_timeout_s", DEFAULT_REQUEST_TIMEOUT_S))
        where = {"service": service, "method": method.upper(), "path": path}
        await step.events.emit(EventType.SERVICE_CALL_STARTED, where)
        started = time.perf_counter()
        try:
            response = await self._send(method, url, body, headers, timeout_s, accept)
        except StepError as exc:
            await self._failed(step, service, where, exc, started)
            raise
        response = ServiceResponse(
            response.status, response.body, response.headers, _ms_since(started), response.replayed
        )
        if self.breakers is not None:
            await self.breakers.record_success(service)
        await step.events.emit(
            EventType.SERVICE_CALL_COMPLETED,
            {
                **where,
                "status": response.status,
                "duration_ms": response.duration_ms,
                "replayed": response.replayed,
            },
        )
        return response

    async def _send(
        self,
        method: str,
        url: str,
        body: Any,
        headers: dict[str, str],
        timeout_s: float,
        accept: Collection[int],
    ) -> ServiceResponse:
        data = None if body is None else codec.dumpb(body)
        try:
            resp = await self._client().request(
                method, url, headers=headers, body=data, timeout_s=timeout_s
            )
        except TimeoutError:
            raise RetryableError(
                f"no answer from {url} within {timeout_s:g} s", error_code="REQUEST_TIMEOUT"
            ) from None
        except ExchangeError as exc:
            raise RetryableError(str(exc), error_code="CONNECTION_ERROR") from None
        except ValueError as exc:  # a URL or header that HTTP cannot carry: no retry mends it
            raise PermanentError(str(exc), error_code="INVALID_REQUEST") from None
        retry_after = resp.headers.get("Retry-After")
        if not _accepted(resp.status, accept, retry_after):
            raise classify(resp.status, resp.body.decode("utf-8", "replace"), retry_after)
        try:
            parsed = codec.loads(resp.body) if resp.body else None
        except codec.JSONDecodeError:
            raise RetryableError(
                f"HTTP {resp.status} with a body that is not JSON",
                error_code="MALFORMED_RESPONSE",
                http_status=resp.status,
            ) from None
        return ServiceResponse(
            resp.status,
            parsed,
            resp.headers,
            0.0,
            resp.headers.get("Idempotent-Replayed") == "true",
        )

    async def _failed(
        self, step: StepInput, service: str, where: dict[str, Any], exc: StepError, started: float
    ) -> None:
        retryable = isinstance(exc, RetryableError)
        error = {"error_code": exc.error_code, "message": str(exc), "http_status": exc.http_status}
        if self.breakers is not None:
            status = exc.http_status
            if retryable and (status is None or status >= 500 or status == 408):
                await self.breakers.record_failure(service, error)
            else:
                self.breakers.release(service)
        await step.events.emit(
            EventType.SERVICE_CALL_FAILED,
            {
                **where,
                "status": exc.http_status,
                "duration_ms": _ms_since(started),
                "retryable": retryable,
                **error,
            },
        )


def _transient_conflict(status: int, retry_after: str | None) -> bool:
    """A 409 that says when to come back, e.g. the first request with this Idempotency-Key is
    still running (after a lost response, the retry can outrun it): retryable, never accepted."""
    return status == 409 and retry_after is not None


def _accepted(status: int, accept: Collection[int], retry_after: str | None) -> bool:
    """2xx, or a status the caller handles itself."""
    if 200 <= status < 300:
        return True
    return status in accept and not _transient_conflict(status, retry_after)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
