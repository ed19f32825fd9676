"""Watching the processes the supervisor starts: every ``Popen``, and who is left in a group."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.settings import SERVICE_PORTS
from interlock.supervisor import SupervisorConfig

#: Never through a proxy: the sandbox is on this machine.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process started through ``subprocess.Popen`` during the test, in order."""
    started: list[subprocess.Popen[bytes]] = []

    class Recording(subprocess.Popen[bytes]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    yield started
    for process in started:  # a failing test leaves nothing behind either
        if process.poll() is None:
            process.kill()
            process.wait()


def sandbox_config(tmp_path: Path, **changes: Any) -> SupervisorConfig:
    """A sandbox on a file under ``tmp_path``, every port 0 (free ports, chosen at start)."""
    fields: dict[str, Any] = {
        "db": tmp_path / "sandbox.db",
        "api_port": 0,
        "service_ports": dict.fromkeys(SERVICE_PORTS, 0),
        **changes,
    }
    return SupervisorConfig(**fields)


def living(pgids: Iterable[int]) -> list[int]:
    """The processes, zombies aside, whose process group is one of ``pgids`` (from /proc)."""
    wanted = set(pgids)
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it ended while we looked
            continue
        state, _ppid, pgrp = text.rsplit(")", 1)[1].split()[:3]
        if int(pgrp) in wanted and state != "Z":
            found.append(int(stat.parent.name))
    return found


def get_json(url: str) -> Any:
    with _OPENER.open(url, timeout=5) as resp:
        return json.loads(resp.read())


def post_json(url: str, body: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with _OPENER.open(request, timeout=5) as resp:
        return json.loads(resp.read())
