"""The user-registration workflow's handlers: thin business rules over the HTTP step adapter.

``create_user_account → (setup_billing_profile ∥ initialize_preferences) →
send_welcome_sequence → update_user_status``. The template is ``user_registration.yaml`` beside
this module.

Each create step treats a 409 as a claim to check, not a success: it reads the existing record
and succeeds (``status: "already_exists"``) only when it matches what this registration asked
for; otherwise the step fails permanently with a ``*_CONFLICT`` code.

The welcome and the activation belong to the person, not to the task: registering the same
person again completes without sending a second welcome (``status: "already_sent"``, with the
first sequence's messages) or activating them again (``status: "already_active"``). The welcome
is sent with a person-scoped ``Idempotency-Key`` (``welcome/<user_id>``), so two registrations
racing each other send one sequence; and when the person existed before this registration, the
messages already sent are looked up first, which holds after the service forgets the key.

A dependency's results may come from an operator's resolution or a degraded step's fallback
rather than from its handler, so every handler reads them through :func:`result_field`: a
missing field is a permanent ``MISSING_DEPENDENCY_RESULT`` naming the step and the field, never
a ``KeyError`` retried until the attempts run out.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import quote

from orchestrator import codec
from orchestrator.errors import PermanentError, RetryableError
from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.http import ServiceCaller, ServiceResponse
from orchestrator.http.classify import classify
from orchestrator.models import JSON

BLOCKED_EMAIL_DOMAINS: Final = frozenset(
    {
        "mailinator.com",
        "guerrillamail.com",
        "10minutemail.com",
        "tempmail.com",
        "yopmail.com",
        "trashmail.com",
        "sharklasers.com",
    }
)
BRANCHES: Final = ("setup_billing_profile", "initialize_preferences")
#: How soon to look again when another registration of the person is sending its welcome now.
WELCOME_IN_FLIGHT_RETRY_S: Final = 1.0
#: The error code of a dependency whose results lack what a step needs.
MISSING_DEPENDENCY_RESULT: Final = "MISSING_DEPENDENCY_RESULT"


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def dependency_results(step: StepInput, name: str) -> JSON:
    """The results of dependency ``name`` (``{}`` if it handed over none)."""
    results = step.dependency_results.get(name)
    return results if isinstance(results, dict) else {}


def result_field(step: StepInput, name: str, field: str, kind: type = object) -> Any:
    """Field ``field`` of dependency ``name``'s results, of type ``kind``.

    Missing or of another type (a step resolved by hand without it, say), it is a permanent
    ``MISSING_DEPENDENCY_RESULT``: running the step again cannot make the field appear.
    """
    value = dependency_results(step, name).get(field)
    if value is None or not isinstance(value, kind):
        wanted = "" if kind is object else f" (a {kind.__name__})"
        raise PermanentError(
            f"{step.step_name} needs {field!r}{wanted} from the results of {name}, which lack "
            "it (resolved by hand or degraded without it?)",
            error_code=MISSING_DEPENDENCY_RESULT,
        )
    return value


def _user_id(step: StepInput) -> str:
    return str(result_field(step, "create_user_account", "user_id"))


class RegistrationHandlers:
    """The five handlers, sharing one :class:`ServiceCaller`."""

    def __init__(self, caller: ServiceCaller) -> None:
        self.caller = caller

    def register(self, registry: HandlerRegistry) -> None:
        for name in (
            "create_user_account",
            "setup_billing_profile",
            "initialize_preferences",
            "send_welcome_sequence",
            "update_user_status",
        ):
            registry.register(name, getattr(self, name))

    async def create_user_account(self, step: StepInput) -> JSON:
        info = step.context["user_info"]
        domain = info["email"].rsplit("@", 1)[-1].lower()
        if domain in BLOCKED_EMAIL_DOMAINS:
            raise PermanentError(
                f"disposable email domain {domain} is not allowed",
                error_code="BLOCKED_EMAIL_DOMAIN",
            )
        body = _without_none(
            {
                k: info.get(k)
                for k in ("email", "name", "plan", "phone", "company", "source", "referral_code")
            }
        )
        resp = await self.caller.call(step, "POST", "/users", body=body, accept={409})
        if resp.status != 409:
            return _account(step, resp, "created")
        found = await self.caller.call(step, "GET", f"/users?email={_query(info['email'])}")
        users = found.field("users", list)
        existing = found.within(users[0], "users[0]") if users else None
        if existing is None or not _same_user(existing, info):
            raise PermanentError(
                f"{info['email']} is already registered with other details",
                error_code="USER_CONFLICT",
                http_status=409,
            )
        return _account(step, existing, "already_exists")

    async def setup_billing_profile(self, step: StepInput) -> JSON:
        info, billing = step.context["user_info"], step.context.get("billing_info", {})
        user_id = _user_id(step)
        method = billing.get("payment_method")
        body = _without_none(
            {
                "user_id": user_id,
                "plan": info["plan"],
                "payment_method": {"type": method} if isinstance(method, str) else method,
                "billing_address": billing.get("billing_address"),
                "referral_code": info.get("referral_code"),
            }
        )
        profile = await self.caller.call(step, "POST", "/profiles", body=body, accept={409})
        status = "created"
        if profile.status == 409:
            profile = await self.caller.call(step, "GET", f"/profiles/{user_id}")
            plan = profile.field("plan", str)
            if plan != info["plan"]:
                raise PermanentError(
                    f"user {user_id} already has a {plan} billing profile",
                    error_code="BILLING_CONFLICT",
                    http_status=409,
                )
            status = "already_exists"
        number = (int, float)
        return {
            "profile_id": profile.field("id", str, what="profile_id"),
            "user_id": user_id,
            "status": status,
            "plan": profile.field("plan", str),
            "monthly_price": profile.field("monthly_price", number),
            "trial_days": profile.field("trial_days", int),
            "trial_ends_at": profile.field("trial_ends_at", str, nullable=True),
            "discount_percent": profile.field("discount_percent", number),
            "correlation_id": step.correlation_id,
        }

    async def initialize_preferences(self, step: StepInput) -> JSON:
        user_id = _user_id(step)
        wanted = dict(step.context.get("preferences", {}))
        resp = await self.caller.call(
            step,
            "POST",
            "/preferences",
            body={"user_id": user_id, "preferences": wanted},
            accept={409},
        )
        status = "created"
        if resp.status == 409:
            resp = await self.caller.call(step, "GET", f"/preferences/{user_id}")
            stored = resp.field("preferences", dict)
            if any(stored.get(k) != v for k, v in wanted.items()):
                raise PermanentError(
                    f"user {user_id} already has different preferences",
                    error_code="PREFERENCES_CONFLICT",
                    http_status=409,
                )
            status = "already_exists"
        return {
            "user_id": user_id,
            "status": status,
            "defaults_used": False,
            "preferences": resp.field("preferences", dict),
            "correlation_id": step.correlation_id,
        }

    async def send_welcome_sequence(self, step: StepInput) -> JSON:
        info = step.context["user_info"]
        billing = dependency_results(step, "setup_billing_profile")
        prefs = result_field(step, "initialize_preferences", "preferences", dict)
        # A degraded preferences step hands over its fallback: the service's defaults.
        defaults = bool(dependency_results(step, "initialize_preferences").get("defaults_used"))
        user_id = _branch_user_id(step)
        if _person_existed(step):
            earlier = await self._welcome_already_sent(step, user_id)
            if earlier is not None:
                return earlier
        channels = welcome_channels(info, prefs)
        body = {
            "user_id": user_id,
            "email": info["email"],
            "name": info["name"],
            "plan": info["plan"],
            "channels": channels,
            "content": welcome_content(info, billing, prefs, default_preferences=defaults),
        }
        resp = await self.caller.call(
            step, "POST", "/welcome", body=body, accept={422}, idempotency_key=f"welcome/{user_id}"
        )
        if resp.status == 422:
            return await self._welcome_key_reused(step, user_id, resp)
        # A replay of this registration's own send (a lost response) carries its correlation id.
        messages = _messages(resp)
        mine = not resp.replayed or any(
            m["correlation_id"] == step.correlation_id for m in messages
        )
        return {
            "message_ids": resp.field("message_ids", list),
            "count": resp.field("count", int, what="message_count"),
            "channels": channels if mine else _channels_of(messages),
            "subject": body["content"]["subject"] if mine else _subject_of(messages),
            "user_id": user_id,
            "status": "sent" if mine else "already_sent",
            "default_preferences": defaults,
            "correlation_id": step.correlation_id,
        }

    async def _welcome_key_reused(
        self, step: StepInput, user_id: str, resp: ServiceResponse
    ) -> JSON:
        """The person's welcome key was used for another body: another registration of them
        sent (or is sending) their welcome with other details (an e-mail in other case, a
        phone). Report that sequence; if it is not there yet, look again shortly."""
        if not isinstance(resp.body, dict) or resp.body.get("error") != "idempotency_key_reused":
            raise classify(resp.status, codec.dumps(resp.body), None)
        earlier = await self._welcome_already_sent(step, user_id)
        if earlier is None:
            raise RetryableError(
                f"another registration of {user_id} is sending its welcome now",
                retry_after_s=WELCOME_IN_FLIGHT_RETRY_S,
                error_code="WELCOME_IN_FLIGHT",
            )
        return earlier

    async def _welcome_already_sent(self, step: StepInput, user_id: str) -> JSON | None:
        """The welcome sequence the person already got, as this step's results, or None."""
        found = await self.caller.call(step, "GET", f"/messages?user_id={_query(user_id)}")
        messages = _messages(found)
        if not messages:
            return None
        return {
            "message_ids": [m["id"] for m in messages],
            "count": len(messages),
            "channels": _channels_of(messages),
            "subject": _subject_of(messages),
            "user_id": user_id,
            "status": "already_sent",
            "correlation_id": step.correlation_id,
        }

    async def update_user_status(self, step: StepInput) -> JSON:
        welcome = "send_welcome_sequence"
        user_id = str(result_field(step, welcome, "user_id"))
        info = step.context["user_info"]
        if dependency_results(step, welcome).get("status") == "already_sent":
            # A person welcomed before may be active already: activation is theirs, not ours.
            user = await self.caller.call(step, "GET", f"/users/{_query(user_id)}")
            if user.field("status", str) == "active":
                return {
                    "user_id": user_id,
                    "status": "already_active",
                    "summary": user.body.get("registration_summary"),
                    "correlation_id": step.correlation_id,
                }
        summary = {
            "plan": info["plan"],
            "source": info["source"],
            "messages_sent": result_field(step, welcome, "count", int),
            "channels": result_field(step, welcome, "channels", list),
            "task_id": step.task_id,
            "correlation_id": step.correlation_id,
        }
        resp = await self.caller.call(
            step,
            "PATCH",
            f"/users/{user_id}",
            body={"status": "active", "registration_summary": summary},
        )
        # The reference records this on completion; the task's context stays as submitted.
        outcome = {
            "user_id": user_id,
            "plan": info["plan"],
            "source": info["source"],
            "correlation_id": step.correlation_id,
            "completed_at": resp.field("updated_at", str),  # when the user became active
        }
        return {
            "user_id": user_id,
            "status": resp.field("status", str),
            "summary": summary,
            "registration_outcome": outcome,
            "correlation_id": step.correlation_id,
        }


