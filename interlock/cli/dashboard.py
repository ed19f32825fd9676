"""``interlock dashboard``: the Textual TUI, on a sandbox it starts or attached to a running API.

The dashboard is an HTTP client and owns the terminal. Without ``--attach`` this command starts
the sandbox as two child processes (:mod:`interlock.supervisor`), hands the dashboard their URLs
and a hook to kill and restart the orchestrator, and stops the children when the dashboard
returns, raises, or the command is interrupted. With ``--attach URL`` it only checks that the API
answers.

Textual is imported when the dashboard starts, not with the parser, so ``interlock --help`` and
the other commands do not pay for it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Final

from dashboard.config import DashboardConfig, DemoEntry, DemoResult
from interlock.cli.arguments import Subcommands, UsageError, http_url, port
from interlock.cli.signals import exit_on_signals
from interlock.demos import DEMOS, Demo, Target, run_demo
from interlock.probe import probe
from interlock.registration.template import TEMPLATE_NAME
from interlock.settings import SERVICE_PORTS, Settings
from interlock.supervisor import Supervisor, SupervisorConfig
from mock_services.payloads import RegistrationFaker
from orchestrator.store.postgres import check_database as check_postgres
from orchestrator.store.postgres import is_postgres_url, redact
from orchestrator.store.sqlite import check_database

#: The options that describe the sandbox this command starts; they make no sense with --attach.
SANDBOX_OPTIONS: Final = ("db", "host", "api_port", *(f"{s}_port" for s in SERVICE_PORTS), "log")
#: How long the attached API may take to answer ``/health``.
ATTACH_TIMEOUT_S: Final = 3.0

RunDashboard = Callable[[DashboardConfig], None]


def add_parser(sub: Subcommands, settings: Settings) -> None:
    dash = sub.add_parser(
        "dashboard",
        help="the live TUI, on a sandbox it starts (or --attach URL)",
        description="The Textual dashboard. Without --attach it starts the sandbox as two "
        "child processes (interlock up --services-only and --orchestrator-only, their output "
        "in a log file), so the orchestrator can be killed and restarted from the keyboard; "
        "they stop when the dashboard does. Needs a terminal: `interlock up` runs the sandbox "
        "without one.",
    )
    dash.add_argument(
        "--attach",
        type=http_url,
        metavar="URL",
        help="use a running orchestrator API (e.g. http://127.0.0.1:8700) instead of starting "
        "a sandbox; the services' admin URLs come from INTERLOCK_<SERVICE>_URL / _PORT",
    )
    dash.add_argument(
        "--readonly",
        action="store_true",
        help="look only: no submit, faults, retry, resolve or cancel",
    )
    dash.add_argument(
        "--seed",
        type=int,
        default=1,
        metavar="N",
        help="seed for the registrations it submits (default 1)",
    )
    sandbox = dash.add_argument_group("the sandbox it starts (not with --attach)")
    sandbox.add_argument(
        "--db",
        help=f"SQLite file or postgresql:// URL (default {settings.db_path}; $INTERLOCK_DB "
        "sets it; on PostgreSQL the children's log is ./interlock-dashboard.log unless --log)",
    )
    sandbox.add_argument("--host", help=f"address to bind (default {settings.host})")
    sandbox.add_argument(
        "--api-port", type=port, metavar="PORT", help=f"default {settings.api_port}; 0: any free"
    )
    for service in SERVICE_PORTS:
        sandbox.add_argument(
            f"--{service}-port",
            type=port,
            metavar="PORT",
            help=f"default {settings.service_ports[service]}",
        )
    sandbox.add_argument(
        "--log", metavar="PATH", help="the children's output (default <db>.dashboard.log)"
    )
    dash.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    given = [
        f"--{name.replace('_', '-')}" for name in SANDBOX_OPTIONS if getattr(args, name) is not None
    ]
    if args.attach and given:
        raise UsageError(f"{', '.join(given)}: for the sandbox it starts, not with --attach")
    if not has_terminal():
        print(
            "interlock: the dashboard needs a terminal (stdin and stdout); "
            "`interlock up` runs the sandbox without one",
            file=sys.stderr,
        )
        return 2
    if args.attach:
        return _attach(args, settings)
    return _sandbox(args, settings)


def has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def _attach(args: argparse.Namespace, settings: Settings) -> int:
    url: str = args.attach
    reason = probe(f"{url}/health", timeout_s=ATTACH_TIMEOUT_S)
    if reason is not None:
        print(
            f"interlock: no orchestrator API answers at {url} (GET /health: {reason}); "
            "is `interlock up` running there?",
            file=sys.stderr,
        )
        return 2
    run_dashboard = load_run_dashboard()
    run_dashboard(
        DashboardConfig(
            api_url=url,
            service_urls=MappingProxyType(settings.service_urls()),
            readonly=args.readonly,
            seed=args.seed,
            label=f"attached {url}",
            new_context=RegistrationFaker(args.seed).registration,
            template=TEMPLATE_NAME,
            demos=demo_entries(Target(url, settings.service_urls())),
        )
    )
    return 0


def _sandbox(args: argparse.Namespace, settings: Settings) -> int:
    given = args.db or settings.db_path
    db: Path | str
    if is_postgres_url(given):
        db, shown = given, redact(given)
        asyncio.run(check_postgres(db))  # an unusable database is one line before any child
    else:
        db = Path(given).resolve()
        shown = str(db)
        if not db.parent.is_dir():
            print(f"interlock: directory {db.parent} does not exist", file=sys.stderr)
            return 2
        check_database(db)  # a bad file is one line (a StoreError) before any child starts
    run_dashboard = load_run_dashboard()  # before the children: a missing TUI starts nothing
    supervisor = Supervisor(_supervisor_config(args, settings, db))
    print(f"starting the sandbox on {shown} (its output: {supervisor.log_path})", flush=True)
    with exit_on_signals(), supervisor:
        run_dashboard(
            DashboardConfig(
                api_url=supervisor.api_url,
                service_urls=MappingProxyType(supervisor.service_urls),
                readonly=args.readonly,
                restart_orchestrator=supervisor.restart_orchestrator,
                seed=args.seed,
                label=f"sandbox {shown}",
                new_context=RegistrationFaker(args.seed).registration,
                template=TEMPLATE_NAME,
                demos=demo_entries(
                    Target(
                        supervisor.api_url,
                        supervisor.service_urls,
                        supervisor.restart_orchestrator,
                    )
                ),
            )
        )
    print(f"sandbox stopped; its state is in {shown}", flush=True)
    return 0


def _supervisor_config(
    args: argparse.Namespace, settings: Settings, db: Path | str
) -> SupervisorConfig:
    def given_or(value: int | None, default: int) -> int:
        return default if value is None else value

    return SupervisorConfig(
        db=db,
        host=args.host or settings.host,
        api_port=given_or(args.api_port, settings.api_port),
        service_ports={
            s: given_or(getattr(args, f"{s}_port"), settings.service_ports[s])
            for s in SERVICE_PORTS
        },
        log_path=Path(args.log).resolve()
        if args.log
        else (Path("interlock-dashboard.log").resolve() if isinstance(db, str) else None),
    )


def demo_entries(target: Target) -> tuple[DemoEntry, ...]:
    """The demos the dashboard offers on ``target``: crash-recovery only where it can restart
    the orchestrator (a sandbox it started)."""
    return tuple(_entry(demo, target) for demo in DEMOS if target.restart or not demo.needs_restart)


def _entry(demo: Demo, target: Target) -> DemoEntry:
    async def run(narrate: Callable[[str], None]) -> DemoResult:
        verdict = await run_demo(demo, target, narrate)
        return DemoResult(verdict.passed, tuple((c.passed, c.text) for c in verdict.checks))

    return DemoEntry(demo.name, demo.title, demo.story, run)


def load_run_dashboard() -> RunDashboard:
    """``dashboard.app.run_dashboard``, imported only when asked for: it brings Textual with it,
    which ``interlock --help`` and the other commands do not need."""
    from dashboard.app import run_dashboard

    return run_dashboard
