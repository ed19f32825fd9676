"""The ``interlock`` command: run the sandbox, submit and inspect tasks, inject faults, benchmark.

Ports (127.0.0.1): orchestrator API 8700, users 8701, billing 8702, preferences 8703,
notifications 8704; flags or ``INTERLOCK_API_PORT`` / ``INTERLOCK_<SERVICE>_PORT`` /
``INTERLOCK_<SERVICE>_URL`` / ``INTERLOCK_API_URL`` / ``INTERLOCK_DB`` change them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from interlock.bench.engine import format_report, run_benchmark
from interlock.bench.machine import OtherCpu, read_machine
from interlock.bench.registration import format_registration_report, run_registration_benchmark
from interlock.bench.services import format_service_report, run_service_benchmark
from interlock.loop import loop_name
from interlock.loop import run as run_loop
from interlock.sandbox import DEFAULT_API_PORT, SERVICE_PORTS, service_urls_from_env
from interlock.up import run_up
from mock_services.errors import MockServicesError
from mock_services.payloads import RegistrationFaker
from orchestrator.errors import InterlockError

BENCHMARKS = ("engine", "services", "registration")


def _api_url() -> str:
    port = os.environ.get("INTERLOCK_API_PORT", str(DEFAULT_API_PORT))
    return os.environ.get("INTERLOCK_API_URL", f"http://127.0.0.1:{port}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535, got {value}")
    return value


def _add_up(sub: Any) -> None:
    up = sub.add_parser(
        "up",
        help="run the sandbox: 4 mock services + engine + HTTP API",
        description="Run the sandbox headless until Ctrl-C / SIGTERM. State "
        "lives in a SQLite file: stop it and start it again, unfinished "
        "registrations resume.",
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
        default=os.environ.get("INTERLOCK_DB", "interlock.db"),
        help="SQLite file (default ./interlock.db or $INTERLOCK_DB)",
    )
    up.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    up.add_argument(
        "--api-port",
        type=_port,
        default=int(os.environ.get("INTERLOCK_API_PORT", DEFAULT_API_PORT)),
    )
    for service, port in SERVICE_PORTS.items():
        up.add_argument(
            f"--{service}-port",
            type=_port,
            default=int(os.environ.get(f"INTERLOCK_{service.upper()}_PORT", port)),
        )
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interlock", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_up(sub)

    submit = sub.add_parser("submit", help="submit registrations (JSON context or --fake N)")
    submit.add_argument("context", nargs="?", help="a JSON context, or @file.json")
    submit.add_argument(
        "--fake", type=_positive_int, metavar="N", help="N registrations made with Faker"
    )
    submit.add_argument("--plan", choices=["free", "pro", "enterprise"], help="for --fake")
    submit.add_argument("--seed", type=int, default=None, help="for --fake (default: random)")
    submit.add_argument("--name", default="user_registration", help="template name")
    submit.add_argument("--idempotency-key", help="the same key never creates a second task")
    submit.add_argument("--api", default=_api_url(), help="orchestrator API URL")

    status = sub.add_parser("status", help="one task and its steps")
    status.add_argument("task_id")
    status.add_argument("--json", action="store_true")
    status.add_argument("--api", default=_api_url())

    tasks = sub.add_parser("tasks", help="list tasks, newest first")
    tasks.add_argument(
        "--state", choices=["pending", "in_progress", "complete", "error", "cancelled"]
    )
    tasks.add_argument("--limit", type=_positive_int, default=20)
    tasks.add_argument("--api", default=_api_url())

    fault = sub.add_parser("fault", help="add / list / clear faults on a mock service")
    fault.add_argument("service", choices=list(SERVICE_PORTS))
    fault.add_argument("action", choices=["add", "list", "clear"])
    fault.add_argument("rule", nargs="?", help='for add: a JSON rule, e.g. \'{"kind": "down"}\'')

    bench = sub.add_parser("bench", help="benchmarks: engine, mock services, registrations")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--only",
        choices=BENCHMARKS,
        action="append",
        help="run only this benchmark (repeatable; default: all)",
    )
    bench.add_argument(
        "--sequential",
        type=_positive_int,
        default=500,
        help="engine: workflows at concurrency 1 (default 500)",
    )
    bench.add_argument(
        "--parallel",
        type=_positive_int,
        default=10_000,
        help="engine: workflows at concurrency 100 (default 10000)",
    )
    bench.add_argument(
        "--requests",
        type=_positive_int,
        default=6000,
        help="services: requests per server (default 6000)",
    )
    bench.add_argument(
        "--registrations",
        type=_positive_int,
        default=2000,
        help="registration: registrations (default 2000)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            db = Path(args.db).resolve()
            if not args.services_only and not db.parent.is_dir():
                print(f"interlock: directory {db.parent} does not exist", file=sys.stderr)
                return 2
            args.db = str(db)
            return run_loop(run_up(args))
        if args.command == "bench":
            return run_loop(_bench(args))
        if args.command == "submit" and not (args.fake or args.context):
            parser.error("submit needs a JSON context or --fake N")
        return run_loop(_client_command(args))
    except (InterlockError, MockServicesError) as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _client_command(args: argparse.Namespace) -> int:
    commands = {"submit": _submit, "status": _status, "tasks": _tasks, "fault": _fault}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        try:
            return await commands[args.command](session, args)
        except aiohttp.ClientConnectorError as exc:
            print(
                f"interlock: cannot reach {exc.host}:{exc.port} — is `interlock up` "
                "running? (set the URL with --api or INTERLOCK_*_URL)",
                file=sys.stderr,
            )
            return 2
        except _RequestFailedError as exc:
            print(f"interlock: {exc}", file=sys.stderr)
            return 1


class _RequestFailedError(Exception):
    pass


async def _call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with session.request(method, url, json=body) as resp:
        try:
            data = await resp.json(content_type=None)
        except json.JSONDecodeError:
            raise _RequestFailedError(f"{method} {url}: HTTP {resp.status}, not JSON") from None
        if resp.status >= 400:
            details = "".join(f"\n  {d['path']}: {d['message']}" for d in data.get("details", []))
            raise _RequestFailedError(f"{data.get('message', data)} (HTTP {resp.status}){details}")
        return data


def _contexts(args: argparse.Namespace) -> list[Any]:
    if args.fake:
        fake = RegistrationFaker(
            args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
        )
        return [fake.registration(args.plan) for _ in range(args.fake)]
    text = args.context
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        return [json.loads(text)]
    except json.JSONDecodeError as exc:
        raise InterlockError(f"the context is not valid JSON: {exc}") from None


async def _submit(session: aiohttp.ClientSession, args: argparse.Namespace) -> int:
    for n, context in enumerate(_contexts(args)):
        body: dict[str, Any] = {"name": args.name, "context": context}
        if args.idempotency_key:
            body["idempotency_key"] = (
                f"{args.idempotency_key}-{n}" if args.fake else (args.idempotency_key)
            )
        sub = await _call(session, "POST", f"{args.api}/tasks", body)
        email = context.get("user_info", {}).get("email", "") if isinstance(context, dict) else ""
        note = "" if sub["created"] else "  (existing task for this key)"
        print(f"{sub['task_id']}  {sub['state']:<11} {email}{note}")
    return 0


async def _status(session: aiohttp.ClientSession, args: argparse.Namespace) -> int:
    task = await _call(session, "GET", f"{args.api}/tasks/{args.task_id}")
    if args.json:
        print(json.dumps(task, indent=2))
        return 0
    print(
        f"{task['task_id']}  {task['name']}  {task['state']}  "
        f"(correlation {task['correlation_id']})"
    )
    for step in task["steps"]:
        error = step["last_error"]
        why = f"  {error['error_code']}: {error['message'][:70]}" if error else ""
        print(
            f"  {step['name']:<24} {step['state']:<18} "
            f"{step['attempts']}/{step['max_attempts']}{why}"
        )
    return 0


async def _tasks(session: aiohttp.ClientSession, args: argparse.Namespace) -> int:
    query = f"?limit={args.limit}" + (f"&state={args.state}" if args.state else "")
    listed = await _call(session, "GET", f"{args.api}/tasks{query}")
    for task in listed["tasks"]:
        print(f"{task['task_id']}  {task['state']:<11} {task['name']}  {task['created_at']}")
    if not listed["tasks"]:
        print("no tasks")
    return 0


async def _fault(session: aiohttp.ClientSession, args: argparse.Namespace) -> int:
    base = service_urls_from_env()[args.service] + "/__admin/faults"
    if args.action == "add":
        if not args.rule:
            raise InterlockError('fault add needs a JSON rule, e.g. \'{"kind": "down"}\'')
        try:
            rule = json.loads(args.rule)
        except json.JSONDecodeError as exc:
            raise InterlockError(f"the rule is not valid JSON: {exc}") from None
        print(json.dumps(await _call(session, "POST", base, rule)))
    elif args.action == "list":
        for rule in (await _call(session, "GET", base))["faults"]:
            print(json.dumps(rule))
    else:
        removed = (await _call(session, "DELETE", base))["removed"]
        print(f"removed {len(removed)} rule(s) from {args.service}")
    return 0


async def _bench(args: argparse.Namespace) -> int:
    reading = await asyncio.to_thread(read_machine, tempfile.gettempdir())
    results: dict[str, Any] = {"machine": asdict(reading), "event_loop": loop_name()}
    if not args.json:
        print(reading.describe(), f"event loop: {loop_name()}", "", sep="\n", flush=True)
    for name in args.only or BENCHMARKS:
        with OtherCpu() as others:
            if name == "engine":
                results[name] = await run_benchmark(args.sequential, args.parallel)
                report = format_report(results[name])
            elif name == "services":
                results[name] = await run_service_benchmark(args.requests)
                report = format_service_report(results[name])
            else:
                results[name] = await run_registration_benchmark(args.registrations)
                report = format_registration_report(results[name])
        results[name]["other_processes_cores"] = (
            None if others.cores_used is None else round(others.cores_used, 2)
        )
        if not args.json:
            print(report, others.describe(), "", sep="\n", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
