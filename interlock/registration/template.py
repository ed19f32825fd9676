"""The registration workflow's template: the YAML beside this module, and the one runtime
customisation the sandbox applies to it (enterprise billing)."""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Final

from orchestrator.handlers import HandlerRegistry
from orchestrator.models import JSON
from orchestrator.retry import RetryPolicy
from orchestrator.templates import StepTemplate, WorkflowTemplate, parse_template

TEMPLATE_NAME: Final = "user_registration"
TEMPLATE_FILE: Final = "user_registration.yaml"


def read_template_text() -> str:
    """The template's YAML, from the installed package."""
    return resources.files("interlock.registration").joinpath(TEMPLATE_FILE).read_text()


def load_registration_template(registry: HandlerRegistry) -> WorkflowTemplate:
    return parse_template(
        read_template_text(), registry.names(), source=f"interlock/registration/{TEMPLATE_FILE}"
    )


def enterprise_billing(step: StepTemplate, context: JSON) -> StepTemplate:
    """Runtime customisation: enterprise billing gets 5 attempts and a 45 s timeout."""
    if step.name != "setup_billing_profile" or context["user_info"]["plan"] != "enterprise":
        return step
    retry: RetryPolicy = dataclasses.replace(step.retry, max_attempts=5)
    return dataclasses.replace(step, retry=retry, timeout_s=45.0)