def _branch_user_id(step: StepInput) -> str:
    """The welcome step sees only its direct dependencies; both branches carry the user id."""
    for name in BRANCHES:
        user_id = dependency_results(step, name).get("user_id")
        if user_id:
            return str(user_id)
    raise PermanentError(
        "the welcome step got no user id from its dependencies", error_code="MISSING_USER_ID"
    )


def _person_existed(step: StepInput) -> bool:
    """Whether the person was there before this registration, so a welcome may have been sent.

    A welcome is only ever sent after the person's billing profile was made (billing is
    critical), so a person who got one has a profile, and this registration found it
    (``already_exists``). A brand-new person needs no look-up: nothing was sent to them.
    """
    return any(
        dependency_results(step, name).get("status") == "already_exists" for name in BRANCHES
    )


def _messages(resp: ServiceResponse) -> list[JSON]:
    """The messages a notifications answer lists, each with the fields read from it."""
    listed = resp.field("messages", list)
    read = []
    for i, raw in enumerate(listed):
        m = resp.within(raw, f"messages[{i}]")
        read.append(
            {
                "id": m.field("id", str, what="message_id"),
                "channel": m.field("channel", str),
                "kind": m.field("kind", str),
                "subject": m.field("subject", str, nullable=True),
                "correlation_id": m.field("correlation_id", str),
            }
        )
    return read


