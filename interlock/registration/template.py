"""The registration workflow's template: the YAML beside this module, the request shapes it
accepts, and the one runtime customisation the sandbox applies to it (enterprise billing).

Request shapes: the reference's posts disagree. One nests the user under ``user_info`` (the
shape our schema describes), another sends the same fields flat at the top level, with
``marketing_consent`` for what the nested shape calls ``preferences.marketing_emails``::

    {"email": "a@example.com", "name": "Ada", "plan": "pro", "marketing_consent": true}
    → {"user_info": {"email": "a@example.com", "name": "Ada", "plan": "pro"},
       "preferences": {"marketing_emails": true}}

The flat shape is moved into the nested one, so the schema, the stored context and every
handler see one shape; a validation error still names the path the client sent. A context that
mixes the two (flat user fields beside ``user_info``, or ``marketing_consent`` beside
``preferences.marketing_emails``) is refused: which of the two was meant is a guess.
"""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any, Final

import yaml

from orchestrator.errors import ContextValidationError, ValidationDetail
from orchestrator.handlers import HandlerRegistry
from orchestrator.models import JSON
from orchestrator.retry import RetryPolicy
from orchestrator.templates import (
    NormalizedContext,
    StepTemplate,
    WorkflowTemplate,
    parse_template,
)

TEMPLATE_NAME: Final = "user_registration"
#: The same registration with its two branches in a chain (the sequential-vs-diamond demo).
SEQUENTIAL_TEMPLATE_NAME: Final = "user_registration_sequential"
TEMPLATE_FILE: Final = "user_registration.yaml"
#: A registration step's time per attempt, in request timeouts (see :func:`with_request_timeout`).
STEP_TIMEOUT_PER_REQUEST: Final = 2
ENTERPRISE_BILLING_ATTEMPTS: Final = 5
ENTERPRISE_BILLING_REQUEST_TIMEOUT_S: Final = 45.0


def read_template_text() -> str:
    """The template's YAML, from the installed package."""
    return resources.files("interlock.registration").joinpath(TEMPLATE_FILE).read_text()


def load_registration_template(registry: HandlerRegistry) -> WorkflowTemplate:
    """The template, accepting the flat request shape too (:func:`normalize_registration`)."""
    template = parse_template(
        read_template_text(), registry.names(), source=f"interlock/registration/{TEMPLATE_FILE}"
    )
    return dataclasses.replace(template, normalize=normalize_registration)


def load_sequential_template(registry: HandlerRegistry) -> WorkflowTemplate:
    """The registration as the hand-written version would run it: the same steps, handlers,
    policies and schema, but ``initialize_preferences`` waits for ``setup_billing_profile``
    instead of running beside it. It still depends on ``create_user_account`` too: a handler
    reads the results of its own dependencies only, and preferences needs the user's id. It is
    parsed (and so checked) like any template."""
    data: dict[str, Any] = yaml.safe_load(read_template_text())
    data["name"] = SEQUENTIAL_TEMPLATE_NAME
    data["description"] = (
        "The registration with billing and preferences one after the other, not in parallel:"
        " the baseline the diamond is measured against."
    )
    for step in data["steps"]:
        if step["name"] == "initialize_preferences":
            step["depends_on"] = ["create_user_account", "setup_billing_profile"]
    template = parse_template(
        yaml.safe_dump(data, sort_keys=False),
        registry.names(),
        source=f"interlock/registration/{TEMPLATE_FILE} (sequential)",
    )
    return dataclasses.replace(template, normalize=normalize_registration)


def with_request_timeout(step: StepTemplate, request_timeout_s: float) -> StepTemplate:
    """``step`` with each of its HTTP calls allowed ``request_timeout_s`` and each attempt as a
    whole ``STEP_TIMEOUT_PER_REQUEST`` times that.

    The one way to change a registration step's time: a step has two limits, the engine's per
    attempt (``timeout_s``) and the adapter's per call (``handler_config.request_timeout_s``),
    and changing only the first changes nothing on the wire (a slow call still gives up at the
    old request timeout). The attempt gets room for a second call (the read-back that verifies
    a 409, the look-up around a welcome), and the call's own timeout always ends a slow call
    first, so it is reported as ``REQUEST_TIMEOUT`` and counted by the service's breaker.
    """
    if request_timeout_s <= 0:
        raise ValueError(f"{step.name}: request_timeout_s must be > 0, got {request_timeout_s}")
    config = {**step.handler_config, "request_timeout_s": request_timeout_s}
    return dataclasses.replace(
        step, handler_config=config, timeout_s=STEP_TIMEOUT_PER_REQUEST * request_timeout_s
    )


def enterprise_billing(step: StepTemplate, context: JSON) -> StepTemplate:
    """Runtime customisation (the reference's): enterprise billing gets 5 attempts and 45 s for
    its billing call, on the wire (a 90 s attempt), where the other plans get 30 s."""
    if step.name != "setup_billing_profile" or context["user_info"]["plan"] != "enterprise":
        return step
    retry: RetryPolicy = dataclasses.replace(step.retry, max_attempts=ENTERPRISE_BILLING_ATTEMPTS)
    timed = with_request_timeout(step, ENTERPRISE_BILLING_REQUEST_TIMEOUT_S)
    return dataclasses.replace(timed, retry=retry)


#: The fields the flat shape carries at the top level and the nested one under ``user_info``.
USER_FIELDS: Final = ("email", "name", "phone", "plan", "referral_code", "company", "source")
CONSENT: Final = "marketing_consent"


def normalize_registration(context: JSON) -> NormalizedContext:
    """``context`` in the nested shape (it is changed in place: the caller passes a copy)."""
    flat = [name for name in USER_FIELDS if name in context]
    mixed = [f"/{name}" for name in flat] if "user_info" in context else []
    preferences = context.get("preferences")
    if CONSENT in context and isinstance(preferences, dict) and "marketing_emails" in preferences:
        mixed.append(f"/{CONSENT}")
    if mixed:
        raise ContextValidationError(
            TEMPLATE_NAME,
            [ValidationDetail(path, _mixed_message(path)) for path in mixed],
        )
    sent_at: dict[str, str] = {}
    if flat:
        context["user_info"] = {name: context.pop(name) for name in flat}
        sent_at["/user_info"] = ""
    if CONSENT in context:
        consent = context.pop(CONSENT)
        if preferences is None:
            preferences = context["preferences"] = {}
        if isinstance(preferences, dict):
            preferences["marketing_emails"] = consent
            sent_at["/preferences/marketing_emails"] = f"/{CONSENT}"
        else:  # let the schema say what is wrong with ``preferences``; keep the consent visible
            context[CONSENT] = consent
    return NormalizedContext(context, sent_at)


def _mixed_message(path: str) -> str:
    if path == f"/{CONSENT}":
        return (
            "given beside preferences.marketing_emails: send one of the two"
            " (marketing_consent is the flat shape's name for it)"
        )
    return (
        "given beside user_info: send the user's fields either all inside user_info"
        f" or all at the top level, not both (move {path[1:]!r} into user_info)"
    )
