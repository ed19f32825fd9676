"""``interlock bench``: engine throughput, latency and memory on a fresh SQLite file."""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from interlock.diamond import diamond_template, register_noop
from interlock.progress import Progress
from orchestrator.embedded import open_engine
from orchestrator.engine import Engine, EngineConfig
from orchestrator.handlers import HandlerRegistry
from orchestrator.models import TaskState

STEPS_PER_WORKFLOW = 5


@dataclass(frozen=True)
class RunResult:
    concurrency: int
    workflows: int
    seconds: float
    workflows_per_s: float
    steps_per_s: float
    p50_ms: float
    p99_ms: float
    commits: int  #: durable commits (batches) the run took
    transitions_per_commit: float


async def _run(
    engine: Engine, workflows: int, concurrency: int, progress: Progress | None = None
) -> RunResult:
    latencies: list[float] = []
    queue = iter(range(workflows))
    if progress is not None:
        progress.begin(f"engine: {workflows:,} workflows at concurrency {concurrency}", workflows)

    async def worker() -> None:
        for _ in queue:
            started = time.perf_counter()
            _, state = await engine.run("bench_diamond", {}, namespace="bench")
            if state is not TaskState.COMPLETE:
                raise RuntimeError(f"benchmark task ended {state}")
            latencies.append(time.perf_counter() - started)
            if progress is not None:
                progress.advance()

    store: Any = engine.store
    commits_before, ops_before = store.batches_committed, store.ops_committed
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    commits = store.batches_committed - commits_before
    latencies.sort()
    return RunResult(
        concurrency=concurrency,
        workflows=workflows,
        seconds=round(seconds, 3),
        workflows_per_s=round(workflows / seconds, 1),
        steps_per_s=round(workflows * STEPS_PER_WORKFLOW / seconds, 1),
        p50_ms=round(statistics.median(latencies) * 1000, 2),
        p99_ms=round(p99_s(latencies) * 1000, 2),
        commits=commits,
        transitions_per_commit=round((store.ops_committed - ops_before) / max(1, commits), 1),
    )


def p99_s(ordered: list[float]) -> float:
    """The 99th percentile of sorted samples (nearest rank)."""
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def run_benchmark(
    sequential: int = 500, parallel: int = 10_000, progress: Progress | None = None
) -> dict[str, Any]:
    """Concurrency 1 and 100 on one fresh durable SQLite file; peak RSS after ``parallel``."""
    registry = HandlerRegistry()
    register_noop(registry)
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        config = EngineConfig(max_concurrency=1000, worker_id="bench")
        async with open_engine(
            db, registry, [diamond_template(registry)], config=config, durable=True
        ) as engine:
            await _run(engine, 50, 10)  # warm-up: imports, caches, the WAL file
            c1 = await _run(engine, sequential, 1, progress)
            c100 = await _run(engine, parallel, 100, progress)
        size_mb = (db.stat().st_size + _size(Path(f"{db}-wal"))) / 1e6
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "benchmark": "engine_diamond",
        "workflow": "a -> (b || c) -> d -> e, no-op handlers",
        "store": "sqlite WAL, synchronous=FULL (durable commits)",
        "cpus": os.cpu_count(),
        "concurrency_1": asdict(c1),
        "concurrency_100": asdict(c100),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "tasks_total": 50 + sequential + parallel,
        "db_size_mb": round(size_mb, 1),
        "targets": {"workflows_per_s_at_100": 500, "p50_ms_at_1": 5},
    }


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def format_report(result: dict[str, Any]) -> str:
    lines = [f"Interlock engine benchmark — {result['workflow']}", f"store: {result['store']}"]
    for key in ("concurrency_1", "concurrency_100"):
        r = result[key]
        lines.append(
            f"concurrency {r['concurrency']:>3}: {r['workflows_per_s']:>7.1f} workflows/s "
            f"{r['steps_per_s']:>8.1f} steps/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms"
            f"  ({r['workflows']} workflows, {r['transitions_per_commit']} transitions/commit)"
        )
    lines.append(
        f"peak RSS after {result['tasks_total']} tasks: {result['peak_rss_mb']} MB "
        f"(database {result['db_size_mb']} MB)"
    )
    t = result["targets"]
    lines.append(
        f"targets: >= {t['workflows_per_s_at_100']} workflows/s at concurrency 100, "
        f"<= {t['p50_ms_at_1']} ms p50 at concurrency 1"
    )
    return "\n".join(lines)
