"""One worker process of the scaling benchmark (``interlock.bench.scaling``).

Usage: ``python -m interlock.bench.scaling_worker DB WORKLOAD WORKFLOWS CONCURRENCY WORKER_ID
[SERVICES_JSON]``. It opens an engine on ``DB`` (the no-op diamond, or the registration against
the mock services whose URLs ``SERVICES_JSON`` holds), warms up, prints ``READY``, waits for a
line on stdin (so every worker starts at once), runs ``WORKFLOWS`` at ``CONCURRENCY`` in flight,
prints one JSON line (its latencies, start and end times, CPU) and keeps serving (its engine may
be finishing other workers' steps) until stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from interlock.cli.loop import run
from interlock.diamond import diamond_template, register_noop
from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import open_orchestrator
from mock_services.payloads import RegistrationFaker
from orchestrator.embedded import open_engine
from orchestrator.engine import Engine, EngineConfig
from orchestrator.handlers import HandlerRegistry
from orchestrator.models import TaskState

WARM_UP = 30


@asynccontextmanager
async def _engine(
    db: str, workload: str, worker_id: str, services: dict[str, str]
) -> AsyncIterator[tuple[Engine, str, Callable[[], Any]]]:
    config = EngineConfig(max_concurrency=1000, worker_id=worker_id)
    if workload == "diamond":
        registry = HandlerRegistry()
        register_noop(registry)
        async with open_engine(db, registry, [diamond_template(registry)], config=config) as e:
            yield e, "bench_diamond", dict
    else:
        fake = RegistrationFaker(seed=hash(worker_id) & 0xFFFF)
        async with open_orchestrator(db, services, config=config) as orch:
            yield orch.engine, TEMPLATE_NAME, fake.registration


async def _run(
    engine: Engine, name: str, context: Callable[[], Any], n: int, c: int
) -> list[float]:
    latencies: list[float] = []
    queue = iter(range(n))
    namespace = "bench" if name == "bench_diamond" else None

    async def one() -> None:
        for _ in queue:
            started = time.perf_counter()
            _, state = await engine.run(name, context(), namespace=namespace)
            if state is not TaskState.COMPLETE:
                raise RuntimeError(f"a benchmark task ended {state}")
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(one() for _ in range(c)))
    return latencies


def _say(line: str) -> None:
    """A line to the coordinator, on stdout (which is its pipe, never a terminal)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main(argv: list[str]) -> None:
    db, workload, workflows, concurrency, worker_id = argv[:5]
    services = json.loads(argv[5]) if len(argv) > 5 else {}
    loop = asyncio.get_running_loop()
    async with _engine(db, workload, worker_id, services) as (engine, name, context):
        await _run(engine, name, context, WARM_UP, min(WARM_UP, int(concurrency)))
        _say("READY")
        await loop.run_in_executor(None, sys.stdin.readline)
        cpu_before = os.times()
        started = time.time()
        latencies = await _run(engine, name, context, int(workflows), int(concurrency))
        ended = time.time()
        cpu_after = os.times()
        cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
        result = {"latencies": latencies, "started": started, "ended": ended, "cpu_s": cpu}
        _say(json.dumps(result))
        await loop.run_in_executor(None, sys.stdin.readline)


if __name__ == "__main__":
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    run(main(sys.argv[1:]), use_uvloop=True)
