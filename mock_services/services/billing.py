"""The billing service: one profile per user, priced by plan.

Prices (USD a month): free 0 (no charge), pro 29.99 with a 14-day trial, enterprise 99.99 with a
30-day trial. A referral code ``REF-`` + 8 letters or digits takes 20 % off.
``POST /profiles`` → 201; a second profile for the user → 409 with the first.
``GET /profiles/{user_id}``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Final

from aiohttp import web

from mock_services.services.users import PLANS, require_user
from mock_services.validation import JSON, ApiError, BodySchema, read_json

if TYPE_CHECKING:
    from mock_services.services import SandboxData

#: plan → (monthly list price, trial days)
PRICING: Final = {
    "free": (Decimal("0.00"), 0),
    "pro": (Decimal("29.99"), 14),
    "enterprise": (Decimal("99.99"), 30),
}
REFERRAL_PATTERN: Final = "^REF-[A-Za-z0-9]{8}$"
REFERRAL_DISCOUNT_PERCENT: Final = 20

_TEXT = {"type": "string", "minLength": 1, "maxLength": 200}
CREATE_PROFILE = BodySchema(
    {
        "type": "object",
        "required": ["user_id", "plan"],
        "additionalProperties": False,
        "properties": {
            "user_id": {"type": "string", "minLength": 1},
            "plan": {"enum": PLANS},
            "payment_method": {
                "type": ["object", "null"],
                "required": ["type"],
                "additionalProperties": False,
                "properties": {
                    "type": {"enum": ["card", "paypal", "bank_transfer", "invoice"]},
                    "last4": {"type": "string", "pattern": "^[0-9]{4}$"},
                    "brand": {"type": "string", "maxLength": 40},
                },
            },
            "billing_address": {
                "type": ["object", "null"],
                "additionalProperties": False,
                "properties": {
                    "street": _TEXT,
                    "city": _TEXT,
                    "state": _TEXT,
                    "zip": _TEXT,
                    "country": _TEXT,
                },
            },
            "referral_code": {
                "anyOf": [{"type": "null"}, {"type": "string", "pattern": REFERRAL_PATTERN}]
            },
        },
    }
)


def price_profile(body: JSON, user_id: str, now: datetime) -> JSON:
    plan = body["plan"]
    list_price, trial_days = PRICING[plan]
    referral = body.get("referral_code")
    discount = REFERRAL_DISCOUNT_PERCENT if referral and plan != "free" else 0
    monthly = (list_price * (100 - discount) / 100).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return {
        "id": f"bil_{uuid.uuid4().hex[:16]}",
        "user_id": user_id,
        "plan": plan,
        "currency": "USD",
        "list_price": float(list_price),
        "discount_percent": discount,
        "monthly_price": float(monthly),
        "trial_days": trial_days,
        "trial_ends_at": (now + timedelta(days=trial_days)).isoformat() if trial_days else None,
        "status": "free" if plan == "free" else "trialing",
        "amount_due_now": 0.0,  # free plans are never charged; paid plans start with a trial
        "payment_method": body.get("payment_method"),
        "billing_address": body.get("billing_address"),
        "referral_code": referral,
        "created_at": now.isoformat(),
    }


def routes(data: SandboxData) -> list[web.RouteDef]:
    profiles = data.billing

    async def create_profile(request: web.Request) -> web.Response:
        body = await read_json(request, CREATE_PROFILE)
        user_id = body["user_id"]
        require_user(data, user_id)
        existing = profiles.get(user_id)
        if existing is not None:
            raise ApiError(
                409,
                "profile_exists",
                f"user {user_id} already has a billing profile",
                extra={"profile": existing},
            )
        profile = price_profile(body, user_id, data.now())
        profiles[user_id] = profile
        return web.json_response(profile, status=201, headers={"Location": f"/profiles/{user_id}"})

    async def get_profile(request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        profile = profiles.get(user_id)
        if profile is None:
            raise ApiError(404, "profile_not_found", f"no billing profile for user {user_id}")
        return web.json_response(profile)

    return [web.post("/profiles", create_profile), web.get("/profiles/{user_id}", get_profile)]
