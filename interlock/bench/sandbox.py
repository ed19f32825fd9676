"""A sandbox of its own for a benchmark: child processes on free ports, a temporary folder."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from interlock.supervisor import Supervisor, SupervisorConfig


@contextlib.asynccontextmanager
async def temporary_sandbox(name: str) -> AsyncIterator[tuple[Supervisor, Path]]:
    """The services and the orchestrator as ``interlock dashboard`` runs them, on a fresh
    ``<name>.db`` in a temporary folder (also the benchmark's workdir), stopped and removed
    at the end however the benchmark ends."""
    with tempfile.TemporaryDirectory(prefix=f"interlock-{name}-") as tmp:
        workdir = Path(tmp)
        config = SupervisorConfig.on_free_ports(workdir / f"{name}.db", workdir / "sandbox.log")
        supervisor = Supervisor(config)
        await asyncio.to_thread(supervisor.start)
        try:
            yield supervisor, workdir
        finally:
            await asyncio.to_thread(supervisor.stop)
