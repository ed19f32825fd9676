"""The orchestrator HTTP API over real HTTP; every response is checked against /openapi.json."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator

from interlock.sandbox import Orchestrator, run_api
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.breaker import BreakerConfig
from orchestrator.event_types import EventType
from orchestrator.models import TaskState
from tests.e2e.conftest import add_fault


class Client:
    def __init__(self, base: str, session: aiohttp.ClientSession, spec: dict[str, Any]) -> None:
        self.base, self.session, self.spec = base, session, spec
        self.checked = 0

    def check(self, schema_name: str, data: Any) -> None:
        """``data`` against one of the document's schemas (for what is not a JSON response)."""
        schema = {"$ref": f"#/components/schemas/{schema_name}"}
        validator = Draft202012Validator({**schema, "components": self.spec["components"]})
        errors = [e.message for e in validator.iter_errors(data)]
        assert not errors, f"{schema_name}: {errors}"
        self.checked += 1

    async def call(
        self,
        method: str,
        path: str,
        template: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        if raw is not None:
            headers = {"Content-Type": "application/json", **(headers or {})}
        data = io.BytesIO(raw) if raw is not None and len(raw) > 65536 else raw
        async with self.session.request(
            method, self.base + path, json=body, data=data, headers=headers
        ) as resp:
            data = await resp.json()
            assert resp.content_type == "application/json"
        operation = self.spec["paths"].get(template or path.split("?")[0], {}).get(method.lower())
        if operation is not None:
            declared = operation["responses"].get(str(resp.status))
            assert declared is not None, f"{method} {path}: status {resp.status} not described"
            schema = declared["content"]["application/json"]["schema"]
            validator = Draft202012Validator({**schema, "components": self.spec["components"]})
            errors = [e.message for e in validator.iter_errors(data)]
            assert not errors, f"{method} {path} -> {resp.status}: {errors}"
            self.checked += 1
        return resp.status, data


@pytest.fixture
async def api(orch: Orchestrator) -> AsyncIterator[Client]:
    async with run_api(orch, port=0) as base, aiohttp.ClientSession() as session:
        async with session.get(base + "/openapi.json") as resp:
            spec = await resp.json()
        Draft202012Validator.check_schema({"$defs": spec["components"]["schemas"]})
        yield Client(base, session, spec)


async def _complete(api: Client, task_id: str, after: int = 0) -> dict[str, Any]:
    url = f"{api.base}/events/stream?task_id={task_id}&after={after}"
    async with api.session.get(url) as resp:
        async for line in resp.content:
            if not line.strip():  # a keep-alive
                continue
            if json.loads(line)["type"] in (EventType.TASK_COMPLETED, EventType.TASK_FAILED):
                break
    _, task = await api.call("GET", f"/tasks/{task_id}", "/tasks/{task_id}")
    return dict(task)


async def test_submit_watch_and_read_a_registration(api: Client, fake: RegistrationFaker) -> None:
    context = fake.registration("pro")
    body = {
        "name": "user_registration",
        "namespace": "microservices",
        "context": context,
        "idempotency_key": "signup-1",
    }
    status, sub = await api.call("POST", "/tasks", body=body)
    assert status == 201 and sub["created"] is True
    status, again = await api.call("POST", "/tasks", body=body)
    assert status == 200 and again["task_id"] == sub["task_id"] and again["created"] is False
    task = await _complete(api, sub["task_id"])
    assert task["state"] == "complete"
    assert [s["name"] for s in task["steps"]] == [
        "create_user_account",
        "setup_billing_profile",
        "initialize_preferences",
        "send_welcome_sequence",
        "update_user_status",
    ]
    status, listed = await api.call("GET", "/tasks?state=complete&limit=5")
    assert [t["task_id"] for t in listed["tasks"]] == [sub["task_id"]]
    assert listed["tasks"][0]["context"] == task["context"]
    assert task["context"]["user_info"]["email"] == context["user_info"]["email"]
    status, attempts = await api.call(
        "GET", f"/tasks/{sub['task_id']}/attempts", "/tasks/{task_id}/attempts"
    )
    assert len(attempts["attempts"]) == 5
    status, events = await api.call("GET", "/events?after=0")
    types = {e["type"] for e in events["events"]}
    (created,) = [e for e in events["events"] if e["type"] == EventType.TASK_CREATED]
    assert created["data"]["context"] == task["context"]
    assert {
        EventType.TASK_CREATED,
        EventType.SERVICE_CALL_STARTED,
        EventType.SERVICE_CALL_COMPLETED,
        EventType.TASK_COMPLETED,
    } <= types
    status, later = await api.call("GET", f"/events?after={events['last_seq']}")
    assert later["events"] == [] or later["events"][0]["seq"] > events["last_seq"]
    for path in ("/breakers", "/analytics/bottlenecks", "/health"):
        status, _ = await api.call("GET", path)
        assert status == 200
    assert api.checked >= 10


async def test_errors_are_json_and_described(api: Client) -> None:
    status, body = await api.call(
        "POST",
        "/tasks",
        body={"name": "user_registration", "context": {"user_info": {"email": "x", "name": ""}}},
    )
    assert status == 400 and {d["path"] for d in body["details"]} == {
        "/user_info/email",
        "/user_info/name",
    }
    status, body = await api.call("POST", "/tasks", body={"name": "nope", "context": {}})
    assert status == 404
    status, body = await api.call("POST", "/tasks", raw=b"{not json")
    assert status == 400 and body["error"] == "malformed_json"
    status, body = await api.call("POST", "/tasks", body={"context": {}})
    assert status == 400 and body["details"] == [{"path": "name", "message": "required"}]
    status, body = await api.call("GET", "/tasks/missing", "/tasks/{task_id}")
    assert status == 404
    status, body = await api.call("GET", "/tasks?state=sleeping")
    assert status == 400 and "state must be one of" in body["message"]
    status, body = await api.call("GET", "/nowhere")
    assert status == 404 and body["error"] == "not_found"


async def test_an_idempotency_key_names_one_request(
    api: Client, services: RunningServices, fake: RegistrationFaker
) -> None:
    """The same key and request return the first task (200); the same key with another context
    or template is refused (422, naming the key), because accepting it would silently drop the
    new request. Key order and defaults the schema fills in do not make a request different."""
    context = fake.registration("pro")
    submit = {"name": "user_registration", "context": context, "idempotency_key": "signup-42"}
    status, first = await api.call("POST", "/tasks", body=submit)
    assert status == 201
    reordered = {k: context[k] for k in reversed(list(context))}
    same = {**submit, "context": reordered, "namespace": "microservices", "version": "1.0.0"}
    status, again = await api.call("POST", "/tasks", body=same)
    assert status == 200 and again["task_id"] == first["task_id"]

    other = fake.registration("free")
    status, body = await api.call("POST", "/tasks", body={**submit, "context": other})
    assert status == 422 and body["error"] == "idempotency_key_reused"
    assert "'signup-42'" in body["message"] and first["task_id"] in body["message"]
    assert body["details"] == [
        {"path": "idempotency_key", "message": f"already names task {first['task_id']}"}
    ]
    status, tasks = await api.call("GET", "/tasks")
    assert [t["task_id"] for t in tasks["tasks"]] == [first["task_id"]]  # nothing new created
    await _complete(api, first["task_id"])
    assert len(services.data.users.users) == 1


async def test_operator_actions(
    api: Client,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    await add_fault(admin, services, "billing", {"kind": "down"})
    _, sub = await api.call(
        "POST", "/tasks", body={"name": "user_registration", "context": fake.registration("pro")}
    )
    task = await _complete(api, sub["task_id"])
    assert task["state"] == "error"
    step = "/tasks/{task_id}/steps/{step}/retry"
    status, body = await api.call(
        "POST", f"/tasks/{sub['task_id']}/steps/create_user_account/retry", step
    )
    assert status == 409 and body["error"] == "invalid_transition"
    async with admin.delete(f"{services.urls['billing']}/__admin/faults"):
        pass
    _, seen = await api.call("GET", f"/events?task_id={sub['task_id']}")
    status, body = await api.call(
        "POST", f"/tasks/{sub['task_id']}/steps/setup_billing_profile/retry", step
    )
    assert status == 200
    task = await _complete(api, sub["task_id"], seen["last_seq"])
    assert task["state"] == "complete"
    _, other = await api.call(
        "POST", "/tasks", body={"name": "user_registration", "context": fake.registration()}
    )
    status, body = await api.call(
        "POST", f"/tasks/{other['task_id']}/cancel", "/tasks/{task_id}/cancel"
    )
    assert status in (200, 409)
    status, body = await api.call(
        "POST",
        f"/tasks/{sub['task_id']}/steps/no_such_step/resolve",
        "/tasks/{task_id}/steps/{step}/resolve",
        body={"results": {}},
    )
    assert status == 404


async def test_counts_by_state(api: Client, orch: Orchestrator) -> None:
    status, empty = await api.call("GET", "/tasks/counts")
    assert status == 200
    assert empty == {
        "counts": dict.fromkeys((s.value for s in TaskState), 0),
        "total": 0,
        "last_seq": 0,
    }
    for _ in range(3):
        await orch.engine.run("bench_diamond", {}, namespace="bench")
    _, counts = await api.call("GET", "/tasks/counts")
    assert counts["counts"]["complete"] == 3 and counts["total"] == 3
    assert set(counts["counts"]) == {s.value for s in TaskState}
    last = (await orch.engine.events(0, 10_000))[-1].seq
    assert counts["last_seq"] == last  # the counts include every event up to it
    _, health = await api.call("GET", "/health")
    assert health["last_seq"] == last  # where a live view starts following the stream


async def test_the_task_list_is_newest_first_and_pages_with_offset(
    api: Client, orch: Orchestrator
) -> None:
    submitted = [
        (await orch.engine.submit("bench_diamond", {}, namespace="bench")).task_id
        for _ in range(25)
    ]
    newest_first = submitted[::-1]
    _, everything = await api.call("GET", "/tasks?limit=100")
    assert [t["task_id"] for t in everything["tasks"]] == newest_first
    pages = []
    for offset in (0, 10, 20, 30):
        status, page = await api.call("GET", f"/tasks?limit=10&offset={offset}")
        assert status == 200
        pages.append([t["task_id"] for t in page["tasks"]])
    assert [len(p) for p in pages] == [10, 10, 5, 0]
    assert [task for page in pages for task in page] == newest_first
    for task_id in submitted:
        await orch.engine.wait_for_end(task_id, 10)
    _, page = await api.call("GET", "/tasks?state=complete&limit=3&offset=22")
    assert [t["task_id"] for t in page["tasks"]] == newest_first[22:]
    for bad in ("-1", "x", str(2**62 + 1)):
        status, body = await api.call("GET", f"/tasks?offset={bad}")
        assert status == 400 and body["error"] == "bad_query" and "offset" in body["message"]


def utc_time(value: Any) -> datetime:
    """An ISO 8601 time in UTC, as every time the API serves is."""
    assert isinstance(value, str), f"not an ISO 8601 string: {value!r}"
    when = datetime.fromisoformat(value)
    assert when.utcoffset() == timedelta(0), value
    return when


@pytest.mark.parametrize(
    "breaker_config", [BreakerConfig(failure_threshold=2, cooldown_s=1.0, success_threshold=1)]
)
async def test_every_time_is_iso_8601_utc(
    api: Client,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    """Events' ``at``, the times inside their data and the breakers' times are ISO 8601 too."""
    await add_fault(
        admin, services, "billing", {"kind": "error", "status": 503, "match": {"method": "POST"}}
    )
    before = datetime.now(UTC) - timedelta(seconds=1)
    _, sub = await api.call(
        "POST", "/tasks", body={"name": "user_registration", "context": fake.registration("pro")}
    )
    seen: dict[str, dict[str, Any]] = {}
    url = f"{api.base}/events/stream?after=0"
    async with api.session.get(url) as resp:
        async for line in resp.content:
            if not line.strip():  # a keep-alive
                continue
            event = json.loads(line)
            api.check("Event", event)
            assert before <= utc_time(event["at"]) <= datetime.now(UTC)
            seen.setdefault(event["type"], event)
            if event["type"] == EventType.BREAKER_OPENED:
                break
    retry = seen[EventType.STEP_RETRY_SCHEDULED]
    assert utc_time(retry["data"]["next_attempt_at"]) >= utc_time(retry["at"])
    assert isinstance(retry["data"]["delay_s"], float | int)  # durations stay numbers
    opened = seen[EventType.BREAKER_OPENED]
    open_until = utc_time(opened["data"]["open_until"])
    cooldown = open_until - utc_time(opened["at"])
    assert abs(cooldown - timedelta(seconds=1)) < timedelta(milliseconds=1)

    _, listed = await api.call("GET", "/breakers")
    (billing,) = [b for b in listed["breakers"] if b["service"] == "billing"]
    assert billing["state"] == "open"
    assert utc_time(billing["open_until"]) == open_until
    assert utc_time(billing["opened_at"]) == utc_time(opened["at"])
    assert utc_time(billing["updated_at"]) == utc_time(opened["at"])
    _, task = await api.call("GET", f"/tasks/{sub['task_id']}", "/tasks/{task_id}")
    assert utc_time(task["created_at"]) >= before

    async with admin.delete(f"{services.urls['billing']}/__admin/faults"):
        pass
    task = await _complete(api, sub["task_id"])
    assert task["state"] == "complete"
    _, events = await api.call("GET", f"/events?after={opened['seq']}")
    deferred = [e for e in events["events"] if e["type"] == EventType.STEP_DEFERRED]
    for event in deferred:
        utc_time(event["data"]["next_attempt_at"])
    moves = [e for e in events["events"] if e["type"].startswith("breaker.")]
    assert [e["type"] for e in moves][-1] == EventType.BREAKER_CLOSED
    for event in moves:
        assert event["data"]["open_until"] is None or utc_time(event["data"]["open_until"])
    _, attempts = await api.call(
        "GET", f"/tasks/{sub['task_id']}/attempts", "/tasks/{task_id}/attempts"
    )
    for attempt in attempts["attempts"]:
        assert utc_time(attempt["started_at"]) <= utc_time(attempt["ended_at"])


async def test_bottlenecks_honour_their_filters_and_count_breaker_openings(
    api: Client, orch: Orchestrator
) -> None:
    for _ in range(2):
        await orch.engine.run("bench_diamond", {}, namespace="bench")
    path = "/analytics/bottlenecks"
    _, everything = await api.call("GET", path)
    assert {s["workflow"] for s in everything["steps"]} == {"bench_diamond"}
    _, other = await api.call("GET", f"{path}?namespace=nowhere", path)
    assert other["steps"] == []  # an unknown namespace has no attempts, not everyone's
    _, named = await api.call("GET", f"{path}?namespace=bench&task_name=bench_diamond", path)
    assert named["steps"] == everything["steps"]
    _, none = await api.call("GET", f"{path}?task_name=user_registration", path)
    assert none["steps"] == []
    _, recent = await api.call("GET", f"{path}?window_s=3600", path)
    assert recent["steps"] == everything["steps"] and recent["window_s"] == 3600
    assert recent["breaker_openings"] == {}
    status, bad = await api.call("GET", f"{path}?window_s=0", path)
    assert status == 400 and "window_s" in bad["message"]


async def test_the_edges_refusals_are_described_too(api: Client) -> None:
    """What the shared edge answers before a handler runs is in the document, per operation."""
    port = api.base.rsplit(":", 1)[1]
    text = {"Content-Type": "text/plain"}
    status, body = await api.call("POST", "/tasks", raw=b"{}", headers=text)
    assert status == 415 and body["error"] == "unsupported_media_type"
    status, body = await api.call("POST", "/tasks", raw=b'{"n": NaN}')
    assert status == 400 and body["limit"] == "finite_numbers"
    status, body = await api.call("POST", "/tasks", raw=b"[" * 40 + b"]" * 40)
    assert status == 400 and body["limit"] == "max_depth"
    status, body = await api.call("POST", "/tasks", raw=b'{"name": "' + b"x" * 2**20 + b'"}')
    assert status == 413 and body["limit"] == "max_body_bytes"
    template = "/tasks/{task_id}/steps/{step}/resolve"
    status, body = await api.call(
        "POST", "/tasks/t/steps/s/resolve", template, raw=b'{"results": 1e999}'
    )
    assert status == 400 and body["limit"] == "finite_numbers"
    status, body = await api.call("GET", "/tasks", headers={"Origin": "http://evil.example"})
    assert status == 403 and body["error"] == "cross_origin"
    status, body = await api.call("GET", "/health", headers={"Host": f"evil.example:{port}"})
    assert status == 403 and body["error"] == "host_not_allowed"
    for query in ("after=-1", f"after={2**62 + 1}", "after=soon"):
        status, body = await api.call("GET", f"/events/stream?{query}")
        assert status == 400 and body["error"] == "bad_query"
    status, body = await api.call("GET", "/events?limit=0")
    assert status == 400