def _channels_of(messages: list[JSON]) -> list[str]:
    return list(dict.fromkeys(str(m["channel"]) for m in messages))


def _subject_of(messages: list[JSON]) -> str | None:
    return next((m["subject"] for m in messages if m["kind"] == "welcome"), None)


def _account(step: StepInput, user: ServiceResponse, status: str) -> JSON:
    """The account step's results, from the created user or the matching existing one."""
    return {
        "user_id": user.field("id", str, what="user_id"),
        "email": user.field("email", str),
        "created_at": user.field("created_at", str),
        "status": status,
        "plan": user.field("plan", str),
        "correlation_id": step.correlation_id,
    }


def _same_user(existing: ServiceResponse, info: JSON) -> bool:
    """Whether the user already registered is this registration's: email, name and plan."""
    return bool(
        existing.field("email", str).strip().lower() == str(info["email"]).strip().lower()
        and existing.field("name", str) == info["name"]
        and existing.field("plan", str) == info["plan"]
    )


def welcome_channels(info: JSON, prefs: JSON) -> list[str]:
    """Email always; SMS for paid plans with a phone; in-app when they want product updates."""
    channels = ["email"]
    if info.get("phone") and info["plan"] != "free":
        channels.append("sms")
    if prefs.get("product_updates"):
        channels.append("in_app")
    return channels


