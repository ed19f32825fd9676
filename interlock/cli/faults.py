"""``interlock fault SERVICE add|list|clear``: a mock service's fault rules, over its admin API."""

from __future__ import annotations

import argparse
import functools
import json

import aiohttp

from httpedge import JsonLimitError, MalformedJsonError, parse_json
from interlock.cli.arguments import Subcommands
from interlock.cli.client import call, run_client
from interlock.settings import SERVICE_PORTS, Settings
from orchestrator.errors import InterlockError


def add_parser(sub: Subcommands) -> None:
    fault = sub.add_parser(
        "fault",
        help="add / list / clear faults on a mock service",
        description="A mock service's fault rules, over its admin API at "
        "INTERLOCK_<SERVICE>_URL (default http://127.0.0.1:<its port>).",
    )
    fault.add_argument("service", choices=list(SERVICE_PORTS))
    fault.add_argument("action", choices=["add", "list", "clear"])
    fault.add_argument("rule", nargs="?", help='for add: a JSON rule, e.g. \'{"kind": "down"}\'')
    fault.set_defaults(run=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    base = settings.service_urls()[args.service].rstrip("/") + "/__admin/faults"
    where = f"INTERLOCK_{args.service.upper()}_URL"
    return run_client(functools.partial(_fault, base=base), args, settings, where=where)


async def _fault(session: aiohttp.ClientSession, args: argparse.Namespace, *, base: str) -> int:
    if args.action == "add":
        if not args.rule:
            raise InterlockError('fault add needs a JSON rule, e.g. \'{"kind": "down"}\'')
        try:
            rule = parse_json(args.rule)
        except (MalformedJsonError, JsonLimitError) as exc:
            raise InterlockError(f"the rule is not usable JSON: {exc}") from None
        print(json.dumps(await call(session, "POST", base, rule)))
    elif args.action == "list":
        for rule in (await call(session, "GET", base))["faults"]:
            print(json.dumps(rule))
    else:
        removed = (await call(session, "DELETE", base))["removed"]
        print(f"removed {len(removed)} rule(s) from {args.service}")
    return 0
