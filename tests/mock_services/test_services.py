"""Each service's endpoints: success, duplicates (409 with the stored record), errors."""

from __future__ import annotations

import pytest

from mock_services.runner import RunningServices
from mock_services.services.users import CREATE_USER
from mock_services.validation import ApiError, check
from tests.mock_services.conftest import Api, Ticker


async def test_create_user_is_pending_with_location(api: Api) -> None:
    status, user = await api.call(
        "POST",
        "users",
        "/users",
        {"email": "Ada@Example.com", "name": "Ada", "plan": "pro", "source": "web"},
    )
    assert status == 201
    assert user["status"] == "pending" and user["id"].startswith("usr_")
    assert user["created_at"]
    status, fetched = await api.call("GET", "users", f"/users/{user['id']}")
    assert (status, fetched) == (200, user)


async def test_same_email_any_case_is_409_with_the_existing_user(api: Api) -> None:
    first = await api.user("grace@example.com")
    status, body = await api.call(
        "POST", "users", "/users", {"email": "GRACE@example.com", "name": "Other", "plan": "free"}
    )
    assert status == 409
    assert body["error"] == "user_exists" and body["user"] == first
    status, found = await api.call("GET", "users", "/users?email=Grace@EXAMPLE.com")
    assert (status, found["users"]) == (200, [first])
    status, found = await api.call("GET", "users", "/users?email=nobody@example.com")
    assert found["users"] == []


async def test_patch_user_status(api: Api) -> None:
    user = await api.user()
    status, body = await api.call("PATCH", "users", f"/users/{user['id']}", {"status": "active"})
    assert status == 200 and body["status"] == "active"
    status, body = await api.call("PATCH", "users", f"/users/{user['id']}", {"status": "gone"})
    assert status == 422 and body["details"][0]["path"] == "status"
    status, body = await api.call("PATCH", "users", "/users/usr_missing", {"status": "active"})
    assert status == 404 and body["error"] == "user_not_found"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "No Email"}, ["email"]),
        ({"email": "not-an-email", "name": "X"}, ["email"]),
        ({"email": "a@example.com", "name": 5, "plan": "gold"}, ["name", "plan"]),
        ({"email": "a@example.com", "name": "X", "shoe_size": 9}, ["body"]),
    ],
)
async def test_bad_user_bodies_are_422_naming_each_field_and_store_nothing(
    api: Api, services: RunningServices, body: dict[str, object], fields: list[str]
) -> None:
    status, error = await api.call("POST", "users", "/users", body)
    assert status == 422 and error["error"] == "validation_failed"
    assert [d["path"] or "body" for d in error["details"]] == fields
    assert services.data.users.users == {}


async def test_malformed_json_is_400(api: Api, services: RunningServices) -> None:
    async with api.client.post(
        api.url("users", "/users"), data=b'{"email": ', headers={"Content-Type": "application/json"}
    ) as resp:
        body = await resp.json()
    assert resp.status == 400 and body["error"] == "malformed_json"
    assert services.data.users.users == {}


async def test_unknown_route_and_method_are_json(api: Api) -> None:
    status, body = await api.call("GET", "users", "/nowhere")
    assert status == 404 and body["error"] == "not_found"
    status, body = await api.call("DELETE", "users", "/users")
    assert status == 405 and body["error"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("plan", "referral", "monthly", "trial_days", "discount"),
    [
        ("free", None, 0.0, 0, 0),
        ("pro", None, 29.99, 14, 0),
        ("enterprise", None, 99.99, 30, 0),
        ("pro", "REF-AB12CD34", 23.99, 14, 20),
        ("enterprise", "REF-ZZZZ9999", 79.99, 30, 20),
    ],
)
async def test_billing_prices_by_plan_and_referral(
    api: Api, plan: str, referral: str | None, monthly: float, trial_days: int, discount: int
) -> None:
    user = await api.user(plan=plan)
    status, profile = await api.call(
        "POST",
        "billing",
        "/profiles",
        {"user_id": user["id"], "plan": plan, "referral_code": referral},
    )
    assert status == 201
    assert (profile["monthly_price"], profile["trial_days"], profile["discount_percent"]) == (
        monthly,
        trial_days,
        discount,
    )
    assert profile["amount_due_now"] == 0.0
    assert profile["status"] == ("free" if plan == "free" else "trialing")
    assert (profile["trial_ends_at"] is None) == (plan == "free")


async def test_billing_second_profile_is_409_and_unknown_user_404(api: Api) -> None:
    user = await api.user()
    body = {
        "user_id": user["id"],
        "plan": "pro",
        "payment_method": {"type": "card", "last4": "4242"},
    }
    status, first = await api.call("POST", "billing", "/profiles", body)
    assert status == 201
    status, again = await api.call("POST", "billing", "/profiles", {**body, "plan": "free"})
    assert status == 409 and again["profile"] == first
    status, fetched = await api.call("GET", "billing", f"/profiles/{user['id']}")
    assert (status, fetched) == (200, first)
    status, missing = await api.call(
        "POST", "billing", "/profiles", {"user_id": "usr_nobody", "plan": "pro"}
    )
    assert status == 404 and missing["error"] == "user_not_found"
    status, _ = await api.call("GET", "billing", "/profiles/usr_nobody")
    assert status == 404


