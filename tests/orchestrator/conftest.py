"""Engines on real SQLite files under tmp_path and on PostgreSQL schemas, with a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator.clock import FakeClock
from orchestrator.embedded import open_engine
from orchestrator.engine import Engine, EngineConfig
from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.templates import WorkflowTemplate, parse_template

DIAMOND = """
name: diamond
namespace: test
version: 1.0.0
input_schema:
  type: object
  properties:
    n: {type: integer, default: 1}
steps:
  - {name: a, handler: a, retry: {max_attempts: 3, initial_delay_s: 1, max_delay_s: 60}}
  - {name: b, handler: b, depends_on: [a], retry: {max_attempts: 3, initial_delay_s: 2,
     max_delay_s: 30, jitter: none}}
  - {name: c, handler: c, depends_on: [a], retry: {max_attempts: 3}}
  - {name: d, handler: d, depends_on: [b, c]}
  - {name: e, handler: e, depends_on: [d]}
"""

Handler = Callable[[StepInput], Awaitable[dict[str, Any] | None]]


class Recorder:
    """Handlers for the diamond that record calls; any step's behaviour can be replaced."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []  # (task_id, step, attempt)
        self.behaviour: dict[str, Handler] = {}
        self.registry = HandlerRegistry()
        for name in "abcde":
            self.registry.register(name, self._make(name))

    def _make(self, name: str) -> Handler:
        async def handler(inp: StepInput) -> dict[str, Any] | None:
            self.calls.append((inp.task_id, name, inp.attempt))
            custom = self.behaviour.get(name)
            if custom is not None:
                return await custom(inp)
            return {"step": name, "saw": sorted(inp.dependency_results)}

        return handler

    def count(self, step: str) -> int:
        return sum(1 for _, s, _ in self.calls if s == step)


def diamond(recorder: Recorder) -> WorkflowTemplate:
    return parse_template(DIAMOND, recorder.registry.names(), source="diamond.yaml")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "interlock.db"


EngineFactory = Callable[..., Any]


@pytest.fixture
async def engine(recorder: Recorder, clock: FakeClock, database: str) -> AsyncIterator[Engine]:
    """An engine on the diamond, on each store in turn (``database``)."""
    config = EngineConfig(seed=7, worker_id="w-test", lease_s=30, poll_interval_s=1)
    async with open_engine(
        database, recorder.registry, [diamond(recorder)], config=config, clock=clock, durable=False
    ) as eng:
        yield eng
