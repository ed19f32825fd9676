"""JSON log lines: ``interlock up --log-format json`` from outside, and the formatter's rules
(a step's context on every line logged while it runs, a traceback kept on one line)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from interlock.logs import JsonLines
from orchestrator import log_context
from orchestrator.embedded import open_engine
from orchestrator.engine import EngineConfig
from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.log_context import StepLogContext
from orchestrator.models import TaskState
from orchestrator.templates import parse_template
from tests.interlock.cli.conftest import ROOT

PORTS = [f"--{s}-port=0" for s in ("api", "users", "billing", "preferences", "notifications")]


@pytest.mark.slow
def test_up_in_json_writes_only_json_lines_with_each_events_task(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "up", "--db", str(tmp_path / "j.db"),
         "--fake", "2", "--exit-when-done", "--log-format", "json", *PORTS],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # everything is a log record, on stderr
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert all({"at", "level", "logger", "message"} <= line.keys() for line in lines)
    completed = [line for line in lines if line.get("event") == "task.completed"]
    assert len(completed) == 2
    assert all(line["task_id"] and line["correlation_id"] for line in completed)
    assert lines[-1]["message"] == "2 tasks in the database: 2 complete"


def test_a_bad_log_format_is_one_line() -> None:
    env = {**os.environ, "INTERLOCK_LOG_FORMAT": "xml"}
    done = subprocess.run(
        [sys.executable, "-m", "interlock.cli", "up", "--exit-when-done"],
        cwd=ROOT, capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == "interlock: INTERLOCK_LOG_FORMAT must be text or json, got 'xml'"


async def test_a_line_logged_while_a_step_runs_names_the_step() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLines())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.propagate = False

    async def step() -> None:
        log_context.CURRENT.set(StepLogContext("corr-1", "task-1", "send_welcome_sequence", 2))
        logger.warning("notifications answered %d", 503)
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            logger.exception("it failed")

    try:
        await asyncio.create_task(step())  # its own context, as the engine runs each step
        logger.warning("outside any step")
    finally:
        logger.removeHandler(handler)
    first, failed, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "notifications answered 503"
    assert (first["task_id"], first["step"], first["attempt"]) == (
        "task-1",
        "send_welcome_sequence",
        2,
    )
    assert first["correlation_id"] == "corr-1"
    assert "ValueError: boom\nsecond line" in failed["exception"]  # one JSON line all the same
    assert "task_id" not in outside


async def test_the_engine_names_the_running_step_for_a_handler_that_logs(tmp_path: Path) -> None:
    seen: list[StepLogContext | None] = []

    async def handler(step: StepInput) -> dict[str, str]:
        seen.append(log_context.CURRENT.get())
        return {}

    registry = HandlerRegistry()
    registry.register("h", handler)
    yaml = "name: logs\nsteps:\n  - {name: one, handler: h}\n  - {name: two, handler: h}\n"
    template = parse_template(yaml, registry.names())
    async with open_engine(
        tmp_path / "logs.db", registry, [template], config=EngineConfig(worker_id="w"),
        durable=False,
    ) as engine:  # fmt: skip
        sub, state = await engine.run("logs", {}, timeout_s=10)
    assert state is TaskState.COMPLETE
    assert {(c.task_id, c.step, c.attempt) for c in seen if c} == {
        (sub.task_id, "one", 1),
        (sub.task_id, "two", 1),
    }
    assert log_context.CURRENT.get() is None  # the caller's context is untouched
