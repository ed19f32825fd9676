"""The users service: accounts keyed by a case-insensitive email.

``POST /users`` → 201 (``status: "pending"``); the same email again → 409 with the existing user.
``GET /users?email=``, ``GET /users/{id}``, ``PATCH /users/{id}``.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from mock_services.validation import JSON, ApiError, BodySchema, query_limit, read_json

if TYPE_CHECKING:
    from mock_services.services import SandboxData

PLANS = ["free", "pro", "enterprise"]
USER_STATUSES = ["pending", "active", "suspended"]
_OPTIONAL_TEXT = {"type": ["string", "null"], "maxLength": 200}

CREATE_USER = BodySchema(
    {
        "type": "object",
        "required": ["email", "name"],
        "additionalProperties": False,
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 254},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "plan": {"enum": PLANS},
            "phone": _OPTIONAL_TEXT,
            "company": _OPTIONAL_TEXT,
            "source": {"enum": ["web", "mobile", "api", "signup_form", None]},
            "referral_code": _OPTIONAL_TEXT,
        },
    }
)
UPDATE_USER = BodySchema(
    {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "status": {"enum": USER_STATUSES},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "plan": {"enum": PLANS},
            "phone": _OPTIONAL_TEXT,
            "company": _OPTIONAL_TEXT,
            "registration_summary": {"type": "object"},
        },
    }
)


class UsersStore:
    """Users by id, with an index on the lower-cased email."""

    def __init__(self) -> None:
        self.users: dict[str, JSON] = {}
        self._by_email: dict[str, str] = {}

    def by_email(self, email: str) -> JSON | None:
        user_id = self._by_email.get(email.strip().lower())
        return self.users[user_id] if user_id else None

    def create(self, body: JSON, now: str) -> tuple[JSON, bool]:
        """The new user and True, or the existing user with that email and False."""
        existing = self.by_email(body["email"])
        if existing is not None:
            return existing, False
        user = {
            "id": f"usr_{uuid.uuid4().hex[:16]}",
            "email": body["email"].strip(),
            "name": body["name"],
            "plan": body.get("plan", "free"),
            "status": "pending",
            "phone": body.get("phone"),
            "company": body.get("company"),
            "source": body.get("source"),
            "referral_code": body.get("referral_code"),
            "created_at": now,
            "updated_at": now,
        }
        self.users[user["id"]] = user
        self._by_email[user["email"].lower()] = user["id"]
        return user, True

    def clear(self) -> None:
        self.users.clear()
        self._by_email.clear()


def routes(data: SandboxData) -> list[web.RouteDef]:
    store = data.users

    async def create_user(request: web.Request) -> web.Response:
        body = await read_json(request, CREATE_USER)
        user, created = store.create(body, data.now_iso())
        if not created:
            raise ApiError(
                409,
                "user_exists",
                f"a user with email {user['email']} already exists",
                extra={"user": user},
            )
        return web.json_response(user, status=201, headers={"Location": f"/users/{user['id']}"})

    async def list_users(request: web.Request) -> web.Response:
        email = request.query.get("email")
        if email is not None:
            found = store.by_email(email)
            return web.json_response({"users": [found] if found else []})
        limit = query_limit(request)
        return web.json_response({"users": list(store.users.values())[-limit:]})

    async def get_user(request: web.Request) -> web.Response:
        return web.json_response(_find(store, request.match_info["user_id"]))

    async def update_user(request: web.Request) -> web.Response:
        user = _find(store, request.match_info["user_id"])
        changes = await read_json(request, UPDATE_USER)
        user.update(changes, updated_at=data.now_iso())
        return web.json_response(user)

    return [
        web.post("/users", create_user),
        web.get("/users", list_users),
        web.get("/users/{user_id}", get_user),
        web.patch("/users/{user_id}", update_user),
    ]


def _find(store: UsersStore, user_id: str) -> JSON:
    user = store.users.get(user_id)
    if user is None:
        raise ApiError(404, "user_not_found", f"no user with id {user_id}")
    return user


def require_user(data: SandboxData, user_id: Any) -> JSON:
    """For the other services: the user, or 404 (they share the sandbox's data)."""
    user = data.users.users.get(user_id) if isinstance(user_id, str) else None
    if user is None:
        raise ApiError(
            404,
            "user_not_found",
            f"no user with id {user_id}",
            details=[{"path": "user_id", "message": "unknown user"}],
        )
    return user
