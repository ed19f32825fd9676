"""``interlock`` with a stand-in dashboard that waits to be interrupted, for the signal tests.

Usage: python -m tests.interlock.cli.fake_dashboard MARKER INTERLOCK_ARGS...
Its ``run_dashboard`` writes MARKER (the sandbox is up by then) and sleeps; the test signals the
process and checks what is left. The real dashboard lands in ``dashboard/app.py`` separately.
"""

from __future__ import annotations

import signal
import sys
import time
import types
from pathlib import Path

from dashboard.config import DashboardConfig
from interlock.cli.main import main


def run_dashboard(config: DashboardConfig) -> None:
    Path(sys.argv[1]).write_text(config.api_url)
    time.sleep(60)


if __name__ == "__main__":
    # Ctrl-C raises KeyboardInterrupt, as in a terminal, even when the tests run as a background
    # job (which starts its children with SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    fake = types.ModuleType("dashboard.app")
    fake.run_dashboard = run_dashboard  # type: ignore[attr-defined]
    sys.modules["dashboard.app"] = fake
    raise SystemExit(main(sys.argv[2:]))
