"""The engine core stays free of HTTP, SQLite drivers and Textual; HTTP libraries stay at the
edges (``orchestrator/http/`` and ``orchestrator/api/``)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import orchestrator

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
    "orchestrator.http",
    "orchestrator.api",
    "aiosqlite",
    "sqlite3",
    "textual",
    "mock_services",
    "dashboard",
]
HTTP_LIBRARIES = frozenset({"aiohttp", "httptools"})
HTTP_EDGES = ("http", "api")  #: the subpackages of orchestrator that may import them


def test_core_modules_import_no_io_frameworks() -> None:
    code = (
        "import sys\n"
        f"for m in {CORE!r}: __import__(m)\n"
        f"print(','.join(sorted(f for f in {FORBIDDEN!r} if f in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def _imported(path: Path) -> set[str]:
    """The top-level names of the packages a module imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_http_edges_import_http_libraries() -> None:
    root = Path(orchestrator.__file__).parent
    offenders = {
        str(path.relative_to(root)): sorted(_imported(path) & HTTP_LIBRARIES)
        for path in root.rglob("*.py")
        if path.relative_to(root).parts[0] not in HTTP_EDGES
    }
    assert {name: libs for name, libs in offenders.items() if libs} == {}
