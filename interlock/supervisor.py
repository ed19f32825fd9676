"""The sandbox as two child processes, for a caller that owns the terminal (the dashboard).

``interlock dashboard`` must not share an event loop with the engine, and its crash-recovery
demo kills the orchestrator for real, so the sandbox runs beside it as two children:
``interlock up --services-only`` and ``interlock up --orchestrator-only`` on one SQLite file.
Killing the second leaves the services (and their faults, keys and records) as they were.

::

    with Supervisor(SupervisorConfig(db=Path("interlock.db"))) as sandbox:
        sandbox.api_url                       # "http://127.0.0.1:8700", answering /health
        await sandbox.restart_orchestrator()  # from any event loop: SIGKILL, start, healthy

Each child runs in a session of its own, so the terminal's Ctrl-C reaches only the caller, and
:meth:`Supervisor.stop` ends each child's whole process group. Their output goes to a log file
(``<db>.dashboard.log`` by default), never to the terminal; when a child fails to start, the
error carries the end of what it wrote there.

The supervisor is blocking and thread-safe rather than async: it is started and stopped outside
any event loop, and :meth:`~Supervisor.restart_orchestrator`, awaited inside the dashboard's
loop, does its blocking work in a worker thread. One lock orders restarts and the stop, so no
child is started after :meth:`~Supervisor.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

from interlock.probe import probe
from interlock.settings import DEFAULT_API_PORT, DEFAULT_HOST, SERVICE_PORTS, http_url
from orchestrator.errors import InterlockError

#: How many of a failed child's last log lines its :class:`ChildStartError` carries.
LOG_TAIL_LINES: Final = 15
#: How long one readiness probe may take, and the pause between two.
_PROBE_TIMEOUT_S: Final = 1.0
_PROBE_INTERVAL_S: Final = 0.05


class ChildRole(StrEnum):
    """Which half of the sandbox a child process runs."""

    #: ``interlock up --services-only``: the four mock services.
    SERVICES = "services"
    #: ``interlock up --orchestrator-only``: the engine and its HTTP API.
    ORCHESTRATOR = "orchestrator"


_DESCRIPTIONS: Final = {
    ChildRole.SERVICES: "the mock services (interlock up --services-only)",
    ChildRole.ORCHESTRATOR: "the orchestrator (interlock up --orchestrator-only)",
}


class SupervisorError(InterlockError):
    """The sandbox's child processes could not be run as asked.

    ::

        SupervisorError              also: the log file cannot be written
        ├── ChildStartError          a child exited, or was not ready in time, while starting
        └── SupervisorStoppedError   asked to (re)start a child while stopped or stopping
    """


class ChildStartError(SupervisorError):
    """A child exited before it answered, or did not answer within the timeout; the message
    ends with its last log lines (the ``... is already in use`` line, say)."""

    def __init__(
        self,
        role: ChildRole,
        returncode: int | None,
        log_path: Path,
        log_tail: list[str],
        *,
        timeout_s: float,
    ) -> None:
        self.role = role  #: which child
        self.returncode = returncode  #: its exit status; None when it was still running, too late
        self.log_path = log_path  #: the log file it wrote to
        self.log_tail = log_tail  #: its last lines there
        self.timeout_s = timeout_s  #: how long it was given to answer
        what = _DESCRIPTIONS[role]
        if returncode is None:
            head = f"{what} did not answer within {timeout_s:g} s"
        else:
            head = f"{what} exited with status {returncode} before answering"
        lines = "".join(f"\n  {line}" for line in log_tail) or "\n  (nothing)"
        super().__init__(f"{head}; the end of {log_path}:{lines}")


class SupervisorStoppedError(SupervisorError):
    """The supervisor was not started, or is stopping: it starts no child any more."""


@dataclass(frozen=True, slots=True)
class SupervisorConfig:
    """What to start and where; the options of ``interlock up``, plus the log and timeouts."""

    #: The SQLite file the orchestrator keeps its state in (its directory must exist).
    db: Path
    #: The address every child binds.
    host: str = DEFAULT_HOST
    #: The API's port; 0 picks a free one at :meth:`Supervisor.start`, kept across restarts.
    api_port: int = DEFAULT_API_PORT
    #: Each mock service's port by name; 0 picks a free one, as for the API.
    service_ports: Mapping[str, int] = field(default_factory=lambda: SERVICE_PORTS)
    #: Where both children's stdout and stderr go; None means ``<db>.dashboard.log``.
    log_path: Path | None = None
    #: How long a child may take to answer after it was started.
    ready_timeout_s: float = 30.0
    #: How long a child may take to exit after SIGTERM before it gets SIGKILL.
    stop_timeout_s: float = 5.0

    @classmethod
    def on_free_ports(
        cls, db: Path, log_path: Path | None = None, host: str = DEFAULT_HOST
    ) -> SupervisorConfig:
        """A sandbox of its own, beside any other: every port picked free at start (the
        benchmarks and ``interlock demo`` run one in a temporary directory)."""
        return cls(
            db=db,
            host=host,
            api_port=0,
            service_ports=dict.fromkeys(SERVICE_PORTS, 0),
            log_path=log_path,
        )


@dataclass
class _Child:
    role: ChildRole
    argv: list[str]
    env: dict[str, str]
    ready_urls: list[str]
    process: subprocess.Popen[bytes] | None = None
    #: Where this child's output begins in the log (for the tail of a failed start).
    log_offset: int = 0

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid


class Supervisor:
    """Starts, restarts and stops the sandbox's two child processes."""

    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        #: The log file both children write to.
        self.log_path = config.log_path or Path(f"{config.db}.dashboard.log")
        self._api_port = config.api_port
        self._service_ports = dict(config.service_ports)
        self._children: dict[ChildRole, _Child] = {}
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def api_url(self) -> str:
        """The orchestrator API's base URL (its port chosen by :meth:`start` when it was 0)."""
        return http_url(self.config.host, self._api_port)

    @property
    def service_urls(self) -> dict[str, str]:
        """Each mock service's base URL by name."""
        return {s: http_url(self.config.host, p) for s, p in self._service_ports.items()}

    @property
    def pids(self) -> dict[ChildRole, int]:
        """The running children's process ids (each also its process group's id)."""
        return {
            role: child.process.pid
            for role, child in self._children.items()
            if child.process is not None and child.process.poll() is None
        }

    def start(self) -> None:
        """Start the services, then the orchestrator, each answering before this returns.

        :class:`ChildStartError` when one fails; then, as on any error (Ctrl-C included),
        whatever was started has been stopped.
        """
        with self._lock:
            if self._stopping.is_set() or self._children:
                raise SupervisorStoppedError("a supervisor starts once")
            self._pick_free_ports()
            try:
                self._log = self.log_path.open("ab")
            except OSError as exc:
                raise SupervisorError(f"cannot write the log {self.log_path}: {exc}") from None
            self._children = {
                ChildRole.SERVICES: self._services_child(),
                ChildRole.ORCHESTRATOR: self._orchestrator_child(),
            }
        try:
            with self._lock:
                for child in self._children.values():
                    self._spawn(child)
                    self._wait_ready(child)
        except BaseException:
            self.stop()
            raise

    async def restart_orchestrator(self) -> None:
        """SIGKILL the orchestrator, start it again on the same database and port, and return
        once it answers ``/health`` — the crash-recovery demo. Awaitable from any event loop
        (the work is done in a thread); :class:`ChildStartError` if it does not come back."""
        await asyncio.to_thread(self._restart_orchestrator)

    def stop(self) -> None:
        """End both children and every process in their groups: SIGTERM, then SIGKILL after
        :attr:`~SupervisorConfig.stop_timeout_s`. Idempotent; interrupted (a second Ctrl-C),
        it still SIGKILLs what is left before the interruption goes on."""
        self._stopping.set()  # a restart waiting for readiness gives up, releasing the lock
        with self._lock:
            children = [c for c in reversed(self._children.values()) if c.process is not None]
            if self._log is None or self._log.closed:
                return
            try:
                for child in children:  # the orchestrator first: it still calls the services
                    self._write_log(f"stopping {child.role} (SIGTERM): pid {child.pid}")
                    _terminate(child, self.config.stop_timeout_s)
            finally:
                for child in children:
                    _kill(child)
                self._write_log("stopped")
                self._log.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _restart_orchestrator(self) -> None:
        with self._lock:
            child = self._children.get(ChildRole.ORCHESTRATOR)
            if self._stopping.is_set() or child is None:
                raise SupervisorStoppedError("the sandbox is not running")
            self._write_log(f"killing the orchestrator (SIGKILL) to restart it: pid {child.pid}")
            _kill(child)
            self._spawn(child)
            self._wait_ready(child)

    def _pick_free_ports(self) -> None:
        """Port 0 becomes a free port now, so the restarted orchestrator gets the API's port
        back and the URLs are known without reading them from the children's output."""
        if self._api_port == 0:
            self._api_port = _free_port(self.config.host)
        for service, port in self._service_ports.items():
            if port == 0:
                self._service_ports[service] = _free_port(self.config.host)

    def _services_child(self) -> _Child:
        ports = [f"--{s}-port={p}" for s, p in self._service_ports.items()]
        return _Child(
            ChildRole.SERVICES,
            _interlock_up("--services-only", f"--host={self.config.host}", *ports),
            _child_env({}),
            [f"{url}/__admin/stats" for url in self.service_urls.values()],
        )

    def _orchestrator_child(self) -> _Child:
        argv = _interlock_up(
            "--orchestrator-only",
            f"--db={self.config.db}",
            f"--host={self.config.host}",
            f"--api-port={self._api_port}",
            "--quiet",  # the dashboard shows the events; the log keeps starts, stops, errors
        )
        urls = {f"INTERLOCK_{s.upper()}_URL": url for s, url in self.service_urls.items()}
        return _Child(ChildRole.ORCHESTRATOR, argv, _child_env(urls), [f"{self.api_url}/health"])

    def _spawn(self, child: _Child) -> None:
        if self._stopping.is_set():
            raise SupervisorStoppedError("the supervisor is stopping")
        assert self._log is not None
        self._write_log(f"starting {child.role}: {shlex.join(child.argv)}")
        child.log_offset = self._log.tell()
        child.process = subprocess.Popen(
            child.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=child.env,
            start_new_session=True,  # no terminal signals; its pid is its process group's id
        )

    def _wait_ready(self, child: _Child) -> None:
        assert child.process is not None
        deadline = time.monotonic() + self.config.ready_timeout_s
        waiting = list(child.ready_urls)
        while waiting:
            if child.process.poll() is not None:
                raise self._start_error(child, child.process.returncode)
            waiting = [url for url in waiting if probe(url, timeout_s=_PROBE_TIMEOUT_S)]
            if not waiting:
                break
            if time.monotonic() >= deadline:
                raise self._start_error(child, None)
            if self._stopping.wait(_PROBE_INTERVAL_S):
                raise SupervisorStoppedError(f"stopped while {child.role} was starting")
        self._write_log(f"{child.role} is ready: pid {child.pid}")

    def _start_error(self, child: _Child, returncode: int | None) -> ChildStartError:
        with self.log_path.open("rb") as log:
            log.seek(child.log_offset)
            text = log.read().decode(errors="replace")
        tail = [line for line in text.splitlines() if line.strip()][-LOG_TAIL_LINES:]
        return ChildStartError(
            child.role, returncode, self.log_path, tail, timeout_s=self.config.ready_timeout_s
        )

    def _write_log(self, line: str) -> None:
        assert self._log is not None
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self._log.write(f"--- {now} supervisor: {line}\n".encode())
        self._log.flush()


def _interlock_up(*options: str) -> list[str]:
    """``interlock up`` with ``options`` on this interpreter, whichever venv it is in."""
    return [sys.executable, "-m", "interlock.cli", "up", *options]


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment, passed through unread (``INTERLOCK_UVLOOP`` and the rest reach
    the child as the user set them), plus ``extra``; output unbuffered, so the log is current
    when a child dies."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _terminate(child: _Child, timeout_s: float) -> None:
    """SIGTERM to the child's group, and wait for the child: ``interlock up`` stops cleanly."""
    assert child.process is not None
    if child.process.poll() is None:
        _signal_group(child.process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout_s)


def _kill(child: _Child) -> None:
    """SIGKILL to the child's group and reap the child. After a clean exit this only reaches
    stragglers (a grandchild, say); a group with nobody left in it is fine."""
    assert child.process is not None
    _signal_group(child.process.pid, signal.SIGKILL)
    child.process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
