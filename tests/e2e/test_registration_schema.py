"""Whatever the registration's input schema accepts, the services accept: a property test.

Contexts are generated from the template's own JSON Schema (hypothesis-jsonschema), half of
them then sent in the reference's flat shape, and registered end to end against the real
services on loopback. A service refusing one with a 4xx validation answer would leave a
half-written registration (a user and preferences, no billing profile), so not one may; every
one must complete. Seeded (``derandomize``), no example database, fast retries.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from interlock.registration.handlers import BLOCKED_EMAIL_DOMAINS
from interlock.registration.template import read_template_text
from interlock.sandbox import Orchestrator
from mock_services.runner import RunningServices
from mock_services.services import SERVICE_NAMES
from orchestrator.models import JSON, TaskState
from tests.e2e.conftest import register

EXAMPLES = 250


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load(read_template_text())["input_schema"]
    return schema


def _allowed(context: JSON) -> bool:
    """Disposable domains are refused by the handler before any call; not what this tests."""
    email = str(context.get("user_info", {}).get("email", ""))
    return email.rsplit("@", 1)[-1].lower() not in BLOCKED_EMAIL_DOMAINS


def flatten(context: JSON) -> JSON:
    """The same registration in the reference's flat shape (which the template normalises)."""
    flat = {k: v for k, v in context.items() if k != "user_info"}
    flat.update(context["user_info"])
    preferences = dict(flat.get("preferences", {}))
    if "marketing_emails" in preferences:
        flat["marketing_consent"] = preferences.pop("marketing_emails")
        flat["preferences"] = preferences
    return flat


def draw_contexts(count: int) -> list[JSON]:
    """``count`` contexts from the template's schema, the same ones on every run.

    Drawn up front by a synchronous ``@given`` because the sandbox runs on the test's event loop,
    which hypothesis cannot drive; the price is that a failure is reported unshrunk.
    """
    drawn: list[JSON] = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(context=from_schema(_schema()).filter(_allowed), flat=st.booleans())
    def collect(context: JSON, flat: bool) -> None:
        drawn.append(flatten(context) if flat else context)

    collect()
    return drawn


async def test_every_context_the_schema_accepts_completes(
    orch: Orchestrator, services: RunningServices
) -> None:
    contexts = draw_contexts(EXAMPLES)
    assert len(contexts) >= EXAMPLES * 0.9
    failures: list[str] = []
    for context in contexts:
        for service in SERVICE_NAMES:  # each registration alone: generated emails repeat
            services.data.clear(service)
        task = await register(orch, context)
        if task.state is not TaskState.COMPLETE:
            errors = {s.name: s.last_error for s in task.steps if s.last_error is not None}
            failures.append(f"{context!r}: {task.state} {errors}")
    assert not failures, f"{len(failures)} of {len(contexts)} failed:\n" + "\n".join(failures[:8])


def test_the_strategy_reaches_every_field() -> None:
    """The property above means something only if the generator tries every field."""
    schema = _schema()
    objects = ("user_info", "billing_info", "preferences")
    wanted = set(schema["properties"]) | {
        f"{name}.{field}" for name in objects for field in schema["properties"][name]["properties"]
    }
    seen: set[str] = set()

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None)
    @given(context=from_schema(schema))
    def collect(context: JSON) -> None:
        seen.update(context)
        seen.update(f"{name}.{field}" for name in objects for field in context.get(name, {}))

    collect()
    assert wanted <= seen, wanted - seen
