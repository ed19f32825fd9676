"""What an attached, drawing dashboard costs a burst, and how it answers the keyboard meanwhile.

The sandbox runs as ``interlock dashboard`` runs it: the services and the orchestrator are two
child processes (:mod:`interlock.supervisor`) on free ports and a fresh SQLite file. Runs A (no
dashboard) and B (the dashboard attached) alternate in pairs, the order flipping each pair (A B,
B A, A B ...), so a change of the machine's speed moves both runs of a pair and mostly cancels
out of the pair's ratio B/A (docs/benchmarks.md, "Reading the numbers"). The database grows by a
burst each run and the sandbox slows with it (A falls about 5 % a pair): the second run of a
pair is the slower one, so the default is an even number of pairs, as many of each order, and the
report gives the mean ratio of each order beside the median. Each run is a burst of
registrations submitted over HTTP at full speed (:mod:`interlock.bench.burst`), timed until all
of them are finished. In B the dashboard is a process of its own
(:mod:`interlock.bench.dashboard_probe`), attached before the burst starts, drawing every frame
at 200x60 and pressing a key every 50 ms; it reports each key's latency to the frame that
showed it, its CPU and its peak RSS. The CPU of every process over each run is read from
``/proc`` too, to say where it went. Last, the database is topped up to ``open_tasks`` tasks
and a fresh dashboard is timed from its start to the first frame of the task list with rows and
the counts loaded.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from interlock.bench.burst import read_counts, submit_all, wait_finished
from interlock.bench.dashboard_probe import CATCH_UP_S
from interlock.bench.machine import process_cpu_s
from interlock.bench.sandbox import temporary_sandbox
from interlock.progress import Progress
from interlock.registration.template import TEMPLATE_NAME
from interlock.supervisor import ChildRole, Supervisor
from mock_services.payloads import RegistrationFaker

#: The issue's targets: B's registrations/s at least this share of A's, and the key p99.
TARGET_RATIO_PCT: Final = 90.0
TARGET_KEY_P99_MS: Final = 100.0
#: How long a probe may take to attach, and to report once the burst is finished (it waits up
#: to ``CATCH_UP_S`` for its own counts to show the burst finished).
_PROBE_READY_S: Final = 60.0
_PROBE_REPORT_S: Final = CATCH_UP_S + 30.0
#: A real terminal draws in colour; the probe has none to detect, so it is told (the costliest).
_PROBE_ENV: Final = {"TEXTUAL_COLOR_SYSTEM": "truecolor"}


class _Probe:
    """One dashboard probe process, read as JSON lines."""

    def __init__(self, proc: asyncio.subprocess.Process, stderr: Path) -> None:
        self.proc = proc
        self.stderr = stderr
        self.spawned_s = time.perf_counter()

    @classmethod
    async def start(cls, stderr: Path, *args: str) -> _Probe:
        with stderr.open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "interlock.bench.dashboard_probe", *args),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
                env={**os.environ, **_PROBE_ENV},
                # its own session, as a dashboard on a terminal is (the sandbox's children have
                # theirs): the kernel's autogroups then schedule it apart from the benchmark
                start_new_session=True,
            )
        return cls(proc, stderr)

    async def read(self, event: str, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout_s)
        if not line:
            await self.proc.wait()
            tail = self.stderr.read_text(errors="replace").strip().splitlines()[-15:]
            raise RuntimeError(
                f"the dashboard probe exited with {self.proc.returncode} before saying {event!r};"
                " its stderr ends:\n  " + "\n  ".join(tail)
            )
        said: dict[str, Any] = json.loads(line)
        if said.get("event") != event:
            raise RuntimeError(f"the dashboard probe said {said.get('event')!r}, not {event!r}")
        return said

    async def finish(self, timeout_s: float) -> dict[str, Any]:
        """Tell it the burst is over (it stops pressing and reports); its result."""
        try:
            if self.proc.returncode is None:
                self.proc.send_signal(signal.SIGTERM)
            return await self.read("result", timeout_s)
        finally:
            await self.close()

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


@dataclass
class _Bench:
    """The sandbox, one HTTP session to it, and the registrations to send."""

    supervisor: Supervisor
    session: aiohttp.ClientSession
    workdir: Path
    concurrency: int
    press_every_s: float
    fake: RegistrationFaker
    #: The dashboard probe's niceness; None: the dashboard's own (``dashboard.app.NICENESS``).
    nice: int | None = None

    @property
    def api_url(self) -> str:
        return self.supervisor.api_url

    def _cpu(self, probe: _Probe | None) -> dict[str, float | None]:
        pids = self.supervisor.pids
        return {
            "orchestrator": _child_cpu_s(pids.get(ChildRole.ORCHESTRATOR)),
            "services": _child_cpu_s(pids.get(ChildRole.SERVICES)),
            "bench": process_cpu_s(),
            "dashboard": None if probe is None else _child_cpu_s(probe.proc.pid),
        }

    async def burst(self, registrations: int) -> float:
        """Submit ``registrations`` and wait until all are finished; seconds taken."""
        contexts = [self.fake.registration() for _ in range(registrations)]
        before = await read_counts(self.session, self.api_url)
        started = time.perf_counter()
        await submit_all(self.session, self.api_url, TEMPLATE_NAME, contexts, self.concurrency)
        timeout_s = 120 + registrations / 20
        done = await wait_finished(
            self.session, self.api_url, before, registrations, started, timeout_s
        )
        return done - started

    async def run(self, arm: str, registrations: int) -> dict[str, Any]:
        """One burst: ``A`` alone, ``B`` with a dashboard probe attached and pressing keys."""
        probe = None
        if arm == "B":
            before = await read_counts(self.session, self.api_url)
            probe = await _Probe.start(
                self.workdir / "probe.log",
                *("burst", "--api", self.api_url),
                *("--services", json.dumps(self.supervisor.service_urls)),
                *("--expect-tasks", str(before.total)),
                *("--until-finished", str(before.finished + registrations)),
                *("--press-every-s", str(self.press_every_s)),
                *(() if self.nice is None else ("--nice", str(self.nice))),
            )
            await probe.read("ready", _PROBE_READY_S)
        cpu0 = self._cpu(probe)
        seconds = await self.burst(registrations)
        seen_at, cpu1 = time.time(), self._cpu(probe)
        run: dict[str, Any] = {
            "arm": arm,
            "registrations": registrations,
            "seconds": round(seconds, 3),
            "registrations_per_s": round(registrations / seconds, 1),
            "cpu_s": {k: _delta(cpu0[k], cpu1[k]) for k in cpu0},
        }
        if probe is not None:
            run["dashboard"] = _dashboard_run(await probe.finish(_PROBE_REPORT_S), seen_at)
        return run

    async def open_list(self, tasks: int) -> dict[str, Any]:
        """A fresh dashboard on ``tasks`` tasks: its start to the first frame of the list."""
        probe = await _Probe.start(
            self.workdir / "probe.log",
            *("open", "--api", self.api_url, "--tasks", str(tasks)),
            *("--services", json.dumps(self.supervisor.service_urls)),
            *("--timeout-s", "60"),
        )
        try:
            said = await probe.read("result", 90)
        finally:
            await probe.close()
        said["launch_to_open_s"] = round(time.perf_counter() - probe.spawned_s, 3)
        del said["event"]
        return said


def _child_cpu_s(pid: int | None) -> float | None:
    return None if pid is None else process_cpu_s(pid)


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 3)


def _dashboard_run(said: dict[str, Any], bench_saw_finished_at: float) -> dict[str, Any]:
    keys = sorted(said.pop("key_ms"))
    return {
        **{k: v for k, v in said.items() if k not in ("event", "saw_finished_at")},
        "key_ms": keys,
        "key_p50_ms": _pct(keys, 0.50),
        "key_p99_ms": _pct(keys, 0.99),
        "key_max_ms": keys[-1] if keys else None,
        #: how long after the bench the dashboard's own counts showed the burst finished
        "lag_s": None
        if said["saw_finished_at"] is None
        else round(said["saw_finished_at"] - bench_saw_finished_at, 3),
    }


def _pct(ordered: list[float], q: float) -> float | None:
    """The ``q`` quantile of sorted samples (nearest rank), None without samples."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run_dashboard_benchmark(
    registrations: int = 2000,
    pairs: int = 4,
    open_tasks: int = 10_000,
    *,
    concurrency: int = 64,
    warmup: int = 100,
    press_every_s: float = 0.05,
    nice: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The pairs, the top-up to ``open_tasks`` tasks and the list's opening, in one sandbox."""
    async with temporary_sandbox("dashbench") as (supervisor, workdir):
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            bench = _Bench(
                supervisor,
                session,
                workdir,
                concurrency,
                press_every_s,
                RegistrationFaker(7),
                nice,
            )
            await bench.burst(warmup)  # connections, caches, the WAL: not measured
            runs = []
            if progress is not None:
                progress.begin("dashboard: bursts (A alone, B with a dashboard)", 2 * pairs)
            for pair in range(pairs):
                for arm in ("A", "B") if pair % 2 == 0 else ("B", "A"):
                    runs.append(await bench.run(arm, registrations))
                    if progress is not None:
                        progress.advance()
            if progress is not None:
                progress.begin("dashboard: opening the task list")
            total = (await read_counts(session, supervisor.api_url)).total
            topped_up = max(0, open_tasks - total)
            if topped_up:
                await bench.burst(topped_up)
            opened = await bench.open_list(open_tasks)
    result = _result(runs, registrations, concurrency, press_every_s, topped_up, opened)
    return {**result, "dashboard_nice": nice}


