"""``interlock up``: the sandbox to completion, its checks, and one worker id per database file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from interlock.cli.main import main
from interlock.cli.up import worker_identity
from orchestrator.errors import StoreError
from orchestrator.event_types import EventType
from orchestrator.store.sqlite import SqliteStore
from tests.interlock.cli.conftest import run_all, run_cli, run_in_pty


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


PORTS = [f"--{s}-port=0" for s in ("api", "users", "billing", "preferences", "notifications")]


@pytest.mark.slow
def test_a_bad_database_is_one_line_and_exit_2_within_seconds(tmp_path: Path) -> None:
    bad = _bad_databases(tmp_path)
    cases = {name: (["up", "--db", str(db), *PORTS], {}) for name, db in bad.items()}
    cases["junk, orchestrator only"] = (["up", "--db", str(bad["junk"]), "--orchestrator-only"], {})
    for name, (status, err, seconds) in run_all(cases, tmp_path).items():
        db = bad[name.split(",")[0]]
        lines = err.strip().splitlines()
        assert seconds < 10, name  # nothing kept it alive: no thread, no server
        assert status == 2, (name, err)
        assert len(lines) == 1 and lines[0].startswith("interlock: "), (name, err)
        assert str(db) in lines[0], (name, lines)
        if name == "newer":
            assert "newer than this Interlock" in lines[0]


#: Run a child without the power to ignore file permissions (root, as in CI, has it).
UNPRIVILEGED = (
    ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    if os.geteuid() == 0 and shutil.which("setpriv")
    else []
)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() == 0 and not UNPRIVILEGED, reason="root reads any file")
def test_a_database_it_may_not_read_or_write_is_one_line_and_exit_2(tmp_path: Path) -> None:
    setups = {
        "unreadable": (0o000, 0o700, "permission denied"),
        "read-only": (0o400, 0o700, "permission denied"),
        "read-only directory": (0o600, 0o500, "not writable"),
    }
    dbs = {}
    for n, (name, (file_mode, dir_mode, _)) in enumerate(setups.items()):
        folder = tmp_path / f"d{n}"
        folder.mkdir()
        dbs[name] = folder / "locked.db"
        with contextlib.closing(sqlite3.connect(dbs[name])) as conn:
            conn.execute("CREATE TABLE t (x)")
        dbs[name].chmod(file_mode)
        folder.chmod(dir_mode)
    cases = {name: (["up", "--db", str(db), *PORTS], {}) for name, db in dbs.items()}
    try:
        results = run_all(cases, tmp_path, prefix=UNPRIVILEGED)
    finally:
        for db in dbs.values():
            db.parent.chmod(0o700)
    for name, (status, err, _) in results.items():
        lines = err.strip().splitlines()
        assert status == 2, (name, err)
        assert len(lines) == 1 and setups[name][2] in lines[0], (name, err)
        assert str(dbs[name]) in lines[0], (name, err)


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


@pytest.mark.slow
def test_the_dashboard_refuses_an_unusable_postgresql_database_before_it_starts_anything(
    tmp_path: Path,
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    log = tmp_path / "children.log"
    url = f"postgresql://me:secret@127.0.0.1:{port}/x"
    argv = [sys.executable, "-m", "interlock.cli", "dashboard", "--db", url, "--log", str(log)]
    status, output = run_in_pty(argv)
    assert status == 2, output
    [line] = output.strip().splitlines()
    assert line.startswith(f"interlock: postgresql://me:***@127.0.0.1:{port}/x cannot be used")
    assert not log.exists()  # no child was started


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback here")
def test_up_on_an_ipv6_address_runs_the_sandbox(tmp_path: Path) -> None:
    result = run_cli(
        "up",
        "--host",
        "::1",
        "--db",
        str(tmp_path / "v6.db"),
        "--fake",
        "2",
        "--exit-when-done",
        "--quiet",
        *PORTS,
    )
    assert result.returncode == 0, result.stderr
    assert "http://[::1]:" in result.stdout  # a URL a client can use
    assert "2 tasks in the database: 2 complete" in result.stdout


@pytest.mark.slow
def test_an_unusable_postgresql_database_is_one_line_before_anything_starts(pg_url: str) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    missing = pg_url.split("?")[0].rsplit("/", 1)[0] + "/no_such_interlock_db"
    for url in (f"postgresql://me:secret@127.0.0.1:{port}/x", missing):
        result = run_cli("up", "--db", url, *PORTS)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and lines[0].startswith("interlock: postgresql://"), lines
        assert "cannot be used as an Interlock database" in lines[0], lines
        assert "secret" not in result.stderr  # the password is never printed
        assert "faults:" not in result.stdout  # checked before the services started


def test_a_worker_id_is_refused_for_sqlite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--db", str(tmp_path / "x.db"), "--worker-id", "w1"]) == 2
    assert "--worker-id is for a PostgreSQL --db" in capsys.readouterr().err


def test_an_empty_worker_id_and_a_missing_schema_are_refused_before_anything_starts(
    pg_database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["up", "--db", pg_database, "--worker-id", " ", "--orchestrator-only"]) == 2
    assert "--worker-id must not be empty" in capsys.readouterr().err
    assert main(["up", "--db", f"{pg_database}?search_path=nosuch", "--orchestrator-only"]) == 2
    assert "no schema of its search_path exists" in capsys.readouterr().err
