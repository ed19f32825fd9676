"""The JSON every Interlock server accepts, decided once: :func:`parse_json` and its limits.

A request body is parsed here, at the edge, before any handler sees it, so no handler, store or
codec meets a value it cannot hold. The limits:

=====================  =============================================================  ============
limit                  rule                                                           why
=====================  =============================================================  ============
``max_body_bytes``     a body is at most 1 MiB (:data:`MAX_BODY_BYTES`); 413 beyond   memory
``max_depth``          arrays and objects nest at most 32 deep (:data:`MAX_DEPTH`)    recursion
``integer_range``      integers fit in 64 bits: -2**63 … 2**63-1                      SQLite, orjson
``finite_numbers``     no ``NaN``, ``Infinity``, ``-Infinity``, nor a float that       JSON has none
                       overflows to one (``1e999``)
``valid_strings``      strings and keys are valid Unicode: no lone surrogates          UTF-8
=====================  =============================================================  ============

A body that breaks one is a :class:`JsonLimitError` naming the limit (and, where it is known, the
JSON Pointer of the value); one that is not JSON at all is a :class:`MalformedJsonError`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

MAX_BODY_BYTES: Final = 1024 * 1024
#: The longest idempotency key a server takes: ``POST /tasks``'s ``idempotency_key``, the
#: services' ``Idempotency-Key`` (a 400 beyond it).
MAX_IDEMPOTENCY_KEY_CHARS: Final = 255
MAX_DEPTH: Final = 32
MIN_INT: Final = -(2**63)
MAX_INT: Final = 2**63 - 1
#: Digits (with a sign) of the longest integer in range; longer text is refused unconverted.
_MAX_INT_CHARS: Final = len(str(MIN_INT))
#: The limits by name, with what each allows: the ``limit`` field of a refusal names one.
LIMITS: Final = {
    "max_body_bytes": f"a request body is at most {MAX_BODY_BYTES} bytes",
    "max_depth": f"arrays and objects nest at most {MAX_DEPTH} levels deep",
    "integer_range": f"integers are from {MIN_INT} to {MAX_INT} (64 bits)",
    "finite_numbers": "numbers are finite: no NaN, Infinity or -Infinity",
    "valid_strings": "strings are valid Unicode (no lone surrogates)",
}


class MalformedJsonError(ValueError):
    """The text is not JSON (or not UTF-8)."""


class JsonLimitError(ValueError):
    """JSON that breaks one of :data:`LIMITS`: ``limit`` names it, ``path`` (a JSON Pointer, or
    None when the parser cannot tell) says where."""

    def __init__(self, limit: str, message: str, path: str | None = None) -> None:
        self.limit, self.path = limit, path
        where = f" at {path}" if path is not None else ""
        super().__init__(f"{message}{where} (limit {limit}: {LIMITS[limit]})")


def parse_json(raw: bytes | str) -> Any:
    """The JSON value in ``raw``, within every limit, or one of this module's errors."""
    try:
        value = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise JsonLimitError("max_depth", "nested too deep") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedJsonError(f"not valid JSON: {exc}") from None
    if not _may_break_a_walked_limit(raw):
        return value  # the common case: numbers were checked as parsed, the rest cannot fail
    check_json(value)
    return value


#: A lone surrogate can only come from a ``\uD800``-``\uDFFF`` escape or those code points'
#: bytes (json reads bytes with ``surrogatepass``); this finds every candidate.
_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _may_break_a_walked_limit(raw: bytes | str) -> bool:
    """False when a scan of the text proves the depth and string limits hold, so the walk over
    the parsed value (three times the parse's cost) can be skipped."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    brackets = data.count(b"[") + data.count(b"{")  # in strings too: an overestimate
    return brackets > MAX_DEPTH or _SURROGATE.search(data) is not None


def check_json(value: Any) -> None:
    """Nothing if an already-parsed value is within the limits, else :class:`JsonLimitError`."""
    try:
        _walk(value, 0)
    except _OutOfLimitError as found:
        path = "".join(f"/{_pointer(p)}" for p in reversed(found.path)) or "/"
        raise JsonLimitError(found.limit, found.message, path) from None


def valid_string(text: str) -> bool:
    """Whether ``text`` is valid Unicode (can be written as UTF-8: no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def repaired(text: str) -> str:
    """``text`` with each lone surrogate (an undecodable byte of a header, say) as U+FFFD."""
    if valid_string(text):
        return text
    return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


class _OutOfLimitError(Exception):
    def __init__(self, limit: str, message: str) -> None:
        self.limit, self.message = limit, message
        self.path: list[str | int] = []


def _walk(value: Any, depth: int) -> None:
    # Recursion is bounded: past MAX_DEPTH containers the walk stops.
    if isinstance(value, dict | list):
        if depth >= MAX_DEPTH:
            raise _OutOfLimitError("max_depth", f"nested deeper than {MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            try:
                if isinstance(key, str) and not valid_string(key):
                    raise _OutOfLimitError("valid_strings", "a key holds a lone surrogate")
                _walk(item, depth + 1)
            except _OutOfLimitError as found:
                found.path.append(key)
                raise
    else:
        _check_scalar(value)


def _check_scalar(value: Any) -> None:
    if isinstance(value, str):
        if not valid_string(value):
            raise _OutOfLimitError("valid_strings", "a string holds a lone surrogate")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not MIN_INT <= value <= MAX_INT:
            raise _OutOfLimitError("integer_range", "an integer is out of range")
    elif isinstance(value, float) and not math.isfinite(value):
        raise _OutOfLimitError("finite_numbers", "a number is not finite")


def _pointer(part: str | int) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _int(text: str) -> int:
    if len(text) > _MAX_INT_CHARS:
        raise JsonLimitError("integer_range", f"an integer of {len(text)} digits")
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        raise JsonLimitError("integer_range", f"the integer {value} is out of range")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonLimitError("finite_numbers", f"the number {text[:40]} overflows")
    return value


def _constant(name: str) -> Any:
    raise JsonLimitError("finite_numbers", f"{name} is not a JSON number")
