"""The preferences service: one preferences record per user, merged over documented defaults.

``POST /preferences`` → 201; a second time → 409 with the stored record.
``GET /preferences/{user_id}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from mock_services.services.users import require_user
from mock_services.validation import ApiError, BodySchema, read_json

if TYPE_CHECKING:
    from mock_services.services import SandboxData

#: What a user gets for anything they did not choose.
DEFAULT_PREFERENCES: Final[dict[str, Any]] = {
    "marketing_emails": False,
    "product_updates": True,
    "newsletter": False,
    "language": "en",
    "timezone": "UTC",
    "theme": "system",
}
_BOOL = {"type": "boolean"}
CREATE_PREFERENCES = BodySchema(
    {
        "type": "object",
        "required": ["user_id"],
        "additionalProperties": False,
        "properties": {
            "user_id": {"type": "string", "minLength": 1},
            "preferences": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "marketing_emails": _BOOL,
                    "product_updates": _BOOL,
                    "newsletter": _BOOL,
                    "language": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"},
                    "timezone": {"type": "string", "minLength": 1, "maxLength": 64},
                    "theme": {"enum": ["light", "dark", "system"]},
                },
            },
        },
    }
)


def routes(data: SandboxData) -> list[web.RouteDef]:
    records = data.preferences

    async def create_preferences(request: web.Request) -> web.Response:
        body = await read_json(request, CREATE_PREFERENCES)
        user_id = body["user_id"]
        require_user(data, user_id)
        existing = records.get(user_id)
        if existing is not None:
            raise ApiError(
                409,
                "preferences_exist",
                f"user {user_id} already has preferences",
                extra={"preferences": existing},
            )
        now = data.now_iso()
        record = {
            "user_id": user_id,
            "preferences": {**DEFAULT_PREFERENCES, **body.get("preferences", {})},
            "created_at": now,
            "updated_at": now,
        }
        records[user_id] = record
        return web.json_response(
            record, status=201, headers={"Location": f"/preferences/{user_id}"}
        )

    async def get_preferences(request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        record = records.get(user_id)
        if record is None:
            raise ApiError(404, "preferences_not_found", f"no preferences for user {user_id}")
        return web.json_response(record)

    return [
        web.post("/preferences", create_preferences),
        web.get("/preferences/{user_id}", get_preferences),
    ]
