"""The machine readings printed beside benchmark numbers."""

from __future__ import annotations

import subprocess
import sys
import time

from interlock.bench.machine import OtherCpu, process_cpu_s, read_machine

BURN = "import time\nend = time.process_time() + {s}\nwhile time.process_time() < end: pass"


def test_readings_are_plausible(tmp_path: object) -> None:
    reading = read_machine(str(tmp_path))
    assert reading.python_ms > 0 and reading.fdatasync_us > 0
    assert 0 < reading.parallel_efficiency_pct <= 100
    assert "reference workload" in reading.describe()


def test_cpu_of_other_processes_is_counted_and_our_children_are_not() -> None:
    # What the rest of the machine uses anyway (another test run, say) moves from one moment
    # to the next: compare with it just before, and give a busy machine three tries.
    readings = []
    for _ in range(3):
        with OtherCpu() as before:
            time.sleep(0.4)
        with OtherCpu() as ours:
            subprocess.run([sys.executable, "-c", BURN.format(s=0.4)], check=True)
        assert before.cores_used is not None and ours.cores_used is not None
        readings.append((before.cores_used, ours.cores_used))
        if ours.cores_used < before.cores_used + 0.3:
            break
    else:
        raise AssertionError(f"our own child was counted as another's: {readings}")

    # A process still running when the block ends is not (yet) ours: it shows as another's.
    stranger = subprocess.Popen([sys.executable, "-c", BURN.format(s=5)])
    try:
        time.sleep(0.3)  # let it start burning
        with OtherCpu() as others:
            time.sleep(0.5)
    finally:
        stranger.kill()
        stranger.wait()
    assert others.cores_used is not None and others.cores_used > 0.5
    assert "warning" in others.describe()


def test_process_cpu_reads_this_process_and_a_child() -> None:
    burn_then_wait = BURN.format(s=0.3) + "\ntime.sleep(5)"
    child = subprocess.Popen([sys.executable, "-c", burn_then_wait])
    try:
        time.sleep(1.0)
        used = process_cpu_s(child.pid)
        assert used is not None and 0.2 < used < 2
    finally:
        child.kill()
        child.wait()
    own = process_cpu_s()
    assert own is not None and own > 0
