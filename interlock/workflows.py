"""Built-in workflows: the benchmark diamond and the engine demo, with their handlers."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from orchestrator.errors import PermanentError, RetryableError
from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.templates import WorkflowTemplate, parse_template

BENCH_DIAMOND = """
name: bench_diamond
namespace: bench
version: 1.0.0
description: The 5-step diamond a -> (b || c) -> d -> e with no-op handlers.
steps:
  - {name: a, handler: noop}
  - {name: b, handler: noop, depends_on: [a]}
  - {name: c, handler: noop, depends_on: [a]}
  - {name: d, handler: noop, depends_on: [b, c]}
  - {name: e, handler: noop, depends_on: [d]}
"""

DEMO_REGISTRATION = """
name: demo_registration
namespace: demo
version: 1.0.0
description: >
  The registration diamond with simulated services (latency and seeded transient failures),
  until the real mock services are wired in.
input_schema:
  type: object
  required: [user_info]
  properties:
    user_info:
      type: object
      required: [email, name]
      properties:
        email: {type: string, format: email}
        name: {type: string, minLength: 1}
        plan: {type: string, enum: [free, pro, enterprise], default: free}
steps:
  - name: create_user_account
    handler: simulated_service
    handler_config: {service: users, latency_ms: 40, failure_rate: 0.1}
    retry: {max_attempts: 3, initial_delay_s: 0.2, max_delay_s: 2}
    timeout_s: 5
  - name: setup_billing_profile
    handler: simulated_service
    depends_on: [create_user_account]
    handler_config: {service: billing, latency_ms: 80, failure_rate: 0.3}
    retry: {max_attempts: 4, initial_delay_s: 0.3, max_delay_s: 3}
    timeout_s: 5
  - name: initialize_preferences
    handler: simulated_service
    depends_on: [create_user_account]
    handler_config: {service: preferences, latency_ms: 30, failure_rate: 0.1}
    retry: {max_attempts: 3, initial_delay_s: 0.2, max_delay_s: 2}
    timeout_s: 5
  - name: send_welcome_sequence
    handler: simulated_service
    depends_on: [setup_billing_profile, initialize_preferences]
    handler_config: {service: notifications, latency_ms: 60, failure_rate: 0.2}
    retry: {max_attempts: 5, initial_delay_s: 0.2, max_delay_s: 2}
    timeout_s: 5
  - name: update_user_status
    handler: simulated_service
    depends_on: [send_welcome_sequence]
    handler_config: {service: users, latency_ms: 20, failure_rate: 0.0}
    timeout_s: 5
"""


async def noop(inp: StepInput) -> None:
    """A handler that does nothing: the benchmark measures the engine alone."""


def simulated_service(seed: int) -> Any:
    """A handler that behaves like a flaky remote call: latency, then seeded failures."""
    rng = random.Random(seed)

    async def handler(inp: StepInput) -> dict[str, Any]:
        config = inp.handler_config
        await asyncio.sleep(float(config.get("latency_ms", 0)) / 1000)
        roll = rng.random()
        if roll < float(config.get("failure_rate", 0.0)):
            raise RetryableError(f"{config.get('service')} answered 503", error_code="HTTP_503",
                                 http_status=503)
        email = str(inp.context.get("user_info", {}).get("email", ""))
        if email.endswith("@mailinator.com"):
            raise PermanentError("disposable email domain", error_code="BLOCKED_EMAIL_DOMAIN")
        return {"service": config.get("service"), "attempt": inp.attempt}

    return handler


def builtin_registry(seed: int = 0) -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.register("noop", noop)
    registry.register("simulated_service", simulated_service(seed))
    return registry


def builtin_templates(registry: HandlerRegistry) -> list[WorkflowTemplate]:
    names = registry.names()
    return [
        parse_template(BENCH_DIAMOND, names, source="<builtin bench_diamond>"),
        parse_template(DEMO_REGISTRATION, names, source="<builtin demo_registration>"),
    ]
