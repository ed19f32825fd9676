"""Graceful degradation of the registration over real HTTP: preferences is non-critical.

Preferences down for good still completes the registration (one welcome, with default
preferences, saying so), and an operator retry fills the preferences in later. Resolving
preferences by hand checks the results against its ``results_schema`` and, given none, hands
the welcome the declared fallback. Every response is checked against ``/openapi.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator

from interlock.registration.handlers import DEFAULT_PREFERENCES_NOTE, MISSING_DEPENDENCY_RESULT
from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator, run_api
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from orchestrator.event_types import EventType
from orchestrator.models import JSON, Event, StepState, TaskState
from orchestrator.retry import RetryPolicy
from orchestrator.templates import StepTemplate
from tests.e2e.conftest import add_fault, register

PREFS = "initialize_preferences"
STEP_ACTION = "/tasks/{task_id}/steps/{step}/"


class Api:
    """The orchestrator API; each answer is checked against the schema the document gives it."""

    def __init__(self, base: str, session: aiohttp.ClientSession, spec: JSON) -> None:
        self.base, self.session, self.spec = base, session, spec

    async def call(
        self, method: str, path: str, template: str, body: Any = None
    ) -> tuple[int, Any]:
        async with self.session.request(method, self.base + path, json=body) as resp:
            status, data = resp.status, await resp.json()
        declared = self.spec["paths"][template][method.lower()]["responses"][str(status)]
        schema = declared["content"]["application/json"]["schema"]
        validator = Draft202012Validator({**schema, "components": self.spec["components"]})
        assert not [e.message for e in validator.iter_errors(data)], (status, data)
        return status, data

    async def task(self, task_id: str) -> JSON:
        _, task = await self.call("GET", f"/tasks/{task_id}", "/tasks/{task_id}")
        return dict(task)

    async def step_action(self, task_id: str, step: str, action: str, body: Any = None) -> Any:
        path = f"/tasks/{task_id}/steps/{step}/{action}"
        return await self.call("POST", path, STEP_ACTION + action, body)


@pytest.fixture
async def api(orch: Orchestrator) -> AsyncIterator[Api]:
    async with run_api(orch, port=0) as base, aiohttp.ClientSession() as session:
        async with session.get(base + "/openapi.json") as resp:
            spec = await resp.json()
        yield Api(base, session, spec)


def slow_retries_of(name: str) -> Any:
    """A customizer: the step waits a minute between attempts, so a test can act meanwhile."""

    def customize(step: StepTemplate, context: JSON) -> StepTemplate:
        if step.name != name:
            return step
        retry: RetryPolicy = dataclasses.replace(step.retry, initial_delay_s=60, max_delay_s=60)
        return dataclasses.replace(step, retry=retry)

    return customize


async def first_event(orch: Orchestrator, task_id: str, type_: str, step: str | None) -> Event:
    async with aclosing(orch.engine.follow(0, task_id)) as events:
        async for event in events:
            if event is not None and event.type == type_ and event.step_name == step:
                return event
    raise AssertionError("the event stream ended")


def welcome_emails(services: RunningServices, user_id: str) -> list[JSON]:
    return [
        m
        for m in services.data.notifications.messages
        if m["user_id"] == user_id and m["kind"] == "welcome" and m["channel"] == "email"
    ]


def fallback_of(orch: Orchestrator) -> JSON:
    step = orch.engine.catalog.find(TEMPLATE_NAME).step(PREFS)
    assert step.fallback_results is not None
    return dict(step.fallback_results)


async def test_preferences_down_for_good_still_completes_and_a_retry_fills_them_in(
    orch: Orchestrator,
    api: Api,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    await add_fault(admin, services, "preferences", {"kind": "down"})
    context = fake.registration("pro")
    view = await register(orch, context)
    task = await api.task(view.task_id)
    steps = {s["name"]: s for s in task["steps"]}
    assert task["state"] == TaskState.COMPLETE
    assert task["degraded_steps"] == [PREFS] and task["summary"]["degraded_steps"] == [PREFS]
    prefs = steps[PREFS]
    assert (prefs["state"], prefs["attempts"]) == (StepState.DEGRADED, 3)
    assert prefs["results"] == fallback_of(orch)
    assert all(s["state"] == StepState.COMPLETE for n, s in steps.items() if n != PREFS)
    welcome = steps["send_welcome_sequence"]["results"]
    assert welcome["default_preferences"] is True
    user = services.data.users.by_email(context["user_info"]["email"])
    assert user is not None and user["status"] == "active"
    (email,) = welcome_emails(services, user["id"])
    assert DEFAULT_PREFERENCES_NOTE in email["body"]
    assert services.data.preferences == {}
    degraded = await first_event(orch, view.task_id, EventType.STEP_DEGRADED, PREFS)
    assert degraded.data["fallback_results"] == fallback_of(orch)
    assert degraded.data["error"]["kind"] == "retryable"
    _, events = await api.call("GET", f"/events?task_id={view.task_id}", "/events")
    (completed,) = [e for e in events["events"] if e["type"] == EventType.TASK_COMPLETED]
    assert completed["data"]["degraded_steps"] == [PREFS]

    async with admin.delete(f"{services.urls['preferences']}/__admin/faults") as resp:
        assert resp.status < 300
    status, _ = await api.step_action(view.task_id, PREFS, "retry")
    assert status == 200  # the answer may already show the retry done: it is quick
    await first_event(orch, view.task_id, EventType.TASK_RESUMED, None)
    assert (await orch.engine.wait(view.task_id, timeout_s=20)).state is TaskState.COMPLETE
    later = await orch.engine.events(events["last_seq"], task_id=view.task_id)
    assert [e.type for e in later if e.type.startswith("task.")] == [
        EventType.TASK_RESUMED,
        EventType.TASK_COMPLETED,
    ]
    task = await api.task(view.task_id)
    prefs = next(s for s in task["steps"] if s["name"] == PREFS)
    assert prefs["state"] == StepState.COMPLETE and prefs["results"]["status"] == "created"
    assert task["degraded_steps"] == [] and task["summary"]["degraded_steps"] == []
    assert user["id"] in services.data.preferences
    assert len(welcome_emails(services, user["id"])) == 1  # the welcome is not sent again


async def test_resolving_preferences_checks_results_and_defaults_to_the_fallback(
    orch: Orchestrator,
    api: Api,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    orch.engine.add_customizer(TEMPLATE_NAME, slow_retries_of(PREFS))
    await add_fault(admin, services, "preferences", {"kind": "error", "status": 503})
    context = fake.registration("pro")
    sub = await orch.engine.submit(TEMPLATE_NAME, context)
    await first_event(orch, sub.task_id, EventType.STEP_RETRY_SCHEDULED, PREFS)

    bad = {"results": {"status": "weird", "preferences": "all of them"}}
    status, body = await api.step_action(sub.task_id, PREFS, "resolve", bad)
    assert status == 400 and body["error"] == "invalid_results"
    assert [d["path"] for d in body["details"]] == ["/preferences", "/status"]
    assert (await api.task(sub.task_id))["steps"][2]["state"] == StepState.WAITING_FOR_RETRY

    status, _ = await api.step_action(sub.task_id, PREFS, "resolve")
    assert status == 200
    assert (await orch.engine.wait(sub.task_id, timeout_s=20)).state is TaskState.COMPLETE
    task = await orch.engine.get_task(sub.task_id)
    prefs, welcome = task.step(PREFS), task.step("send_welcome_sequence")
    assert (prefs.state, prefs.results) == (StepState.RESOLVED_MANUALLY, fallback_of(orch))
    assert welcome.attempts == 1 and (welcome.results or {})["default_preferences"] is True
    user = services.data.users.by_email(context["user_info"]["email"])
    assert user is not None and len(welcome_emails(services, user["id"])) == 1


async def test_a_dependency_resolved_without_a_field_fails_its_dependents_clearly(
    orch: Orchestrator,
    api: Api,
    services: RunningServices,
    fake: RegistrationFaker,
    admin: aiohttp.ClientSession,
) -> None:
    orch.engine.add_customizer(TEMPLATE_NAME, slow_retries_of("create_user_account"))
    await add_fault(admin, services, "users", {"kind": "error", "status": 503})
    sub = await orch.engine.submit(TEMPLATE_NAME, fake.registration("pro"))
    await first_event(orch, sub.task_id, EventType.STEP_RETRY_SCHEDULED, "create_user_account")
    status, _ = await api.step_action(sub.task_id, "create_user_account", "resolve", {})
    assert status == 200
    assert (await orch.engine.wait(sub.task_id, timeout_s=20)).state is TaskState.ERROR
    task = await orch.engine.get_task(sub.task_id)
    billing, prefs = task.step("setup_billing_profile"), task.step(PREFS)
    # One attempt each: a missing field is permanent, not a KeyError retried to exhaustion.
    assert (billing.state, billing.attempts) == (StepState.ERROR, 1)
    assert (prefs.state, prefs.attempts) == (StepState.DEGRADED, 1)
    for step in (billing, prefs):
        assert step.last_error is not None
        assert step.last_error.error_code == MISSING_DEPENDENCY_RESULT
        assert "'user_id'" in step.last_error.message
    assert task.failed_steps == ["setup_billing_profile"] and task.degraded_steps == [PREFS]
