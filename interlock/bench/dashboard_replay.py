"""The dashboard's own cost, without the noise of a live burst: a recorded burst replayed.

``python -m interlock.bench.dashboard_replay [--registrations 2000] [--rounds 3]``

``interlock bench --only dashboard`` measures what users see (throughput with a dashboard
attached, key latency), but on two cores those figures move by ±10 % between runs of the same
code. To compare two versions of the dashboard, this replays one burst, identically, into
fresh dashboards and reports each one's CPU and key latencies:

1. It starts a sandbox (the services and the orchestrator as child processes, as ``interlock
   dashboard`` does), records the ``/events/stream`` lines of a burst of registrations, and
   keeps the sandbox running.
2. A replay server in a child process (``... dashboard_replay serve``) answers ``/health`` and
   ``/tasks/counts`` as they were before the burst, streams the recorded lines at the pace they
   were recorded, and passes every other request to the sandbox.
3. In this process, the real ``DashboardApp`` at 200x60 on the frame driver (every frame
   rendered, then dropped) follows the replay, with no key and with ``s`` pressed every
   ``--press-every-ms``, ``--rounds`` times each; its CPU is measured from live to the last
   event plus a second, and each key from the press to the first frame that shows it.

The server's work is in its own process, so the CPU reported is the dashboard's alone.
``--profile-dir DIR`` writes each replay's cProfile statistics there, as
``treeN-PRESSms-ROUND.prof`` (N the ``--tree``'s place), for ``python -m pstats``; the
profiler's own cost is then in the CPU it reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import aiohttp
from aiohttp import web

from interlock.bench.burst import read_counts, submit_all, wait_finished
from interlock.bench.sandbox import temporary_sandbox
from interlock.registration.template import TEMPLATE_NAME
from mock_services.payloads import RegistrationFaker
from orchestrator import codec

SIZE: Final = (200, 60)
#: The longest one replay may take (connecting, the burst, the drawing) before it is abandoned.
REPLAY_TIMEOUT_S: Final = 300.0
_SESSION: Final = web.AppKey("session", aiohttp.ClientSession)
#: How long after its last event the dashboard is given to draw it.
SETTLE_S: Final = 1.0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- 1. record --------------------------------------------------------------------------------


async def _record(api: str, registrations: int, path: Path) -> None:
    """Write ``path``: a header (the counts before), then each streamed line with its offset."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await _burst(session, api, 100, 1)  # warm-up: connections, caches, the WAL
        before = await read_counts(session, api)
        async with session.get(f"{api}/health") as resp:
            last_seq = int((await resp.json())["last_seq"])
        lines: list[tuple[float, bytes]] = []
        completed = 0
        started = time.perf_counter()

        async def listen() -> None:
            nonlocal completed
            async with session.get(f"{api}/events/stream", params={"after": last_seq}) as resp:
                async for line in resp.content:
                    if line.strip():
                        lines.append((time.perf_counter() - started, line.rstrip(b"\n")))
                        completed += codec.loads(line)["type"] == "task.completed"

        listener = asyncio.create_task(listen())
        await _burst(session, api, registrations, 2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and completed < registrations:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # another task counts: polled, as the stream arrives
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
    header = {"counts": dict(before.by_state), "total": before.total, "last_seq": last_seq}
    with path.open("wb") as out:
        out.write(codec.dumpb(header) + b"\n")
        for offset, line in lines:
            out.write(f"{offset:.6f} ".encode() + line + b"\n")


async def _burst(session: aiohttp.ClientSession, api: str, n: int, seed: int) -> None:
    fake = RegistrationFaker(seed)
    before = await read_counts(session, api)
    started = time.perf_counter()
    await submit_all(session, api, TEMPLATE_NAME, [fake.registration() for _ in range(n)], 64)
    await wait_finished(session, api, before, n, started, 120 + n / 20)


# --- 2. serve ---------------------------------------------------------------------------------


def _serve(path: Path, api: str) -> None:
    raw = path.read_bytes().splitlines()
    header = json.loads(raw[0])
    recorded = [(float(r.split(b" ", 1)[0]), r.split(b" ", 1)[1]) for r in raw[1:]]
    seqs = [json.loads(line)["seq"] for _, line in recorded]

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "last_seq": header["last_seq"]})

    async def counts(request: web.Request) -> web.Response:
        return web.json_response(header)

    async def stream(request: web.Request) -> web.StreamResponse:
        after = int(request.query.get("after", "0"))
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):  # the dashboard went away: its run is over
            await _paced(resp, [r for r, seq in zip(recorded, seqs, strict=True) if seq > after])
        return resp

    async def proxy(request: web.Request) -> web.Response:
        session = request.app[_SESSION]
        body = await request.read()
        async with session.request(request.method, api + request.path_qs, data=body) as up:
            return web.Response(
                body=await up.read(), status=up.status, content_type="application/json"
            )

    async def make() -> web.Application:
        app = web.Application()
        app[_SESSION] = aiohttp.ClientSession()
        app.router.add_get("/health", health)
        app.router.add_get("/tasks/counts", counts)
        app.router.add_get("/events/stream", stream)
        app.router.add_route("*", "/{tail:.*}", proxy)
        return app

    async def main() -> None:
        runner = web.AppRunner(await make(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


async def _paced(resp: web.StreamResponse, todo: list[tuple[float, bytes]]) -> None:
    """Write the recorded lines at the pace they were recorded, then keep-alives."""
    started = time.perf_counter()
    first = todo[0][0] if todo else 0.0
    i = 0
    while i < len(todo):
        due = time.perf_counter() - started + first
        j = i
        while j < len(todo) and todo[j][0] <= due:
            j += 1
        if j > i:
            await resp.write(b"\n".join(line for _, line in todo[i:j]) + b"\n")
            i = j
        await asyncio.sleep(0.005)
    while True:
        await asyncio.sleep(5)
        await resp.write(b"\n")


@contextlib.asynccontextmanager
async def _replay_server(path: Path, api: str) -> AsyncIterator[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-P", __file__, "serve",  # this file; -P: not its folder on the path
        "--recording", str(path), "--api", api,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        yield url
    finally:
        proc.kill()
        await proc.wait()


# --- 3. replay --------------------------------------------------------------------------------


async def _one_replay(url: str, services: dict[str, str], last_seq: int, press_s: float) -> Any:
    from dashboard import app as dashboard_app
    from dashboard.app import DashboardApp
    from dashboard.config import DashboardConfig
    from dashboard.frame_driver import FrameDriver, frame_driver

    if hasattr(dashboard_app, "calm_the_collector"):  # as run_dashboard does, in trees that do
        dashboard_app.calm_the_collector()
    app = DashboardApp(DashboardConfig(api_url=url, service_urls=services, label="replay"))
    app.driver_class = FrameDriver
    async with app.run_test(headless=False, size=SIZE, notifications=True):
        driver = frame_driver(app)
        while app.link.state != "live":  # noqa: ASYNC110 (the app's state, polled)
            await asyncio.sleep(0.01)
        cpu0 = _cpu_s()
        latencies: list[float] = []
        next_press = time.perf_counter()
        while app.last_seq < last_seq:
            if press_s and time.perf_counter() >= next_press:
                before, sent = app.state_filter, time.perf_counter()
                driver.press("s")
                shown = driver.next_frame(lambda b=before: app.state_filter != b)  # type: ignore[misc]
                latencies.append(await asyncio.wait_for(shown, 10) - sent)
                next_press = sent + press_s
            await asyncio.sleep(0.005)
        await asyncio.sleep(SETTLE_S)
        return _cpu_s() - cpu0, latencies


def _client(args: argparse.Namespace) -> None:
    """One replay in this process (a child of the benchmark): prints its CPU and keys."""
    services = json.loads(args.services)
    replay = _one_replay(args.url, services, args.last_seq, args.press_every_ms / 1000)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    cpu, latencies = asyncio.run(asyncio.wait_for(replay, REPLAY_TIMEOUT_S))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    os.write(1, (json.dumps({"cpu_s": cpu, "keys_s": latencies}) + "\n").encode())


async def _replay_in_child(
    tree: str | None,
    url: str,
    services: dict[str, str],
    last_seq: int,
    press_ms: int,
    profile: Path | None = None,
) -> tuple[float, list[float]]:
    """One replay in a fresh process, with ``tree`` (a checkout) first on its path; with
    ``profile``, its cProfile statistics are written there (the CPU it reports then includes
    the profiler's own)."""
    env = dict(os.environ)
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-P", __file__, "client", "--url", url, "--services", json.dumps(services),
        "--last-seq", str(last_seq), "--press-every-ms", str(press_ms),
        *(("--profile", str(profile)) if profile else ()),
        stdout=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), REPLAY_TIMEOUT_S)
    finally:
        if proc.returncode is None:  # timed out, or the benchmark itself was stopped
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"the replay of {tree or 'this tree'} failed ({proc.returncode})")
    said = json.loads(out.decode().strip().splitlines()[-1])
    return float(said["cpu_s"]), [float(k) for k in said["keys_s"]]


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000 if ordered else 0.0