def _result(
    runs: list[dict[str, Any]],
    registrations: int,
    concurrency: int,
    press_every_s: float,
    topped_up: int,
    opened: dict[str, Any],
) -> dict[str, Any]:
    pairs = []
    for n in range(0, len(runs), 2):
        first, second = runs[n], runs[n + 1]
        a, b = (first, second) if first["arm"] == "A" else (second, first)
        ratio = b["registrations_per_s"] / a["registrations_per_s"] * 100
        pairs.append(
            {"order": first["arm"] + second["arm"], "a": a, "b": b, "b_over_a_pct": round(ratio, 1)}
        )
    dashboards = [p["b"]["dashboard"] for p in pairs]
    keys = sorted(k for d in dashboards for k in d.pop("key_ms"))
    median = statistics.median(p["b_over_a_pct"] for p in pairs)
    by_order = {
        order: round(statistics.mean(ratios), 1)
        for order in ("AB", "BA")
        if (ratios := [p["b_over_a_pct"] for p in pairs if p["order"] == order])
    }
    p99 = _pct(keys, 0.99)
    return {
        "benchmark": "dashboard_attached",
        "registrations_per_burst": registrations,
        "concurrency": concurrency,
        "press_every_s": press_every_s,
        "pairs": pairs,
        "median_b_over_a_pct": round(median, 1),
        "mean_b_over_a_pct_by_order": by_order,
        "key_presses": len(keys),
        "key_p50_ms": _pct(keys, 0.50),
        "key_p99_ms": p99,
        "key_max_ms": keys[-1] if keys else None,
        "dashboard_peak_rss_mb": max(d["peak_rss_mb"] for d in dashboards),
        "topped_up": topped_up,
        "open": opened,
        "targets": {"b_over_a_pct": TARGET_RATIO_PCT, "key_p99_ms": TARGET_KEY_P99_MS},
        "pass_ratio": median >= TARGET_RATIO_PCT,
        "pass_key_p99": None if p99 is None else p99 <= TARGET_KEY_P99_MS,
    }


