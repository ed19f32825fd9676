"""End-to-end registrations per second: the services in their own process, the engine here.

Each registration is the full diamond over HTTP on loopback (5 service calls, 5 durable step
transitions, service-call events). ``concurrency`` registrations are in flight at once; latency
is submit → ``task.completed``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from interlock.bench.engine import p99_s
from interlock.bench.machine import process_cpu_s
from interlock.bench.services import services_process
from interlock.progress import Progress
from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import open_orchestrator
from mock_services.payloads import RegistrationFaker
from orchestrator.engine import EngineConfig
from orchestrator.models import TaskState


async def run_registration_benchmark(
    registrations: int = 2000, concurrency: int = 100, progress: Progress | None = None
) -> dict[str, Any]:
    fake = RegistrationFaker(seed=42)
    contexts = [fake.registration() for _ in range(registrations + 50)]
    latencies: list[float] = []
    async with services_process() as services:
        with tempfile.TemporaryDirectory(prefix="interlock-regbench-") as tmp:
            config = EngineConfig(max_concurrency=1000, worker_id="regbench")
            async with open_orchestrator(
                Path(tmp) / "bench.db", services.urls, config=config
            ) as orch:
                queue = iter(contexts)

                async def worker(record: bool) -> None:
                    for context in queue:
                        started = time.perf_counter()
                        _, state = await orch.engine.run(TEMPLATE_NAME, context)
                        if state is not TaskState.COMPLETE:
                            raise RuntimeError(f"a benchmark registration ended {state}")
                        if record:
                            latencies.append(time.perf_counter() - started)
                            if progress is not None:
                                progress.advance()

                warm = iter(contexts[:50])
                queue = warm
                await asyncio.gather(*(worker(False) for _ in range(10)))
                queue = iter(contexts[50:])
                if progress is not None:
                    progress.begin("registration: end to end", registrations)
                cpu_before = (process_cpu_s(), process_cpu_s(services.pid))
                started = time.perf_counter()
                await asyncio.gather(*(worker(True) for _ in range(concurrency)))
                seconds = time.perf_counter() - started
                cpu = [
                    _per_registration_ms(before, after, registrations)
                    for before, after in zip(
                        cpu_before, (process_cpu_s(), process_cpu_s(services.pid)), strict=True
                    )
                ]
    latencies.sort()
    return {
        "benchmark": "registration_end_to_end",
        "registrations": registrations,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "registrations_per_s": round(registrations / seconds, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(p99_s(latencies) * 1000, 1),
        "engine_cpu_ms_per_registration": cpu[0],
        "services_cpu_ms_per_registration": cpu[1],
        "target_registrations_per_s": 200,
    }


def _per_registration_ms(
    before: float | None, after: float | None, registrations: int
) -> float | None:
    if before is None or after is None:
        return None
    return round((after - before) / registrations * 1000, 2)


def format_registration_report(result: dict[str, Any]) -> str:
    return (
        f"Registration end to end — {result['registrations']} registrations, "
        f"{result['concurrency']} in flight, services in their own process\n"
        f"{result['registrations_per_s']:.1f} registrations/s; p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms (target >= {result['target_registrations_per_s']}/s)"
        + _cpu_line(result)
    )


def _cpu_line(result: dict[str, Any]) -> str:
    engine, services = (
        result["engine_cpu_ms_per_registration"],
        result["services_cpu_ms_per_registration"],
    )
    if engine is None:
        return ""
    line = f"\nCPU per registration: engine process {engine:.2f} ms (all its threads)"
    return line + (f", services process {services:.2f} ms" if services is not None else "")
