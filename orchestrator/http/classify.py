"""The classification table: how HTTP answers and transport failures become typed step errors.

=====================================  ===========================================
answer                                 becomes
=====================================  ===========================================
2xx (or a status the caller accepts)   the response (JSON body parsed)
400, 422                               permanent ``CLIENT_VALIDATION_ERROR``
401, 403                               permanent ``AUTH_ERROR``
402                                    permanent ``PAYMENT_REQUIRED``
404                                    permanent ``RESOURCE_NOT_FOUND``
409 with ``Retry-After``               retryable ``HTTP_409`` (the same request is still
                                       being processed: an idempotency key in flight)
409 not accepted by the caller         permanent ``CONFLICT``
408, 429, 5xx                          retryable ``HTTP_<status>``, with ``Retry-After``
                                       (a 429 without one: ``RATE_LIMIT_RETRY_AFTER_S``)
3xx (redirects are not followed)       permanent ``HTTP_<status>``
connection error / reset               retryable ``CONNECTION_ERROR``
an answer that is not HTTP             retryable ``CONNECTION_ERROR``
no answer within the request timeout   retryable ``REQUEST_TIMEOUT``
a 2xx body that is not JSON            retryable ``MALFORMED_RESPONSE``
a URL or header HTTP cannot carry      permanent ``INVALID_REQUEST``
=====================================  ===========================================

Pure functions, no I/O: :class:`~orchestrator.http.adapter.ServiceCaller` calls them.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

from orchestrator.errors import ExchangeError, PermanentError, RetryableError, StepError

#: A 429 that does not say when to come back is treated as ``Retry-After: 60`` (the reference
#: design's default): the service is protecting itself, and the step's own backoff (half a
#: second to start with) would hit it again at once. Like any Retry-After it is then capped by
#: the step's ``max_delay_s`` (see :func:`orchestrator.retry.retry_delay_s`).
RATE_LIMIT_RETRY_AFTER_S: Final = 60.0
_PERMANENT: Final = {
    400: "CLIENT_VALIDATION_ERROR",
    422: "CLIENT_VALIDATION_ERROR",
    401: "AUTH_ERROR",
    403: "AUTH_ERROR",
    402: "PAYMENT_REQUIRED",
    404: "RESOURCE_NOT_FOUND",
    409: "CONFLICT",
}


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number of seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # float() also reads "nan" and "inf", which say nothing about when to come back
        return max(0.0, seconds) if math.isfinite(seconds) else None
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
    if is_transient_conflict(status, retry_after):
        return RetryableError(
            message,
            retry_after_s=parse_retry_after(retry_after),
            error_code="HTTP_409",
            http_status=status,
        )
    if status in _PERMANENT:
        return PermanentError(message, error_code=_PERMANENT[status], http_status=status)
    if status in (408, 429) or status >= 500:
        retry_after_s = parse_retry_after(retry_after)
        if status == 429 and retry_after_s is None:
            retry_after_s = RATE_LIMIT_RETRY_AFTER_S
        return RetryableError(
            message,
            retry_after_s=retry_after_s,
            error_code=f"HTTP_{status}",
            http_status=status,
        )
    return PermanentError(message, error_code=f"HTTP_{status}", http_status=status)


def classify_transport_error(
    exc: ExchangeError | TimeoutError | ValueError, url: str, timeout_s: float
) -> StepError:
    """The step error for a request that got no answer (see the transport's contract)."""
    if isinstance(exc, TimeoutError):
        return RetryableError(
            f"no answer from {url} within {timeout_s:g} s", error_code="REQUEST_TIMEOUT"
        )
    if isinstance(exc, ExchangeError):
        return RetryableError(str(exc), error_code="CONNECTION_ERROR")
    # a URL or header that HTTP cannot carry: no retry mends it
    return PermanentError(str(exc), error_code="INVALID_REQUEST")


def malformed_response(status: int) -> RetryableError:
    """The step error for an accepted answer whose body is not JSON."""
    return RetryableError(
        f"HTTP {status} with a body that is not JSON",
        error_code="MALFORMED_RESPONSE",
        http_status=status,
    )


def is_transient_conflict(status: int, retry_after: str | None) -> bool:
    """A 409 that says when to come back, e.g. the first request with this Idempotency-Key is
    still running (after a lost response, the retry can outrun it): retryable, never accepted."""
    return status == 409 and retry_after is not None


def is_accepted(status: int, accept: Collection[int], retry_after: str | None) -> bool:
    """2xx, or a status the caller handles itself."""
    if 200 <= status < 300:
        return True
    return status in accept and not is_transient_conflict(status, retry_after)
