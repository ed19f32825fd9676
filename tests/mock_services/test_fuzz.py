"""The services publish no OpenAPI document, so they get a seeded fuzz of their own: JSON bodies
of every shape (the fields they know, with values of the wrong type; nesting; huge and odd
numbers) sent by every method to every route, the admin API's included. No answer is a 5xx that
no fault rule asked for, and every JSON answer is within the shared JSON limits."""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp
import pytest

from httpedge.limits import parse_json
from mock_services.runner import RunningServices
from mock_services.runtime import ServiceConfig

FIELDS = [
    *("email", "name", "plan", "status", "phone", "company", "source", "referral_code"),
    *("user_id", "payment_method", "billing_address", "preferences", "channels", "content"),
    *("kind", "match", "method", "path", "probability", "after", "times", "seed", "per_key"),
    *("delay_ms", "jitter_ms", "hold_ms", "retry_after_s", "limit", "window_s", "fields"),
]
#: Each service's routes, and a good body for its writes that the fuzz then breaks.
ROUTES = {
    "users": ["/users", "/users/{user}", "/users?email=a@example.com", "/users?limit={limit}"],
    "billing": ["/profiles", "/profiles/{user}"],
    "preferences": ["/preferences", "/preferences/{user}"],
    "notifications": ["/welcome", "/messages?user_id={user}"],
}
ADMIN = [
    "/__admin/faults",
    "/__admin/faults/f1",
    "/__admin/reset",
    "/__admin/requests?limit={limit}",
]
LIMITS = ["2", "10000", "0", "-1", "10001", "abc", "%C2%B2", "1e3", ""]
GOOD = {
    "/users": {"email": "b@example.com", "name": "Bo", "plan": "pro", "source": "web"},
    "/users/{user}": {"status": "active", "registration_summary": {"steps": 4}},
    "/profiles": {"user_id": "{user}", "plan": "pro", "payment_method": {"type": "card"}},
    "/preferences": {"user_id": "{user}", "preferences": {"newsletter": True}},
    "/welcome": {"user_id": "{user}", "email": "a@example.com", "name": "Ada", "plan": "pro"},
    "/__admin/faults": {"kind": "latency", "delay_ms": 1, "match": {"path": "/users*"}},
    "/__admin/faults/f1": {"times": 2, "probability": 0.5},
}
METHODS = {
    "/users": ["POST", "GET"],
    "/users/{user}": ["GET", "PATCH"],
    "/__admin/faults": ["POST", "POST", "GET", "DELETE"],
    "/__admin/faults/f1": ["GET", "PATCH", "PUT", "DELETE"],
    "/__admin/requests": ["GET"],
}
#: Not ``hang``: each held request would cost the client's whole timeout.
KINDS = ["error", "rate_limit", "latency", "reset", "malformed", "lost_response", "down"]
#: What an injected fault (a rule the fuzz itself added) may answer with.
INJECTED = (b"injected", b"service_unavailable", b"usr_trunc")


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth < 3 and roll < 0.25:
        keys = rng.sample(FIELDS, rng.randint(0, 4)) + (
            [rng.choice(["", "x", "é"])] * (roll < 0.05)
        )
        return {k: _value(rng, depth + 1) for k in keys}
    if depth < 3 and roll < 0.35:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return rng.choice(
        [
            None,
            True,
            0,
            -1,
            2**63 - 1,
            -(2**63),
            rng.randint(-5, 10**6),
            1e308,
            -0.0,
            rng.random(),
            "",
            "error",
            "latency",
            "hang",
            "usr_x",
            "a@example.com",
            "pro",
            "GET",
            "*",
            "REF-ABCD1234",
            "x" * rng.randint(0, 300),
        ]
    )


def _broken(rng: random.Random, good: Any, user: str) -> Any:
    """``good`` (with the user's id) with a few fields changed, dropped or added; or anything."""
    if good is None or rng.random() < 0.2:
        return _value(rng)
    body = {k: (user if v == "{user}" else v) for k, v in good.items()}
    if "kind" in body and rng.random() < 0.4:  # the field every other one depends on
        body["kind"] = rng.choice([*KINDS, {"error": 1}, ["error"], 7, None, "boom"])
    for _ in range(rng.randint(0, 3)):
        field = rng.choice([*body] * 4 + FIELDS)  # mostly the fields this body has
        roll = rng.random()
        if roll < 0.3:
            body.pop(field, None)
        else:
            body[field] = _value(rng)
    return body


@pytest.mark.parametrize("service_config", [ServiceConfig(allow_fault_headers=True)])
async def test_no_body_gets_an_unasked_for_5xx_or_json_beyond_the_limits(
    services: RunningServices,
) -> None:
    rng = random.Random(14)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as client:
        async with client.post(
            services.urls["users"] + "/users", json={"email": "ada@example.com", "name": "Ada"}
        ) as resp:
            user = (await resp.json())["id"]
        for n in range(1500):
            service = rng.choice(list(services.urls))
            template = rng.choice(ROUTES[service] * 3 + ADMIN)
            who = user if rng.random() < 0.8 else "nobody"
            route = template.format(user=who, limit=rng.choice(LIMITS))
            usual = METHODS.get(template.split("?")[0], ["POST", "GET"])
            method = rng.choice(usual if rng.random() < 0.85 else ["PUT", "DELETE", "PATCH"])
            body = _broken(rng, GOOD.get(template.split("?")[0]), user)
            headers = {"Content-Type": "application/json"}
            if rng.random() < 0.2:
                headers["Idempotency-Key"] = rng.choice(["k1", "k2", "x" * 256])
            if rng.random() < 0.1:
                headers["X-Interlock-Fault"] = json.dumps(_value(rng))
            sent = json.dumps(body) if method != "GET" else None
            try:
                async with client.request(
                    method, services.urls[service] + route, data=sent, headers=headers
                ) as resp:
                    raw = await resp.read()
                    status, ctype = resp.status, resp.content_type
            except (aiohttp.ClientError, TimeoutError):
                continue  # a reset, or a long latency, that a rule the fuzz added asked for
            where = f"#{n} {method} {service}{route} {sent!r:.300} -> {status} {raw[:200]!r}"
            assert status < 500 or any(mark in raw for mark in INJECTED), where
            if ctype == "application/json" and b"usr_trunc" not in raw:
                parse_json(raw)  # valid JSON within the limits
            if rng.random() < 0.1:  # now and then, start over: faults, keys and data
                for url in services.urls.values():
                    async with client.post(url + "/__admin/reset") as reset:
                        assert reset.status == 200
