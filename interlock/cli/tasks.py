"""``interlock submit``, ``interlock status`` and ``interlock tasks``: tasks through the API."""

from __future__ import annotations

import argparse
import functools
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from httpedge import JsonLimitError, MalformedJsonError, parse_json
from interlock.cli.arguments import Subcommands, UsageError, http_url, positive_int
from interlock.cli.client import call, run_client
from interlock.settings import Settings
from mock_services.payloads import RegistrationFaker
from orchestrator.errors import InterlockError


def add_parsers(sub: Subcommands, settings: Settings) -> None:
    submit = sub.add_parser("submit", help="submit registrations (JSON context or --fake N)")
    submit.add_argument("context", nargs="?", help="a JSON context, or @file.json")
    submit.add_argument(
        "--fake", type=positive_int, metavar="N", help="N registrations made with Faker"
    )
    submit.add_argument("--plan", choices=["free", "pro", "enterprise"], help="for --fake")
    submit.add_argument("--seed", type=int, default=None, help="for --fake (default: random)")
    submit.add_argument("--name", default="user_registration", help="template name")
    submit.add_argument(
        "--idempotency-key",
        help="the same key never creates a second task: the same request gets the existing "
        "task, another request is refused (HTTP 422); with --fake N, keys KEY-0 … KEY-N-1 "
        "(use --seed to resubmit the same registrations)",
    )
    submit.add_argument(
        "--api", type=http_url, default=settings.api_url, help="orchestrator API URL"
    )
    submit.set_defaults(run=_run_submit)

    status = sub.add_parser("status", help="one task and its steps")
    status.add_argument("task_id")
    status.add_argument("--json", action="store_true")
    status.add_argument(
        "--api", type=http_url, default=settings.api_url, help="orchestrator API URL"
    )
    status.set_defaults(run=functools.partial(run_client, _status))

    tasks = sub.add_parser("tasks", help="list tasks, newest first")
    tasks.add_argument(
        "--state", choices=["pending", "in_progress", "complete", "error", "cancelled"]
    )
    tasks.add_argument("--limit", type=positive_int, default=20)
    tasks.add_argument(
        "--api", type=http_url, default=settings.api_url, help="orchestrator API URL"
    )
    tasks.set_defaults(run=functools.partial(run_client, _tasks))


def _run_submit(args: argparse.Namespace, settings: Settings) -> int:
    if not (args.fake or args.context):
        raise UsageError("submit needs a JSON context or --fake N")
    return run_client(_submit, args, settings)


def _contexts(args: argparse.Namespace) -> list[Any]:
    if args.fake:
        fake = RegistrationFaker(
            args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
        )
        return [fake.registration(args.plan) for _ in range(args.fake)]
    text = args.context
    where = "the context"
    if text.startswith("@"):
        text, where = _read_file(text[1:]), text[1:]
    try:
        return [parse_json(text)]
    except (MalformedJsonError, JsonLimitError) as exc:
        raise InterlockError(f"{where} is not usable JSON: {exc}") from None


def _read_file(name: str) -> str:
    try:
        return Path(name).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InterlockError(f"{name} is not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise InterlockError(f"cannot read {name}: {exc.strerror or exc}") from None


async def _submit(session: aiohttp.ClientSession, args: argparse.Namespace) -> int:
    for n, context in enumerate(_contexts(args)):
        body: dict[str, Any] = {"name": args.name, "context": context}
        if args.idempotency_key:
            body["idempotency_key"] = (
                f"{args.idempotency_key}-{n}" if args.fake else (args.idempotency_key)
            )
        sub = await call(session, "POST", f"{args.api}/tasks", body)
        email = context.get("user_info", {}).get("email", "") if isinstance(context, dict) else ""
        note = "" if sub["created"] else "  (existing task for this key)"
        print(f"{sub['task_id']}  {sub['state']:<11} {email}{note}")
    return 0


async def _status(session: aiohttp.ClientSession, args: argparse.Namespace) -> int:
    task = await call(session, "GET", f"{args.api}/tasks/{quote(args.task_id, safe='')}")
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
    listed = await call(session, "GET", f"{args.api}/tasks{query}")
    for task in listed["tasks"]:
        print(f"{task['task_id']}  {task['state']:<11} {task['name']}  {task['created_at']}")
    if not listed["tasks"]:
        print("no tasks")
    return 0
