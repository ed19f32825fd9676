"""``GET /metrics`` on the orchestrator and on each service, scraped as Prometheus would and
parsed with the client library's own parser, after a registration that met one 503."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from interlock.sandbox import Orchestrator, run_api
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices
from tests.e2e.conftest import add_fault


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_registration_with_one_503_shows_in_both_scrapes(
    orch: Orchestrator,
    services: RunningServices,
    admin: aiohttp.ClientSession,
    fake: RegistrationFaker,
) -> None:
    await add_fault(admin, services, "billing", {"kind": "error", "status": 503, "times": 1})
    async with run_api(orch, port=0) as api:
        body = {"name": "user_registration", "context": fake.registration(plan="pro")}
        async with admin.post(f"{api}/tasks", json=body) as resp:
            task_id = (await resp.json())["task_id"]
        await orch.engine.wait_for_end(task_id, 20)
        async with admin.get(f"{api}/metrics") as resp:
            assert resp.status == 200 and resp.content_type == "text/plain"
            got = samples(await resp.text())
    attempt = "interlock_step_attempts_total"
    billing = (("error_code", "HTTP_503"), ("outcome", "retry"), ("step", "setup_billing_profile"))
    assert got[(attempt, billing)] == 1
    done = (("error_code", ""), ("outcome", "completed"), ("step", "setup_billing_profile"))
    assert got[(attempt, done)] == 1
    calls = "interlock_service_call_duration_seconds_count"
    assert got[(calls, (("service", "billing"), ("status", "503")))] == 1
    assert got[(calls, (("service", "billing"), ("status", "201")))] == 1
    assert got[("interlock_tasks", (("state", "complete"),))] == 1
    assert got[("interlock_steps", (("state", "complete"),))] == 5
    assert got[("interlock_steps", (("state", "error"),))] == 0  # every state, zero included
    assert got[("interlock_events_total", (("type", "task.completed"),))] == 1
    assert got[("interlock_claim_seconds_count", ())] >= 1
    assert got[("interlock_commit_batch_operations_count", ())] >= 1
    # every write of the registration went through a commit of at least one operation
    assert (
        got[("interlock_commit_batch_operations_sum", ())]
        >= got[("interlock_commit_batch_operations_count", ())]
    )

    async with admin.get(f"{services.urls['billing']}/metrics") as resp:
        assert resp.status == 200
        service = samples(await resp.text())
    assert (
        service[("mock_service_requests_total", (("service", "billing"), ("status", "503")))] == 1
    )
    assert (
        service[("mock_service_requests_total", (("service", "billing"), ("status", "201")))] == 1
    )
    fired = ("mock_service_faults_fired_total", (("kind", "error"), ("service", "billing")))
    assert service[fired] == 1
    async with admin.get(f"{services.urls['billing']}/__admin/stats") as resp:
        stats = await resp.json()
    assert stats["requests"] == 2  # the scrape itself is not a request the journal counts
