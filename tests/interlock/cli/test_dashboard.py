"""``interlock dashboard``: what it hands the dashboard, that the sandbox it starts is gone after
it (also when the dashboard raises or the command is signalled), and its one-line refusals.

The TUI itself (``dashboard.app.run_dashboard``) is replaced by a stand-in here: these tests hold
the process side, not what the screen shows.
"""

from __future__ import annotations

import asyncio
import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dashboard.config import DashboardConfig
from interlock.cli import dashboard as dashboard_command
from interlock.cli.main import main
from interlock.demos import DEMOS
from interlock.probe import probe
from interlock.settings import SERVICE_PORTS, Settings
from tests.interlock.cli.conftest import ROOT, run_cli
from tests.interlock.conftest import living

ALL_PORTS_FREE = ["--api-port=0", *(f"--{s}-port=0" for s in SERVICE_PORTS)]


class FakeDashboard:
    """Stands in for ``dashboard.app``: records each config, then does ``then`` with it."""

    def __init__(self) -> None:
        self.configs: list[DashboardConfig] = []
        self.then: Callable[[DashboardConfig], None] = lambda config: None

    def run_dashboard(self, config: DashboardConfig) -> None:
        self.configs.append(config)
        self.then(config)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeDashboard:
    stand_in = FakeDashboard()
    module = types.ModuleType("dashboard.app")
    module.run_dashboard = stand_in.run_dashboard  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dashboard.app", module)
    monkeypatch.setattr(dashboard_command, "has_terminal", lambda: True)
    return stand_in


@pytest.fixture
def health_server() -> Iterator[str]:
    """Something that answers ``GET /health`` as the API does."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"status": "ok"}).encode()
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def started_pids(log: Path) -> list[int]:
    """The children the supervisor started, from its lines in the log."""
    return [int(pid) for pid in re.findall(r"is ready: pid (\d+)", log.read_text())]


@pytest.mark.slow
def test_without_a_terminal_it_says_so_and_suggests_interlock_up(tmp_path: Path) -> None:
    result = run_cli("dashboard", "--db", str(tmp_path / "x.db"))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "interlock: the dashboard needs a terminal (stdin and stdout); "
        "`interlock up` runs the sandbox without one\n"
    )
    assert list(tmp_path.iterdir()) == []  # nothing was started


def test_attach_to_a_url_nothing_answers_is_one_line_and_exit_2(
    fake: FakeDashboard, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert main(["dashboard", "--attach", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"interlock: no orchestrator API answers at {url} (GET /health: ")
    assert err.count("\n") == 1
    assert fake.configs == []


def test_attach_hands_the_dashboard_the_url_and_no_restart_hook(
    fake: FakeDashboard, health_server: str
) -> None:
    assert main(["dashboard", "--attach", health_server + "/", "--readonly", "--seed", "9"]) == 0
    [config] = fake.configs
    assert config.new_context is not None
    assert config.new_context()["user_info"]["email"]  # a Faker registration, seeded
    assert config == DashboardConfig(
        api_url=health_server,
        service_urls=Settings.from_env(os.environ).service_urls(),
        readonly=True,
        restart_orchestrator=None,
        seed=9,
        label=f"attached {health_server}",
        new_context=config.new_context,
        template="user_registration",
        demos=config.demos,
    )
    # every demo but the one that must restart the orchestrator, which an attached one cannot
    assert [d.name for d in config.demos] == [d.name for d in DEMOS if not d.needs_restart]


def test_sandbox_options_do_not_go_with_attach(
    fake: FakeDashboard, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["dashboard", "--attach", "http://127.0.0.1:8700", "--db", "x.db", "--api-port=0"])
    assert info.value.code == 2
    assert "--db, --api-port: for the sandbox it starts, not with --attach" in (
        capsys.readouterr().err
    )


@pytest.mark.slow
def test_the_dashboard_runs_on_the_sandbox_it_started_which_is_gone_after(
    fake: FakeDashboard, tmp_path: Path
) -> None:
    db = tmp_path / "dash.db"
    seen: dict[str, object] = {}

    def look_and_restart(config: DashboardConfig) -> None:
        seen["api"] = probe(f"{config.api_url}/health", timeout_s=5)
        seen["services"] = [
            probe(f"{url}/__admin/stats", timeout_s=5) for url in config.service_urls.values()
        ]
        assert config.restart_orchestrator is not None
        asyncio.run(config.restart_orchestrator())  # the way the dashboard's loop awaits it
        seen["after restart"] = probe(f"{config.api_url}/health", timeout_s=5)

    fake.then = look_and_restart
    args = ["dashboard", "--db", str(db), *ALL_PORTS_FREE, "--readonly", "--seed", "5"]
    assert main(args) == 0

    [config] = fake.configs
    assert (config.label, config.readonly, config.seed) == (f"sandbox {db}", True, 5)
    assert sorted(config.service_urls) == sorted(SERVICE_PORTS)
    assert [d.name for d in config.demos] == [d.name for d in DEMOS]  # crash-recovery too
    assert seen == {"api": None, "services": [None] * 4, "after restart": None}
    pids = started_pids(Path(f"{db}.dashboard.log"))
    assert len(pids) == 3  # services, orchestrator, the restarted orchestrator
    assert living(pids) == []


@pytest.mark.slow
def test_the_dashboard_runs_a_sandbox_on_postgresql(
    fake: FakeDashboard, tmp_path: Path, pg_url: str
) -> None:
    seen: dict[str, object] = {}

    def look(config: DashboardConfig) -> None:
        seen["api"] = probe(f"{config.api_url}/health", timeout_s=5)
        assert config.restart_orchestrator is not None
        asyncio.run(config.restart_orchestrator())
        seen["after restart"] = probe(f"{config.api_url}/health", timeout_s=5)

    fake.then = look
    log = tmp_path / "children.log"
    assert main(["dashboard", "--db", pg_url, *ALL_PORTS_FREE, "--log", str(log)]) == 0
    [config] = fake.configs
    assert config.label == f"sandbox {pg_url}"
    assert seen == {"api": None, "after restart": None}
    pids = started_pids(log)
    assert len(pids) == 3 and living(pids) == []


@pytest.mark.slow
def test_the_sandbox_is_stopped_when_the_dashboard_raises(
    fake: FakeDashboard, tmp_path: Path
) -> None:
    def crash(config: DashboardConfig) -> None:
        raise RuntimeError("the dashboard broke")

    fake.then = crash
    log = tmp_path / "children.log"
    with pytest.raises(RuntimeError, match="the dashboard broke"):
        main(["dashboard", "--db", str(tmp_path / "x.db"), "--log", str(log), *ALL_PORTS_FREE])
    pids = started_pids(log)
    assert len(pids) == 2
    assert living(pids) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)]
)
def test_a_signal_while_the_dashboard_runs_stops_the_sandbox(
    tmp_path: Path, sig: signal.Signals, status: int
) -> None:
    marker, db = tmp_path / "dashboard-running", tmp_path / "x.db"
    master, terminal = pty.openpty()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "tests.interlock.cli.fake_dashboard", str(marker)),
            *("dashboard", "--db", str(db), *ALL_PORTS_FREE),
        ],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # another process's progress: polled
        assert marker.exists(), "the stand-in dashboard never ran"
        process.send_signal(sig)
        assert process.wait(timeout=30) == status
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(terminal)
        os.close(master)
    pids = started_pids(Path(f"{db}.dashboard.log"))
    assert len(pids) == 2
    assert living(pids) == []
