"""``interlock up``: the sandbox to completion, its checks, and one worker id per database file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from interlock.cli.main import main
from interlock.cli.up import worker_identity
from orchestrator.errors import StoreError
from orchestrator.event_types import EventType
from orchestrator.store.sqlite import SqliteStore
from tests.interlock.cli.conftest import run_cli, run_in_pty


@pytest.mark.slow
def test_up_runs_the_sandbox_to_completion_and_persists(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    ports = [f"--{s}-port=0" for s in ("api", "users", "billing", "preferences", "notifications")]
    result = run_cli("up", "--db", str(db), "--fake", "3", "--exit-when-done", *ports)
    assert result.returncode == 0, result.stderr
    assert EventType.TASK_COMPLETED in result.stdout
    assert "3 tasks in the database: 3 complete" in result.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tasks WHERE state = 'complete'").fetchone() == (
            3,
        )


def test_missing_directory_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["up", "--db", str(tmp_path / "nope" / "x.db"), "--exit-when-done"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_second_orchestrator_on_one_file_gets_its_own_worker_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "shared.db"
    with worker_identity(db) as first:
        assert first == f"interlock-up:{db}"  # stable: a restart reclaims its own steps at once
        with worker_identity(db) as second:
            assert second != first and second.startswith(f"interlock-up:{db}:")
        assert "joins it as a second worker" in capsys.readouterr().out
    with worker_identity(db) as again:  # released: the next process is the stable worker
        assert again == first


def _bad_databases(tmp_path: Path) -> dict[str, Path]:
    junk = tmp_path / "junk.db"
    junk.write_bytes(bytes(range(256)) * 40)
    text = tmp_path / "notes.db"
    text.write_text("not a database\n")
    directory = tmp_path / "folder.db"
    directory.mkdir()
    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    newer = tmp_path / "newer.db"
    with contextlib.closing(sqlite3.connect(newer)) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (999)")
        conn.commit()
    foreign = tmp_path / "foreign.db"
    with contextlib.closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE schema_version (label TEXT)")
        conn.commit()
    return {
        "junk": junk,
        "text": text,
        "directory": directory,
        "fifo": fifo,
        "newer": newer,
        "foreign": foreign,
    }


@pytest.mark.slow
def test_a_bad_database_is_one_line_and_exit_2_within_seconds(tmp_path: Path) -> None:
    ports = [f"--{s}-port=0" for s in ("api", "users", "billing", "preferences", "notifications")]
    bad = _bad_databases(tmp_path)
    runs = [(name, db, []) for name, db in bad.items()]
    runs.append(("junk, orchestrator only", bad["junk"], ["--orchestrator-only"]))
    for name, db, half in runs:
        started = time.monotonic()
        result = run_cli("up", "--db", str(db), *half, *ports, timeout_s=15)
        assert time.monotonic() - started < 10, name
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("interlock: "), (name, result.stderr)
        assert str(db) in lines[0], (name, lines)
        assert "http://" not in result.stdout, (name, result.stdout)  # nothing was started
        if name == "newer":
            assert "newer than this Interlock" in result.stderr


#: Run a child without the power to ignore file permissions (root, as in CI, has it).
UNPRIVILEGED = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    if os.geteuid() == 0 and shutil.which("setpriv")
    else []
)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0 and not UNPRIVILEGED, reason="root reads any file")
def test_a_database_it_may_not_read_or_write_is_one_line_and_exit_2(tmp_path: Path) -> None:
    ports = [f"--{s}-port=0" for s in ("api", "users", "billing", "preferences", "notifications")]
    db = tmp_path / "locked.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (x)")
    for file_mode, dir_mode, why in (
        (0o000, 0o700, "permission denied"),
        (0o400, 0o700, "permission denied"),
        (0o600, 0o500, "not writable"),
    ):
        db.chmod(file_mode)
        tmp_path.chmod(dir_mode)
        try:
            result = run_cli("up", "--db", str(db), *ports, timeout_s=15, prefix=UNPRIVILEGED)
        finally:
            tmp_path.chmod(0o700)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, (oct(file_mode), oct(dir_mode), result.stderr)
        assert len(lines) == 1 and why in lines[0] and str(db) in lines[0], result.stderr


async def test_a_store_that_fails_to_open_leaves_no_thread(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    for db in _bad_databases(tmp_path).values():
        store = SqliteStore(str(db))
        with pytest.raises(StoreError, match=str(db)):
            await store.open()
    await asyncio.sleep(0.05)
    assert set(threading.enumerate()) - before == set()


@pytest.mark.slow
def test_the_dashboard_refuses_a_bad_database_before_it_starts_anything(tmp_path: Path) -> None:
    db = _bad_databases(tmp_path)["junk"]
    status, output = run_in_pty(
        [sys.executable, "-m", "interlock.cli", "dashboard", "--db", str(db)]
    )
    assert status == 2, output
    assert output.strip().splitlines() == [
        f"interlock: {db} cannot be used as an Interlock database: file is not a database"
    ]
    assert not Path(f"{db}.dashboard.log").exists()  # no child was started
