"""``interlock bench``: the benchmarks, each with the machine's state beside its numbers."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import asdict
from typing import Any

from interlock.bench.dashboard import format_dashboard_report, run_dashboard_benchmark
from interlock.bench.engine import format_report, run_benchmark
from interlock.bench.machine import OtherCpu, read_machine
from interlock.bench.registration import format_registration_report, run_registration_benchmark
from interlock.bench.scaling import (
    format_scaling_report,
    postgres_cpu_s,
    run_scaling_benchmark,
)
from interlock.bench.services import format_service_report, run_service_benchmark
from interlock.cli.arguments import Subcommands, non_negative_int, positive_int
from interlock.cli.loop import loop_name
from interlock.cli.loop import run as run_loop
from interlock.cli.signals import exit_on_signals
from interlock.progress import Progress, StatusLine, shown
from interlock.settings import Settings

BENCHMARKS = ("engine", "services", "registration", "dashboard")
#: Run only when asked for (``--only scaling``): it needs a PostgreSQL server.
ON_REQUEST = ("scaling",)


def add_parser(sub: Subcommands) -> None:
    bench = sub.add_parser(
        "bench", help="benchmarks: engine, mock services, registrations, dashboard"
    )
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument(
        "--only",
        choices=BENCHMARKS + ON_REQUEST,
        action="append",
        help="run only this benchmark (repeatable; default: all but scaling, which needs a "
        "PostgreSQL server: $INTERLOCK_BENCH_PG_URL, default 127.0.0.1:5432)",
    )
    bench.add_argument(
        "--sequential",
        type=positive_int,
        default=500,
        help="engine: workflows at concurrency 1 (default 500)",
    )
    bench.add_argument(
        "--parallel",
        type=positive_int,
        default=10_000,
        help="engine: workflows at concurrency 100 (default 10000)",
    )
    bench.add_argument(
        "--requests",
        type=positive_int,
        default=6000,
        help="services: requests per server (default 6000)",
    )
    bench.add_argument(
        "--registrations",
        type=positive_int,
        default=2000,
        help="registration: registrations (default 2000)",
    )
    bench.add_argument(
        "--burst",
        type=positive_int,
        default=2000,
        help="dashboard: registrations per burst (default 2000)",
    )
    bench.add_argument(
        "--pairs",
        type=positive_int,
        default=4,
        help="dashboard: pairs of bursts without and with the dashboard, their order flipping "
        "each pair (default 4: as many of each order)",
    )
    bench.add_argument(
        "--open-tasks",
        type=positive_int,
        default=10_000,
        help="dashboard: tasks in the database when the task list is opened (default 10000)",
    )
    bench.add_argument(
        "--press-every-ms",
        type=non_negative_int,
        default=50,
        help="dashboard: the attached dashboard presses a key this often (default 50; 0: never)",
    )
    bench.add_argument(
        "--dashboard-nice",
        type=int,
        default=None,
        metavar="N",
        help="dashboard: run the attached dashboard at this niceness (default: its own, 10; "
        "0: the sandbox's priority)",
    )
    bench.add_argument(
        "--scale-workers",
        type=_worker_counts,
        default=(1, 2, 4),
        metavar="N,N,...",
        help="scaling: worker processes on PostgreSQL, one run each (default 1,2,4)",
    )
    bench.add_argument(
        "--diamonds",
        type=positive_int,
        default=4000,
        help="scaling: no-op diamonds per run, shared by the workers (default 4000)",
    )
    bench.add_argument(
        "--scale-registrations",
        type=positive_int,
        default=1200,
        help="scaling: registrations per run, shared by the workers (default 1200)",
    )
    bench.set_defaults(run=_run)


def _worker_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {text!r}") from None
    if not counts or any(n < 1 or n > 64 for n in counts):
        raise argparse.ArgumentTypeError(f"worker counts must be 1 to 64: {text!r}")
    return counts


async def _one(
    name: str, args: argparse.Namespace, progress: Progress
) -> tuple[dict[str, Any], str]:
    """Run one benchmark; its result and its report."""
    if name == "engine":
        result = await run_benchmark(args.sequential, args.parallel, progress)
        return result, format_report(result)
    if name == "services":
        result = await run_service_benchmark(args.requests, progress=progress)
        return result, format_service_report(result)
    if name == "scaling":
        result = await run_scaling_benchmark(
            args.scale_workers, args.diamonds, args.scale_registrations, progress=progress
        )
        return result, format_scaling_report(result)
    if name == "registration":
        result = await run_registration_benchmark(args.registrations, progress=progress)
        return result, format_registration_report(result)
    result = await run_dashboard_benchmark(
        args.burst,
        args.pairs,
        args.open_tasks,
        press_every_s=max(0, args.press_every_ms) / 1000,
        nice=args.dashboard_nice,
        progress=progress,
    )
    return result, format_dashboard_report(result)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    loop = loop_name(use_uvloop=settings.uvloop)
    with exit_on_signals():  # stopped: its sandbox is stopped too
        return run_loop(_bench(args, loop), use_uvloop=settings.uvloop)


async def _bench(args: argparse.Namespace, loop: str) -> int:
    line = None if args.json else StatusLine()
    progress = Progress()
    reading = await asyncio.to_thread(read_machine, tempfile.gettempdir())
    results: dict[str, Any] = {"machine": asdict(reading), "event_loop": loop}
    if not args.json:
        print(reading.describe(), f"event loop: {loop}", "", sep="\n", flush=True)
    for name in args.only or BENCHMARKS:
        progress.begin(f"{name}: starting")
        with OtherCpu(also_ours=postgres_cpu_s if name == "scaling" else None) as others:
            async with shown(progress, line):
                results[name], report = await _one(name, args, progress)
        results[name]["other_processes_cores"] = (
            None if others.cores_used is None else round(others.cores_used, 2)
        )
        if not args.json:
            print(report, others.describe(), "", sep="\n", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0
