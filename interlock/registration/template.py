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
from typing import Final

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
TEMPLATE_FILE: Final = "user_registration.yaml"


def read_template_text() -> str:
    """The template's YAML, from the installed package."""
    return resources.files("interlock.registration").joinpath(TEMPLATE_FILE).read_text()


def load_registration_template(registry: HandlerRegistry) -> WorkflowTemplate:
    """The template, accepting the flat request shape too (:func:`normalize_registration`)."""
    template = parse_template(
        read_template_text(), registry.names(), source=f"interlock/registration/{TEMPLATE_FILE}"
    )
    return dataclasses.replace(template, normalize=normalize_registration)


def enterprise_billing(step: StepTemplate, context: JSON) -> StepTemplate:
    """Runtime customisation: enterprise billing gets 5 attempts and a 45 s timeout."""
    if step.name != "setup_billing_profile" or context["user_info"]["plan"] != "enterprise":
        return step
    retry: RetryPolicy = dataclasses.replace(step.retry, max_attempts=5)
    return dataclasses.replace(step, retry=retry, timeout_s=45.0)


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
