"""Two ``interlock up --orchestrator-only`` processes on one PostgreSQL database: either API shows
the whole system, the other worker's events included, and the work is shared."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


async def start_up(
    url: str, services: RunningServices, worker_id: str, stderr: int = asyncio.subprocess.STDOUT
) -> asyncio.subprocess.Process:
    """``interlock up --orchestrator-only --db URL --worker-id ID`` on a free port."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name, service_url in services.urls.items():
        env[f"INTERLOCK_{name.upper()}_URL"] = service_url
    argv = ["up", "--orchestrator-only", "--db", url, "--api-port", "0", "--quiet"]
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interlock.cli",
        *argv,
        "--worker-id",
        worker_id,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr,
    )


@contextlib.asynccontextmanager
async def orchestrator(
    url: str, services: RunningServices, worker_id: str
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """An ``interlock up --orchestrator-only`` on ``url``; its API's base URL."""
    proc = await start_up(url, services, worker_id)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("orchestrator"), line
        assert f"worker {worker_id}" in line and "postgresql://" in line, line
        yield line.split()[1], proc
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def test_two_workers_share_the_registrations_and_each_api_shows_all(
    services: RunningServices, pg_url: str
) -> None:
    fake = RegistrationFaker(seed=5)
    async with (
        orchestrator(pg_url, services, "pg-w1") as (one, _),
        orchestrator(pg_url, services, "pg-w2") as (two, _),
        aiohttp.ClientSession() as http,
    ):
        stream = await http.get(f"{two}/events/stream")  # followed from before the first task
        for i in range(20):
            body = {"name": "user_registration", "context": fake.registration()}
            async with http.post(f"{(one, two)[i % 2]}/tasks", json=body) as resp:
                assert resp.status == 201, await resp.text()
        async with asyncio.timeout(60):
            while True:
                async with http.get(f"{one}/tasks/counts") as resp:
                    counts = (await resp.json())["counts"]
                if counts["complete"] == 20:
                    break
                await asyncio.sleep(0.1)
        seen: list[dict[str, object]] = []
        async with asyncio.timeout(20):
            while sum(1 for e in seen if e["type"] == "task.completed") < 20:
                seen.append(json.loads(await stream.content.readline()))
        stream.close()
        async with http.get(f"{two}/metrics") as resp:
            metrics = await resp.text()
    # The stream of worker 2 carries worker 1's steps too, in one order with no gap.
    seqs = [int(str(e["seq"])) for e in seen]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    workers = {
        e["data"]["worker_id"]  # type: ignore[index]
        for e in seen
        if e["type"] == "step.started"
    }
    assert workers == {"pg-w1", "pg-w2"}
    assert 'interlock_tasks{state="complete"} 20.0' in metrics
    assert len(services.data.users.users) == 20


async def test_a_breaker_one_worker_opens_is_open_on_the_other(
    services: RunningServices, pg_url: str
) -> None:
    fake = RegistrationFaker(seed=6)
    async with (
        orchestrator(pg_url, services, "pg-w1") as (one, _),
        orchestrator(pg_url, services, "pg-w2") as (two, _),
        aiohttp.ClientSession() as http,
    ):
        rule = {"kind": "error", "status": 503, "match": {"method": "POST"}}
        async with http.post(f"{services.urls['billing']}/__admin/faults", json=rule) as resp:
            assert resp.status == 201, await resp.text()
        for _ in range(6):  # six first attempts fail on worker 1: its breaker opens (5)
            body = {"name": "user_registration", "context": fake.registration()}
            async with http.post(f"{one}/tasks", json=body) as resp:
                assert resp.status == 201, await resp.text()

        async def billing(api: str) -> str | None:
            async with http.get(f"{api}/breakers") as resp:
                found = [b for b in (await resp.json())["breakers"] if b["service"] == "billing"]
            return str(found[0]["state"]) if found else None

        # Polled: the signal is the other processes' state. (That worker 2 learns of a breaker
        # it never counted failures for, through the database alone, is shown in
        # tests/orchestrator/test_workers.py; here: both APIs agree.)
        async with asyncio.timeout(30):
            while await billing(one) != "open":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            while await billing(two) != "open":  # noqa: ASYNC110
                await asyncio.sleep(0.05)


async def test_a_worker_id_in_use_by_a_live_orchestrator_is_refused(
    services: RunningServices, pg_url: str
) -> None:
    async with orchestrator(pg_url, services, "pg-same"):
        second = await start_up(pg_url, services, "pg-same", stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(second.communicate(), 30)
    assert second.returncode == 2, (out, err)
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, lines
    line = lines[0]
    assert "worker id 'pg-same' is in use by another running orchestrator" in line
    assert b"orchestrator " not in out  # it never served
