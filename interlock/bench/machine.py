"""How fast the machine is right now, so benchmark numbers taken at different times compare.

The shared VM this project is measured on changes speed within minutes, with nothing visible
inside it (by how much: docs/benchmarks.md, "Reading the numbers"). A benchmark figure means
little without the machine's state beside it, so
``interlock bench`` prints three readings before it starts and one after each benchmark:

- a fixed pure-Python workload on one core (ms; lower is faster),
- the same workload in two processes at once: the second core's real contribution (100 % means
  two full cores; a host that shares them shows less),
- the disk's durable-write latency (an overwrite + ``fdatasync``, the cost under every commit),
- the CPU that *other* processes used while a benchmark ran (another job skews the numbers).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LOOP = 2_000_000


def _reference_workload(_: object = None) -> float:
    """Seconds for a fixed amount of interpreter work (integer arithmetic in a loop)."""
    started = time.perf_counter()
    total = 0
    for i in range(_LOOP):
        total += i * i % 7
    return time.perf_counter() - started


@dataclass(frozen=True, slots=True)
class MachineReading:
    python_ms: float  #: the reference workload on one core
    parallel_efficiency_pct: float  #: two processes at once vs one: 100 = two full cores
    fdatasync_us: float  #: median overwrite + fdatasync of 4 KiB in the benchmark's temp dir

    def describe(self) -> str:
        return (
            f"machine now: reference workload {self.python_ms:.0f} ms on one core "
            f"(lower is faster), two cores {self.parallel_efficiency_pct:.0f} % parallel, "
            f"fdatasync p50 {self.fdatasync_us:.0f} us"
        )


def read_machine(directory: str | None = None) -> MachineReading:
    """Take the three readings (one to two seconds)."""
    one = min(_reference_workload() for _ in range(3))
    two = min(_two_at_once() for _ in range(2))
    return MachineReading(
        python_ms=round(one * 1000, 1),
        parallel_efficiency_pct=round(min(one / two, 1.0) * 100, 0),
        fdatasync_us=round(_fdatasync_s(directory) * 1e6, 0),
    )


def _two_at_once() -> float:
    """The slower of two reference workloads started together in two processes."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    results: multiprocessing.queues.Queue[float] = ctx.Queue()
    workers = [ctx.Process(target=_timed_after, args=(barrier, results)) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        barrier.wait(timeout=30)
        return max(results.get(timeout=30) for _ in workers)
    finally:
        for w in workers:
            w.join(timeout=30)


def _timed_after(barrier: Any, results: Any) -> None:
    barrier.wait()
    results.put(_reference_workload())


def _fdatasync_s(directory: str | None, samples: int = 200) -> float:
    fd, name = tempfile.mkstemp(prefix="interlock-sync-", dir=directory)
    try:
        times = []
        block = b"\0" * 4096
        for _ in range(samples):
            os.pwrite(fd, block, 0)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
        return statistics.median(times)
    finally:
        os.close(fd)
        os.unlink(name)


class OtherCpu:
    """CPU used by processes other than this one and its children while a block runs.

    Reads the machine's busy time from ``/proc/stat`` and subtracts this process's own and its
    reaped children's (``os.times``). Children must have exited by the end of the block to be
    counted as ours, which the benchmarks' service processes have. ``None`` off Linux.
    """

    def __init__(self, also_ours: Callable[[], float] | None = None) -> None:
        #: CPU seconds of processes that are part of the benchmark without being its children
        #: (the PostgreSQL server of the scaling benchmark), so they are not counted as others
        self._also_ours = also_ours or (lambda: 0.0)
        self.cores_used: float | None = None

    def __enter__(self) -> OtherCpu:
        own = _own_cpu_s() + self._also_ours()
        self._start = (_machine_busy_s(), own, time.perf_counter())
        return self

    def __exit__(self, *exc: object) -> None:
        busy0, own0, t0 = self._start
        busy1 = _machine_busy_s()
        if busy0 is None or busy1 is None:
            return
        elapsed = time.perf_counter() - t0
        others = (busy1 - busy0) - (_own_cpu_s() + self._also_ours() - own0)
        self.cores_used = max(0.0, others / elapsed) if elapsed > 0 else 0.0

    def describe(self) -> str:
        if self.cores_used is None:
            return ""
        line = f"other processes used {self.cores_used * 100:.0f} % of a core meanwhile"
        if self.cores_used > 0.2:
            line += " (warning: they competed with the benchmark, so its numbers are low)"
        return line


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _machine_busy_s() -> float | None:
    stat = Path("/proc/stat")
    try:
        fields = stat.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    # user nice system idle iowait irq softirq steal guest...: guest time is already inside
    # user, and idle, iowait and steal are no process's work.
    values = [int(v) for v in fields[1:8]]
    busy = values[0] + values[1] + values[2] + sum(values[5:7])
    return busy / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int | None = None) -> float | None:
    """CPU seconds (user + system, all threads) a process has used: this one if ``pid`` is None,
    else a child or other process read from ``/proc`` (None where that is unavailable)."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start at its closing parenthesis.
    fields = text.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
