"""The ``/__admin`` API every service carries: fault rules, reset, the request journal, stats.

- ``GET /__admin/faults`` list (with each rule's counters), ``POST`` add (201; 409 past
  ``MAX_RULES``),
  ``DELETE`` remove them all;
- ``GET|PATCH|PUT|DELETE /__admin/faults/{id}`` one rule (PATCH/PUT merge changes; the changed
  rule starts counting anew);
- ``POST /__admin/reset`` clears this service's faults, counters, keys, journal and data;
- ``GET /__admin/requests?limit=`` the most recent requests; ``GET /__admin/stats`` totals.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from mock_services.errors import FaultRuleError
from mock_services.faults import MAX_RULES, FaultRule
from mock_services.runtime import RUNTIME, ServiceRuntime
from mock_services.validation import JSON, ApiError, query_limit, read_any_json

PREFIX = "/__admin"


def _runtime(request: web.Request) -> ServiceRuntime:
    return request.app[RUNTIME]


def _rule_json(runtime: ServiceRuntime, rule: FaultRule) -> JSON:
    counters = runtime.injector.counters(rule.id)
    return {**rule.to_json(), "seen": counters.seen, "fired": counters.fired}


def _bad_rule(exc: FaultRuleError) -> ApiError:
    details = [{"path": path, "message": message} for path, message in exc.fields]
    return ApiError(400, "invalid_fault_rule", str(exc), details=details)


def _find(request: web.Request) -> tuple[ServiceRuntime, FaultRule]:
    runtime = _runtime(request)
    rule_id = request.match_info["rule_id"]
    rule = runtime.injector.get(rule_id)
    if rule is None:
        raise ApiError(404, "fault_not_found", f"no fault rule {rule_id} on {runtime.name}")
    return runtime, rule


async def list_faults(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    return web.json_response(
        {
            "service": runtime.name,
            "faults": [_rule_json(runtime, r) for r in runtime.injector.rules()],
        }
    )


async def add_fault(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    if len(runtime.injector.rules()) >= MAX_RULES:
        raise ApiError(
            409,
            "too_many_fault_rules",
            f"{runtime.name} holds {MAX_RULES} fault rules, the most it takes; remove some first",
        )
    try:
        rule = runtime.injector.add(await read_any_json(request))
    except FaultRuleError as exc:
        raise _bad_rule(exc) from None
    return web.json_response(
        _rule_json(runtime, rule), status=201, headers={"Location": f"{PREFIX}/faults/{rule.id}"}
    )


async def clear_faults(request: web.Request) -> web.Response:
    injector = _runtime(request).injector
    removed = [r.id for r in injector.rules()]
    injector.clear()
    return web.json_response({"removed": removed})


async def get_fault(request: web.Request) -> web.Response:
    runtime, rule = _find(request)
    return web.json_response(_rule_json(runtime, rule))


async def change_fault(request: web.Request) -> web.Response:
    runtime, rule = _find(request)
    try:
        changed = runtime.injector.change(rule.id, await read_any_json(request))
    except FaultRuleError as exc:
        raise _bad_rule(exc) from None
    return web.json_response(_rule_json(runtime, changed))


async def remove_fault(request: web.Request) -> web.Response:
    runtime, rule = _find(request)
    runtime.injector.remove(rule.id)
    return web.json_response({"removed": [rule.id]})


async def reset(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    runtime.reset()
    return web.json_response({"service": runtime.name, "reset": True})


async def recent_requests(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    records = runtime.journal.recent(query_limit(request, 100))
    return web.json_response({"service": runtime.name, "requests": [asdict(r) for r in records]})


async def stats(request: web.Request) -> web.Response:
    runtime = _runtime(request)
    return web.json_response(
        {
            "service": runtime.name,
            "requests": runtime.journal.total,
            "by_status": runtime.journal.by_status,
            "faults_fired": runtime.injector.fired_by_kind,
            "active_rules": len(runtime.injector.rules()),
            "idempotent_replays": runtime.idempotency.replays,
            "idempotency_keys": len(runtime.idempotency),
            "fault_layer": runtime.config.faults_enabled,
        }
    )


def admin_routes() -> list[web.RouteDef]:
    one = f"{PREFIX}/faults/{{rule_id}}"
    return [
        web.get(f"{PREFIX}/faults", list_faults),
        web.post(f"{PREFIX}/faults", add_fault),
        web.delete(f"{PREFIX}/faults", clear_faults),
        web.get(one, get_fault),
        web.patch(one, change_fault),
        web.put(one, change_fault),
        web.delete(one, remove_fault),
        web.post(f"{PREFIX}/reset", reset),
        web.get(f"{PREFIX}/requests", recent_requests),
        web.get(f"{PREFIX}/stats", stats),
    ]
