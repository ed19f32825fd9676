"""The user registration end to end over HTTP, against faults the services inject."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.models import StepState, TaskState
from tests.e2e.conftest import add_fault, register, short_request_timeouts

PRICE = {"free": 0.0, "pro": 29.99, "enterprise": 99.99}


@pytest.mark.parametrize("plan", ["free", "pro", "enterprise"])
async def test_happy_path_per_plan(
    orch: Orchestrator, services: RunningServices, fake: RegistrationFaker, plan: str
) -> None:
    context = fake.registration(plan)
    context["user_info"].pop("referral_code", None)
    task = await register(orch, context)
    assert task.state is TaskState.COMPLETE, task
    assert [s.attempts for s in task.steps] == [1, 1, 1, 1, 1]
    user = services.data.users.by_email(context["user_info"]["email"])
    assert user is not None and user["status"] == "active"
    assert user["registration_summary"]["plan"] == plan
    profile = services.data.billing[user["id"]]
    assert profile["monthly_price"] == PRICE[plan]
    messages = [m for m in services.data.notifications.messages if m["user_id"] == user["id"]]
    welcome = task.step("send_welcome_sequence").results or {}
    assert len(messages) == welcome["count"] > 0
    assert {m["correlation_id"] for m in messages} == {task.correlation_id}
    billing_max = task.step("setup_billing_profile").max_attempts
    assert billing_max == (5 if plan == "enterprise" else 3)
    summary = task.summary or {}
    assert set(summary["service_time_ms"]) == {"users", "billing", "preferences", "notifications"}
    assert all(ms > 0 for ms in summary["service_time_ms"].values())
    spans = summary["step_duration_ms"]
    branches = (spans["setup_billing_profile"], spans["initialize_preferences"])
    assert summary["parallel_saved_ms"] == pytest.approx(min(branches), abs=0.2)
    assert summary["critical_path_ms"] <= summary["total_duration_ms"]
    assert summary["attempts"] == {s.name: 1 for s in task.steps}


async def test_billing_fails_twice_then_succeeds(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    await add_fault(
        admin,
        services,
        "billing",
        {"kind": "error", "status": 503, "times": 2, "match": {"method": "POST"}},
    )
    task = await register(orch, fake.registration("pro"))
    assert task.state is TaskState.COMPLETE
    assert task.step("setup_billing_profile").attempts == 3
    attempts = [
        a
        for a in await orch.engine.attempts(task.task_id)
        if a.step_name == "setup_billing_profile"
    ]
    assert [a.outcome for a in attempts] == ["failed", "failed", "completed"]
    assert attempts[0].error is not None and attempts[0].error.error_code == "HTTP_503"


@pytest.mark.parametrize(
    ("service", "step_name", "fault", "error_code"),
    [
        ("users", "create_user_account", {"kind": "reset"}, "CONNECTION_ERROR"),
        ("billing", "setup_billing_profile", {"kind": "malformed"}, "MALFORMED_RESPONSE"),
        (
            "preferences",
            "initialize_preferences",
            {"kind": "hang", "hold_ms": 600},
            "REQUEST_TIMEOUT",
        ),
        ("notifications", "send_welcome_sequence", {"kind": "lost_response"}, "CONNECTION_ERROR"),
        (
            "notifications",
            "send_welcome_sequence",
            {"kind": "lost_response", "status": 502},
            "HTTP_502",
        ),
    ],
)
async def test_each_wire_fault_costs_one_attempt_and_is_named(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
    service: str,
    step_name: str,
    fault: dict[str, Any],
    error_code: str,
) -> None:
    orch.engine.add_customizer(TEMPLATE_NAME, short_request_timeouts)
    await add_fault(admin, services, service, {**fault, "times": 1, "match": {"method": "POST"}})
    task = await register(orch, fake.registration("pro"))
    assert task.state is TaskState.COMPLETE
    attempts = [a for a in await orch.engine.attempts(task.task_id) if a.step_name == step_name]
    assert [a.outcome for a in attempts] == ["failed", "completed"]
    assert attempts[0].error is not None and attempts[0].error.error_code == error_code
    data = services.data
    welcome_emails = [
        m for m in data.notifications.messages if m["kind"] == "welcome" and m["channel"] == "email"
    ]
    assert (
        len(data.users.users),
        len(data.billing),
        len(data.preferences),
        len(welcome_emails),
    ) == (1, 1, 1, 1)


async def test_billing_down_for_good_isolates_the_failure(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    await add_fault(admin, services, "billing", {"kind": "down"})
    task = await register(orch, fake.registration("pro"))
    assert task.state is TaskState.ERROR
    assert task.step("initialize_preferences").state is StepState.COMPLETE
    billing = task.step("setup_billing_profile")
    assert billing.state is StepState.ERROR and billing.attempts == 3
    assert task.step("send_welcome_sequence").attempts == 0
    assert services.data.notifications.messages == []


async def test_a_matching_existing_user_is_accepted(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    context = fake.registration("pro")
    info = context["user_info"]
    info["email"] = info["email"].replace("@", "+signup@")  # the lookup must keep the '+'
    body = {"email": info["email"].upper(), "name": info["name"], "plan": "pro"}
    async with admin.post(f"{services.urls['users']}/users", json=body) as resp:
        existing = await resp.json()
    task = await register(orch, context)
    assert task.state is TaskState.COMPLETE
    assert task.step("create_user_account").results == {
        "user_id": existing["id"],
        "email": existing["email"],
        "created_at": existing["created_at"],
        "status": "already_exists",
        "plan": "pro",
        "correlation_id": task.correlation_id,
    }
    assert len(services.data.users.users) == 1


async def test_a_conflicting_existing_user_fails_permanently(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    context = fake.registration("pro")
    body = {"email": context["user_info"]["email"], "name": "Someone Else", "plan": "free"}
    async with admin.post(f"{services.urls['users']}/users", json=body) as resp:
        assert resp.status == 201
    task = await register(orch, context)
    step = task.step("create_user_account")
    assert task.state is TaskState.ERROR and step.attempts == 1
    assert step.last_error is not None and step.last_error.error_code == "USER_CONFLICT"
    assert services.data.billing == {}


async def test_a_disposable_email_domain_is_refused_without_a_call(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
) -> None:
    context = fake.registration()
    context["user_info"]["email"] = "temp@mailinator.com"
    task = await register(orch, context)
    step = task.step("create_user_account")
    assert step.last_error is not None and step.last_error.error_code == "BLOCKED_EMAIL_DOMAIN"
    assert services.runtimes["users"].journal.total == 0


async def test_lost_responses_everywhere_leave_exactly_one_of_everything(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    for service in ("users", "billing", "preferences", "notifications"):
        await add_fault(
            admin,
            services,
            service,
            {"kind": "lost_response", "times": 1, "match": {"method": "POST"}},
        )
    await add_fault(
        admin,
        services,
        "users",
        {"kind": "lost_response", "times": 1, "match": {"method": "PATCH"}},
    )
    context = fake.registration("pro")
    task = await register(orch, context)
    assert task.state is TaskState.COMPLETE, task
    assert all(s.attempts == 2 for s in task.steps), [s.attempts for s in task.steps]
    data = services.data
    assert len(data.users.users) == len(data.billing) == len(data.preferences) == 1
    sends = [
        m for m in data.notifications.messages if m["kind"] == "welcome" and m["channel"] == "email"
    ]
    assert len(sends) == 1
    user = data.users.by_email(context["user_info"]["email"])
    assert user is not None and user["status"] == "active"
    replays = sum(r.idempotency.replays for r in services.runtimes.values())
    assert replays == 5


async def test_bad_context_is_rejected_before_anything_runs(
    orch: Orchestrator,
    services: RunningServices,
) -> None:
    from orchestrator.errors import ContextValidationError

    with pytest.raises(ContextValidationError) as caught:
        await orch.engine.submit(
            "user_registration", {"user_info": {"email": "nope", "name": "", "plan": "gold"}}
        )
    paths = sorted({d.path for d in caught.value.details})  # an empty name breaks two rules
    assert paths == ["/user_info/email", "/user_info/name", "/user_info/plan"]
    assert services.runtimes["users"].journal.total == 0