async def _run(args: argparse.Namespace) -> None:
    async with temporary_sandbox("replay") as (supervisor, workdir):
        recording = workdir / "burst.ndjson"
        await _record(supervisor.api_url, args.registrations, recording)
        lines = recording.read_bytes().splitlines()
        last_seq = json.loads(lines[-1].split(b" ", 1)[1])["seq"]
        print(f"recorded {len(lines) - 1:,} events of {args.registrations:,} registrations")
        async with _replay_server(recording, supervisor.api_url) as url:
            trees: list[str | None] = list(args.tree) or [None]
            for press_ms in (0, args.press_every_ms):
                cpus: dict[str | None, list[float]] = {t: [] for t in trees}
                keys: dict[str | None, list[float]] = {t: [] for t in trees}
                for n in range(args.rounds):
                    for tree in trees if n % 2 == 0 else trees[::-1]:  # alternated
                        profile = None
                        if args.profile_dir:  # trees by number: two may share a name
                            tag = f"tree{trees.index(tree) + 1}"
                            profile = args.profile_dir / f"{tag}-{press_ms}ms-{n}.prof"
                        cpu, latencies = await _replay_in_child(
                            tree, url, supervisor.service_urls, last_seq, press_ms, profile
                        )
                        cpus[tree].append(cpu)
                        keys[tree] += latencies
                for tree in trees:
                    print(_line(tree, press_ms, cpus[tree], keys[tree]), flush=True)


