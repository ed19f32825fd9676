"""The ``interlock`` command.

Implemented so far: ``up`` (until the mock services and HTTP API land, an engine demo: simulated
registrations through the durable engine, every event printed live) and ``bench``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faker import Faker

from interlock.bench import format_report, run_benchmark
from interlock.service_bench import format_service_report, run_service_benchmark
from interlock.workflows import builtin_registry, builtin_templates
from orchestrator.embedded import open_engine
from orchestrator.engine import Engine, EngineConfig
from orchestrator.errors import InterlockError
from orchestrator.models import Event, TaskState

BENCHMARKS = ("engine", "services")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interlock", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the sandbox (for now: the engine demo) until Ctrl-C",
                        description="Run simulated user registrations through the durable "
                        "engine on a SQLite file, printing every event. Ctrl-C / SIGTERM stops "
                        "cleanly; run it again on the same file and unfinished work resumes.")
    up.add_argument("--db", default=os.environ.get("INTERLOCK_DB", "interlock.db"),
                    help="SQLite file (default: ./interlock.db, or $INTERLOCK_DB)")
    up.add_argument("--tasks", type=_positive_int, default=5,
                    help="registrations to submit at start (default 5)")
    up.add_argument("--exit-when-done", action="store_true",
                    help="stop once every task has finished (for scripts and CI)")
    up.add_argument("--seed", type=int, default=1, help="seed for Faker and simulated faults")

    bench = sub.add_parser("bench", help="benchmarks: engine, mock services (and their numbers)")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--only", choices=BENCHMARKS, action="append",
                       help="run only this benchmark (repeatable; default: all)")
    bench.add_argument("--requests", type=_positive_int, default=6000,
                       help="requests per server in the services benchmark (default 6000)")
    bench.add_argument("--sequential", type=_positive_int, default=500,
                       help="workflows at concurrency 1 (default 500)")
    bench.add_argument("--parallel", type=_positive_int, default=10_000,
                       help="workflows at concurrency 100 (default 10000)")
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "bench":
            return asyncio.run(_bench(args))
        return asyncio.run(_up(args, Path(args.db).resolve()))
    except InterlockError as exc:
        print(f"interlock: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _bench(args: argparse.Namespace) -> int:
    results: dict[str, Any] = {}
    for name in args.only or BENCHMARKS:
        if name == "engine":
            results[name] = await run_benchmark(args.sequential, args.parallel)
            report = format_report(results[name])
        else:
            results[name] = await run_service_benchmark(args.requests)
            report = format_service_report(results[name])
        if not args.json:
            print(report, "", sep="\n", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


async def _up(args: argparse.Namespace, db: Path) -> int:
    if not db.parent.is_dir():
        print(f"interlock: directory {db.parent} does not exist", file=sys.stderr)
        return 2
    registry = builtin_registry(args.seed)
    # A stable worker id per file: a restart reclaims this worker's interrupted steps at once.
    config = EngineConfig(worker_id=f"interlock-up:{db}", lease_s=15)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with open_engine(db, registry, builtin_templates(registry), config=config) as engine:
        print(f"Interlock engine demo on {db} (worker {engine.worker_id})")
        print("The mock services and HTTP API arrive in later releases; until then the steps "
              "call simulated services with seeded latency and failures.\n")
        printer = asyncio.create_task(_print_events(engine))
        ids = await _submit_fake(engine, args.tasks, args.seed)
        waiter = asyncio.create_task(_wait_all(engine, ids))
        stopper = asyncio.create_task(stop.wait())
        pending = {stopper, *([waiter] if args.exit_when_done else [])}
        await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in (printer, waiter, stopper):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await _print_summary(engine)
    return 0


async def _submit_fake(engine: Engine, count: int, seed: int) -> list[str]:
    fake = Faker()
    fake.seed_instance(seed)
    ids = []
    for _ in range(count):
        context = {"user_info": {"email": fake.unique.email(), "name": fake.name(),
                                 "plan": fake.random_element(["free", "pro", "enterprise"])}}
        ids.append((await engine.submit("demo_registration", context)).task_id)
    return ids


async def _wait_all(engine: Engine, ids: list[str]) -> None:
    unfinished = [t.task_id for t in await engine.list_tasks(TaskState.IN_PROGRESS, 10_000)]
    unfinished += [t.task_id for t in await engine.list_tasks(TaskState.PENDING, 10_000)]
    for task_id in dict.fromkeys([*ids, *unfinished]):
        await engine.wait_for_end(task_id)


async def _print_events(engine: Engine) -> None:
    with engine.subscribe() as sub:
        async for event in sub:
            print(_describe(event), flush=True)


def _describe(event: Event) -> str:
    task = (event.task_id or "")[:8]
    step = f" {event.step_name}" if event.step_name else ""
    attempt = f" #{event.attempt}" if event.attempt else ""
    extra = ""
    if "error" in event.data:
        err: dict[str, Any] = event.data["error"]
        extra = f"  {err.get('error_code')}: {err.get('message')}"
    if "delay_s" in event.data:
        extra += f"  (retry in {event.data['delay_s']:.2f} s)"
    if "failed_steps" in event.data:
        extra = f"  failed: {', '.join(event.data['failed_steps'])}"
    return f"{event.seq:>6} {task} {event.type:<22}{step}{attempt}{extra}"


async def _print_summary(engine: Engine) -> None:
    tasks = await engine.list_tasks(limit=10_000)
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.state.value] = counts.get(t.state.value, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
    print(f"\n{len(tasks)} tasks in the database: {summary or 'none'}")


if __name__ == "__main__":
    raise SystemExit(main())
