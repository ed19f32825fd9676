"""An orchestrator process SIGKILLed mid-run and restarted: everything completes, once.

The services run in this test process (so their records can be counted); the orchestrator is a
real ``interlock up --orchestrator-only`` child process on a SQLite file, then on PostgreSQL
(with a ``--worker-id``, so that the restart reclaims at once, as the SQLite one does). Welcome
e-mails are slowed down so the kill lands while some are in flight: the services finish those
requests after the client has died (the responses are lost), and the restarted orchestrator's
retries are answered from the idempotency store instead of sending a second e-mail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from mock_services.runner import RunningServices
from orchestrator.embedded import store_for
from orchestrator.event_types import EventType
from orchestrator.models import TaskState
from tests.e2e.conftest import add_fault

ROOT = Path(__file__).resolve().parents[2]
REGISTRATIONS = 12


async def start_orchestrator(
    db: str, services: RunningServices, *extra: str
) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, url in services.urls.items():
        env[f"INTERLOCK_{name.upper()}_URL"] = url
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interlock.cli",
        "up",
        "--orchestrator-only",
        "--db",
        db,
        *(["--worker-id", "crash-w1"] if db.startswith("postgresql://") else []),
        "--api-port",
        "0",
        "--quiet",
        *extra,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def welcome_rule_seen(admin: aiohttp.ClientSession, services: RunningServices) -> int:
    async with admin.get(f"{services.urls['notifications']}/__admin/faults") as resp:
        rules = (await resp.json())["faults"]
    return sum(int(r["seen"]) for r in rules)


@pytest.mark.slow
async def test_orchestrator_killed_mid_run_then_restarted_completes_without_duplicates(
    services: RunningServices, admin: aiohttp.ClientSession, database: str
) -> None:
    db = database
    await add_fault(
        admin,
        services,
        "notifications",
        {"kind": "latency", "delay_ms": 400, "match": {"method": "POST"}},
    )
    await add_fault(
        admin, services, "billing", {"kind": "latency", "delay_ms": 50, "match": {"method": "POST"}}
    )

    first = await start_orchestrator(db, services, "--fake", str(REGISTRATIONS), "--seed", "11")
    try:
        async with asyncio.timeout(30):  # until welcome e-mails are being sent
            # Polled: the signal is another process's requests reaching the service.
            while await welcome_rule_seen(admin, services) < 3:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # well inside the 400 ms the first of them take
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert first.returncode == -signal.SIGKILL

    second = await start_orchestrator(db, services, "--exit-when-done")
    async with asyncio.timeout(60):
        output, _ = await second.communicate()
    text = output.decode()
    assert second.returncode == 0, text
    assert f"{REGISTRATIONS} tasks in the database: {REGISTRATIONS} complete" in text, text

    store = store_for(db)
    await store.open()
    try:
        tasks = await store.list_tasks(limit=100)
        assert [t.state for t in tasks] == [TaskState.COMPLETE] * REGISTRATIONS
        attempts = [a for t in tasks for a in await store.list_attempts(t.task_id)]
        replayed = [
            e
            for e in await store.list_events(limit=100_000)
            if e.type == EventType.SERVICE_CALL_COMPLETED and e.data.get("replayed")
        ]
    finally:
        await store.close()
    # The kill was real: steps were in flight, and their attempts were recorded as lost.
    lost = [a for a in attempts if a.outcome == "lost"]
    assert lost and {a.error.error_code for a in lost if a.error} == {"WORKER_LOST"}
    # The welcome calls whose responses died with the first process were replayed, not re-run.
    assert any(e.step_name == "send_welcome_sequence" for e in replayed)

    users = list(services.data.users.users.values())
    assert len(users) == REGISTRATIONS
    assert all(u["status"] == "active" for u in users)
    assert len(services.data.billing) == len(services.data.preferences) == REGISTRATIONS
    # Exactly one welcome sequence per user: no (user, channel, message kind) twice.
    sent = Counter(
        (m["user_id"], m["channel"], m["kind"]) for m in services.data.notifications.messages
    )
    assert sent and max(sent.values()) == 1
    assert {user_id for user_id, _, _ in sent} == {u["id"] for u in users}
