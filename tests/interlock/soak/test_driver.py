"""The soak's run as asked: what it refuses before starting anything, and a short soak on
PostgreSQL with two workers killed in turn (the SQLite one runs as ``interlock soak`` in
``tests/e2e/test_soak.py``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from interlock.cli.main import main
from interlock.soak import SoakConfig, SoakError, run_soak
from orchestrator.models import AttemptOutcome
from orchestrator.store.postgres import PostgresStore

REGISTRATIONS = 120


def test_several_workers_are_refused_without_postgresql(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for db in (None, tmp_path / "soak.db", str(tmp_path / "soak.db")):
        with pytest.raises(SoakError, match="2 workers need a PostgreSQL database"):
            SoakConfig(db=db, workers=2)
    with pytest.raises(SoakError, match="at least one worker"):
        SoakConfig(workers=0)
    assert SoakConfig(db="postgresql://u@localhost/db", workers=2).on_postgres

    for argv in ([], ["--db", str(tmp_path / "soak.db")]):
        with pytest.raises(SystemExit) as info:
            main(["soak", "--workers", "2", "--n", "5", *argv])
        assert info.value.code == 2
        said = capsys.readouterr().err.strip()
        assert said.startswith("interlock: --workers 2 needs a PostgreSQL --db (postgresql://")
        assert "on SQLite the soak runs one orchestrator" in said
    assert not (tmp_path / "soak.db").exists()


async def test_a_postgresql_schema_an_interlock_used_is_refused_before_anything_starts(
    pg_url: str, tmp_path: Path
) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    log = tmp_path / "soak.log"
    with pytest.raises(SoakError, match="holds Interlock's tables already"):
        await run_soak(SoakConfig(db=pg_url, workers=2, registrations=5, log_path=log))
    assert not log.exists()


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_on_postgresql_two_workers_killed_in_turn_lose_and_duplicate_nothing(
    pg_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "soak.log"
    config = SoakConfig(
        registrations=REGISTRATIONS,
        kills=3,
        seed=1,
        rate_per_s=30,
        db=pg_url,
        log_path=log,
        timeout_s=240,
        workers=2,
    )

    report = await run_soak(config)

    assert report.ok, (report.problems, log.read_text()[-3000:])
    assert report.registrations == report.tasks == REGISTRATIONS
    assert report.unfinished == report.lost == report.duplicated == 0
    assert report.failed_by_kill == report.unexplained == report.mismatched == 0
    assert report.workers == ("soak-w1", "soak-w2")
    assert report.kill_workers == ("soak-w1", "soak-w2", "soak-w1")  # in turn
    text = log.read_text()
    assert text.count("killing the orchestrator soak-w1 (SIGKILL)") == 2
    assert text.count("killing the orchestrator soak-w2 (SIGKILL)") == 1
    # Both workers ran steps, and what the kills cut short was recorded as lost, not redone
    # twice (the verdict counted completions).
    store = PostgresStore(pg_url)
    await store.open()
    try:
        tasks = await store.list_tasks(limit=REGISTRATIONS + 1)
        attempts = [a for t in tasks for a in await store.list_attempts(t.task_id)]
    finally:
        await store.close()
    ran = Counter(a.worker_id for a in attempts if a.outcome == AttemptOutcome.COMPLETED)
    assert set(ran) == {"soak-w1", "soak-w2"}
    assert sum(a.outcome == AttemptOutcome.LOST for a in attempts) == report.lost_attempts
