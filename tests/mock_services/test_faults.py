"""Every fault kind seen from a real aiohttp client, and the rules' counting and seeding."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from typing import Any

import aiohttp
import pytest

from mock_services import faults
from mock_services.errors import FaultRuleError
from mock_services.faults import MAX_RULES, FaultInjector, FaultPlan, parse_rule
from mock_services.runner import RunningServices
from mock_services.runtime import ServiceConfig
from tests.mock_services.conftest import Api

JSON_TYPE = {"Content-Type": "application/json"}

USER = {"email": "ada@example.com", "name": "Ada", "plan": "pro"}


async def test_error_with_retry_after_has_no_effect(api: Api, services: RunningServices) -> None:
    await api.fault("users", {"kind": "error", "status": 503, "retry_after_s": 7})
    async with api.client.post(api.url("users", "/users"), json=USER) as resp:
        assert resp.status == 503 and resp.headers["Retry-After"] == "7"
        assert (await resp.json())["error"] == "injected_fault"
    assert services.data.users.users == {}


async def test_rate_limit_lets_limit_through_per_window(api: Api) -> None:
    await api.fault("users", {"kind": "rate_limit", "limit": 2, "window_s": 10})
    statuses = []
    for _ in range(3):
        async with api.client.get(api.url("users", "/users")) as resp:
            statuses.append(resp.status)
            retry_after = resp.headers.get("Retry-After")
    assert statuses == [200, 200, 429] and retry_after == "10"


async def test_latency_delays_then_answers(api: Api) -> None:
    await api.fault("users", {"kind": "latency", "delay_ms": 120})
    started = time.perf_counter()
    status, _ = await api.call("GET", "users", "/users")
    assert status == 200 and time.perf_counter() - started >= 0.12


async def test_hang_hits_the_clients_timeout(api: Api) -> None:
    await api.fault("users", {"kind": "hang", "hold_ms": 30_000})
    with pytest.raises(asyncio.TimeoutError):
        await api.client.get(api.url("users", "/users"), timeout=aiohttp.ClientTimeout(total=0.2))


async def test_hang_ends_with_a_dropped_connection(api: Api) -> None:
    await api.fault("users", {"kind": "hang", "hold_ms": 50})
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.client.get(api.url("users", "/users"))


async def test_reset_is_a_connection_error_and_changes_nothing(
    api: Api, services: RunningServices
) -> None:
    await api.fault("users", {"kind": "reset"})
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.client.post(api.url("users", "/users"), json=USER)
    assert services.data.users.users == {}


async def test_malformed_is_200_with_a_body_that_is_not_json(api: Api) -> None:
    await api.fault("users", {"kind": "malformed"})
    async with api.client.get(api.url("users", "/users")) as resp:
        assert resp.status == 200
        with pytest.raises(json.JSONDecodeError):
            await resp.json()


async def test_lost_response_creates_the_user_then_fails(
    api: Api, services: RunningServices
) -> None:
    await api.fault("users", {"kind": "lost_response", "times": 1})
    headers = {"Idempotency-Key": "lost-1"}
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.client.post(api.url("users", "/users"), json=USER, headers=headers)
    assert len(services.data.users.users) == 1
    async with api.client.post(api.url("users", "/users"), json=USER, headers=headers) as resp:
        assert resp.status == 201 and resp.headers["Idempotent-Replayed"] == "true"
    assert len(services.data.users.users) == 1


async def test_lost_response_with_a_status_answers_that_status(
    api: Api, services: RunningServices
) -> None:
    await api.fault("users", {"kind": "lost_response", "status": 504})
    status, body = await api.call("POST", "users", "/users", USER)
    assert status == 504 and body["error"] == "injected_fault"
    assert len(services.data.users.users) == 1


async def test_missing_fields_answers_without_them_after_the_request_took_effect(
    api: Api, services: RunningServices
) -> None:
    await api.fault("users", {"kind": "missing_fields", "fields": ["id", "status"]})
    status, body = await api.call("POST", "users", "/users", USER)
    assert status == 201
    assert "id" not in body and "status" not in body and body["email"] == USER["email"]
    assert len(services.data.users.users) == 1  # the user exists; only the answer lacks its id


async def test_missing_fields_needs_the_fields() -> None:
    with pytest.raises(FaultRuleError, match="'fields' is a required property"):
        parse_rule({"kind": "missing_fields"}, "f1")
    with pytest.raises(FaultRuleError, match="fields"):
        parse_rule({"kind": "missing_fields", "fields": []}, "f1")


async def test_down_is_503(api: Api) -> None:
    await api.fault("billing", {"kind": "down"})
    status, body = await api.call("GET", "billing", "/profiles/usr_x")
    assert status == 503 and body["error"] == "service_unavailable"
    status, _ = await api.call("GET", "users", "/users")  # other services unaffected
    assert status == 200


async def _statuses(api: Api, count: int, method: str = "GET", path: str = "/users") -> list[int]:
    result = []
    for _ in range(count):
        async with api.client.request(method, api.url("users", path)) as resp:
            result.append(resp.status)
    return result


async def test_after_and_times_fail_twice_then_succeed(api: Api) -> None:
    await api.fault("users", {"kind": "error", "status": 500, "after": 1, "times": 2})
    assert await _statuses(api, 5) == [200, 500, 500, 200, 200]
    _status, rules = await api.call("GET", "users", "/__admin/faults")
    assert (rules["faults"][0]["seen"], rules["faults"][0]["fired"]) == (5, 2)


async def test_match_by_method_and_path_glob(api: Api) -> None:
    await api.fault(
        "users", {"kind": "error", "status": 502, "match": {"method": "get", "path": "/users/*"}}
    )
    assert await _statuses(api, 1, "GET", "/users/usr_1") == [502]
    assert await _statuses(api, 1, "GET", "/users") == [200]
    status, _ = await api.call("POST", "users", "/users", USER)
    assert status == 201


async def test_probability_with_a_seed_is_reproducible(api: Api, services: RunningServices) -> None:
    rule = {"kind": "error", "status": 500, "probability": 0.5, "seed": 42}
    await api.fault("users", rule)
    first = await _statuses(api, 20)
    await api.call("POST", "users", "/__admin/reset")
    await api.fault("users", rule)
    assert await _statuses(api, 20) == first
    assert 3 < first.count(500) < 17
    await api.call("POST", "users", "/__admin/reset")
    await api.fault("users", {**rule, "seed": 7})
    assert await _statuses(api, 20) != first


def test_each_rule_draws_from_its_own_generator() -> None:
    alone, crowded = FaultInjector(lambda: 0.0), FaultInjector(lambda: 0.0)
    alone.add({"kind": "error", "probability": 0.5, "seed": 3, "match": {"path": "/a"}})
    crowded.add({"kind": "latency", "delay_ms": 1, "probability": 0.5, "seed": 9})
    crowded.add({"kind": "error", "probability": 0.5, "seed": 3, "match": {"path": "/a"}})
    pattern = [alone.plan("GET", "/a").terminal is not None for _ in range(30)]
    assert [crowded.plan("GET", "/a").terminal is not None for _ in range(30)] == pattern


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"kind": "explode"}, "kind: must be one of"),
        ({"kind": "error", "status": 200}, "status: 200 is less than the minimum of 400"),
        ({"kind": "latency"}, "'delay_ms' is a required property"),
        ({"kind": "rate_limit", "limit": 0}, "limit: 0 is less than the minimum of 1"),
        ({"kind": "error", "probability": 2}, "probability: 2 is greater than the maximum"),
        ({"kind": "reset", "delay_ms": 5}, "'reset' rule takes"),
        ({"kind": "error", "match": {"host": "x"}}, "match.host: Additional properties"),
        ([1, 2], "must be a JSON object"),
    ],
)
def test_bad_rules_name_the_field(rule: Any, fragment: str) -> None:
    with pytest.raises(FaultRuleError) as caught:
        parse_rule(rule, "r1")
    assert fragment in str(caught.value)


async def test_admin_api_add_get_change_remove_clear(api: Api) -> None:
    rule = await api.fault("users", {"kind": "error", "status": 500})
    status, got = await api.call("GET", "users", f"/__admin/faults/{rule['id']}")
    assert status == 200 and got["status"] == 500
    status, changed = await api.call(
        "PATCH", "users", f"/__admin/faults/{rule['id']}", {"status": 502, "times": 1}
    )
    assert status == 200 and (changed["status"], changed["times"]) == (502, 1)
    assert await _statuses(api, 2) == [502, 200]
    status, removed = await api.call("DELETE", "users", f"/__admin/faults/{rule['id']}")
    assert status == 200 and removed["removed"] == [rule["id"]]
    status, body = await api.call("DELETE", "users", f"/__admin/faults/{rule['id']}")
    assert status == 404 and body["error"] == "fault_not_found"
    await api.fault("users", {"kind": "down"})
    await api.fault("users", {"kind": "reset"})
    status, cleared = await api.call("DELETE", "users", "/__admin/faults")
    assert len(cleared["removed"]) == 2
    assert await _statuses(api, 1) == [200]


async def test_admin_rejects_bad_input_with_details(api: Api) -> None:
    status, body = await api.call(
        "POST", "users", "/__admin/faults", {"kind": "error", "status": "often"}
    )
    assert status == 400 and body["error"] == "invalid_fault_rule"
    assert body["details"] == [{"path": "status", "message": "'often' is not of type 'integer'"}]
    async with api.client.post(
        api.url("users", "/__admin/faults"), data=b"{nope", headers=JSON_TYPE
    ) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "malformed_json"
    rule = await api.fault("users", {"kind": "error"})
    status, body = await api.call("PATCH", "users", f"/__admin/faults/{rule['id']}", {"status": 99})
    assert status == 400 and "status" in body["message"]
    status, body = await api.call("GET", "users", "/__admin/requests?limit=lots")
    assert status == 400 and "limit" in body["message"]


async def test_reset_journal_and_stats(api: Api, services: RunningServices) -> None:
    await api.fault("users", {"kind": "error", "status": 500, "times": 1})
    await _statuses(api, 2)
    await api.user()
    _status, stats = await api.call("GET", "users", "/__admin/stats")
    assert stats["requests"] == 3 and stats["by_status"] == {"500": 1, "200": 1, "201": 1}
    assert stats["faults_fired"] == {"error": 1} and stats["active_rules"] == 1
    _status, journal = await api.call("GET", "users", "/__admin/requests?limit=2")
    assert [r["status"] for r in journal["requests"]] == [200, 201]
    _status, journal = await api.call("GET", "users", "/__admin/requests")
    assert journal["requests"][0]["fault"] == "error"
    await api.call("POST", "users", "/__admin/reset")
    _status, stats = await api.call("GET", "users", "/__admin/stats")
    assert (stats["requests"], stats["active_rules"], stats["faults_fired"]) == (0, 0, {})
    assert services.data.users.users == {}


async def test_admin_paths_are_never_faulted(api: Api) -> None:
    await api.fault("users", {"kind": "down"})
    status, body = await api.call("GET", "users", "/__admin/faults")
    assert status == 200 and len(body["faults"]) == 1


async def test_fault_header_is_ignored_by_default(api: Api) -> None:
    header = {"X-Interlock-Fault": json.dumps({"kind": "error", "status": 418})}
    status, _ = await api.call("GET", "users", "/users", headers=header)
    assert status == 200


@pytest.mark.parametrize("service_config", [ServiceConfig(allow_fault_headers=True)])
async def test_fault_header_when_enabled(api: Api) -> None:
    header = {"X-Interlock-Fault": json.dumps({"kind": "error", "status": 418})}
    status, _ = await api.call("GET", "users", "/users", headers=header)
    assert status == 418
    status, body = await api.call(
        "GET", "users", "/users", headers={"X-Interlock-Fault": '{"kind": "nope"}'}
    )
    assert status == 400 and body["error"] == "bad_fault_header"


async def test_stop_releases_hanging_requests_quickly(api: Api, services: RunningServices) -> None:
    await api.fault("users", {"kind": "hang", "hold_ms": 60_000})
    request = asyncio.create_task(api.client.get(api.url("users", "/users")))
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await services.stop()
    assert time.perf_counter() - started < 2
    with pytest.raises(aiohttp.ClientConnectionError):
        await request


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({"kind": "latency"}, "delay_ms"),
        ({"kind": "error", "bogus": 1}, "bogus"),
        ({"kind": "error", "match": {"host": "x"}}, "match.host"),
        ({"kind": "error", "status": "often"}, "status"),
        ({"kind": "explode"}, "kind"),
        ({"kind": {"a": 1}}, "kind"),
        ({"kind": ["error"]}, "kind"),
        ([1, 2], ""),
        ({"kind": "latency", "delay_ms": 600_001}, "delay_ms"),
        ({"kind": "latency", "delay_ms": 1, "jitter_ms": 10**12}, "jitter_ms"),
        ({"kind": "hang", "hold_ms": 10**9}, "hold_ms"),
        ({"kind": "error", "retry_after_s": 86_401}, "retry_after_s"),
        ({"kind": "rate_limit", "limit": 1, "window_s": 10**7}, "window_s"),
        ({"kind": "error", "probability": float("nan")}, "probability"),
        ({"kind": "error", "retry_after_s": float("nan")}, "retry_after_s"),
        ({"kind": "latency", "delay_ms": float("inf")}, "delay_ms"),
        ({"kind": "rate_limit", "limit": 1, "window_s": float("nan")}, "window_s"),
    ],
)
async def test_a_rejected_rule_names_its_field_and_uses_up_no_id(
    api: Api, rule: Any, path: str
) -> None:
    with pytest.raises(FaultRuleError) as caught:
        parse_rule(rule, "r1")
    assert [p for p, _ in caught.value.fields] == [path]
    if all(math.isfinite(v) for v in _values(rule) if isinstance(v, float)):  # JSON can send it
        status, body = await api.call("POST", "users", "/__admin/faults", rule)
        assert status == 400 and [d["path"] for d in body["details"]] == [path], body
    assert (await api.fault("users", {"kind": "down"}))["id"] == "f1"


def _values(rule: Any) -> list[Any]:
    return list(rule.values()) if isinstance(rule, dict) else []


async def test_non_finite_numbers_never_reach_a_rule(services: RunningServices) -> None:
    """NaN and Infinity are refused as JSON by the edge, in a body or a fault header."""
    users = services.urls["users"]
    async with aiohttp.ClientSession() as client:
        for raw in (
            b'{"kind": "error", "probability": NaN}',
            b'{"kind": "error", "retry_after_s": NaN}',
            b'{"kind": "latency", "delay_ms": Infinity}',
        ):
            async with client.post(f"{users}/__admin/faults", data=raw, headers=JSON_TYPE) as r:
                assert r.status == 400 and (await r.json())["limit"] == "finite_numbers"
        async with client.get(f"{users}/__admin/faults") as resp:
            assert json.loads(await resp.read(), parse_constant=_refuse) == {
                "service": "users",
                "faults": [],
            }


def _refuse(name: str) -> None:
    raise AssertionError(f"{name} in a response")


@pytest.mark.parametrize("service_config", [ServiceConfig(allow_fault_headers=True)])
async def test_a_fault_header_with_nan_is_a_400(api: Api) -> None:
    header = {"X-Interlock-Fault": '{"kind": "error", "retry_after_s": NaN}'}
    status, body = await api.call("GET", "users", "/users", headers=header)
    assert status == 400 and body["error"] == "bad_fault_header" and "finite" in body["message"]


async def _keyed_statuses(api: Api, keys: list[str | None]) -> list[int]:
    result = []
    for key in keys:
        headers = {} if key is None else {"Idempotency-Key": key}
        async with api.client.get(api.url("users", "/users"), headers=headers) as resp:
            result.append(resp.status)
    return result


async def test_per_key_counts_after_and_times_for_each_idempotency_key(api: Api) -> None:
    # "fail every request twice, then let it through": each distinct request is retried with
    # its own key, so the rule must count per key, not across all of them.
    await api.fault("users", {"kind": "error", "status": 503, "times": 2, "per_key": True})
    keys: list[str | None] = ["a", "b", "a", "b", "a", "b", "a", None, None, None]
    assert await _keyed_statuses(api, keys) == [503, 503, 503, 503, 200, 200, 200, 503, 503, 200]
    _status, rules = await api.call("GET", "users", "/__admin/faults")
    rule = rules["faults"][0]
    assert (rule["per_key"], rule["seen"], rule["fired"]) == (True, 10, 6)


async def test_per_key_with_after_lets_each_key_pass_first(api: Api) -> None:
    await api.fault("users", {"kind": "error", "status": 500, "after": 1, "per_key": True})
    assert await _keyed_statuses(api, ["a", "b", "a", "b"]) == [200, 200, 500, 500]


def test_per_key_must_be_a_boolean() -> None:
    with pytest.raises(FaultRuleError, match="per_key"):
        parse_rule({"kind": "down", "per_key": "yes"}, "f1")


def test_per_key_forgets_the_oldest_keys_past_its_bound() -> None:
    injector = FaultInjector(time.monotonic)
    injector.add({"kind": "down", "times": 1, "per_key": True})
    assert injector.plan("GET", "/x", key="k0").terminal is not None
    for i in range(1, FaultInjector.PER_KEY_LIMIT + 1):
        injector.plan("GET", "/x", key=f"k{i}")
    # k0 was the oldest and was forgotten: it counts from zero again.
    assert injector.plan("GET", "/x", key="k0").terminal is not None
    assert injector.plan("GET", "/x", key="k0").terminal is None


async def test_a_service_holds_a_bounded_number_of_rules(api: Api) -> None:
    for _ in range(MAX_RULES):
        await api.fault("users", {"kind": "latency", "delay_ms": 0, "match": {"path": "/x"}})
    status, body = await api.call("POST", "users", "/__admin/faults", {"kind": "down"})
    assert status == 409 and body["error"] == "too_many_fault_rules", body
    await api.call("DELETE", "users", f"/__admin/faults/f{MAX_RULES}")
    assert (await api.fault("users", {"kind": "down"}))["id"] == f"f{MAX_RULES + 1}"


# -- the injector on its own: no server, a clock that moves when told --------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


_REQUIRED_PARAMS: dict[str, dict[str, Any]] = {"rate_limit": {"limit": 1}}


@pytest.mark.parametrize(
    ("kind", "rule", "problem"),
    [
        ("rate_limit", {"kind": "rate_limit"}, "'limit' is a required property"),
        (
            "error",
            {"kind": "error", "x": 1},
            "Additional properties are not allowed ('x' was unexpected)",
        ),
        ("error", {"kind": "error", "status": "500"}, "'500' is not of type 'integer'"),
        ("down", [], "[] is not of type 'object'"),
        ("down", {}, "'kind' is a required property"),
    ],
)
def test_each_kinds_validator_checks_type_required_and_extra_fields(
    kind: str, rule: Any, problem: str
) -> None:
    # The validators are built once, at import; this builds one anew to check how it is built.
    validator = faults._validator(kind)
    assert [e.message for e in validator.iter_errors(rule)] == [problem]
    assert not list(validator.iter_errors({"kind": kind, **_REQUIRED_PARAMS.get(kind, {})}))


def test_problems_are_sorted_by_field_and_name_nested_and_missing_fields() -> None:
    with pytest.raises(FaultRuleError) as caught:
        parse_rule({"kind": "error", "times": 0, "retry_after_s": -1}, "r1")
    assert [field for field, _ in caught.value.fields] == ["retry_after_s", "times"]
    with pytest.raises(FaultRuleError) as caught:
        parse_rule({"kind": "error", "match": {"method": "P O"}}, "r1")
    assert [field for field, _ in caught.value.fields] == ["match.method"]
    with pytest.raises(FaultRuleError) as caught:
        parse_rule({"kind": "rate_limit"}, "r1")
    assert caught.value.fields == [("limit", "'limit' is a required property")]
    with pytest.raises(FaultRuleError) as caught:
        parse_rule({"kind": "error", "x": 1}, "r1")
    assert caught.value.fields == [
        (
            "x",
            "Additional properties are not allowed ('x' was unexpected); a 'error' rule takes "
            "after, id, kind, match, message, per_key, probability, retry_after_s, seed, status, "
            "times",
        )
    ]
    with pytest.raises(FaultRuleError) as caught:
        parse_rule({"kind": "boom"}, "r1")
    assert caught.value.problems == [
        "kind: must be one of error, rate_limit, latency, hang, reset, malformed, lost_response, "
        "down, missing_fields (got 'boom')"
    ]
    with pytest.raises(FaultRuleError) as caught:
        parse_rule([1], "r1")
    assert caught.value.fields == [("", "the rule must be a JSON object")]


def test_a_parsed_rule_and_its_json() -> None:
    plain = parse_rule({"kind": "down"}, "r1")
    assert (plain.method, plain.path, plain.per_key, plain.after, plain.times) == (
        "*",
        "*",
        False,
        0,
        None,
    )
    assert plain.to_json()["match"] == {}
    rule = parse_rule({"kind": "error", "match": {"method": "post", "path": "/users*"}}, "r2")
    assert (rule.method, rule.path, rule.params) == ("POST", "/users*", {"status": 500})
    assert rule.to_json() == {
        "id": "r2",
        "kind": "error",
        "match": {"method": "POST", "path": "/users*"},
        "probability": 1.0,
        "after": 0,
        "times": None,
        "seed": None,
        "per_key": False,
        "status": 500,
    }
    assert parse_rule({"kind": "error", "match": {"path": "/a"}}, "r3").to_json()["match"] == {
        "path": "/a"
    }
    assert parse_rule({"kind": "error", "match": {"method": "GET"}}, "r4").to_json()["match"] == {
        "method": "GET"
    }


def test_ids_count_from_one_again_after_a_reset() -> None:
    injector = FaultInjector(_Clock())
    assert [injector.add({"kind": "down"}).id for _ in range(2)] == ["f1", "f2"]
    injector.reset()
    assert injector.add({"kind": "down"}).id == "f1"


def test_removing_a_rule_forgets_its_counters() -> None:
    injector = FaultInjector(_Clock())
    rule = injector.add({"kind": "down"})
    assert injector.remove(rule.id) is True
    assert injector.remove(rule.id) is False
    with pytest.raises(KeyError):
        injector.counters(rule.id)
    assert injector.get(rule.id) is None and not injector.active


def test_a_change_keeps_the_kinds_parameters_and_a_new_kind_drops_them() -> None:
    injector = FaultInjector(_Clock())
    rule = injector.add({"kind": "error", "status": 503, "times": 1})
    changed = injector.change(rule.id, {"times": 2})
    assert (changed.id, changed.params, changed.times) == (rule.id, {"status": 503}, 2)
    down = injector.change(rule.id, {"kind": "down"})
    assert (down.id, down.kind, down.params, down.times) == (rule.id, "down", {}, 2)
    latency = injector.change(rule.id, {"kind": "latency", "delay_ms": 5})
    assert latency.params == {"delay_ms": 5, "jitter_ms": 0}
    with pytest.raises(FaultRuleError) as caught:
        injector.change(rule.id, [1])
    assert caught.value.problems == ["the changes must be a JSON object"]


def test_latency_rules_add_up_with_their_seeded_jitter_and_count_by_kind() -> None:
    injector = FaultInjector(_Clock())
    injector.add({"kind": "latency", "delay_ms": 10, "jitter_ms": 100, "seed": 3})
    injector.add({"kind": "latency", "delay_ms": 5, "match": {"path": "/other"}})
    injector.add({"kind": "latency", "delay_ms": 1})
    plan = injector.plan("GET", "/x")
    assert plan.delay_ms == 10 + random.Random(3).uniform(0, 100) + 1
    assert (plan.terminal, plan.retry_after_s, plan.fired) == (None, None, ("latency", "latency"))
    assert injector.plan("GET", "/x").fired == ("latency", "latency")
    assert injector.fired_by_kind == {"latency": 4}
    assert FaultInjector(_Clock()).plan("GET", "/x") == FaultPlan()
    assert FaultPlan().delay_ms == 0.0


def test_a_terminal_rule_after_one_that_does_not_match() -> None:
    injector = FaultInjector(_Clock())
    injector.add({"kind": "error", "match": {"path": "/a"}})
    injector.add({"kind": "down"})
    plan = injector.plan("GET", "/b")
    assert plan.terminal is not None and plan.terminal.kind == "down"
    assert (plan.retry_after_s, plan.fired) == (None, ("down",))


def test_a_one_shot_rule_goes_first_and_draws_from_its_own_seed() -> None:
    injector = FaultInjector(_Clock())
    injector.add({"kind": "latency", "delay_ms": 0, "jitter_ms": 1000, "seed": 2})
    injector.add({"kind": "down"})
    extra = parse_rule({"kind": "latency", "delay_ms": 0, "jitter_ms": 1000, "seed": 11}, "hdr")
    plan = injector.plan("GET", "/x", extra)
    assert plan.delay_ms == random.Random(11).uniform(0, 1000) + random.Random(2).uniform(0, 1000)
    first = parse_rule({"kind": "reset"}, "header")
    plan = injector.plan("GET", "/x", first)
    assert (plan.terminal, plan.delay_ms) == (first, 0.0)  # before the installed latency rule


def test_a_certain_rule_draws_nothing_from_its_generator() -> None:
    injector = FaultInjector(_Clock())
    injector.add({"kind": "latency", "delay_ms": 0, "jitter_ms": 1, "probability": 1, "seed": 5})
    assert injector.plan("GET", "/x").delay_ms == random.Random(5).uniform(0, 1)


def test_rate_limit_retry_after_and_window_edges() -> None:
    clock = _Clock()
    injector = FaultInjector(clock)
    injector.add({"kind": "rate_limit", "limit": 2, "window_s": 10})
    assert injector.plan("GET", "/x").terminal is None  # at 0
    clock.now = 3.0
    assert injector.plan("GET", "/x").terminal is None
    clock.now = 4.0
    limited = injector.plan("GET", "/x")
    assert limited.terminal is not None and limited.retry_after_s == 6  # the oldest frees at 10
    clock.now = 9.5
    assert injector.plan("GET", "/x").retry_after_s == 1.0  # never below one second
    clock.now = 10.0  # the first request's window has passed exactly
    assert injector.plan("GET", "/x").terminal is None


def test_a_rate_limit_counts_only_the_requests_it_refused() -> None:
    injector = FaultInjector(_Clock())
    rule = injector.add({"kind": "rate_limit", "limit": 1, "times": 1})
    assert injector.plan("GET", "/x").terminal is None
    assert injector.counters(rule.id).fired == 0
    assert injector.plan("GET", "/x").terminal is not None  # its one time
    assert injector.plan("GET", "/x").terminal is None


def test_per_key_requests_without_a_key_count_together() -> None:
    injector = FaultInjector(_Clock())
    injector.add({"kind": "down", "after": 1, "per_key": True})
    assert [injector.plan("GET", "/x").terminal is not None for _ in range(3)] == [
        False,
        True,
        True,
    ]


def test_per_key_remembers_exactly_its_bound_of_keys() -> None:
    injector = FaultInjector(_Clock())
    injector.add({"kind": "down", "times": 1, "per_key": True})
    assert injector.plan("GET", "/x", key="k0").terminal is not None
    for i in range(1, FaultInjector.PER_KEY_LIMIT):
        injector.plan("GET", "/x", key=f"k{i}")
    # PER_KEY_LIMIT keys in all: k0 is still remembered, and has had its one time.
    assert injector.plan("GET", "/x", key="k0").terminal is None


@pytest.mark.parametrize(
    ("rule", "fields"),
    [
        (
            {"kind": "latency", "delay_ms": math.inf},
            [("delay_ms", "inf is not a finite number")],
        ),
        (
            {"kind": "error", "match": {"method": math.nan}},
            [("match.method", "nan is not a finite number")],  # named once, not twice
        ),
        (
            {"kind": "error", "match": {"host": "x"}},
            [("match.host", "Additional properties are not allowed ('host' was unexpected)")],
        ),
    ],
)
def test_nested_and_non_finite_problems_are_named_by_their_dotted_field(
    rule: dict[str, Any], fields: list[tuple[str, str]]
) -> None:
    with pytest.raises(FaultRuleError) as caught:
        parse_rule(rule, "r1")
    assert caught.value.fields == fields
