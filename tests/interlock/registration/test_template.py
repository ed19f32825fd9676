"""The registration template's numbers and its one customisation, without a server."""

from __future__ import annotations

import pytest

from interlock.registration.handlers import RegistrationHandlers
from interlock.registration.template import (
    STEP_TIMEOUT_PER_REQUEST,
    enterprise_billing,
    load_registration_template,
    with_request_timeout,
)
from orchestrator.handlers import HandlerRegistry
from orchestrator.http import ServiceCaller
from orchestrator.templates import WorkflowTemplate


@pytest.fixture
def template() -> WorkflowTemplate:
    registry = HandlerRegistry()
    RegistrationHandlers(ServiceCaller()).register(registry)
    return load_registration_template(registry)


def test_every_step_gives_its_calls_less_time_than_the_attempt(template: WorkflowTemplate) -> None:
    """The call's own timeout must end a slow call, not the engine's: then it is reported as
    REQUEST_TIMEOUT and counted by the service's breaker."""
    for step in template.steps:
        request_timeout_s = step.handler_config["request_timeout_s"]
        assert step.timeout_s == STEP_TIMEOUT_PER_REQUEST * request_timeout_s, step.name


def test_the_reference_numbers(template: WorkflowTemplate) -> None:
    """docs/registration.md tables these beside the reference's, with a reason per difference."""
    got = {
        s.name: (s.retry.max_attempts, s.handler_config["request_timeout_s"])
        for s in template.steps
    }
    assert got == {
        "create_user_account": (3, 30),
        "setup_billing_profile": (3, 30),
        "initialize_preferences": (3, 20),
        "send_welcome_sequence": (5, 15),
        "update_user_status": (3, 10),
    }


@pytest.mark.parametrize("plan", ["free", "pro", "enterprise"])
def test_enterprise_billing_changes_the_wire_not_only_the_engine(
    template: WorkflowTemplate, plan: str
) -> None:
    context = {"user_info": {"plan": plan}}
    for step in template.steps:
        custom = enterprise_billing(step, context)
        if plan != "enterprise" or step.name != "setup_billing_profile":
            assert custom is step
            continue
        assert custom.handler_config["request_timeout_s"] == 45.0
        assert custom.timeout_s == 90.0 and custom.retry.max_attempts == 5
        assert custom.handler_config["service"] == "billing"


def test_a_request_timeout_must_be_positive(template: WorkflowTemplate) -> None:
    with pytest.raises(ValueError, match=r"create_user_account: request_timeout_s must be > 0"):
        with_request_timeout(template.steps[0], 0)
