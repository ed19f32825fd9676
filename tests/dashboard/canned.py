"""A recorded orchestrator for the dashboard's snapshots: fixed tasks, fixed events, real HTTP.

Snapshots must not move between runs, so the tasks, their ids, times and events are fixed here
and served over loopback by a real aiohttp server on a thread of its own (the app under
``snap_compare`` runs its own event loop). The server answers the same routes the orchestrator
and the services' admin API do, with the shapes the API serves.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

from tests.dashboard.factories import T0, Script, iso, view

SERVICES = ("users", "billing", "preferences", "notifications")
NOW = T0 + 2.0  #: the snapshots' "now"


def _ev(event: Any) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": iso(event.at),
        "type": event.type,
        "task_id": event.task_id,
        "step_name": event.step_name,
        "correlation_id": event.correlation_id,
        "attempt": event.attempt,
        "data": event.data,
    }


@dataclass
class Scenario:
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def task(
        self,
        task_id: str,
        email: str,
        start: float,
        script: Script,
        state: str,
        steps: dict[str, dict[str, Any]] | None = None,
        **extra: Any,
    ) -> None:
        v = view(task_id, email)
        v["created_at"] = iso(T0 + start)
        v["state"] = state
        for step in v["steps"]:
            step.update((steps or {}).get(step["name"], {}))
        v.update(extra)
        self.views[task_id] = v
        self.events.extend(_ev(e) for e in script.events)


def scenario() -> Scenario:
    """Six registrations, one in each state worth seeing, and billing's breaker open."""
    sc = Scenario()
    seq = 0

    def script(task_id: str, start: float) -> Script:
        nonlocal seq
        s = Script(task_id, seq)
        s.add(
            start,
            "task.created",
            name="user_registration",
            context={"user_info": {"email": f"{task_id[-6:]}@example.com"}},
        )
        return s

    # complete, 0.2 s, long ago
    s = script("0193f1c2-0000-7000-8000-0000000077aa", -30)
    s.add(-30, "task.started")
    s.run(-30, "create_user_account", took=0.04)
    s.run(-29.95, "setup_billing_profile", took=0.05, service="billing")
    s.run(-29.95, "initialize_preferences", took=0.03, service="preferences")
    s.run(-29.9, "send_welcome_sequence", took=0.02, service="notifications")
    s.run(-29.88, "update_user_status", took=0.01)
    s.add(-29.87, "task.completed", summary={"parallel_saved_ms": 30.0, "total_duration_ms": 130})
    seq = s.seq
    sc.task(s.task_id, "eve@example.com", -30, s, "complete", completed_at=iso(T0 - 29.87))
    # already exists: the same person again
    s = script("0193f1c2-0000-7000-8000-00000000a1e5", -20)
    s.add(-20, "task.started")
    s.run(-20, "create_user_account", took=0.03, status=409)
    s.run(-19.97, "setup_billing_profile", took=0.02, service="billing", status=409)
    s.run(-19.97, "initialize_preferences", took=0.02, service="preferences", status=409)
    s.run(-19.95, "send_welcome_sequence", took=0.02, service="notifications")
    s.run(-19.93, "update_user_status", took=0.01)
    s.add(-19.92, "task.completed", summary={"parallel_saved_ms": 20.0})
    seq = s.seq
    sc.task(
        s.task_id,
        "eve@example.com",
        -20,
        s,
        "complete",
        steps={"create_user_account": {"results": {"user_id": "u1", "status": "already_exists"}}},
        completed_at=iso(T0 - 19.92),
    )
    # failed for good: a disposable address
    s = script("0193f1c2-0000-7000-8000-0000000b0c2e", -10)
    s.add(-10, "task.started")
    s.add(-10, "step.started", "create_user_account", 1, worker_id="w")
    s.add(
        -9.99,
        "step.failed",
        "create_user_account",
        1,
        error={
            "kind": "permanent",
            "error_code": "HTTP_422",
            "message": "users refused: disposable email domain",
            "http_status": 422,
        },
    )
    s.add(-9.99, "task.failed", failed_steps=["create_user_account"])
    seq = s.seq
    sc.task(s.task_id, "x@mailinator.com", -10, s, "error", completed_at=iso(T0 - 9.99))
    # the branches running in parallel right now
    s = script("0193f1c2-0000-7000-8000-0000004f1c00", 1.5)
    s.add(1.5, "task.started")
    s.run(1.5, "create_user_account", took=0.04)
    s.add(1.6, "step.started", "setup_billing_profile", 1, worker_id="w")
    s.add(1.6, "step.started", "initialize_preferences", 1, worker_id="w")
    seq = s.seq
    sc.task(s.task_id, "bob@example.com", 1.5, s, "in_progress")
    # deferred by billing's open breaker
    s = script("0193f1c2-0000-7000-8000-00000031d0ff", 0.5)
    s.add(0.5, "task.started")
    s.run(0.5, "create_user_account", took=0.04)
    s.run(0.55, "initialize_preferences", took=0.03, service="preferences")
    s.fail(0.55, "setup_billing_profile", 1, 0.2)
    seq = s.seq
    s.add(
        0.9,
        "breaker.opened",
        None,
        None,
        service="billing",
        to="open",
        failures=5,
        open_until=iso(T0 + 23),
        last_error="HTTP_503",
        **{"from": "closed"},
    )
    s.events[-1] = replace(s.events[-1], task_id=None, correlation_id=None)
    s.add(0.95, "step.started", "setup_billing_profile", 2, worker_id="w")  # claimed, then
    s.add(
        0.95,
        "step.deferred",
        "setup_billing_profile",
        2,
        reason="circuit_open",
        service="billing",
        breaker="open",
        next_attempt_at=iso(T0 + 23),
        delay_s=22.05,
    )
    seq = s.seq
    sc.task(s.task_id, "kim@example.com", 0.5, s, "in_progress")
    # waiting for a retry with a countdown (the newest: the one the dashboard opens on)
    s = script("0193f1c2-0000-7000-8000-0000009eb6a1", 1.8)
    s.add(1.8, "task.started")
    s.run(1.8, "create_user_account", took=0.04)
    s.run(1.85, "initialize_preferences", took=0.02, service="preferences")
    s.fail(1.85, "setup_billing_profile", 1, 0.05)
    s.fail(1.91, "setup_billing_profile", 2, 1.2)
    seq = s.seq
    sc.task(s.task_id, "ann@example.com", 1.8, s, "in_progress")
    sc.events.sort(key=lambda e: e["seq"])
    sc.faults["billing"] = [
        {
            "id": "f1",
            "kind": "down",
            "match": {"path": "/profiles*"},
            "probability": 1.0,
            "after": 0,
            "times": None,
            "seen": 9,
            "fired": 9,
        }
    ]
    return sc


