"""The sandbox as child processes, for a caller that owns the terminal (the dashboard).

``interlock dashboard`` must not share an event loop with the engine, and its crash-recovery
demo kills the orchestrator for real, so the sandbox runs beside it as two children:
``interlock up --services-only`` and ``interlock up --orchestrator-only`` on one SQLite file.
Killing the second leaves the services (and their faults, keys and records) as they were.

::

    with Supervisor(SupervisorConfig(db=Path("interlock.db"))) as sandbox:
        sandbox.api_url                       # "http://127.0.0.1:8700", answering /health
        await sandbox.restart_orchestrator()  # from any event loop: SIGKILL, start, healthy

On a PostgreSQL database (``db`` a ``postgresql://`` URL) it can run several orchestrator
workers (:attr:`SupervisorConfig.workers`), which share the work through the database: each
has an API port of its own (:attr:`Supervisor.api_urls`) and a stable ``--worker-id``
(``<prefix>-w1`` ...), so a worker restarted by :meth:`Supervisor.restart_worker` reclaims the
steps it was running at once rather than after their leases expire. The URL reaches the workers
in their environment (``INTERLOCK_DB``), not on their command line, and the log shows it
without its password.

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
from orchestrator.store.postgres import is_postgres_url, redact

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
        worker_id: str | None = None,
    ) -> None:
        self.role = role  #: which child
        self.worker_id = worker_id  #: which orchestrator worker, when it has a ``--worker-id``
        self.returncode = returncode  #: its exit status; None when it was still running, too late
        self.log_path = log_path  #: the log file it wrote to
        self.log_tail = log_tail  #: its last lines there
        self.timeout_s = timeout_s  #: how long it was given to answer
        what = _DESCRIPTIONS[role]
        if worker_id is not None:
            what = f"{what}, worker {worker_id}"
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

    #: Where the orchestrator keeps its state: a SQLite file (its directory must exist), or a
    #: ``postgresql://`` URL, given as a ``str`` (a :class:`Path` would mangle its ``//``).
    db: Path | str
    #: The address every child binds.
    host: str = DEFAULT_HOST
    #: The (first) API's port; 0 picks a free one at :meth:`Supervisor.start`, kept across
    #: restarts. The other workers' ports are always picked free.
    api_port: int = DEFAULT_API_PORT
    #: Each mock service's port by name; 0 picks a free one, as for the API.
    service_ports: Mapping[str, int] = field(default_factory=lambda: SERVICE_PORTS)
    #: Where every child's stdout and stderr go; None means ``<db>.dashboard.log`` (a SQLite
    #: ``db``; a PostgreSQL one needs a log path given).
    log_path: Path | None = None
    #: How long a child may take to answer after it was started.
    ready_timeout_s: float = 30.0
    #: How long a child may take to exit after SIGTERM before it gets SIGKILL.
    stop_timeout_s: float = 5.0
    #: How many orchestrator workers to run; more than one only on PostgreSQL.
    workers: int = 1
    #: On PostgreSQL, worker ``i`` (from 1) runs with ``--worker-id <prefix>-w<i>``.
    worker_id_prefix: str = "interlock"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise SupervisorError(f"workers must be 1 or more, not {self.workers}")
        if self.workers > 1 and not self.on_postgres:
            raise SupervisorError(
                f"{self.workers} orchestrator workers need a PostgreSQL database: on SQLite "
                "the sandbox runs one"
            )
        if self.on_postgres and self.log_path is None:
            raise SupervisorError("a sandbox on PostgreSQL needs a log_path")

    @property
    def on_postgres(self) -> bool:
        """Whether :attr:`db` is a PostgreSQL URL."""
        return isinstance(self.db, str) and is_postgres_url(self.db)

    @property
    def db_label(self) -> str:
        """:attr:`db` for messages and logs: a URL without its password."""
        return redact(str(self.db)) if self.on_postgres else str(self.db)

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
    #: An orchestrator's ``--worker-id`` (PostgreSQL only; on SQLite ``interlock up`` picks it).
    worker_id: str | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def name(self) -> str:
        """The child in the log's lines: ``orchestrator``, ``orchestrator soak-w2``."""
        return self.role if self.worker_id is None else f"{self.role} {self.worker_id}"


