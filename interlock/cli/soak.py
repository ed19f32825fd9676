"""``interlock soak``: the chaos soak (:mod:`interlock.soak`); exit 1 on any loss, duplicate or
unexplained failure."""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from interlock.bench.machine import OtherCpu, read_machine
from interlock.cli.arguments import Subcommands, UsageError, positive_int
from interlock.cli.loop import loop_name
from interlock.cli.loop import run as run_loop
from interlock.cli.signals import exit_on_signals
from interlock.settings import Settings
from interlock.soak import SoakConfig, SoakReport, run_soak
from interlock.soak.progress import StatusLine
from interlock.soak.report import format_report
from orchestrator.store.postgres import is_postgres_url


def add_parser(sub: Subcommands) -> None:
    soak = sub.add_parser(
        "soak",
        help="chaos soak: registrations under seeded faults while the orchestrator is killed",
        description="Submit registrations over the API under seeded faults on all four "
        "services while the orchestrator is SIGKILLed and restarted; then check from the "
        "services' own records that nothing was lost or duplicated and that every failure is "
        "explained by its faults. On PostgreSQL, --workers N runs N orchestrator workers on "
        "the one database, killed in turn while the others keep working; submissions go "
        "round-robin to those that are up. Exit status 1 when a check fails.",
    )
    soak.add_argument("--n", type=positive_int, default=2000, help="registrations (default 2000)")
    soak.add_argument("--kills", type=int, default=10, help="orchestrator kills (default 10)")
    soak.add_argument("--seed", type=int, default=1, help="seed: people, faults, kills (default 1)")
    soak.add_argument(
        "--rate", type=float, default=100.0, help="submissions per second (default 100)"
    )
    soak.add_argument(
        "--db",
        help="SQLite file, must not exist (default: a temporary one), or a "
        "postgresql://user@host:port/database URL whose schema (its search_path) holds no "
        "Interlock table yet; the soak leaves its state there",
    )
    soak.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="orchestrator workers sharing the database (default 1; more need PostgreSQL)",
    )
    soak.add_argument(
        "--log",
        type=Path,
        help="the children's log (default <db>.soak.log; on PostgreSQL a temporary file)",
    )
    soak.add_argument(
        "--timeout", type=float, default=900.0, help="seconds for every task to end (default 900)"
    )
    soak.add_argument("--json", action="store_true", help="print one JSON object")
    soak.set_defaults(run=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.workers > 1 and not is_postgres_url(args.db or ""):
        raise UsageError(
            f"--workers {args.workers} needs a PostgreSQL --db (postgresql://...): on SQLite "
            "the soak runs one orchestrator"
        )
    config = SoakConfig(
        registrations=args.n,
        kills=max(0, args.kills),
        seed=args.seed,
        rate_per_s=max(args.rate, 0.1),
        db=args.db,
        log_path=args.log,
        timeout_s=args.timeout,
        workers=args.workers,
    )
    loop = loop_name(use_uvloop=settings.uvloop)
    with exit_on_signals():  # stopped: its sandbox is stopped too
        return run_loop(_soak(config, as_json=args.json, loop=loop), use_uvloop=settings.uvloop)


async def _soak(config: SoakConfig, *, as_json: bool, loop: str) -> int:
    reading = await asyncio.to_thread(read_machine, tempfile.gettempdir())
    progress = StatusLine()
    progress.note(f"{reading.describe()}; event loop: {loop}")
    workers = f", {config.workers} workers" if config.workers > 1 else ""
    progress.note(
        f"soak: {config.registrations} registrations at {config.rate_per_s:g}/s, "
        f"{config.kills} kills, seed {config.seed}; on {config.db_label}{workers}"
    )
    try:
        with OtherCpu() as others:
            report = await run_soak(config, progress)
    finally:
        progress.close()
    if as_json:
        print(json.dumps(_as_json(report, reading=asdict(reading), others=others.cores_used)))
    else:
        print(format_report(report), others.describe(), sep="\n")
    return 0 if report.ok else 1


def _as_json(report: SoakReport, **extra: Any) -> dict[str, Any]:
    return {**asdict(report), "ok": report.ok, **extra}