def _line(tree: str | None, press_ms: int, cpus: list[float], keys: list[float]) -> str:
    what = "no keys" if not press_ms else f"`s` every {press_ms} ms"
    line = (
        f"{tree or 'this tree'}, {what}: dashboard CPU {statistics.median(cpus):.2f} s "
        f"(median of {', '.join(f'{c:.2f}' for c in cpus)})"
    )
    if keys:
        line += (
            f"; key p50 {_p(keys, 0.5):.0f} ms, p99 {_p(keys, 0.99):.0f} ms, "
            f"max {_p(keys, 1.0):.0f} ms over {len(keys)} presses"
        )
    return line


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m interlock.bench.dashboard_replay")
    parser.add_argument("mode", nargs="?", choices=("replay", "serve", "client"), default="replay")
    parser.add_argument("--registrations", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--press-every-ms", type=int, default=50)
    parser.add_argument("--recording", type=Path, help="serve: the recorded burst")
    parser.add_argument("--api", help="serve: the sandbox's API, for everything else")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        help="replay into the dashboard of this checkout (repeat to compare; default: this one)",
    )
    parser.add_argument("--url", help="client: the replay server")
    parser.add_argument("--services", default="{}", help="client: the services' URLs, as JSON")
    parser.add_argument("--last-seq", type=int, default=0, help="client: the last event's seq")
    parser.add_argument("--profile", type=Path, help="client: write cProfile statistics here")
    parser.add_argument(
        "--profile-dir",
        type=Path,
        help="write each replay's cProfile statistics here (treeN-PRESSms-ROUND.prof)",
    )
    args = parser.parse_args()
    if args.profile_dir:  # made before the burst: one that cannot be would lose the run's end
        try:
            args.profile_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            parser.error(f"--profile-dir {args.profile_dir}: {exc.strerror or exc}")
    if args.mode == "serve":
        _serve(args.recording, args.api)
        return
    if args.mode == "client":
        _client(args)
        return
    os.environ.setdefault("TZ", "UTC")
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
