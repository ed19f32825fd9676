"""The scaling benchmark's numbers come from real runs: workers on a database of their own."""

from __future__ import annotations

from dataclasses import asdict

import asyncpg
import pytest

from interlock.bench.scaling import _one_run, format_scaling_report
from tests import pg

pytestmark = pytest.mark.slow


async def _databases() -> set[str]:
    conn = await asyncpg.connect(pg.SERVER_URL)
    try:
        return {r[0] for r in await conn.fetch("SELECT datname FROM pg_database")}
    finally:
        await conn.close()


async def test_two_workers_on_postgresql_report_what_a_workflow_costs(pg_database: str) -> None:
    before = await _databases()
    run = await _one_run("postgresql", "diamond", 2, 60, 10, pg.SERVER_URL, {}, None)
    assert (run.workers, run.workflows) == (2, 60)
    assert run.workflows_per_s > 0 and 0 < run.p50_ms <= run.p99_ms
    assert run.worker_cpu_ms > 0 and run.database_cpu_ms is not None and run.database_cpu_ms > 0
    assert run.wal_bytes is not None and run.wal_bytes > 0
    assert run.rows is not None and (run.rows["tasks"], run.rows["steps"]) == (1.0, 5.0)
    assert run.rows["events"] > 5
    assert await _databases() == before  # its database was dropped
    sqlite = await _one_run("sqlite", "diamond", 1, 30, 10, pg.SERVER_URL, {}, None)
    assert sqlite.database_cpu_ms is None and sqlite.rows is None
    runs = [asdict(run), asdict(sqlite)]
    report = format_scaling_report({"cpus": 2, "concurrency_per_worker": 10, "runs": runs})
    assert "postgresql" in report and "rows per workflow on PostgreSQL (diamond)" in report
