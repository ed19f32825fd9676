"""The ``interlock`` command: run the sandbox, submit and inspect tasks, inject faults, benchmark.

Ports (127.0.0.1): orchestrator API 8700, users 8701, billing 8702, preferences 8703,
notifications 8704; flags or ``INTERLOCK_API_PORT`` / ``INTERLOCK_<SERVICE>_PORT`` /
``INTERLOCK_<SERVICE>_URL`` / ``INTERLOCK_API_URL`` / ``INTERLOCK_DB`` change them.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from interlock.cli import bench, faults, tasks, up
from interlock.cli.arguments import UsageError
from mock_services.errors import MockServicesError
from orchestrator.errors import InterlockError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interlock", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up.add_parser(sub)
    tasks.add_parsers(sub)
    faults.add_parser(sub)
    bench.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
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
