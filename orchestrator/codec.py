"""JSON for the hot paths (the store's columns, HTTP bodies, the event stream): orjson.

Every task transition encodes and decodes several documents, and orjson does it several times
faster than the standard library's ``json`` (docs/benchmarks.md, "Measured choices in the
code"), a measurable share of the engine's time. Behaviour kept from
``json``: non-string keys become strings. Differences: NaN and infinities encode as ``null``
(``json`` would write invalid JSON), and integers beyond 64 bits are refused with a TypeError.
"""

from __future__ import annotations

from typing import Any

import orjson

JSONDecodeError = orjson.JSONDecodeError  #: a subclass of ``json.JSONDecodeError``
_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> str:
    """Compact JSON text (raises TypeError for what JSON cannot hold)."""
    return orjson.dumps(value, option=_OPTIONS).decode()


def dumpb(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes, for a request or response body."""
    return orjson.dumps(value, option=_OPTIONS)


def canonical(value: Any) -> bytes:
    """JSON with sorted keys, for hashing: equal documents give equal bytes whatever the key
    order they were written in."""
    return orjson.dumps(value, option=_OPTIONS | orjson.OPT_SORT_KEYS)


def loads(data: str | bytes) -> Any:
    return orjson.loads(data)
