"""The ``interlock`` command: run the sandbox, watch it live, submit and inspect tasks, inject
faults, run the fault-injection demos, benchmark, soak.

Ports (127.0.0.1): orchestrator API 8700, users 8701, billing 8702, preferences 8703,
notifications 8704; flags or ``INTERLOCK_API_PORT`` / ``INTERLOCK_<SERVICE>_PORT`` /
``INTERLOCK_<SERVICE>_URL`` / ``INTERLOCK_API_URL`` / ``INTERLOCK_DB`` change them;
``INTERLOCK_CLIENT_TIMEOUT_S`` is how long the client commands wait for an answer.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from interlock.cli import bench, dashboard, demo, faults, soak, tasks, up
from interlock.cli.arguments import Command, Parser, UsageError
from interlock.settings import Settings, SettingsError
from mock_services.errors import MockServicesError
from orchestrator.errors import InterlockError


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    """The parser; ``settings`` gives the defaults the environment chose."""
    parser = Parser(prog="interlock", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up.add_parser(sub, settings)
    dashboard.add_parser(sub, settings)
    tasks.add_parsers(sub, settings)
    faults.add_parser(sub)
    demo.add_parser(sub, settings)
    bench.add_parser(sub)
    soak.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return 2
    parser = build_parser(settings)
    args = parser.parse_args(argv)
    command: Command = args.run
    try:
        status = command(args, settings)
    except UsageError as exc:
        parser.error(str(exc))
    except (InterlockError, MockServicesError) as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    raise SystemExit(main())
