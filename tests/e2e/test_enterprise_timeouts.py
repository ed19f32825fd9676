"""The enterprise customisation changes what happens on the wire, not just the engine's limit."""

from __future__ import annotations

import dataclasses

import aiohttp

from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.models import JSON, StepState, TaskState
from orchestrator.templates import StepTemplate
from tests.e2e.conftest import add_fault, register

#: The template's times, a hundredth as long: free billing 0.3 s a call, enterprise 0.45 s.
SCALE = 0.01
#: A billing call that takes longer than a free one may and less than an enterprise one may.
BILLING_DELAY_MS = 375


def scaled_timeouts(step: StepTemplate, context: JSON) -> StepTemplate:
    """Both limits a hundredth as long; it runs after the sandbox's customisations, so it
    scales what they set."""
    config = step.handler_config
    return dataclasses.replace(
        step,
        timeout_s=(step.timeout_s or 0) * SCALE,
        handler_config={**config, "request_timeout_s": config["request_timeout_s"] * SCALE},
    )


async def test_a_slow_billing_call_fails_free_and_succeeds_enterprise(
    orch: Orchestrator,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    orch.engine.add_customizer(TEMPLATE_NAME, scaled_timeouts)
    slow = {"kind": "latency", "delay_ms": BILLING_DELAY_MS, "match": {"path": "/profiles"}}
    await add_fault(admin, services, "billing", slow)

    free = await register(orch, fake.registration("free"))
    billing = free.step("setup_billing_profile")
    assert free.state is TaskState.ERROR and billing.state is StepState.ERROR
    assert billing.attempts == 3
    assert billing.last_error is not None and billing.last_error.error_code == "REQUEST_TIMEOUT"
    assert "within 0.3 s" in billing.last_error.message  # the call's limit, not the step's

    enterprise = await register(orch, fake.registration("enterprise"))
    assert enterprise.state is TaskState.COMPLETE
    assert enterprise.step("setup_billing_profile").attempts == 1
