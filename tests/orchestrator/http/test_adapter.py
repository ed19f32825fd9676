"""The HTTP step adapter driven through a MockTransport: every answer, without a socket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from orchestrator import codec
from orchestrator.errors import (
    ExchangeError,
    PermanentError,
    ResponseContractError,
    RetryableError,
    StepError,
)
from orchestrator.event_types import EventType
from orchestrator.handlers import StepInput
from orchestrator.http import HttpRequest, HttpResponse, MockTransport, ServiceCaller
from orchestrator.http.classify import RATE_LIMIT_RETRY_AFTER_S

BASE = "http://svc.test"


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    async def emit(self, event_type: str, data: dict[str, Any]) -> None:
        self.seen.append((event_type, data))


def step_input(events: Events | None = None, **config: Any) -> StepInput:
    return StepInput(
        task_id="t1",
        task_name="wf",
        step_name="s1",
        context={},
        dependency_results={},
        handler_config={"service": "svc", **config},
        correlation_id="corr-1",
        attempt=2,
        max_attempts=3,
        events=events or Events(),
    )


def answering(
    status: int, body: Any = None, headers: dict[str, str] | None = None
) -> ServiceCaller:
    """A caller whose service answers every request with ``status`` and ``body`` (JSON)."""
    data = body if isinstance(body, bytes | str) else codec.dumpb(body or {"ok": True})
    return ServiceCaller(
        {"svc": BASE}, transport=MockTransport(lambda _: HttpResponse.of(status, data, headers))
    )


def raising(exc: BaseException) -> ServiceCaller:
    def handler(request: HttpRequest) -> HttpResponse:
        raise exc

    return ServiceCaller({"svc": BASE}, transport=MockTransport(handler))


async def failure(caller: ServiceCaller, method: str = "POST", **kwargs: Any) -> StepError:
    with pytest.raises(StepError) as info:
        await caller.call(step_input(), method, "/things", body={}, **kwargs)
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
        (301, "HTTP_301"),
        (307, "HTTP_307"),
    ],
)
async def test_permanent_statuses(status: int, code: str) -> None:
    err = await failure(answering(status))
    assert isinstance(err, PermanentError)
    assert (err.error_code, err.http_status) == (code, status)
    assert str(err).startswith(f"HTTP {status}: ")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
async def test_retryable_statuses(status: int) -> None:
    err = await failure(answering(status))
    assert isinstance(err, RetryableError)
    waits = RATE_LIMIT_RETRY_AFTER_S if status == 429 else None  # a 429 never means "at once"
    assert (err.error_code, err.http_status, err.retry_after_s) == (f"HTTP_{status}", status, waits)


async def test_a_429_with_an_unreadable_retry_after_waits_the_default() -> None:
    err = await failure(answering(429, headers={"retry-after": "soon"}))
    assert isinstance(err, RetryableError) and err.retry_after_s == RATE_LIMIT_RETRY_AFTER_S


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), ("0.5", 0.5), ("-3", 0.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0), ("soon", None)],
)
async def test_retry_after_sets_the_delay(header: str, seconds: float | None) -> None:
    err = await failure(answering(503, headers={"retry-after": header}))
    assert isinstance(err, RetryableError) and err.retry_after_s == seconds


async def test_a_409_with_retry_after_is_retryable_even_when_accepted() -> None:
    err = await failure(answering(409, headers={"Retry-After": "1"}), accept={409})
    assert isinstance(err, RetryableError)
    assert (err.error_code, err.http_status, err.retry_after_s) == ("HTTP_409", 409, 1.0)


async def test_an_accepted_status_is_returned_parsed() -> None:
    resp = await answering(409, {"id": "u1"}).call(
        step_input(), "POST", "/things", body={}, accept={409}
    )
    assert (resp.status, resp.body, resp.replayed) == (409, {"id": "u1"}, False)


async def test_an_empty_body_parses_as_none_and_a_replay_is_flagged() -> None:
    caller = answering(201, b"", {"Idempotent-Replayed": "true"})
    resp = await caller.call(step_input(), "POST", "/things", body={})
    assert (resp.status, resp.body, resp.replayed) == (201, None, True)
    assert resp.headers["idempotent-replayed"] == "true"  # case-insensitive


@pytest.mark.parametrize("body", ["<html>oops</html>", '{"half": ', b"\xff\xfe"])
async def test_a_2xx_body_that_is_not_json_is_retryable(body: str | bytes) -> None:
    err = await failure(answering(200, body))
    assert isinstance(err, RetryableError)
    assert (err.error_code, err.http_status) == ("MALFORMED_RESPONSE", 200)


async def test_an_error_body_that_is_not_json_is_classified_by_status() -> None:
    err = await failure(answering(503, b"\xffgateway"))
    assert isinstance(err, RetryableError) and err.error_code == "HTTP_503"
    assert "gateway" in str(err)


async def test_a_lost_response_is_a_connection_error() -> None:
    err = await failure(raising(ExchangeError("the connection was lost (reset by peer)")))
    assert isinstance(err, RetryableError)
    assert (err.error_code, err.http_status) == ("CONNECTION_ERROR", None)
    assert "reset by peer" in str(err)


async def test_no_answer_in_time_is_a_request_timeout() -> None:
    with pytest.raises(RetryableError) as info:
        await raising(TimeoutError()).call(step_input(request_timeout_s=2.5), "GET", "/things")
    assert info.value.error_code == "REQUEST_TIMEOUT"
    assert str(info.value) == f"no answer from {BASE}/things within 2.5 s"


async def test_an_unsendable_request_is_permanent() -> None:
    err = await failure(raising(ValueError("header 'X' has a value HTTP cannot carry")))
    assert isinstance(err, PermanentError) and err.error_code == "INVALID_REQUEST"


async def test_no_url_for_the_service_is_permanent() -> None:
    caller = ServiceCaller(transport=MockTransport(lambda _: HttpResponse.of(200)))
    err = await failure(caller)
    assert isinstance(err, PermanentError) and err.error_code == "SERVICE_NOT_CONFIGURED"


def recording(seen: list[HttpRequest]) -> Callable[[HttpRequest], HttpResponse]:
    def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return HttpResponse.of(200, b"{}")

    return handler


@pytest.mark.parametrize("method", ["POST", "put", "PATCH", "DELETE"])
async def test_writes_carry_an_idempotency_key(method: str) -> None:
    seen: list[HttpRequest] = []
    caller = ServiceCaller({"svc": BASE + "/"}, transport=MockTransport(recording(seen)))
    await caller.call(step_input(), method, "/things", body={"a": 1}, purpose="create")
    await caller.call(step_input(), method, "/things")  # no purpose: the path stands for it
    first, second = seen
    assert (first.method, first.url) == (method.upper(), f"{BASE}/things")
    assert first.headers == {"X-Correlation-ID": "corr-1", "Idempotency-Key": "t1/s1/create"}
    assert second.headers["Idempotency-Key"] == "t1/s1//things"
    assert first.body == b'{"a":1}' and second.body is None
    assert first.timeout_s == 10.0


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_reads_carry_no_idempotency_key(method: str) -> None:
    seen: list[HttpRequest] = []
    caller = ServiceCaller({"svc": BASE}, transport=MockTransport(recording(seen)))
    await caller.call(step_input(), method, "/things?x=1", purpose="look")
    assert seen[0].headers == {"X-Correlation-ID": "corr-1"}
    assert seen[0].url == f"{BASE}/things?x=1"


async def test_a_completed_call_emits_started_and_completed() -> None:
    events = Events()
    caller = answering(201, {"id": 1}, {"Idempotent-Replayed": "true"})
    await caller.call(step_input(events), "post", "/things", body={})
    (started_type, started), (done_type, done) = events.seen
    where = {"service": "svc", "method": "POST", "path": "/things"}
    assert (started_type, started) == (EventType.SERVICE_CALL_STARTED, where)
    assert done_type == EventType.SERVICE_CALL_COMPLETED
    assert set(done) == {*where, "status", "duration_ms", "replayed"}
    assert (done["status"], done["replayed"]) == (201, True)
    assert isinstance(done["duration_ms"], float) and done["duration_ms"] >= 0


async def test_a_failed_answer_emits_failed_with_the_error() -> None:
    events = Events()
    with pytest.raises(RetryableError):
        await answering(503, {"e": 1}).call(step_input(events), "GET", "/things")
    (_, _), (failed_type, failed) = events.seen
    assert failed_type == EventType.SERVICE_CALL_FAILED
    assert set(failed) == {
        "service",
        "method",
        "path",
        "status",
        "duration_ms",
        "retryable",
        "error_code",
        "message",
        "http_status",
    }
    assert (failed["status"], failed["http_status"], failed["retryable"]) == (503, 503, True)
    assert failed["error_code"] == "HTTP_503" and failed["message"].startswith("HTTP 503: ")


async def test_a_lost_response_emits_failed_without_a_status() -> None:
    events = Events()
    with pytest.raises(RetryableError):
        await raising(ExchangeError("lost")).call(step_input(events), "POST", "/things", body={})
    failed_type, failed = events.seen[-1]
    assert failed_type == EventType.SERVICE_CALL_FAILED
    assert (failed["status"], failed["retryable"], failed["error_code"]) == (
        None,
        True,
        "CONNECTION_ERROR",
    )


async def test_a_permanent_answer_emits_failed_not_retryable() -> None:
    events = Events()
    with pytest.raises(PermanentError):
        await answering(404).call(step_input(events), "GET", "/things")
    _, failed = events.seen[-1]
    assert (failed["retryable"], failed["error_code"]) == (False, "RESOURCE_NOT_FOUND")


async def test_an_async_handler_and_a_transport_the_caller_keeps_open() -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse.of(200, codec.dumpb({"echo": request.method}))

    transport = MockTransport(handler)
    caller = ServiceCaller({"svc": BASE}, transport=transport)
    assert (await caller.call(step_input(), "GET", "/x")).body == {"echo": "GET"}
    await caller.close()  # a transport passed in is not the caller's to close
    assert (await caller.call(step_input(), "GET", "/x")).body == {"echo": "GET"}


async def test_field_reads_what_the_step_needs_and_names_what_is_missing() -> None:
    body = {"id": "usr_1", "count": 2, "flag": True, "ends": None, "items": [{"plan": "pro"}]}
    resp = await answering(201, body).call(step_input(), "POST", "/users")
    assert resp.field("id", str, what="user_id") == "usr_1"
    assert resp.field("ends", str, nullable=True) is None
    assert resp.within(resp.field("items", list)[0], "items[0]").field("plan", str) == "pro"
    cases = [
        (lambda: resp.field("email", str), "MISSING_EMAIL_IN_RESPONSE", "no 'email'"),
        (lambda: resp.field("ends", str), "MISSING_ENDS_IN_RESPONSE", "no 'ends'"),
        (lambda: resp.field("nope", str, nullable=True), "MISSING_NOPE_IN_RESPONSE", "no 'nope'"),
        (lambda: resp.field("count", str), "INVALID_COUNT_IN_RESPONSE", "an integer, not a string"),
        (lambda: resp.field("flag", int), "INVALID_FLAG_IN_RESPONSE", "a boolean, not an integer"),
        (
            lambda: resp.within(["x"], "items[0]").field("plan", str),
            "MISSING_PLAN_IN_RESPONSE",
            "items[0] is an array",
        ),
    ]
    for read, code, problem in cases:
        with pytest.raises(ResponseContractError) as info:
            read()
        assert info.value.error_code == code and problem in str(info.value)
        assert info.value.http_status == 201 and "svc answered POST /users with 201" in str(
            info.value
        )


async def test_a_2xx_body_that_is_not_an_object_lacks_every_field() -> None:
    resp = await answering(200, b"[1, 2]").call(step_input(), "GET", "/users")
    with pytest.raises(ResponseContractError, match="the body is an array") as info:
        resp.field("users", list)
    assert info.value.error_code == "MISSING_USERS_IN_RESPONSE"
    assert isinstance(info.value, PermanentError)
