"""The HTTP step adapter against a real loopback server: every row of its classification table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from orchestrator.errors import PermanentError, RetryableError, StepError
from orchestrator.event_types import EventType
from orchestrator.handlers import StepInput
from orchestrator.http import ServiceCaller, parse_retry_after


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    async def emit(self, event_type: str, data: dict[str, Any]) -> None:
        self.seen.append((event_type, data))


async def answer(request: web.Request) -> web.StreamResponse:
    """``/status/{code}?retry_after=&body=``: answers what the test asks for."""
    status = int(request.match_info["code"])
    headers = {}
    if "retry_after" in request.query:
        headers["Retry-After"] = request.query["retry_after"]
    if request.query.get("body") == "text":
        return web.Response(status=status, text="<html>oops</html>", headers=headers)
    return web.json_response(
        {
            "status": status,
            "key": request.headers.get("Idempotency-Key"),
            "corr": request.headers.get("X-Correlation-ID"),
        },
        status=status,
        headers=headers,
    )


@pytest.fixture
async def base_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/status/{code}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def caller(base_url: str) -> AsyncIterator[ServiceCaller]:
    c = ServiceCaller({"svc": base_url})
    yield c
    await c.close()


def step_input(events: Events | None = None, correlation_id: str = "corr-1") -> StepInput:
    return StepInput(
        task_id="t1",
        task_name="wf",
        step_name="s1",
        context={},
        dependency_results={},
        handler_config={"service": "svc"},
        correlation_id=correlation_id,
        attempt=2,
        max_attempts=3,
        events=events or Events(),
    )


async def failure(caller: ServiceCaller, path: str, **kwargs: Any) -> StepError:
    with pytest.raises(StepError) as info:
        await caller.call(step_input(), "POST", path, body={}, **kwargs)
    return info.value


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "CLIENT_VALIDATION_ERROR"),
        (422, "CLIENT_VALIDATION_ERROR"),
        (401, "AUTH_ERROR"),
        (403, "AUTH_ERROR"),
        (402, "PAYMENT_REQUIRED"),
        (404, "RESOURCE_NOT_FOUND"),
        (409, "CONFLICT"),
        (418, "HTTP_418"),
        (302, "HTTP_302"),
        (307, "HTTP_307"),  # redirects are not followed
    ],
)
async def test_client_errors_are_permanent(caller: ServiceCaller, status: int, code: str) -> None:
    err = await failure(caller, f"/status/{status}")
    assert isinstance(err, PermanentError)
    assert (err.error_code, err.http_status) == (code, status)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
async def test_transient_statuses_are_retryable_with_retry_after(
    caller: ServiceCaller, status: int
) -> None:
    err = await failure(caller, f"/status/{status}?retry_after=7")
    assert isinstance(err, RetryableError)
    assert (err.error_code, err.http_status, err.retry_after_s) == (f"HTTP_{status}", status, 7)


async def test_an_in_flight_409_is_retryable_even_when_the_caller_accepts_409(
    caller: ServiceCaller,
) -> None:
    err = await failure(caller, "/status/409?retry_after=1", accept={409})
    assert isinstance(err, RetryableError)
    assert (err.error_code, err.retry_after_s) == ("HTTP_409", 1)


async def test_an_accepted_409_is_returned(caller: ServiceCaller) -> None:
    resp = await caller.call(step_input(), "POST", "/status/409", body={}, accept={409})
    assert resp.status == 409 and resp.body["status"] == 409


async def test_a_2xx_body_that_is_not_json_is_retryable(caller: ServiceCaller) -> None:
    err = await failure(caller, "/status/200?body=text")
    assert isinstance(err, RetryableError) and err.error_code == "MALFORMED_RESPONSE"


async def test_connection_refused_is_retryable() -> None:
    caller = ServiceCaller({"svc": "http://127.0.0.1:9"})
    try:
        err = await failure(caller, "/status/200")
    finally:
        await caller.close()
    assert isinstance(err, RetryableError) and err.error_code == "CONNECTION_ERROR"


async def test_a_header_http_cannot_carry_is_permanent(caller: ServiceCaller) -> None:
    with pytest.raises(PermanentError) as info:
        await caller.call(step_input(correlation_id="c\r\nX-Admin: yes"), "GET", "/status/200")
    assert info.value.error_code == "INVALID_REQUEST"
    assert "X-Correlation-ID" in str(info.value)


async def test_headers_and_events(caller: ServiceCaller) -> None:
    events = Events()
    resp = await caller.call(step_input(events), "POST", "/status/201", body={}, purpose="create")
    assert resp.body["key"] == "t1/s1/create" and resp.body["corr"] == "corr-1"
    get = await caller.call(step_input(events), "GET", "/status/200")
    assert get.body["key"] is None  # reads carry no idempotency key
    assert [t for t, _ in events.seen] == [
        EventType.SERVICE_CALL_STARTED,
        EventType.SERVICE_CALL_COMPLETED,
    ] * 2
    done = events.seen[1][1]
    assert (done["service"], done["method"], done["status"]) == ("svc", "POST", 201)
    assert done["duration_ms"] >= 0 and done["replayed"] is False
    assert resp.headers["content-type"] == resp.headers["Content-Type"]  # either case


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("3") == 3
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10 GMT", now) == 10
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
