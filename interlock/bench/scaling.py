"""``interlock bench --only scaling``: 1, 2 and 4 worker processes on PostgreSQL, next to SQLite.

Each run starts N worker processes (:mod:`interlock.bench.scaling_worker`) on a fresh database,
lets them warm up, starts them at once and has each run its share of the workflows with
``concurrency`` in flight, as N API servers with their own clients would. It reports the
throughput of all of them together, the latency (submit to end) over every workflow, and what a
workflow costs: CPU in the workers, in the PostgreSQL server (every ``postgres`` process of the
machine, read from ``/proc``), in the mock services, and on PostgreSQL the WAL bytes, commits
and rows it leaves. ``cores_busy`` says how much of the machine the run used: near the number
of cores, the machine is the limit, not the design. ``docs/scaling.md`` reasons from these.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from interlock.bench.engine import p99_s
from interlock.bench.machine import process_cpu_s
from interlock.bench.services import services_process
from interlock.progress import Progress
from orchestrator.store import pg_admin

#: The PostgreSQL server the benchmark makes its databases on.
DEFAULT_SERVER = os.environ.get(
    "INTERLOCK_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
WORKLOADS = ("diamond", "registration")


@dataclass(frozen=True, slots=True)
class ScalingRun:
    store: str  #: sqlite | postgresql
    workload: str  #: diamond (no-op handlers) | registration (the four services over HTTP)
    workers: int
    workflows: int
    seconds: float
    workflows_per_s: float
    p50_ms: float
    p99_ms: float
    worker_cpu_ms: float  #: per workflow, all workers together
    database_cpu_ms: float | None  #: per workflow, the PostgreSQL server's processes
    services_cpu_ms: float | None  #: per workflow, the mock services (registration)
    cores_busy: float  #: CPU seconds of all of the above per second of the run
    wal_bytes: float | None  #: per workflow (PostgreSQL)
    commits: float | None  #: per workflow (PostgreSQL)
    rows: dict[str, float] | None  #: per workflow, by table (PostgreSQL)


def postgres_cpu_s() -> float:
    """CPU seconds the machine's ``postgres`` processes have used: each one's own, plus what
    the processes they reaped had used (a backend that ended is in its postmaster's count)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / tick
    return total


@contextlib.asynccontextmanager
async def _database(store: str, server_url: str) -> AsyncIterator[str]:
    """A fresh database for one run: a SQLite file, or a PostgreSQL database (dropped after)."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix="interlock-scaling-") as tmp:
            yield str(Path(tmp) / "bench.db")
        return
    name = f"interlock_bench_{uuid.uuid4().hex[:8]}"
    url = await pg_admin.create_database(server_url, name)
    try:
        yield url
    finally:
        await pg_admin.drop_database(server_url, name)


async def _start_worker(
    db: str, workload: str, workflows: int, concurrency: int, worker_id: str, services: str
) -> asyncio.subprocess.Process:
    argv = [db, workload, str(workflows), str(concurrency), worker_id, services]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "interlock.bench.scaling_worker",
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=64 * 1024 * 1024,  # its result is one line with every latency
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 120)
    if line.strip() != b"READY":
        raise RuntimeError(f"scaling worker {worker_id} did not start (said {line!r})")
    return proc


async def _one_run(
    store: str,
    workload: str,
    workers: int,
    workflows: int,
    concurrency: int,
    server_url: str,
    services: dict[str, str],
    services_pid: int | None,
) -> ScalingRun:
    share = workflows // workers
    is_pg = store == "postgresql"
    async with _database(store, server_url) as db:
        procs: list[asyncio.subprocess.Process] = []
        try:
            for i in range(workers):
                procs.append(
                    await _start_worker(
                        db, workload, share, concurrency, f"scale-w{i + 1}", json.dumps(services)
                    )
                )
            before = await pg_admin.counters(db) if is_pg else None
            wal_before = await pg_admin.wal_position(db) if is_pg else 0
            db_cpu_before = postgres_cpu_s() if is_pg else 0.0
            svc_before = process_cpu_s(services_pid) if services_pid else None
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            results = []
            for proc in procs:
                assert proc.stdout is not None
                line = await proc.stdout.readline()
                if not line:
                    raise RuntimeError("a scaling worker exited during its run")
                results.append(json.loads(line))
            db_cpu = postgres_cpu_s() - db_cpu_before if is_pg else None
            svc_after = process_cpu_s(services_pid) if services_pid else None
            wal = await pg_admin.wal_position(db) - wal_before if is_pg else None
        finally:
            for proc in procs:
                if proc.stdin is not None and not proc.stdin.is_closing():
                    proc.stdin.close()
            for proc in procs:
                try:
                    await asyncio.wait_for(proc.wait(), 30)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        after = await pg_admin.counters(db) if is_pg else None
    done = share * workers
    started = min(r["started"] for r in results)
    seconds = max(r["ended"] for r in results) - started
    latencies = sorted(x for r in results for x in r["latencies"])
    worker_cpu = sum(r["cpu_s"] for r in results)
    svc_cpu = None if svc_before is None or svc_after is None else svc_after - svc_before
    busy = worker_cpu + (db_cpu or 0.0) + (svc_cpu or 0.0)

    def per(value: float | None, scale: float = 1000.0) -> float | None:
        return None if value is None else round(value * scale / done, 3)

    rows = None
    commits = None
    if before is not None and after is not None:
        commits = per(after["commits"] - before["commits"], 1.0)
        # Warm-up workflows left rows too: count per workflow over everything in the tables.
        total = done + workers * 30
        rows = {t: round(after[t] / total, 2) for t in pg_admin.TABLES}
    return ScalingRun(
        store=store,
        workload=workload,
        workers=workers,
        workflows=done,
        seconds=round(seconds, 3),
        workflows_per_s=round(done / seconds, 1),
        p50_ms=round(statistics.median(latencies) * 1000, 1),
        p99_ms=round(p99_s(latencies) * 1000, 1),
        worker_cpu_ms=per(worker_cpu) or 0.0,
        database_cpu_ms=per(db_cpu),
        services_cpu_ms=per(svc_cpu),
        cores_busy=round(busy / seconds, 2),
        wal_bytes=per(wal, 1.0),
        commits=commits,
        rows=rows,
    )


async def run_scaling_benchmark(
    workers: Sequence[int] = (1, 2, 4),
    diamonds: int = 4000,
    registrations: int = 1200,
    concurrency: int = 50,
    server_url: str = DEFAULT_SERVER,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """SQLite with one worker, then PostgreSQL with each of ``workers``, for both workloads."""
    runs: list[ScalingRun] = []
    plan = [("sqlite", 1)] + [("postgresql", n) for n in workers]
    async with services_process() as services:
        for workload, total in (("diamond", diamonds), ("registration", registrations)):
            for store, n in plan:
                if progress is not None:
                    progress.begin(f"scaling: {workload} on {store}, {n} worker(s)")
                pid = services.pid if workload == "registration" else None
                runs.append(
                    await _one_run(
                        store, workload, n, total, concurrency, server_url, services.urls, pid
                    )
                )
    return {
        "benchmark": "scaling",
        "cpus": os.cpu_count(),
        "concurrency_per_worker": concurrency,
        "server": pg_admin.database_url(server_url, "…"),
        "runs": [asdict(r) for r in runs],
    }


def format_scaling_report(result: dict[str, Any]) -> str:
    lines = [
        f"Interlock scaling benchmark — {result['cpus']} cores, "
        f"{result['concurrency_per_worker']} workflows in flight per worker",
        f"{'workload':<13}{'store':<11}{'workers':>7}{'wf/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'worker':>8}{'db':>7}{'svc':>7}{'cores':>7}{'WAL B':>8}{'commits':>8}",
        f"{'':<48}{'(CPU ms per workflow)':>22}{'(per workflow)':>23}",
    ]
    for r in result["runs"]:

        def num(value: float | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        lines.append(
            f"{r['workload']:<13}{r['store']:<11}{r['workers']:>7}{r['workflows_per_s']:>8.1f}"
            f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['worker_cpu_ms']:>8.2f}"
            f"{num(r['database_cpu_ms'], '.2f'):>7}{num(r['services_cpu_ms'], '.2f'):>7}"
            f"{r['cores_busy']:>7.2f}{num(r['wal_bytes'], '.0f'):>8}{num(r['commits'], '.2f'):>8}"
        )
    pg_rows = [r for r in result["runs"] if r["rows"]]
    if pg_rows:
        rows = ", ".join(f"{t} {n}" for t, n in pg_rows[0]["rows"].items())
        lines.append(f"rows per workflow on PostgreSQL ({pg_rows[0]['workload']}): {rows}")
    return "\n".join(lines)
