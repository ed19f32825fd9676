"""A service that says yes without what the step needs breaks its contract: a permanent error.

The ``missing_fields`` fault answers with the real status and body minus the named fields, after
the request took effect. Each case must end its step at once with its own
``MISSING_<WHAT>_IN_RESPONSE`` code, never as a ``HANDLER_EXCEPTION`` retried until the
attempts run out.
"""

from __future__ import annotations

import aiohttp
import pytest

from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.models import ErrorKind, OnFailure, StepState, TaskState
from tests.e2e.conftest import add_fault, register


@pytest.mark.parametrize(
    ("service", "method", "path", "fields", "step_name", "error_code"),
    [
        ("users", "POST", "/users", ["id"], "create_user_account", "MISSING_USER_ID_IN_RESPONSE"),
        ("users", "POST", "/users", ["email"], "create_user_account", "MISSING_EMAIL_IN_RESPONSE"),
        (
            "billing",
            "POST",
            "/profiles",
            ["monthly_price"],
            "setup_billing_profile",
            "MISSING_MONTHLY_PRICE_IN_RESPONSE",
        ),
        (
            "billing",
            "POST",
            "/profiles",
            ["id"],
            "setup_billing_profile",
            "MISSING_PROFILE_ID_IN_RESPONSE",
        ),
        (
            "preferences",
            "POST",
            "/preferences",
            ["preferences"],
            "initialize_preferences",
            "MISSING_PREFERENCES_IN_RESPONSE",
        ),
        (
            "notifications",
            "POST",
            "/welcome",
            ["message_ids"],
            "send_welcome_sequence",
            "MISSING_MESSAGE_IDS_IN_RESPONSE",
        ),
        (
            "notifications",
            "POST",
            "/welcome",
            ["count"],
            "send_welcome_sequence",
            "MISSING_MESSAGE_COUNT_IN_RESPONSE",
        ),
        (
            "users",
            "PATCH",
            "/users/*",
            ["status"],
            "update_user_status",
            "MISSING_STATUS_IN_RESPONSE",
        ),
    ],
)
async def test_a_2xx_without_a_needed_field_is_permanent_with_its_own_code(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
    service: str,
    method: str,
    path: str,
    fields: list[str],
    step_name: str,
    error_code: str,
) -> None:
    rule = {"kind": "missing_fields", "fields": fields, "match": {"method": method, "path": path}}
    await add_fault(admin, services, service, rule)
    task = await register(orch, fake.registration("pro"))
    step = task.step(step_name)
    if orch.engine.catalog.find(TEMPLATE_NAME).step(step_name).on_failure is OnFailure.CONTINUE:
        # Non-critical (preferences): it degrades and the registration still completes.
        assert (task.state, step.state) == (TaskState.COMPLETE, StepState.DEGRADED)
    else:
        assert (task.state, step.state) == (TaskState.ERROR, StepState.ERROR)
    assert step.attempts == 1  # not retried: the same request would get the same answer
    error = step.last_error
    assert error is not None and error.kind is ErrorKind.PERMANENT
    assert error.error_code == error_code
    assert error.http_status is not None and 200 <= error.http_status < 300
    assert service in error.message and fields[0] in error.message


async def test_a_lookup_after_a_409_without_its_list_is_permanent(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    context = fake.registration("free")
    assert (await register(orch, context)).state is TaskState.COMPLETE
    rule = {"kind": "missing_fields", "fields": ["users"], "match": {"method": "GET"}}
    await add_fault(admin, services, "users", rule)
    task = await register(orch, context)  # 409, then GET /users?email= answers {} instead
    step = task.step("create_user_account")
    assert step.state is StepState.ERROR and step.attempts == 1
    assert step.last_error is not None
    assert step.last_error.error_code == "MISSING_USERS_IN_RESPONSE"
