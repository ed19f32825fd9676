"""The command line speaks in sentences: each bad input is one line on stderr, a non-zero exit,
and never a traceback. The commands run as real child processes, side by side to keep it quick."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interlock.cli.conftest import ROOT, run_all


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@contextlib.contextmanager
def canned_server(response: bytes) -> Iterator[str]:
    """A port that answers every request with ``response`` (a whole HTTP/1.1 message)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(response)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        listener.close()


def _answer(status: str, ctype: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body


def _assert_one_line(name: str, status: int, err: str) -> str:
    lines = err.strip().splitlines()
    assert status != 0, name
    assert "Traceback" not in err, f"{name}: {err}"
    assert len(lines) == 1 and lines[0].startswith("interlock"), f"{name}: {err!r}"
    return lines[0]


@pytest.mark.slow
def test_bad_inputs_are_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    (tmp_path / "latin1.json").write_bytes(b'{"name": "\xe9t\xe9"}')
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "folder").mkdir()
    no_api = {"INTERLOCK_API_URL": "http://127.0.0.1:9"}
    no_bill = {"INTERLOCK_BILLING_URL": "http://127.0.0.1:9"}
    any_ports = [
        f"--{s}-port=0" for s in ("api", "users", "billing", "preferences", "notifications")
    ]
    with (
        silent_server() as silent,
        canned_server(_answer("500 Oops", "text/html", b"<h1>no</h1>")) as html,
        canned_server(_answer("400 Bad", "application/json", b"[1, 2]")) as listed,
        canned_server(_answer("200 OK", "application/json", b'{"tasks": 7}')) as odd,
    ):
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "missing file": (["submit", "@missing.json"], no_api),
            "directory": (["submit", "@folder"], no_api),
            "not UTF-8": (["submit", "@latin1.json"], no_api),
            "deeply nested": (["submit", "@deep.json"], no_api),
            "NaN": (["submit", '{"n": NaN}'], no_api),
            "not JSON": (["submit", "{nope"], no_api),
            "api not a URL": (["submit", "{}", "--api", "notaurl"], {}),
            "api unreachable": (["tasks"], no_api),
            "task id with a slash": (["status", "../health"], no_api),
            "api silent": (["tasks", "--api", silent], {"INTERLOCK_CLIENT_TIMEOUT_S": "1"}),
            "api html 500": (["status", "x", "--api", html], {}),
            "api error list": (["tasks", "--api", listed], {}),
            "api odd answer": (["tasks", "--api", odd], {}),
            "service unreachable": (["fault", "billing", "list"], no_bill),
            "fault rule NaN": (["fault", "billing", "add", '{"probability": NaN}'], no_bill),
            "bad host": (["up", "--host", "no-such-host.invalid", "--db", "x.db", *any_ports], {}),
        }
        results = run_all(cases, tmp_path)
    said = {name: _assert_one_line(name, *results[name][:2]) for name in cases}
    assert "missing.json" in said["missing file"] and "folder" in said["directory"]
    assert "UTF-8" in said["not UTF-8"] and "max_depth" in said["deeply nested"]
    assert "finite_numbers" in said["NaN"] and "finite_numbers" in said["fault rule NaN"]
    assert "notaurl" in said["api not a URL"]
    assert "--api" in said["api unreachable"] and "INTERLOCK_API_URL" in said["api unreachable"]
    assert "/tasks/..%2Fhealth" in said["task id with a slash"]
    assert silent in said["api silent"] and results["api silent"][2] < 20
    assert "INTERLOCK_BILLING_URL" in said["service unreachable"]
    assert "--api" not in said["service unreachable"]  # fault has no --api flag
    assert "no-such-host.invalid" in said["bad host"]
    assert results["bad host"][0] == 2


@pytest.mark.slow
def test_help_names_only_options_that_exist() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_services", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "--port-base" not in result.stdout
    assert "--users-port" in result.stdout
