"""Built-in workflows: the benchmark diamond and its no-op handler."""

from __future__ import annotations

from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.templates import WorkflowTemplate, parse_template

BENCH_DIAMOND = """
name: bench_diamond
namespace: bench
version: 1.0.0
description: The 5-step diamond a -> (b || c) -> d -> e with no-op handlers.
steps:
  - {name: a, handler: noop}
  - {name: b, handler: noop, depends_on: [a]}
  - {name: c, handler: noop, depends_on: [a]}
  - {name: d, handler: noop, depends_on: [b, c]}
  - {name: e, handler: noop, depends_on: [d]}
"""


async def noop(inp: StepInput) -> None:
    """A handler that does nothing: the benchmark measures the engine alone."""


def builtin_registry() -> HandlerRegistry:
    registry = HandlerRegistry()
    registry.register("noop", noop)
    return registry


def builtin_templates(registry: HandlerRegistry) -> list[WorkflowTemplate]:
    names = registry.names()
    return [
        parse_template(BENCH_DIAMOND, names, source="<builtin bench_diamond>"),
    ]
