"""A worker process for the crash-recovery test: runs diamonds and logs every handler call.

Usage: python -m tests.orchestrator.crash_worker DB LOG N_TASKS SLOW_STEP
Submits N_TASKS (when the DB is new) and runs them; SLOW_STEP's handler sleeps long, so the
process is mid-run when the test kills it. Each handler appends "task step attempt" to LOG.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from orchestrator.embedded import open_engine
from orchestrator.engine import EngineConfig
from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.models import TaskState
from orchestrator.templates import parse_template
from tests.orchestrator.conftest import DIAMOND


async def main(db: str, log_path: str, n_tasks: int, slow_step: str) -> None:
    registry = HandlerRegistry()

    def make(name: str) -> Any:
        async def handler(inp: StepInput) -> dict[str, Any]:
            # Written synchronously on purpose: the line must be on disk before a SIGKILL.
            with open(log_path, "a", encoding="utf-8") as log:  # noqa: ASYNC230
                log.write(f"{inp.task_id} {name} {inp.attempt}\n")
            if name == slow_step:
                await asyncio.sleep(60)
            return {"step": name}

        return handler

    for name in "abcde":
        registry.register(name, make(name))
    template = parse_template(DIAMOND, registry.names())
    config = EngineConfig(worker_id="crash-worker", lease_s=30, poll_interval_s=0.05)
    async with open_engine(db, registry, [template], config=config) as engine:
        if not await engine.list_tasks():
            for i in range(n_tasks):
                await engine.submit("diamond", {"n": i})
        while True:
            tasks = await engine.list_tasks(limit=1000)
            if tasks and all(t.state is TaskState.COMPLETE for t in tasks):
                print("ALL COMPLETE", flush=True)
                return
            await asyncio.sleep(0.05)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
