"""The HTTP step adapter: one place where HTTP answers become typed step errors.

Business handlers stay thin: they call :meth:`ServiceCaller.call` and get a parsed response, or
the call raises the right :class:`StepError`, as the table in :mod:`orchestrator.http.classify`
says.

The calls go through a :class:`~orchestrator.http.transport.Transport`: by default
:class:`~orchestrator.http.client.HttpClient`, a keep-alive HTTP/1.1 pool much cheaper per
request than aiohttp's client (measured, see docs/benchmarks.md; the module says why and what it
leaves out); in unit tests a :class:`~orchestrator.http.transport.MockTransport`.

Every call sends ``X-Correlation-ID`` (the task's) and, for writes, an ``Idempotency-Key`` made
from task, step and purpose, the same on every attempt: a retry after a lost response is
replayed by the service instead of run twice. Every call emits ``service_call.started`` and
``service_call.completed`` / ``service_call.failed`` events, and tells the service's circuit
breaker how it went (5xx, 408, timeouts and connection errors count against it; other 4xx
answers, 429 and an in-flight 409 do not: the service answered and is healthy).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from orchestrator import codec
from orchestrator.breaker import CircuitBreakers
from orchestrator.errors import (
    ExchangeError,
    PermanentError,
    ResponseContractError,
    RetryableError,
    StepError,
)
from orchestrator.event_types import EventType
from orchestrator.handlers import StepInput
from orchestrator.http.classify import (
    classify,
    classify_transport_error,
    is_accepted,
    malformed_response,
)
from orchestrator.http.client import HttpClient
from orchestrator.http.transport import Transport
from orchestrator.models import JSON

DEFAULT_REQUEST_TIMEOUT_S: Final = 10.0
_WRITES: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class ServiceResponse:
    """A service's answer that the step accepted, and the way to read what it needs from it.

    Read the fields a step depends on with :meth:`field`, not ``body[...]``: a field the
    service left out then fails the step as a permanent ``MISSING_<WHAT>_IN_RESPONSE`` naming
    the service, the request and the field, instead of a ``KeyError`` retried as a crash.
    """

    status: int
    body: Any  #: the parsed JSON body
    headers: Mapping[str, str]  #: case-insensitive (a CIMultiDictProxy)
    duration_ms: float
    replayed: bool  #: the service answered from its idempotency store
    service: str = "service"  #: who answered, for contract errors
    request: str = ""  #: ``METHOD /path``, for contract errors
    where: str = ""  #: the body's place in the answer when read :meth:`within` it

    def field(
        self,
        name: str,
        kind: type | tuple[type, ...],
        *,
        what: str | None = None,
        nullable: bool = False,
    ) -> Any:
        """``body[name]`` if it is there and a ``kind``; else a ``ResponseContractError``.

        ``what`` names what the step needs it for (the error code says it: ``user_id`` gives
        ``MISSING_USER_ID_IN_RESPONSE``); it defaults to ``name``. ``nullable`` lets a null
        through (a free plan's ``trial_ends_at``). ``bool`` is never an ``int`` here.
        """
        place = f"{self.where}.{name}" if self.where else name
        if not isinstance(self.body, dict):
            whose = f"{self.where} is" if self.where else "the body is"
            problem = f"{whose} {_json_type(self.body)}, not an object with {name!r}"
            raise self._broken(place, what or name, problem)
        value = self.body.get(name)
        if value is None:
            if nullable and name in self.body:
                return None
            raise self._broken(place, what or name, f"no {place!r}")
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            expected = " or ".join(_JSON_NAMES.get(k, k.__name__) for k in kinds)
            problem = f"{place!r} is {_json_type(value)}, not {expected}"
            raise self._broken(place, what or name, problem, invalid=True)
        return value

    def within(self, body: Any, where: str) -> ServiceResponse:
        """The same answer, reading ``body`` (a part of it found at ``where``, e.g.
        ``users[0]``) with :meth:`field`."""
        return dataclasses.replace(self, body=body, where=where)

    def _broken(
        self, place: str, what: str, problem: str, *, invalid: bool = False
    ) -> ResponseContractError:
        return ResponseContractError(
            service=self.service,
            request=self.request,
            status=self.status,
            field=place,
            what=what,
            problem=problem,
            invalid=invalid,
        )


_JSON_NAMES: Final[dict[type, str]] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _JSON_NAMES.get(type(value), type(value).__name__)


class ServiceCaller:
    """Calls the services a workflow coordinates, through one shared transport.

    Without ``transport`` it opens its own :class:`HttpClient` (at most ``max_connections`` in
    use) when first needed and closes it in :meth:`close`; a transport passed in belongs to the
    caller of this constructor, who closes it.
    """

    def __init__(
        self,
        urls: Mapping[str, str] | None = None,
        breakers: CircuitBreakers | None = None,
        *,
        max_connections: int = 200,
        transport: Transport | None = None,
    ) -> None:
        self.urls = dict(urls or {})  #: service → base URL; wins over handler_config["url"]
        self.breakers = breakers
        self._max_connections = max_connections
        self._transport = transport
        self._own_client: HttpClient | None = None

    async def close(self) -> None:
        if self._own_client is not None:
            await self._own_client.close()
            self._own_client = None

    def _active_transport(self) -> Transport:
        if self._transport is not None:
            return self._transport
        if self._own_client is None:
            self._own_client = HttpClient(max_connections=self._max_connections)
        return self._own_client

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
        idempotency_key: str | None = None,
    ) -> ServiceResponse:
        """One HTTP call for ``step``; raises a classified ``StepError`` unless 2xx/accepted.

        A write's ``Idempotency-Key`` is ``<task>/<step>/<purpose or path>`` unless the handler
        gives ``idempotency_key``: a side effect that belongs to something outlasting the task
        (a person's welcome) is keyed by that, so a second task replays it instead of doing it
        again.
        """
        service = str(step.handler_config.get("service", "service"))
        url = self.base_url(step) + path
        headers = {"X-Correlation-ID": step.correlation_id}
        if method.upper() in _WRITES:
            headers["Idempotency-Key"] = (
                idempotency_key or f"{step.task_id}/{step.step_name}/{purpose or path}"
            )
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
            response.status,
            response.body,
            response.headers,
            _ms_since(started),
            response.replayed,
            service=service,
            request=f"{method.upper()} {path}",
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
            resp = await self._active_transport().request(
                method, url, headers=headers, body=data, timeout_s=timeout_s
            )
        except (TimeoutError, ExchangeError, ValueError) as exc:
            raise classify_transport_error(exc, url, timeout_s) from None
        retry_after = resp.headers.get("Retry-After")
        if not is_accepted(resp.status, accept, retry_after):
            raise classify(resp.status, resp.body.decode("utf-8", "replace"), retry_after)
        try:
            parsed = codec.loads(resp.body) if resp.body else None
        except codec.JSONDecodeError:
            raise malformed_response(resp.status) from None
        return ServiceResponse(
            resp.status,
            parsed,
            resp.headers,
            0.0,
            resp.headers.get("Idempotent-Replayed") == "true",
        )

    async def _failed(
        self, step: StepInput, service: str, where: JSON, exc: StepError, started: float
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


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
