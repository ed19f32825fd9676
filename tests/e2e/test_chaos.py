"""Random faults on every service at once: every registration still completes, exactly once.

Each service answers a share of all calls with a lost response (the work done, the answer
dropped), a reset, a 503, a truncated body or a hang past the request timeout, from seeded
rules. Which calls fail depends on the
order requests arrive in, which concurrency makes vary; what must hold does not: every task
completes, and each user, profile, preferences record and welcome message exists exactly once.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter

import aiohttp
import pytest

from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.event_types import EventType
from orchestrator.models import JSON, TaskState
from orchestrator.templates import StepTemplate
from tests.e2e.conftest import add_fault, short_request_timeouts

REGISTRATIONS = 60
FAULTS = [
    {"kind": "lost_response", "probability": 0.06},
    {"kind": "reset", "probability": 0.04},
    {"kind": "error", "status": 503, "probability": 0.06},
    {"kind": "malformed", "probability": 0.04},
    {"kind": "hang", "probability": 0.02, "hold_ms": 400},
]


def many_attempts(step: StepTemplate, context: JSON) -> StepTemplate:
    """Enough attempts that a step outlasting its faults is certain (0.22 ** 15)."""
    return dataclasses.replace(step, retry=dataclasses.replace(step.retry, max_attempts=15))


@pytest.mark.slow
async def test_faults_everywhere_still_leave_exactly_one_of_everything(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    orch.engine.add_customizer(TEMPLATE_NAME, many_attempts)
    orch.engine.add_customizer(TEMPLATE_NAME, short_request_timeouts)
    for i, service in enumerate(services.urls):
        for j, rule in enumerate(FAULTS):
            await add_fault(admin, services, service, {**rule, "seed": 10 * i + j})
    contexts = [fake.registration() for _ in range(REGISTRATIONS)]
    ends = await asyncio.gather(
        *(orch.engine.run(TEMPLATE_NAME, c, timeout_s=60) for c in contexts)
    )
    assert [state for _, state in ends] == [TaskState.COMPLETE] * REGISTRATIONS

    data = services.data
    users = [data.users.by_email(c["user_info"]["email"]) for c in contexts]
    assert all(u is not None and u["status"] == "active" for u in users)
    assert len(data.users.users) == len(data.billing) == len(data.preferences) == REGISTRATIONS
    welcomes = Counter(
        (m["user_id"], m["channel"]) for m in data.notifications.messages if m["kind"] == "welcome"
    )
    assert set(welcomes.values()) == {1}
    assert {user_id for user_id, _ in welcomes} == {u["id"] for u in users if u is not None}

    log = await orch.engine.events(limit=100_000)
    failed = Counter(e.data["error_code"] for e in log if e.type == EventType.SERVICE_CALL_FAILED)
    assert set(failed) == {"CONNECTION_ERROR", "HTTP_503", "MALFORMED_RESPONSE", "REQUEST_TIMEOUT"}
