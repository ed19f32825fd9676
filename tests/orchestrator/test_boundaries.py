"""The engine core stays free of HTTP, SQLite drivers and Textual."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "orchestrator.engine",
    "orchestrator.dag",
    "orchestrator.retry",
    "orchestrator.models",
    "orchestrator.templates",
    "orchestrator.errors",
    "orchestrator.clock",
    "orchestrator.handlers",
    "orchestrator.events",
    "orchestrator.store.base",
]
FORBIDDEN = [
    "aiohttp",
    "httptools",
    "orchestrator.httpclient",
    "aiosqlite",
    "sqlite3",
    "textual",
    "mock_services",
    "dashboard",
]


def test_core_modules_import_no_io_frameworks() -> None:
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        f"print(','.join(sorted(f for f in {FORBIDDEN!r} if f in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
