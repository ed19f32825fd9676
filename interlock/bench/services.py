"""The mock services' own benchmark: what the (inactive) fault layer costs a plain ``POST /users``.

A child process serves three users services side by side: one with the fault middleware (no
rules set), one built without it, and one with a rule that is checked on every request but never
matches. The client (this process) sends a round of batches of ``POST /users`` to each in turn,
rotating which goes first. All share one process, one core and nearly the same moment, so the
machine's drift (which moves single runs by more than the effect measured; docs/benchmarks.md)
cancels out: the overhead is the median over rounds of each round's time ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from interlock.progress import Progress
from mock_services.runner import start_services
from mock_services.runtime import ServiceConfig
from mock_services.services import SandboxData

LABELS = ("fault_layer", "no_fault_layer", "non_matching_rule")


async def _serve_pair() -> None:
    """Child side: both users services on free ports, their URLs as one JSON line."""
    with_layer = await start_services(
        {"users": 0}, config=ServiceConfig(faults_enabled=True), data=SandboxData()
    )
    without = await start_services(
        {"users": 0}, config=ServiceConfig(faults_enabled=False), data=SandboxData()
    )
    # A layer that has a rule to check on every request, which never matches.
    checking = await start_services({"users": 0}, data=SandboxData())
    checking.runtimes["users"].injector.add({"kind": "error", "match": {"path": "/nowhere"}})
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    servers = dict(zip(LABELS, (with_layer, without, checking), strict=True))
    print(json.dumps({label: s.urls["users"] for label, s in servers.items()}), flush=True)
    await stop.wait()
    for server in servers.values():
        await server.stop()


@contextlib.asynccontextmanager
async def _pair_process() -> AsyncIterator[dict[str, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "interlock.bench.services", stdout=asyncio.subprocess.PIPE
    )
    async with _child(proc) as urls:
        yield urls


@dataclass(frozen=True, slots=True)
class ServicesChild:
    urls: dict[str, str]
    pid: int


@contextlib.asynccontextmanager
async def services_process() -> AsyncIterator[ServicesChild]:
    """The four mock services in a child process on free ports."""
    ports = [f"--{s}-port=0" for s in ("users", "billing", "preferences", "notifications")]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mock_services", *ports, stdout=asyncio.subprocess.PIPE
    )
    async with _child(proc) as urls:
        yield ServicesChild(urls, proc.pid)


@contextlib.asynccontextmanager
async def _child(proc: asyncio.subprocess.Process) -> AsyncIterator[dict[str, str]]:
    """Read the child's first line (its URLs as JSON); terminate it on exit."""
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError("the services process exited before it listened")
        yield dict(json.loads(line))
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()


async def _batch(
    session: aiohttp.ClientSession, url: str, requests: int, concurrency: int, tag: str
) -> float:
    """Seconds for ``requests`` distinct ``POST /users`` with ``concurrency`` in flight."""
    counter = iter(range(requests))

    async def worker() -> None:
        for n in counter:
            body = {"email": f"bench.{tag}.{n}@example.com", "name": "Bench", "plan": "free"}
            async with session.post(f"{url}/users", json=body) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"POST /users answered {resp.status}")
                await resp.read()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def run_service_benchmark(
    requests: int = 6000,
    concurrency: int = 32,
    batches: int = 30,
    progress: Progress | None = None,
) -> dict[str, Any]:
    seconds = dict.fromkeys(LABELS, 0.0)
    rounds: list[dict[str, float]] = []
    per_batch = max(1, requests // batches)
    async with (
        _pair_process() as urls,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2 * concurrency)) as session,
    ):
        for label in LABELS:  # warm-up: connections, caches
            await _batch(session, urls[label], 200, concurrency, f"warm-{label}")
        if progress is not None:
            progress.begin("services: rounds of three servers", batches)
        for n in range(batches):
            if progress is not None:
                progress.advance()
            order = LABELS[n % 3 :] + LABELS[: n % 3]
            rounds.append({})
            for label in order:
                rounds[-1][label] = await _batch(
                    session, urls[label], per_batch, concurrency, f"{label}-{n}"
                )
                seconds[label] += rounds[-1][label]
    rps = {label: per_batch * batches / seconds[label] for label in LABELS}

    def overhead(label: str) -> float:
        # The median of per-round ratios: the three batches of a round run back to back, so
        # the machine's speed swings (which move whole rounds) cancel out of each ratio.
        ratio = statistics.median(r[label] / r["no_fault_layer"] for r in rounds)
        return round((ratio - 1) * 100, 1)

    return {
        "benchmark": "mock_services_post_users",
        "requests_each": per_batch * batches,
        "concurrency": concurrency,
        "batches": batches,
        "with_fault_layer_rps": round(rps["fault_layer"], 1),
        "without_fault_layer_rps": round(rps["no_fault_layer"], 1),
        "overhead_percent": overhead("fault_layer"),
        "non_matching_rule_rps": round(rps["non_matching_rule"], 1),
        "non_matching_rule_overhead_percent": overhead("non_matching_rule"),
        "target_overhead_percent": 10,
    }


def format_service_report(result: dict[str, Any]) -> str:
    return (
        f"Mock services — POST /users, {result['concurrency']} in flight, "
        f"{result['requests_each']} requests each, alternating batches\n"
        f"with the fault layer (no rules): {result['with_fault_layer_rps']:.0f} req/s; "
        f"without it: {result['without_fault_layer_rps']:.0f} req/s; "
        f"overhead {result['overhead_percent']:.1f} % "
        f"(target < {result['target_overhead_percent']} %)\n"
        f"with one rule checked on every request (never matching): "
        f"{result['non_matching_rule_rps']:.0f} req/s, "
        f"overhead {result['non_matching_rule_overhead_percent']:.1f} %"
    )


if __name__ == "__main__":
    asyncio.run(_serve_pair())
