"""What a registration records, as the reference says it should: the correlation id in every
step's results, and on completion the outcome (user, plan, source, when) in the last step's."""

from __future__ import annotations

from datetime import datetime

from interlock.sandbox import Orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.models import TaskState
from tests.e2e.conftest import register


async def test_every_step_carries_the_correlation_id_and_the_last_the_outcome(
    orch: Orchestrator, services: RunningServices, fake: RegistrationFaker
) -> None:
    context = fake.registration("enterprise")
    context["user_info"]["source"] = "mobile"
    context["correlation_id"] = "reg_1764700000_3f9a2c1d"  # the reference's format
    task = await register(orch, context)
    assert task.state is TaskState.COMPLETE
    assert task.correlation_id == "reg_1764700000_3f9a2c1d"
    for step in task.steps:
        assert (step.results or {}).get("correlation_id") == task.correlation_id, step.name
    user = services.data.users.by_email(context["user_info"]["email"])
    assert user is not None
    account = task.step("create_user_account").results or {}
    assert account["user_id"] == user["id"] and account["email"] == user["email"]
    assert account["created_at"] == user["created_at"] and account["status"] == "created"
    outcome = (task.step("update_user_status").results or {})["registration_outcome"]
    assert outcome == {
        "user_id": user["id"],
        "plan": "enterprise",
        "source": "mobile",
        "correlation_id": "reg_1764700000_3f9a2c1d",
        "completed_at": user["updated_at"],
    }
    assert datetime.fromisoformat(outcome["completed_at"]) >= datetime.fromisoformat(
        user["created_at"]
    )
    summary = user["registration_summary"]
    assert (summary["plan"], summary["source"]) == ("enterprise", "mobile")
    assert summary["correlation_id"] == task.correlation_id


async def test_the_outcome_has_the_defaulted_plan_and_source_and_the_made_correlation_id(
    orch: Orchestrator, fake: RegistrationFaker
) -> None:
    context = fake.registration()
    for name in ("plan", "source", "company", "referral_code"):
        context["user_info"].pop(name, None)
    task = await register(orch, context)
    assert task.state is TaskState.COMPLETE
    assert (task.context["user_info"]["plan"], task.context["user_info"]["source"]) == (
        "free",
        "web",
    )
    outcome = (task.step("update_user_status").results or {})["registration_outcome"]
    assert (outcome["plan"], outcome["source"]) == ("free", "web")
    assert outcome["correlation_id"] == task.correlation_id
    assert {(s.results or {})["correlation_id"] for s in task.steps} == {task.correlation_id}
