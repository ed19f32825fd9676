"""The sandbox as child processes: they answer, the orchestrator restarts on the same state, and
nothing outlives :meth:`Supervisor.stop` or a failed start; on PostgreSQL, several workers."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from interlock.probe import probe
from interlock.supervisor import (
    ChildRole,
    ChildStartError,
    Supervisor,
    SupervisorConfig,
    SupervisorError,
    SupervisorStoppedError,
    _Child,
    _kill,
    _terminate,
)
from mock_services.payloads import RegistrationFaker
from tests.interlock.conftest import get_json, living, post_json, sandbox_config

SERVICES, ORCHESTRATOR = ChildRole.SERVICES, ChildRole.ORCHESTRATOR


@pytest.mark.slow
def test_the_children_answer_the_orchestrator_restarts_on_the_same_state_and_stop_ends_all(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    supervisor = Supervisor(sandbox_config(tmp_path))
    supervisor.start()
    try:
        assert probe(f"{supervisor.api_url}/health", timeout_s=5) is None
        assert all(
            probe(f"{url}/__admin/stats", timeout_s=5) is None
            for url in supervisor.service_urls.values()
        )
        db = tmp_path / "sandbox.db"
        assert get_json(f"{supervisor.api_url}/health")["worker_id"] == f"interlock-up:{db}"
        task = post_json(
            f"{supervisor.api_url}/tasks",
            {"name": "user_registration", "context": RegistrationFaker(seed=4).registration()},
        )
        faults = f"{supervisor.service_urls['billing']}/__admin/faults"
        rule = post_json(faults, {"kind": "latency", "delay_ms": 1, "match": {"path": "/none"}})
        before = supervisor.pids

        asyncio.run(supervisor.restart_orchestrator())  # as the dashboard's loop awaits it

        after = supervisor.pids
        assert after[SERVICES] == before[SERVICES]
        assert after[ORCHESTRATOR] != before[ORCHESTRATOR]
        assert living([before[ORCHESTRATOR]]) == []
        health = get_json(f"{supervisor.api_url}/health")  # same port, same database
        assert health["worker_id"] == f"interlock-up:{db}"
        assert get_json(f"{supervisor.api_url}/tasks/{task['task_id']}")["task_id"]
        assert [r["id"] for r in get_json(faults)["faults"]] == [rule["id"]]
    finally:
        supervisor.stop()

    assert supervisor.pids == {}
    assert len(spawned) == 3  # services, orchestrator, orchestrator again
    assert all(p.returncode is not None for p in spawned)
    assert living(p.pid for p in spawned) == []
    log = supervisor.log_path.read_text()
    assert supervisor.log_path == Path(f"{db}.dashboard.log")
    assert "mock services running" in log and "killing the orchestrator (SIGKILL)" in log
    assert log.rstrip().endswith("supervisor: stopped")
    with pytest.raises(SupervisorStoppedError):
        asyncio.run(supervisor.restart_orchestrator())
    supervisor.stop()  # idempotent


@pytest.mark.slow
@pytest.mark.parametrize(("taken", "role"), [("users", SERVICES), ("api", ORCHESTRATOR)])
def test_a_taken_port_is_a_typed_error_with_the_childs_line_and_nothing_left_running(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]], taken: str, role: ChildRole
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = sandbox_config(tmp_path)
        if taken == "api":
            config = sandbox_config(tmp_path, api_port=port)
        else:
            config = sandbox_config(tmp_path, service_ports={**config.service_ports, taken: port})
        supervisor = Supervisor(config)
        with pytest.raises(ChildStartError) as info:
            supervisor.start()

    error = info.value
    assert (error.role, error.returncode, error.log_path) == (role, 2, supervisor.log_path)
    line = f"{taken}: 127.0.0.1:{port} is already in use"
    assert any(line in text for text in error.log_tail), error.log_tail
    assert line in str(error) and str(supervisor.log_path) in str(error)
    assert len(spawned) == (1 if role is SERVICES else 2)
    assert supervisor.pids == {}
    assert living(p.pid for p in spawned) == []


@pytest.mark.slow
def test_a_child_that_does_not_answer_in_time_is_stopped(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    supervisor = Supervisor(sandbox_config(tmp_path, ready_timeout_s=0.0))
    with pytest.raises(ChildStartError, match="did not answer within 0 s") as info:
        supervisor.start()
    assert (info.value.role, info.value.returncode) == (SERVICES, None)
    assert len(spawned) == 1
    assert living(p.pid for p in spawned) == []


@pytest.mark.slow
def test_stop_kills_a_child_that_ignores_sigterm_and_its_grandchildren() -> None:
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", stubborn], stdout=subprocess.PIPE, start_new_session=True
    )
    child = _Child(SERVICES, [], {}, [], process)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    assert len(living([process.pid])) == 2

    _terminate(child, 0.2)
    assert process.poll() is None  # SIGTERM ignored: still there after the timeout
    _kill(child)
    assert process.returncode == -9
    deadline = time.monotonic() + 5  # the grandchild, not ours to reap, dies on its own time
    while living([process.pid]) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert living([process.pid]) == []
    process.stdout.close()


def test_it_starts_nothing_when_not_started_stopped_or_the_log_cannot_be_written(
    tmp_path: Path,
) -> None:
    never = Supervisor(sandbox_config(tmp_path))
    with pytest.raises(SupervisorStoppedError):
        asyncio.run(never.restart_orchestrator())
    never.stop()
    with pytest.raises(SupervisorStoppedError):
        never.start()
    unwritable = Supervisor(sandbox_config(tmp_path, log_path=tmp_path / "nope" / "x.log"))
    with pytest.raises(SupervisorError, match="cannot write the log"):
        unwritable.start()
    assert unwritable.pids == {}


def with_password(url: str, password: str) -> str:
    """``url`` with a password (the server's trust auth never asks for it)."""
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(netloc=f"{parts.username}:{password}@{parts.hostname}:{parts.port}")
    )