def _routes(sc: Scenario) -> web.Application:  # noqa: C901 - one small handler per route
    app = web.Application()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "last_seq": 0})

    async def counts(request: web.Request) -> web.Response:
        found = dict.fromkeys(("pending", "in_progress", "complete", "error", "cancelled"), 0)
        for v in sc.views.values():
            found[v["state"]] += 1
        last = sc.events[-1]["seq"]  # the counts include every recorded event
        return web.json_response({"counts": found, "total": len(sc.views), "last_seq": last})

    async def tasks(request: web.Request) -> web.Response:
        rows = sorted(sc.views.values(), key=lambda v: v["created_at"], reverse=True)
        keep = (
            "task_id",
            "name",
            "namespace",
            "version",
            "state",
            "correlation_id",
            "created_at",
            "completed_at",
            "context",
        )
        return web.json_response({"tasks": [{k: v.get(k) for k in keep} for v in rows]})

    async def task(request: web.Request) -> web.Response:
        return web.json_response(sc.views[request.match_info["task_id"]])

    async def events(request: web.Request) -> web.Response:
        task_id = request.query.get("task_id")
        found = [e for e in sc.events if task_id is None or e["task_id"] == task_id]
        return web.json_response({"events": found, "last_seq": sc.events[-1]["seq"]})

    async def stream(request: web.Request) -> web.StreamResponse:
        after = int(request.query.get("after", "0"))
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        for e in sc.events:
            if e["seq"] > after:
                await resp.write(json.dumps(e).encode() + b"\n")
        await asyncio.Event().wait()  # idle, as a live stream with nothing new is
        return resp

    async def breakers(request: web.Request) -> web.Response:
        return web.json_response({"breakers": []})

    async def faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": sc.faults.get(request.match_info["svc"], [])})

    async def bottlenecks(request: web.Request) -> web.Response:
        return web.json_response({"steps": []})

    app.add_routes(
        [
            web.get("/health", health),
            web.get("/tasks/counts", counts),
            web.get("/tasks", tasks),
            web.get("/tasks/{task_id}", task),
            web.get("/events", events),
            web.get("/events/stream", stream),
            web.get("/breakers", breakers),
            web.get("/analytics/bottlenecks", bottlenecks),
            web.get("/svc/{svc}/__admin/faults", faults),
        ]
    )
    return app


@dataclass
class Canned:
    api_url: str
    service_urls: dict[str, str]


def serve(sc: Scenario) -> Iterator[Canned]:
    """Run the recorded orchestrator on a thread until the generator is closed."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(_routes(sc), shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        started.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(10)
    base = f"http://127.0.0.1:{holder['port']}"
    try:
        yield Canned(base, {s: f"{base}/svc/{s}" for s in SERVICES})
    finally:

        async def shutdown() -> None:
            await holder["runner"].cleanup()
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:  # the idle streams
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
