"""A worker process for the multi-worker tests: runs diamonds on a shared database until killed.

Usage: python -m tests.orchestrator.pg_worker URL LOG WORKER_ID [SLOW_STEP]
Each handler call appends "worker task step attempt" to LOG (this worker's own file) before it
returns; SLOW_STEP's handler then sleeps for good, so the worker holds those steps when the test
kills it. Leases are short (1 s), so the other workers reclaim a killed one's steps quickly.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from orchestrator.embedded import open_engine
from orchestrator.engine import EngineConfig
from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.templates import parse_template
from tests.orchestrator.conftest import DIAMOND

#: Few slots, so that no one worker can take every task; short leases, reclaimed often.
CONFIG = {"max_concurrency": 8, "lease_s": 1.0, "poll_interval_s": 0.5, "reclaim_interval_s": 0.2}


async def main(url: str, log_path: str, worker_id: str, slow_step: str | None) -> None:
    registry = HandlerRegistry()

    def make(name: str) -> Any:
        async def handler(inp: StepInput) -> dict[str, Any]:
            # Written synchronously on purpose: the line must be on disk before a SIGKILL.
            with open(log_path, "a", encoding="utf-8") as log:  # noqa: ASYNC230
                log.write(f"{worker_id} {inp.task_id} {name} {inp.attempt}\n")
            if name == slow_step:
                await asyncio.Event().wait()
            return {"step": name, "by": worker_id}

        return handler

    for name in "abcde":
        registry.register(name, make(name))
    template = parse_template(DIAMOND, registry.names())
    config = EngineConfig(worker_id=worker_id, **CONFIG)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with open_engine(url, registry, [template], config=config):
        print("READY", flush=True)
        await stop.wait()


if __name__ == "__main__":
    slow = sys.argv[4] if len(sys.argv) > 4 else None
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], slow))