@pytest.mark.slow
def test_on_postgresql_workers_share_one_database_and_restart_one_at_a_time(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]], pg_url: str
) -> None:
    log = tmp_path / "sandbox.log"
    url = with_password(pg_url, "sekret")
    config = sandbox_config(tmp_path, db=url, workers=2, worker_id_prefix="t", log_path=log)
    supervisor = Supervisor(config)
    supervisor.start()
    try:
        assert supervisor.worker_names == ("t-w1", "t-w2")
        first, second = supervisor.api_urls
        assert first == supervisor.api_url and first != second
        assert [get_json(f"{api}/health")["worker_id"] for api in (first, second)] == [
            "t-w1",
            "t-w2",
        ]
        task = post_json(
            f"{second}/tasks",
            {"name": "user_registration", "context": RegistrationFaker(seed=4).registration()},
        )
        assert get_json(f"{first}/tasks/{task['task_id']}")["task_id"] == task["task_id"]
        before = supervisor.worker_pids
        assert supervisor.pids[ORCHESTRATOR] == before["t-w1"]

        asyncio.run(supervisor.restart_worker(1))

        after = supervisor.worker_pids
        assert after["t-w1"] == before["t-w1"] and after["t-w2"] != before["t-w2"]
        assert living([before["t-w2"]]) == []
        assert get_json(f"{second}/health")["worker_id"] == "t-w2"  # same port, same id
        with pytest.raises(IndexError):
            asyncio.run(supervisor.restart_worker(2))
    finally:
        supervisor.stop()

    assert len(spawned) == 4  # services, two workers, the second again
    assert living(p.pid for p in spawned) == []
    text = log.read_text()
    assert "killing the orchestrator t-w2 (SIGKILL)" in text
    assert "killing the orchestrator t-w1" not in text
    assert "sekret" not in text and ":***@" in text  # the URL is in no argv, and redacted


def test_more_than_one_worker_needs_postgresql_and_postgresql_a_log(tmp_path: Path) -> None:
    with pytest.raises(SupervisorError, match="2 orchestrator workers need a PostgreSQL"):
        SupervisorConfig(db=tmp_path / "x.db", workers=2)
    with pytest.raises(SupervisorError, match="workers must be 1 or more"):
        SupervisorConfig(db=tmp_path / "x.db", workers=0)
    with pytest.raises(SupervisorError, match="needs a log_path"):
        SupervisorConfig(db="postgresql://u@localhost/db")
    config = SupervisorConfig(db="postgresql://u:pw@localhost/db", workers=3, log_path=tmp_path)
    assert config.on_postgres and config.db_label == "postgresql://u:***@localhost/db"
    assert Supervisor(config).worker_names == ("interlock-w1", "interlock-w2", "interlock-w3")
    sqlite = Supervisor(sandbox_config(tmp_path))
    assert sqlite.worker_names == ("orchestrator",) and len(sqlite.api_urls) == 1
