"""The compiled fast path for context validation never accepts what jsonschema would reject."""

from __future__ import annotations

import copy
import random
from typing import Any

import jsonschema
import pytest

from interlock.registration.template import read_template_text
from mock_services.payloads import RegistrationFaker
from orchestrator import schema_fast
from orchestrator.templates import apply_defaults, parse_template

ODD_VALUES: list[Any] = [
    None,
    0,
    -1,
    1.5,
    True,
    False,
    "",
    "x",
    "a@b",
    "no-at-sign",
    [],
    {},
    ["card"],
    {"type": "card"},
    {"type": "card", "last4": "12a4"},
    {"type": "card", "last4": "1234"},
    "card",
    "cheque",
    "pro",
    "web",
]


class AnyHandler:
    def __contains__(self, name: object) -> bool:
        return True


def registration_schema() -> Any:
    return parse_template(read_template_text(), AnyHandler()).input_schema  # type: ignore[arg-type]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    return found


def mutate(context: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Change one to three places: a value of another type or shape, a deletion, an extra key."""
    mutated = copy.deepcopy(context)
    for _ in range(rng.randint(1, 3)):
        where = rng.choice(paths(mutated))
        parent = mutated
        for key in where[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.6:
            parent[where[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        elif action < 0.85:
            del parent[where[-1]]
        else:
            parent[f"extra_{rng.randint(0, 9)}"] = rng.choice(ODD_VALUES)
    return mutated


def test_fast_acceptance_implies_jsonschema_validity_on_mutated_registrations() -> None:
    schema = registration_schema()
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    rng = random.Random(20261123)
    fake = RegistrationFaker(seed=7)
    accepted = rejected = 0
    for _ in range(150):
        valid = fake.registration()
        apply_defaults(schema, valid)
        assert schema_fast.accepts(schema, valid)  # the fast path is the common path
        for _ in range(6):
            candidate = mutate(valid, rng)
            apply_defaults(schema, candidate)
            errors = list(validator.iter_errors(candidate))
            if schema_fast.accepts(schema, candidate):
                assert errors == [], (candidate, errors)
                accepted += 1
            else:
                rejected += 1
    assert accepted > 50 and rejected > 300  # the mutations exercised both verdicts


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},  # no $schema: 2020-12, which fastjsonschema does not implement
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "properties": {"a": {"$ref": "http://example.invalid/never-fetched.json"}},
        },
    ],
)
def test_schemas_it_cannot_judge_safely_are_left_to_jsonschema(schema: dict[str, Any]) -> None:
    assert not schema_fast.accepts(schema, {})


def test_local_refs_and_formats_compile() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"mail": {"type": "string", "format": "email"}},
        "properties": {"to": {"$ref": "#/definitions/mail"}},
    }
    assert schema_fast.accepts(schema, {"to": "a@example.com"})
    assert not schema_fast.accepts(schema, {"to": "nobody"})