class Supervisor:
    """Starts, restarts and stops the sandbox's child processes: the services and one or more
    orchestrator workers."""

    def __init__(self, config: SupervisorConfig) -> None:
        self.config = config
        #: The log file every child writes to.
        self.log_path = config.log_path or Path(f"{config.db}.dashboard.log")
        self._api_ports = [config.api_port] + [0] * (config.workers - 1)
        self._service_ports = dict(config.service_ports)
        self._services: _Child | None = None
        self._workers: list[_Child] = []
        self._log: IO[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    @property
    def api_url(self) -> str:
        """The (first) orchestrator API's base URL (its port chosen by :meth:`start` when it
        was 0)."""
        return self.api_urls[0]

    @property
    def api_urls(self) -> tuple[str, ...]:
        """Each orchestrator worker's API base URL, in the order of :attr:`worker_names`."""
        return tuple(http_url(self.config.host, port) for port in self._api_ports)

    @property
    def worker_names(self) -> tuple[str, ...]:
        """What each worker is called: on PostgreSQL its ``--worker-id`` (``<prefix>-w1``
        ...); on SQLite the one worker is ``orchestrator`` (``interlock up`` gives it an id
        that is stable for the file)."""
        if not self.config.on_postgres:
            return (str(ChildRole.ORCHESTRATOR),)
        prefix = self.config.worker_id_prefix
        return tuple(f"{prefix}-w{i}" for i in range(1, self.config.workers + 1))

    @property
    def service_urls(self) -> dict[str, str]:
        """Each mock service's base URL by name."""
        return {s: http_url(self.config.host, p) for s, p in self._service_ports.items()}

    @property
    def pids(self) -> dict[ChildRole, int]:
        """The running children's process ids (each also its process group's id); for the
        orchestrator, the first worker's."""
        children = [self._services, *self._workers[:1]]
        return {
            child.role: child.process.pid
            for child in children
            if child is not None and child.process is not None and child.process.poll() is None
        }

    @property
    def worker_pids(self) -> dict[str, int]:
        """The running workers' process ids by :attr:`worker_names`."""
        return {
            name: child.process.pid
            for name, child in zip(self.worker_names, self._workers, strict=False)
            if child.process is not None and child.process.poll() is None
        }

    def start(self) -> None:
        """Start the services, then the orchestrator workers (together), each answering
        before this returns.

        :class:`ChildStartError` when one fails; then, as on any error (Ctrl-C included),
        whatever was started has been stopped.
        """
        with self._lock:
            if self._stopping.is_set() or self._services is not None:
                raise SupervisorStoppedError("a supervisor starts once")
            self._pick_free_ports()
            try:
                self._log = self.log_path.open("ab")
            except OSError as exc:
                raise SupervisorError(f"cannot write the log {self.log_path}: {exc}") from None
            self._services = self._services_child()
            self._workers = [self._orchestrator_child(i) for i in range(self.config.workers)]
        try:
            with self._lock:
                self._spawn(self._services)
                self._wait_ready(self._services)
                for worker in self._workers:
                    self._spawn(worker)
                for worker in self._workers:
                    self._wait_ready(worker)
        except BaseException:
            self.stop()
            raise

    async def restart_orchestrator(self) -> None:
        """SIGKILL the orchestrator, start it again on the same database and port, and return
        once it answers ``/health`` — the crash-recovery demo. Awaitable from any event loop
        (the work is done in a thread); :class:`ChildStartError` if it does not come back.
        With several workers, this is the first one's (:meth:`restart_worker`)."""
        await self.restart_worker(0)

    async def restart_worker(self, index: int) -> None:
        """:meth:`restart_orchestrator` for worker ``index`` (from 0, in the order of
        :attr:`worker_names`); the others keep running."""
        if not 0 <= index < self.config.workers:
            raise IndexError(f"no worker {index}: there are {self.config.workers}")
        await asyncio.to_thread(self._restart_worker, index)

    def stop(self) -> None:
        """End every child and every process in their groups: SIGTERM, then SIGKILL after
        :attr:`~SupervisorConfig.stop_timeout_s`. Idempotent; interrupted (a second Ctrl-C),
        it still SIGKILLs what is left before the interruption goes on."""
        self._stopping.set()  # a restart waiting for readiness gives up, releasing the lock
        with self._lock:
            started = [self._services, *self._workers]
            children = [c for c in reversed(started) if c is not None and c.process is not None]
            if self._log is None or self._log.closed:
                return
            try:
                for child in children:  # the orchestrators first: they still call the services
                    self._write_log(f"stopping {child.name} (SIGTERM): pid {child.pid}")
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

    def _restart_worker(self, index: int) -> None:
        with self._lock:
            if self._stopping.is_set() or not self._workers:
                raise SupervisorStoppedError("the sandbox is not running")
            child = self._workers[index]
            self._write_log(f"killing the {child.name} (SIGKILL) to restart it: pid {child.pid}")
            _kill(child)
            self._spawn(child)
            self._wait_ready(child)

    def _pick_free_ports(self) -> None:
        """Port 0 becomes a free port now, so a restarted orchestrator gets its API's port
        back and the URLs are known without reading them from the children's output."""
        self._api_ports = [p or _free_port(self.config.host) for p in self._api_ports]
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

    def _orchestrator_child(self, index: int) -> _Child:
        env = {f"INTERLOCK_{s.upper()}_URL": url for s, url in self.service_urls.items()}
        options = [
            f"--host={self.config.host}",
            f"--api-port={self._api_ports[index]}",
            "--quiet",  # the dashboard shows the events; the log keeps starts, stops, errors
        ]
        worker_id = None
        if self.config.on_postgres:
            worker_id = self.worker_names[index]
            env["INTERLOCK_DB"] = str(self.config.db)  # not in argv: ps and the log show argv
            options.append(f"--worker-id={worker_id}")
        else:
            options.insert(0, f"--db={self.config.db}")
        return _Child(
            ChildRole.ORCHESTRATOR,
            _interlock_up("--orchestrator-only", *options),
            _child_env(env),
            [f"{self.api_urls[index]}/health"],
            worker_id=worker_id,
        )

    def _spawn(self, child: _Child) -> None:
        if self._stopping.is_set():
            raise SupervisorStoppedError("the supervisor is stopping")
        assert self._log is not None
        on = f" (database {self.config.db_label})" if child.worker_id is not None else ""
        self._write_log(f"starting {child.name}: {shlex.join(child.argv)}{on}")
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
                raise SupervisorStoppedError(f"stopped while {child.name} was starting")
        self._write_log(f"{child.name} is ready: pid {child.pid}")

    def _start_error(self, child: _Child, returncode: int | None) -> ChildStartError:
        with self.log_path.open("rb") as log:
            log.seek(child.log_offset)
            text = log.read().decode(errors="replace")
        tail = [line for line in text.splitlines() if line.strip()][-LOG_TAIL_LINES:]
        return ChildStartError(
            child.role,
            returncode,
            self.log_path,
            tail,
            timeout_s=self.config.ready_timeout_s,
            worker_id=child.worker_id,
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