#: The line a welcome gets when the preferences service could not be reached for good.
DEFAULT_PREFERENCES_NOTE: Final = (
    "We could not load your preferences, so we used the default preferences for now; "
    "change them any time in settings."
)


def welcome_content(
    info: JSON, billing: JSON, prefs: JSON, *, default_preferences: bool = False
) -> JSON:
    """The welcome's subject and body. ``billing`` may lack fields (a profile resolved by
    hand): a line whose facts are missing is left out rather than failing the step."""
    first = info["name"].split()[0]
    lines = [f"Hi {first}, welcome to Interlock {info['plan'].capitalize()}!"]
    trial_days, ends = billing.get("trial_days"), billing.get("trial_ends_at")
    price = billing.get("monthly_price")
    if trial_days and isinstance(ends, str) and isinstance(price, int | float):
        lines.append(
            f"Your {trial_days}-day trial ends {ends[:10]}; then it is {price:.2f} USD a month."
        )
        if billing.get("discount_percent"):
            lines.append(f"Your referral saves you {billing['discount_percent']} %.")
    elif "trial_days" in billing and not trial_days:
        lines.append("Your free plan never expires.")
    if prefs.get("newsletter"):
        lines.append("You will get our newsletter; change that any time in settings.")
    if default_preferences:
        lines.append(DEFAULT_PREFERENCES_NOTE)
    return {"subject": f"Welcome to Interlock, {first}!", "body": "\n".join(lines)}


def _query(value: str) -> str:
    """A query-string value, percent-encoded: a raw ``+`` (a tagged address) would read as a
    space on the service's side."""
    return quote(value, safe="@")
