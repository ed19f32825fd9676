"""The OpenAPI document's enums come from the Python enums, and every time is a date-time."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from orchestrator.api.openapi import openapi_spec
from orchestrator.event_types import EventType
from orchestrator.models import BreakerState, ErrorKind, StepState, TaskState

SCHEMAS: dict[str, Any] = openapi_spec()["components"]["schemas"]


def test_the_schemas_are_json_schema() -> None:
    Draft202012Validator.check_schema({"$defs": SCHEMAS})


@pytest.mark.parametrize("enum", [TaskState, StepState, ErrorKind, BreakerState, EventType])
def test_enums_are_the_python_enums(enum: type[StrEnum]) -> None:
    assert SCHEMAS[enum.__name__] == {"enum": [member.value for member in enum]}


def test_the_times_are_date_times() -> None:
    event = SCHEMAS["Event"]["properties"]
    assert event["at"] == {"type": "string", "format": "date-time"}
    for name in ("next_attempt_at", "open_until", "opened_at"):
        assert event["data"]["properties"][name]["format"] == "date-time"
    breaker = SCHEMAS["Breakers"]["properties"]["breakers"]["items"]["properties"]
    for name in ("opened_at", "open_until", "updated_at"):
        assert breaker[name]["format"] == "date-time"
