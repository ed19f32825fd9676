"""The notifications service: welcome messages, with a per-user send limit.

``POST /welcome`` → 202 with the ids of the messages sent: each chosen channel gets the plan's
messages (free: welcome; pro: + trial_started; enterprise: + trial_started, onboarding_call).
More than ``SEND_LIMIT`` welcome sends for one user in a rolling ``SEND_WINDOW_S`` → 429 with
``Retry-After``. ``GET /messages?user_id=`` lists what was sent, so duplicates can be counted.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from typing import TYPE_CHECKING, Final

from aiohttp import web

from mock_services.services.users import PLANS, require_user
from mock_services.validation import JSON, ApiError, BodySchema, query_limit, read_json

if TYPE_CHECKING:
    from mock_services.services import SandboxData

SEND_LIMIT: Final = 10
SEND_WINDOW_S: Final = 60.0
CHANNELS: Final = ["email", "sms", "in_app"]
MESSAGES_BY_PLAN: Final = {
    "free": ["welcome"],
    "pro": ["welcome", "trial_started"],
    "enterprise": ["welcome", "trial_started", "onboarding_call"],
}
SEND_WELCOME = BodySchema(
    {
        "type": "object",
        "required": ["user_id", "email", "name", "plan"],
        "additionalProperties": False,
        "properties": {
            "user_id": {"type": "string", "minLength": 1},
            "email": {"type": "string", "format": "email"},
            "name": {"type": "string", "minLength": 1},
            "plan": {"enum": PLANS},
            "channels": {
                "type": "array",
                "items": {"enum": CHANNELS},
                "minItems": 1,
                "uniqueItems": True,
            },
            "content": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "subject": {"type": "string", "maxLength": 300},
                    "body": {"type": "string", "maxLength": 20_000},
                },
            },
        },
    }
)


class NotificationsStore:
    def __init__(self) -> None:
        self.messages: list[JSON] = []
        self.sends: dict[str, deque[float]] = {}  #: user id → monotonic times of welcome sends

    def clear(self) -> None:
        self.messages.clear()
        self.sends.clear()

    def retry_after_s(self, user_id: str, now: float) -> int | None:
        """None if the user may receive another send now, else seconds until they may."""
        recent = self.sends.setdefault(user_id, deque())
        while recent and recent[0] <= now - SEND_WINDOW_S:
            recent.popleft()
        if len(recent) < SEND_LIMIT:
            return None
        return max(1, math.ceil(recent[0] + SEND_WINDOW_S - now))


def compose(body: JSON, correlation_id: str, now: str) -> list[JSON]:
    content = body.get("content") or {}
    subject = content.get("subject") or f"Welcome to Interlock, {body['name']}!"
    return [
        {
            "id": f"msg_{uuid.uuid4().hex[:16]}",
            "user_id": body["user_id"],
            "channel": channel,
            "kind": kind,
            "to": body["email"] if channel == "email" else body["user_id"],
            "subject": subject if kind == "welcome" else kind.replace("_", " ").capitalize(),
            "body": content.get("body"),
            "correlation_id": correlation_id,
            "sent_at": now,
        }
        for channel in body.get("channels", ["email"])
        for kind in MESSAGES_BY_PLAN[body["plan"]]
    ]


def routes(data: SandboxData) -> list[web.RouteDef]:
    store = data.notifications

    async def send_welcome(request: web.Request) -> web.Response:
        body = await read_json(request, SEND_WELCOME)
        user_id = body["user_id"]
        require_user(data, user_id)
        now = data.monotonic()
        wait_s = store.retry_after_s(user_id, now)
        if wait_s is not None:
            raise ApiError(
                429,
                "too_many_sends",
                f"more than {SEND_LIMIT} welcome sends for {user_id} in a minute",
                headers={"Retry-After": str(wait_s)},
            )
        messages = compose(body, request.headers.get("X-Correlation-ID", ""), data.now_iso())
        store.sends[user_id].append(now)
        store.messages.extend(messages)
        return web.json_response(
            {
                "user_id": user_id,
                "count": len(messages),
                "message_ids": [m["id"] for m in messages],
                "messages": messages,
            },
            status=202,
        )

    async def list_messages(request: web.Request) -> web.Response:
        user_id = request.query.get("user_id")
        found = [m for m in store.messages if user_id is None or m["user_id"] == user_id]
        found = found[-query_limit(request, 1000) :]
        return web.json_response({"messages": found, "count": len(found)})

    return [web.post("/welcome", send_welcome), web.get("/messages", list_messages)]