async def test_billing_rejects_a_malformed_referral_code(
    api: Api, services: RunningServices
) -> None:
    user = await api.user()
    status, body = await api.call(
        "POST",
        "billing",
        "/profiles",
        {"user_id": user["id"], "plan": "pro", "referral_code": "REF-1"},
    )
    assert status == 422 and body["details"][0]["path"] == "referral_code"
    assert services.data.billing == {}


async def test_preferences_merge_over_defaults_then_409(api: Api) -> None:
    user = await api.user()
    body = {"user_id": user["id"], "preferences": {"newsletter": True, "theme": "dark"}}
    status, record = await api.call("POST", "preferences", "/preferences", body)
    assert status == 201
    assert record["preferences"] == {
        "marketing_emails": False,
        "product_updates": True,
        "newsletter": True,
        "language": "en",
        "timezone": "UTC",
        "theme": "dark",
    }
    status, again = await api.call("POST", "preferences", "/preferences", body)
    assert status == 409 and again["preferences"] == record
    status, fetched = await api.call("GET", "preferences", f"/preferences/{user['id']}")
    assert (status, fetched) == (200, record)
    status, bad = await api.call(
        "POST",
        "preferences",
        "/preferences",
        {"user_id": user["id"], "preferences": {"newsletter": "yes"}},
    )
    assert status == 422 and bad["details"][0]["path"] == "preferences.newsletter"


@pytest.mark.parametrize(
    ("plan", "channels", "count"),
    [
        ("free", ["email"], 1),
        ("pro", ["email", "sms"], 4),
        ("enterprise", ["email", "sms", "in_app"], 9),
    ],
)
async def test_welcome_sends_messages_by_plan_and_channel(
    api: Api, plan: str, channels: list[str], count: int
) -> None:
    user = await api.user(plan=plan)
    body = {
        "user_id": user["id"],
        "email": user["email"],
        "name": user["name"],
        "plan": plan,
        "channels": channels,
        "content": {"subject": "Hello Ada", "body": "Welcome aboard"},
    }
    status, sent = await api.call(
        "POST", "notifications", "/welcome", body, headers={"X-Correlation-ID": "cid-welcome"}
    )
    assert status == 202 and sent["count"] == count == len(sent["message_ids"])
    status, listed = await api.call("GET", "notifications", f"/messages?user_id={user['id']}")
    assert [m["id"] for m in listed["messages"]] == sent["message_ids"]
    assert {m["correlation_id"] for m in listed["messages"]} == {"cid-welcome"}
    assert listed["messages"][0]["subject"] == "Hello Ada"


async def test_more_than_ten_welcome_sends_a_minute_is_429(
    api: Api, services: RunningServices, ticker: Ticker
) -> None:
    user = await api.user(plan="free")
    body = {"user_id": user["id"], "email": user["email"], "name": "Ada", "plan": "free"}
    for _ in range(10):
        status, _ = await api.call("POST", "notifications", "/welcome", body)
        assert status == 202
        ticker.advance(1)
    async with api.client.post(api.url("notifications", "/welcome"), json=body) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "50"  # the first send leaves the window in 50 s
    assert len(services.data.notifications.messages) == 10
    ticker.advance(50)
    status, _ = await api.call("POST", "notifications", "/welcome", body)
    assert status == 202


async def test_correlation_id_is_echoed_or_made(api: Api) -> None:
    async with api.client.get(
        api.url("users", "/users"), headers={"X-Correlation-ID": "cid-given"}
    ) as resp:
        assert resp.headers["X-Correlation-ID"] == "cid-given"
    async with api.client.get(api.url("users", "/users")) as resp:
        assert resp.headers["X-Correlation-ID"].startswith("cid-")


def test_bodies_take_the_compiled_fast_path_and_rejections_still_list_every_field() -> None:
    good = {"email": "ada@example.com", "name": "Ada", "plan": "pro"}
    assert CREATE_USER.accepts(good)
    check(good, CREATE_USER)
    with pytest.raises(ApiError) as info:
        check({"email": "not-an-email", "name": "", "extra": 1}, CREATE_USER)
    assert info.value.status == 422
    assert {d["path"] for d in info.value.details or []} == {"", "email", "name"}


async def test_a_limit_that_is_not_an_ascii_number_is_a_400(api: Api) -> None:
    user = await api.user()
    for service, path in (
        ("users", "/users"),
        ("users", "/__admin/requests"),
        ("notifications", f"/messages?user_id={user['id']}&"),
    ):
        for bad in ("%C2%B2", "%D9%A3", "-1", "0", "10001", "1e3"):  # ², an Arabic-Indic three
            sep = "" if path.endswith("&") else "?"
            status, body = await api.call("GET", service, f"{path}{sep}limit={bad}")
            assert status == 400 and body["error"] == "bad_query", (path, bad, body)
