"""``interlock demo NAME`` / ``interlock demo --list``: a fault-injection demo, headless.

Without ``--attach`` the demo gets a sandbox of its own: the services and the orchestrator as
child processes (:mod:`interlock.supervisor`) on free ports and a fresh database in a temporary
directory, stopped when the demo ends. That is what lets crash-recovery SIGKILL the orchestrator,
and it means a demo always starts from empty services. With ``--attach URL`` it runs against a
sandbox already running (its services' URLs from ``INTERLOCK_<SERVICE>_URL`` / ``_PORT``); its
people are new to that sandbox (their e-mails carry the run's tag) and its fault rules are removed
at the end. The exit status is 0 only when every check of the verdict held.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from interlock.cli.arguments import Subcommands, UsageError, http_url
from interlock.cli.loop import run as run_loop
from interlock.demos import BY_NAME, DEMOS, Demo, Target, Verdict, run_demo
from interlock.settings import Settings
from interlock.supervisor import Supervisor, SupervisorConfig


def add_parser(sub: Subcommands, settings: Settings) -> None:
    demo = sub.add_parser(
        "demo",
        help="a fault-injection demo that checks its own outcome (--list shows them)",
        description="Run one scripted fault-injection demo: it sets up faults, submits "
        "registrations, narrates what happens and checks the outcome against the services' "
        "records. Exit status 0 when every check held, 1 when one did not.",
    )
    demo.add_argument("name", nargs="?", choices=[d.name for d in DEMOS], metavar="NAME")
    demo.add_argument("--list", action="store_true", help="list the demos and what they show")
    demo.add_argument(
        "--attach",
        type=http_url,
        metavar="URL",
        help="run on a running orchestrator API instead of a sandbox of its own (not for "
        "crash-recovery); the services' URLs come from INTERLOCK_<SERVICE>_URL / _PORT",
    )
    demo.add_argument(
        "--log",
        type=Path,
        metavar="PATH",
        help="keep the output of the sandbox it starts in this file (default: in the "
        "temporary folder, removed with it; its end is shown when the sandbox fails to start)",
    )
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.list:
        _print_list()
        return 0
    if args.name is None:
        raise UsageError("name a demo (interlock demo --list shows them)")
    demo = BY_NAME[args.name]
    print(f"== {demo.name}: {demo.title}", flush=True)
    print(textwrap.indent(textwrap.fill(demo.story, 96), "   "), flush=True)
    if args.attach:
        target = Target(args.attach, settings.service_urls())
        verdict = run_loop(run_demo(demo, target, _Teller()), use_uvloop=settings.uvloop)
    else:
        verdict = _in_own_sandbox(demo, args, settings)
    _print_verdict(verdict)
    return 0 if verdict.passed else 1


def _in_own_sandbox(demo: Demo, args: argparse.Namespace, settings: Settings) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="interlock-demo-") as tmp:
        config = SupervisorConfig.on_free_ports(Path(tmp) / "demo.db", args.log, settings.host)
        print("   starting a sandbox of its own (services and orchestrator)...", flush=True)
        with Supervisor(config) as sandbox:
            target = Target(sandbox.api_url, sandbox.service_urls, sandbox.restart_orchestrator)
            return run_loop(run_demo(demo, target, _Teller()), use_uvloop=settings.uvloop)


class _Teller:
    """Prints each line of narration with the seconds since the demo began."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, line: str) -> None:
        print(f"  {time.monotonic() - self.started:6.1f}s  {line}", flush=True)


def _print_list() -> None:
    width = max(len(d.name) for d in DEMOS)
    for demo in DEMOS:
        print(f"{demo.name:<{width}}  {demo.title}")
    print("\nrun one: interlock demo NAME   (each takes under a minute)")


def _print_verdict(verdict: Verdict) -> None:
    word = "PASS" if verdict.passed else "FAIL"
    print(f"verdict: {word} ({verdict.elapsed_s:.1f} s)", flush=True)
    for check in verdict.checks:
        print(f"  {'✓' if check.passed else '✗'} {check.text}", flush=True)
    if not verdict.checks:
        print("  ✗ the demo checked nothing", file=sys.stderr)