def format_dashboard_report(result: dict[str, Any]) -> str:
    every_ms = result["press_every_s"] * 1000
    pressing = f"pressing `s` every {every_ms:.0f} ms" if every_ms > 0 else "pressing no key"
    if result.get("dashboard_nice") is not None:
        pressing += f", at niceness {result['dashboard_nice']}"
    lines = [
        f"Dashboard attached — bursts of {result['registrations_per_burst']} registrations over "
        f"HTTP, {result['concurrency']} in flight; A: no dashboard, B: the dashboard in its own "
        f"process drawing at 200x60, {pressing}",
        "pair order   A reg/s   B reg/s   B/A    | CPU s in A → B: orchestrator  services  bench"
        "  | dashboard: CPU s  peak RSS  key p50/p99/max ms  presses  lag",
    ]
    for n, pair in enumerate(result["pairs"], 1):
        a, b = pair["a"], pair["b"]
        d = b["dashboard"]
        lines.append(
            f"{n:>4} {pair['order']:>5} {a['registrations_per_s']:>9.1f} "
            f"{b['registrations_per_s']:>9.1f} {pair['b_over_a_pct']:>5.1f} % |"
            f"{_cpu_pair(a, b, 'orchestrator'):>28}{_cpu_pair(a, b, 'services'):>11}"
            f"{_cpu_pair(a, b, 'bench'):>11}  | {_num(b['cpu_s']['dashboard']):>14}"
            f"  {d['peak_rss_mb']:>6.1f} MB  {_num(d['key_p50_ms'])}/{_num(d['key_p99_ms'])}/"
            f"{_num(d['key_max_ms'])}  {d['presses']:>7}  {_num(d['lag_s'])} s"
        )
    lines += _verdicts(result)
    return "\n".join(lines)


def _verdicts(result: dict[str, Any]) -> list[str]:
    targets, opened = result["targets"], result["open"]

    def verdict(ok: bool | None) -> str:
        return "not measured" if ok is None else "PASS" if ok else "FAIL"

    orders = ", ".join(
        f"{order} pairs {pct:.1f} %" for order, pct in result["mean_b_over_a_pct_by_order"].items()
    )
    return [
        f"median B/A {result['median_b_over_a_pct']:.1f} % "
        f"(target >= {targets['b_over_a_pct']:.0f} %): {verdict(result['pass_ratio'])}"
        f"; mean of the {orders}",
        f"key press to frame over {result['key_presses']} presses: p50 "
        f"{_num(result['key_p50_ms'])} ms, p99 {_num(result['key_p99_ms'])} ms, max "
        f"{_num(result['key_max_ms'])} ms (target p99 <= {targets['key_p99_ms']:.0f} ms): "
        f"{verdict(result['pass_key_p99'])}",
        f"task list open on {opened['tasks']:,} tasks ({result['topped_up']:,} added): "
        f"{opened['open_s'] * 1000:.0f} ms from app start to the first frame with "
        f"{opened['rows']} rows and the counts, after {opened['import_s'] * 1000:.0f} ms of "
        f"imports ({opened['launch_to_open_s']:.2f} s from launch); peak RSS "
        f"{opened['peak_rss_mb']:.1f} MB",
    ]


def _cpu_pair(a: dict[str, Any], b: dict[str, Any], who: str) -> str:
    return f"{_num(a['cpu_s'][who])} → {_num(b['cpu_s'][who])}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
