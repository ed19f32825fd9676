"""Every demo against a real sandbox: its verdict holds, its narration tells the story, its
faults are gone afterwards; and a sandbox that breaks the story makes the verdict fail."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from interlock.demos import BY_NAME, DEMOS, DemoError, Target, Verdict, catalog, run_demo
from mock_services.payloads import RegistrationFaker
from orchestrator.breaker import BreakerConfig
from tests.interlock.demos.conftest import sandbox

#: A line each demo's narration must contain: the story, told.
TOLD = {
    "billing-outage": "breaker opened",
    "flaky-email": "attempt 2 failed",
    "rate-limited": "attempt 2 in 3.0 s",
    "duplicate-signup": "answered 409",
    "lost-responses": "replayed its first answer",
    "permanent-failure": "BLOCKED_EMAIL_DOMAIN",
    "graceful-degradation": "going on without it (degraded)",
    "sequential-vs-diamond": "per registration (mean)",
}


async def _run(name: str, tmp_path: Path) -> tuple[Verdict, list[str], Target]:
    lines: list[str] = []
    async with sandbox(tmp_path / f"{name}.db") as target:
        verdict = await run_demo(BY_NAME[name], target, lines.append)
        async with aiohttp.ClientSession() as session:
            for url in target.service_urls.values():
                async with session.get(f"{url}/__admin/faults") as resp:
                    assert (await resp.json())["faults"] == [], f"{name} left a fault on {url}"
    return verdict, lines, target


@pytest.mark.slow
async def test_every_demo_but_the_crash_passes_and_tells_its_story(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(catalog, "OUTAGE_AFTER_OPEN_S", 0.05)
    names = [d.name for d in DEMOS if not d.needs_restart]
    assert sorted(names) == sorted(TOLD)
    results = await asyncio.gather(*(_run(name, tmp_path) for name in names))
    for name, (verdict, lines, _target) in zip(names, results, strict=True):
        failed = [c.text for c in verdict.checks if not c.passed]
        assert verdict.passed, f"{name}: {failed}\n" + "\n".join(lines)
        assert len(verdict.checks) >= 3, name
        assert any(TOLD[name] in line for line in lines), f"{name}:\n" + "\n".join(lines)


async def test_a_sandbox_that_breaks_the_story_fails_the_verdict(tmp_path: Path) -> None:
    # Notifications is down for good: flaky-email's welcomes never go through.
    async with sandbox(tmp_path / "broken.db") as target, aiohttp.ClientSession() as session:
        url = f"{target.service_urls['notifications']}/__admin/faults"
        async with session.post(url, json={"kind": "down"}) as resp:
            assert resp.status == 201
        verdict = await run_demo(BY_NAME["flaky-email"], target, lambda line: None)
    assert not verdict.passed
    assert (
        not verdict.checks[0].passed and "0 of 2 registrations complete" in verdict.checks[0].text
    )


async def test_the_crash_demo_refuses_a_sandbox_it_cannot_restart(tmp_path: Path) -> None:
    async with sandbox(tmp_path / "attached.db") as target:
        with pytest.raises(DemoError, match="needs a sandbox it started"):
            await run_demo(BY_NAME["crash-recovery"], target, lambda line: None)


async def test_an_unreachable_sandbox_is_a_demo_error() -> None:
    target = Target("http://127.0.0.1:9", {"users": "http://127.0.0.1:9"})
    with pytest.raises(DemoError, match=re.escape("GET http://127.0.0.1:9/health")):
        await run_demo(BY_NAME["flaky-email"], target, lambda line: None)


async def test_a_demo_refuses_a_sandbox_with_a_breaker_that_is_not_closed(tmp_path: Path) -> None:
    slow_to_close = BreakerConfig(failure_threshold=1, cooldown_s=60)
    async with (
        sandbox(tmp_path / "open.db", slow_to_close) as target,
        aiohttp.ClientSession() as session,
    ):
        # someone else's outage: billing down and its breaker open before the demo starts
        billing = f"{target.service_urls['billing']}/__admin/faults"
        async with session.post(billing, json={"kind": "down"}) as resp:
            assert resp.status == 201
        context = RegistrationFaker(1).registration()
        body = {"name": "user_registration", "context": context}
        async with session.post(f"{target.api_url}/tasks", json=body) as resp:
            assert resp.status == 201
        deadline = asyncio.get_running_loop().time() + 10
        while await _breaker(session, target, "billing") != "open":
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        with pytest.raises(DemoError, match="circuit breaker of billing is not closed"):
            await run_demo(BY_NAME["rate-limited"], target, lambda line: None)


async def _breaker(session: aiohttp.ClientSession, target: Target, service: str) -> str | None:
    async with session.get(f"{target.api_url}/breakers") as resp:
        states = {b["service"]: b["state"] for b in (await resp.json())["breakers"]}
    return states.get(service)


async def test_an_interrupted_demo_leaves_no_fault_and_no_running_registration(
    tmp_path: Path,
) -> None:
    async with sandbox(tmp_path / "stop.db") as target, aiohttp.ClientSession() as session:
        lines: list[str] = []
        demo = asyncio.create_task(run_demo(BY_NAME["billing-outage"], target, lines.append))
        deadline = asyncio.get_running_loop().time() + 10
        while not any("breaker opened" in line for line in lines):
            assert asyncio.get_running_loop().time() < deadline, lines
            await asyncio.sleep(0.05)
        demo.cancel()  # Ctrl-C, or the dashboard quitting
        with pytest.raises(asyncio.CancelledError):
            await demo
        async with session.get(f"{target.api_url}/tasks?limit=100") as resp:
            tasks = (await resp.json())["tasks"]
        assert tasks and {t["state"] for t in tasks} == {"cancelled"}
        async with session.get(f"{target.service_urls['billing']}/__admin/faults") as resp:
            assert (await resp.json())["faults"] == []
