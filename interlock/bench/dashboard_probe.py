"""The dashboard side of ``interlock bench --only dashboard``: a process of its own, as in use.

``python -m interlock.bench.dashboard_probe burst|open --api URL ...`` runs the real
:class:`~dashboard.app.DashboardApp` at 200x60 on a :class:`~dashboard.frame_driver.FrameDriver`
(every frame rendered as for a terminal, then dropped), attached to the API like
``interlock dashboard --attach``, on asyncio's own loop (as ``interlock dashboard`` runs it).
It speaks in JSON lines on stdout (file descriptor 1: Textual captures ``print`` while it runs):

- ``burst``: once live with the counts loaded it says ``{"event": "ready"}``; the benchmark then
  starts its burst. Meanwhile the probe presses ``s`` (cycle the task list's state filter, which
  rebuilds the table at once) about every ``--press-every-s``, and times each press from the key
  sent to the first frame flushed after the filter changed. It stops pressing on SIGTERM (the
  benchmark sends it when it saw the burst finished), when its own counts say
  ``--until-finished`` tasks are finished, or at ``--timeout-s``; it then waits for its counts to
  show the burst finished and prints the result: the latencies, when its counts caught up, its CPU
  and peak RSS.
- ``open``: the time from the app's start to the first frame that shows the task table with rows
  and the counts of at least ``--tasks`` tasks (and, apart, what importing the dashboard took).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

if TYPE_CHECKING:
    from dashboard.app import DashboardApp

#: The terminal the probe pretends to have (the issue's and the snapshots' wide layout).
SIZE: Final = (200, 60)
#: The key pressed during a burst: it cycles the state filter and redraws the table at once.
KEY: Final = "s"
#: The longest a press may wait for its frame before it counts as lost.
FRAME_TIMEOUT_S: Final = 10.0
#: How long, once told to stop, the probe waits for its counts to show the burst finished.
CATCH_UP_S: Final = 15.0
#: How often the probe looks at its counts between two presses (it wakes at once when told to
#: stop). A dashboard on a terminal sleeps until a key or an event comes: the probe looked every
#: 10 ms at first, a hundred wake-ups a second no dashboard makes, and a burst with the probe
#: attached ran 3 to 5 points slower for them (docs/benchmarks.md, "A key costs less").
_WATCH_S: Final = 0.1
#: After the dashboard has drawn all it loaded at the start, before the burst: the services'
#: first poll and the redraw it brings land here, not on the first key.
SETTLE_S: Final = 0.5


class _Table(Protocol):
    row_count: int


def _emit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, **fields}) + "\n"
    os.write(1, line.encode())


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _finished(app: DashboardApp) -> int:
    counts = app.fleet.counts
    return sum(counts.get(state, 0) for state in ("complete", "error", "cancelled"))


def _table_rows(app: DashboardApp) -> int:
    return cast(_Table, app.query_one("#tasks")).row_count


async def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the dashboard did not get {what} within {timeout_s:g} s")
        await asyncio.sleep(0.005)


def _new_app(args: argparse.Namespace) -> DashboardApp:
    from dashboard.app import DashboardApp
    from dashboard.config import DashboardConfig
    from dashboard.frame_driver import FrameDriver

    config = DashboardConfig(
        api_url=args.api, service_urls=json.loads(args.services), label="bench"
    )
    app = DashboardApp(config)
    app.driver_class = FrameDriver
    return app


async def _burst(args: argparse.Namespace) -> None:
    from dashboard.frame_driver import frame_driver

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    started = time.perf_counter()
    app = _new_app(args)
    async with app.run_test(headless=False, size=SIZE, notifications=True):
        driver = frame_driver(app)
        await _until(
            lambda: app.link.state == "live" and app.fleet.total >= args.expect_tasks,
            args.timeout_s,
            "live with the counts loaded",
        )
        # attached means all of it drawn: the list, and the newest task's DAG and timeline
        # (their first drawing lays the screen out again; a key pressed then waited for it)
        await _until(
            lambda: app.model is not None or not app.fleet.rows,
            args.timeout_s,
            "the newest task loaded",
        )
        await asyncio.wait_for(driver.next_frame(lambda: _table_rows(app) > 0), FRAME_TIMEOUT_S)
        await asyncio.sleep(SETTLE_S)
        cpu0, seq0, frames0, ready = _cpu_s(), app.last_seq, driver.frames, time.perf_counter()
        _emit("ready", startup_s=round(ready - started, 3))
        latencies, lost = await _press_until(app, args, stop)
        done, burst_cpu_s, frames = time.perf_counter(), _cpu_s() - cpu0, driver.frames - frames0
        saw_finished_at = await _when_finished(app, args.until_finished, CATCH_UP_S)
        _emit(
            "result",
            finished=saw_finished_at is not None,
            saw_finished_at=saw_finished_at,
            burst_s=round(done - ready, 3),
            presses=len(latencies),
            lost_presses=lost,
            key_ms=[round(s * 1000, 2) for s in latencies],
            cpu_s=round(_cpu_s(), 3),
            burst_cpu_s=round(burst_cpu_s, 3),
            peak_rss_mb=_peak_rss_mb(),
            events=app.last_seq - seq0,
            frames=frames,
        )


async def _when_finished(app: DashboardApp, target: int, timeout_s: float) -> float | None:
    """The wall-clock time the app's own counts showed ``target`` finished tasks (waiting up to
    ``timeout_s`` for them), None if they did not."""
    try:
        await _until(lambda: _finished(app) >= target, timeout_s, "the burst finished")
    except TimeoutError:
        return None
    return time.time()


async def _press_until(
    app: DashboardApp, args: argparse.Namespace, stop: asyncio.Event
) -> tuple[list[float], int]:
    """Press :data:`KEY` every ``press_every_s`` (or as soon as the last one showed; never when
    it is 0) until the counts say the burst is finished; each latency is key sent → the first
    frame that shows it."""
    from dashboard.frame_driver import frame_driver

    driver = frame_driver(app)
    deadline = time.monotonic() + args.timeout_s
    latencies: list[float] = []
    lost = 0
    next_press = time.perf_counter() if args.press_every_s > 0 else float("inf")
    while not stop.is_set() and _finished(app) < args.until_finished:
        if time.monotonic() > deadline:
            break
        if time.perf_counter() < next_press:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), min(_WATCH_S, next_press - time.perf_counter()))
            continue
        before = app.state_filter
        sent = time.perf_counter()
        driver.press(KEY)
        try:
            shown = driver.next_frame(_filter_changed(app, before))
            latencies.append(await asyncio.wait_for(shown, FRAME_TIMEOUT_S) - sent)
        except TimeoutError:
            lost += 1
        next_press = sent + args.press_every_s
    return latencies, lost


def _filter_changed(app: DashboardApp, before: str | None) -> Callable[[], bool]:
    return lambda: app.state_filter != before


async def _open(args: argparse.Namespace, imported_s: float) -> None:
    from dashboard.frame_driver import frame_driver

    started = time.perf_counter()
    app = _new_app(args)
    async with app.run_test(headless=False, size=SIZE, notifications=True):
        driver = frame_driver(app)
        shown = driver.next_frame(lambda: _table_rows(app) > 0 and app.fleet.total >= args.tasks)
        at = await asyncio.wait_for(shown, args.timeout_s)
        _emit(
            "result",
            open_s=round(at - started, 3),
            import_s=round(imported_s, 3),
            tasks=app.fleet.total,
            rows=_table_rows(app),
            cpu_s=round(_cpu_s(), 3),
            peak_rss_mb=_peak_rss_mb(),
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m interlock.bench.dashboard_probe")
    parser.add_argument("mode", choices=("burst", "open"))
    parser.add_argument("--api", required=True, help="the orchestrator API's URL")
    parser.add_argument("--services", default="{}", help="service URLs by name, as JSON")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    parser.add_argument("--expect-tasks", type=int, default=0, help="burst: counted when ready")
    parser.add_argument("--until-finished", type=int, default=0, help="burst: finished tasks")
    parser.add_argument("--press-every-s", type=float, default=0.05, help="burst: 0 for never")
    parser.add_argument("--tasks", type=int, default=1, help="open: tasks the counts must show")
    parser.add_argument(
        "--nice",
        type=int,
        default=None,
        help="the niceness to run at (default: run_dashboard's, dashboard.app.NICENESS; 0 keeps "
        "the normal priority)",
    )
    return parser


def main() -> None:
    args = _parser().parse_args()
    from dashboard.app import NICENESS, calm_the_collector, yield_the_cores

    niceness = NICENESS if args.nice is None else args.nice
    if niceness:
        yield_the_cores(niceness)  # as run_dashboard does
    calm_the_collector()
    if args.mode == "burst":
        asyncio.run(_burst(args))
        return
    importing = time.perf_counter()
    import dashboard.app  # noqa: F401  (timed: Textual and the dashboard's modules)

    asyncio.run(_open(args, time.perf_counter() - importing))


if __name__ == "__main__":
    main()
