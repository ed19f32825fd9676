"""The classification table itself: statuses, Retry-After and transport failures to step errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.errors import ExchangeError, PermanentError, RetryableError
from orchestrator.http.classify import (
    RATE_LIMIT_RETRY_AFTER_S,
    classify,
    classify_transport_error,
    is_accepted,
    malformed_response,
    parse_retry_after,
)

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("  7 ", 7.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:28:30 -0000", 30.0),  # no zone given: read as UTC
        ("Wed, 21 Oct 2015 09:28:30 +0200", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # already past
        ("soon", None),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_a_retry_after_date_is_measured_from_the_real_clock_by_default() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT") == 0.0  # long past


def test_the_message_quotes_the_status_and_at_most_300_characters_of_the_body() -> None:
    error = classify(503, "x" * 400, None)
    assert str(error) == error.message == "HTTP 503: " + "x" * 300
    assert str(classify(409, "busy", "1")) == "HTTP 409: busy"


@pytest.mark.parametrize(
    ("status", "retry_after", "kind", "code", "retry_after_s"),
    [
        (400, None, PermanentError, "CLIENT_VALIDATION_ERROR", None),
        (422, None, PermanentError, "CLIENT_VALIDATION_ERROR", None),
        (401, None, PermanentError, "AUTH_ERROR", None),
        (403, None, PermanentError, "AUTH_ERROR", None),
        (402, None, PermanentError, "PAYMENT_REQUIRED", None),
        (404, None, PermanentError, "RESOURCE_NOT_FOUND", None),
        (409, None, PermanentError, "CONFLICT", None),
        (409, "2", RetryableError, "HTTP_409", 2.0),
        (408, None, RetryableError, "HTTP_408", None),
        (429, None, RetryableError, "HTTP_429", RATE_LIMIT_RETRY_AFTER_S),
        (429, "5", RetryableError, "HTTP_429", 5.0),
        (500, None, RetryableError, "HTTP_500", None),
        (503, "3", RetryableError, "HTTP_503", 3.0),
        (599, None, RetryableError, "HTTP_599", None),
        (301, None, PermanentError, "HTTP_301", None),
        (418, "1", PermanentError, "HTTP_418", None),
        (499, None, PermanentError, "HTTP_499", None),
    ],
)
def test_the_table(
    status: int, retry_after: str | None, kind: type, code: str, retry_after_s: float | None
) -> None:
    error = classify(status, "body", retry_after)
    assert type(error) is kind
    assert (error.error_code, error.http_status) == (code, status)
    assert getattr(error, "retry_after_s", None) == retry_after_s


def test_transport_failures() -> None:
    timeout = classify_transport_error(TimeoutError(), "http://x/y", 2.5)
    assert type(timeout) is RetryableError
    assert (timeout.error_code, str(timeout)) == (
        "REQUEST_TIMEOUT",
        "no answer from http://x/y within 2.5 s",
    )
    reset = classify_transport_error(ExchangeError("connection reset"), "http://x", 1)
    assert type(reset) is RetryableError
    assert (reset.error_code, str(reset)) == ("CONNECTION_ERROR", "connection reset")
    invalid = classify_transport_error(ValueError("bad header"), "http://x", 1)
    assert type(invalid) is PermanentError
    assert (invalid.error_code, str(invalid)) == ("INVALID_REQUEST", "bad header")


def test_a_malformed_answer_is_retryable() -> None:
    error = malformed_response(200)
    assert (type(error), error.error_code, error.http_status) == (
        RetryableError,
        "MALFORMED_RESPONSE",
        200,
    )
    assert str(error) == "HTTP 200 with a body that is not JSON"


@pytest.mark.parametrize(
    ("status", "accept", "retry_after", "accepted"),
    [
        (200, (), None, True),
        (204, (), None, True),
        (299, (), None, True),
        (199, (), None, False),
        (300, (), None, False),
        (404, (404,), None, True),
        (404, (), None, False),
        (409, (409,), None, True),
        (409, (409,), "1", False),  # a conflict still in flight is never accepted
    ],
)
def test_what_is_accepted(
    status: int, accept: tuple[int, ...], retry_after: str | None, accepted: bool
) -> None:
    assert is_accepted(status, accept, retry_after) is accepted


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_a_retry_after_that_is_not_a_number_of_seconds_is_ignored(value: str) -> None:
    # float() reads these, but they say nothing about when to come back: a 429 waits its
    # default instead of retrying at once, and any other status falls back on its own backoff.
    assert parse_retry_after(value, NOW) is None
    assert classify(429, "", value).retry_after_s == RATE_LIMIT_RETRY_AFTER_S
    assert getattr(classify(503, "", value), "retry_after_s", 0) is None
