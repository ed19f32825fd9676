"""``python -m mock_services``: the four services alone, until Ctrl-C / SIGTERM.

Prints one JSON line ``{"users": "http://127.0.0.1:8701", ...}`` once every service listens, so
scripts and benchmarks can start it with ``--users-port 0`` (and the others) and read where it
went.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence

from mock_services.errors import MockServicesError
from mock_services.runner import DEFAULT_HOST, DEFAULT_PORTS, start_services
from mock_services.runtime import ServiceConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mock_services", description=__doc__)
    parser.add_argument("--host", default=DEFAULT_HOST)
    for service, port in DEFAULT_PORTS.items():
        parser.add_argument(
            f"--{service}-port",
            type=int,
            default=port,
            metavar="PORT",
            help=f"(default {port}; 0 = any free port)",
        )
    parser.add_argument(
        "--no-fault-layer",
        action="store_true",
        help="leave the fault middleware out entirely (to measure its cost)",
    )
    parser.add_argument(
        "--allow-fault-headers",
        action="store_true",
        help="honour a per-request X-Interlock-Fault rule",
    )
    parser.add_argument("--log", action="store_true", help="print one JSON line per request")
    return parser


async def serve(args: argparse.Namespace) -> None:
    ports = {s: getattr(args, f"{s}_port") for s in DEFAULT_PORTS}
    config = ServiceConfig(
        faults_enabled=not args.no_fault_layer, allow_fault_headers=args.allow_fault_headers
    )
    running = await start_services(ports, host=args.host, config=config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(json.dumps(running.urls), flush=True)
    try:
        await stop.wait()
    finally:
        await running.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.log:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        asyncio.run(serve(args))
    except MockServicesError as exc:
        print(f"mock_services: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
