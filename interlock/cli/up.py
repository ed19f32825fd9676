"""``interlock up``: the sandbox headless — services, engine and API — until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp

from interlock.cli.arguments import Subcommands, port
from interlock.cli.console import print_events, print_summary, say, use_json
from interlock.cli.loop import run as run_loop
from interlock.logs import LOG_FORMATS
from interlock.registration.template import TEMPLATE_NAME
from interlock.sandbox import Orchestrator, open_orchestrator, run_api
from interlock.settings import SERVICE_PORTS, Settings
from mock_services.payloads import RegistrationFaker
from mock_services.runner import RunningServices, start_services
from orchestrator.engine import EngineConfig
from orchestrator.errors import InterlockError
from orchestrator.models import TaskState
from orchestrator.store.postgres import check_database as check_postgres
from orchestrator.store.postgres import hold_worker_id, is_postgres_url, redact
from orchestrator.store.sqlite import check_database


def add_parser(sub: Subcommands, settings: Settings) -> None:
    up = sub.add_parser(
        "up",
        help="the sandbox headless: 4 mock services + engine + HTTP API",
        description="Run the sandbox headless until Ctrl-C / SIGTERM. State "
        "lives in a SQLite file (or a PostgreSQL database): stop it and start it again, "
        "unfinished registrations resume. On PostgreSQL, run --orchestrator-only in as many "
        "processes, on as many hosts, as you like: they share the work through the database.",
    )
    half = up.add_mutually_exclusive_group()
    half.add_argument("--services-only", action="store_true", help="only the 4 mock services")
    half.add_argument(
        "--orchestrator-only",
        action="store_true",
        help="only the engine and its API (services at INTERLOCK_*_URL)",
    )
    up.add_argument(
        "--db",
        default=settings.db_path,
        help="SQLite file, or a postgresql://user@host:port/database URL "
        "(default ./interlock.db or $INTERLOCK_DB)",
    )
    up.add_argument(
        "--worker-id",
        help="this orchestrator's worker id (PostgreSQL; default host:pid). Give each process "
        "a stable one and a restart after a crash reclaims its steps at once instead of "
        "after their leases expire",
    )
    up.add_argument(
        "--host", default=settings.host, help=f"address to bind (default {settings.host})"
    )
    up.add_argument("--api-port", type=port, default=settings.api_port)
    for service in SERVICE_PORTS:
        up.add_argument(f"--{service}-port", type=port, default=settings.service_ports[service])
    up.add_argument(
        "--fake", type=int, default=0, metavar="N", help="submit N Faker registrations at start"
    )
    up.add_argument("--seed", type=int, default=1, help="seed for --fake (default 1)")
    up.add_argument(
        "--exit-when-done",
        action="store_true",
        help="stop once no task is pending or in progress (for scripts and CI)",
    )
    up.add_argument("--quiet", action="store_true", help="do not print task events")
    up.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=settings.log_format,
        help="text for a terminal (default; $INTERLOCK_LOG_FORMAT sets it), or json: one JSON "
        "object a line on stderr, with the correlation id, task and step of each line's step",
    )
    up.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.worker_id is not None and not is_postgres_url(args.db):
        print("interlock: --worker-id is for a PostgreSQL --db", file=sys.stderr)
        return 2
    if args.worker_id is not None and not args.worker_id.strip():
        print("interlock: --worker-id must not be empty", file=sys.stderr)
        return 2
    if is_postgres_url(args.db):
        if not args.services_only:  # an unusable database stops here, before anything starts
            asyncio.run(check_postgres(args.db))
    else:
        db = Path(args.db).resolve()
        if not args.services_only and not db.parent.is_dir():
            print(f"interlock: directory {db.parent} does not exist", file=sys.stderr)
            return 2
        if not args.services_only:
            check_database(db)  # a bad file stops here, with one line, before anything starts
        args.db = str(db)
    if args.log_format == "json":
        use_json()
    return run_loop(run_up(args, settings), use_uvloop=settings.uvloop)


async def run_up(args: argparse.Namespace, settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    services: RunningServices | None = None
    if not args.orchestrator_only:
        ports = {s: getattr(args, f"{s}_port") for s in SERVICE_PORTS}
        services = await start_services(ports, host=args.host)
        for name, url in services.urls.items():
            say(f"{name:<14} {url}   (faults: {url}/__admin/faults)")
    try:
        if args.services_only:
            say("mock services running; Ctrl-C stops")
            await stop.wait()
            return 0
        urls = services.urls if services else settings.service_urls(args.host)
        if services is None:
            await _warn_unreachable(urls)
        return await _orchestrate(args, urls, stop)
    finally:
        if services is not None:
            await services.stop()


async def _orchestrate(args: argparse.Namespace, urls: dict[str, str], stop: asyncio.Event) -> int:
    db: str = args.db  # a URL, or a path resolved, and its directory checked, by the CLI
    held: contextlib.AbstractAsyncContextManager[None] = contextlib.nullcontext()
    identity: contextlib.AbstractContextManager[str]
    if is_postgres_url(db):
        identity = contextlib.nullcontext(args.worker_id or f"{socket.gethostname()}:{os.getpid()}")
        if args.worker_id is not None:  # host:pid is unique; a given id might not be
            held = hold_worker_id(db, args.worker_id)
    else:
        identity = worker_identity(Path(db))
    async with held:
        await _serve(args, urls, stop, db, identity)
    return 0


async def _serve(
    args: argparse.Namespace,
    urls: dict[str, str],
    stop: asyncio.Event,
    db: str,
    identity: contextlib.AbstractContextManager[str],
) -> None:
    with identity as worker_id:
        config = EngineConfig(worker_id=worker_id, lease_s=15)
        async with (
            open_orchestrator(db, urls, config=config) as orch,
            run_api(orch, args.host, args.api_port) as api_url,
        ):
            say(f"{'orchestrator':<14} {api_url}   (state: {redact(db)}, worker {worker_id})")
            await _run_until_done(args, orch, stop)


@contextlib.contextmanager
def worker_identity(db: Path) -> Iterator[str]:
    """The worker id for this process: stable per database file, so a restart after a crash
    reclaims the steps it was running at once (not after their leases expire).

    Only one process may use that id at a time: a second ``interlock up`` on the same file would
    otherwise "reclaim" the first one's running steps. The id is held by an exclusive lock on
    ``<db>.worker.lock``; a second process gets an id of its own and shares the work through the
    database, as any two engines on one file do.
    """
    lock_path = Path(f"{db}.worker.lock")
    try:
        handle = lock_path.open("a+")
    except OSError as exc:
        raise InterlockError(f"cannot make {lock_path}: {exc.strerror or exc}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(
                f"another orchestrator holds {lock_path}; this one joins it as a second "
                "worker on the same database"
            )
            yield f"interlock-up:{db}:{os.getpid()}"
            return
        try:
            yield f"interlock-up:{db}"
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def _run_until_done(
    args: argparse.Namespace, orch: Orchestrator, stop: asyncio.Event
) -> None:
    """Submit the ``--fake`` registrations, then run until stopped (or, with
    ``--exit-when-done``, until nothing is unfinished) and print the tally."""
    background = [] if args.quiet else [asyncio.create_task(print_events(orch))]
    fake = RegistrationFaker(args.seed)
    for _ in range(args.fake):
        await orch.engine.submit(TEMPLATE_NAME, fake.registration())
    waiters: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait())]
    if args.exit_when_done:
        waiters.append(asyncio.create_task(_wait_unfinished(orch)))
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for task in [*background, *waiters]:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await print_summary(orch)


async def _warn_unreachable(urls: dict[str, str]) -> None:
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for name, url in urls.items():
            try:
                async with session.get(f"{url}/__admin/stats") as resp:
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                say(
                    f"warning: {name} at {url} is unreachable; its steps will retry (and its "
                    "circuit breaker open) until it is up",
                    warning=True,
                )


async def _wait_unfinished(orch: Orchestrator) -> None:
    engine = orch.engine
    while True:
        unfinished = [
            *await engine.list_tasks(TaskState.IN_PROGRESS, 10_000),
            *await engine.list_tasks(TaskState.PENDING, 10_000),
        ]
        if not unfinished:
            return
        for task in unfinished:
            await engine.wait_for_end(task.task_id)
