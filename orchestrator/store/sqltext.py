"""SQL text built from the domain's definitions, so no state name is repeated in a string.

State values are fixed members of the core's enums (never user input), so inlining them as
quoted literals is safe; it keeps each statement's text constant, and SQLite caches statements
by text.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


def literal(value: StrEnum) -> str:
    """``'value'``: one enum member as an SQL string literal."""
    text = value.value
    if "'" in text:  # never true of our enums; refuse rather than escape
        raise ValueError(f"not a plain SQL literal: {text!r}")
    return f"'{text}'"


def in_list(values: Iterable[StrEnum]) -> str:
    """``('a', 'b')``: a set of enum members as an SQL list, in a stable order."""
    return "(" + ", ".join(sorted(literal(v) for v in values)) + ")"
