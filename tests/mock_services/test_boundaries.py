"""The mock services stand alone: they import neither the orchestrator, the dashboard nor the
composition root (STYLE.md, "Dependencies point one way")."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ["orchestrator", "dashboard", "interlock"]


def test_mock_services_import_nothing_of_the_other_packages() -> None:
    code = (
        "import importlib, pkgutil, sys\n"
        "import mock_services\n"
        "for info in pkgutil.walk_packages(mock_services.__path__, 'mock_services.'):\n"
        "    if not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
        f"print(','.join(sorted(f for f in {FORBIDDEN!r} if f in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
