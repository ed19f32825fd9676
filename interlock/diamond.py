"""The bench diamond ``a → (b ∥ c) → d → e``: five no-op steps, so a run measures the engine alone.

The engine benchmark runs it; the sandbox serves it beside the registration workflow.
"""

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


def register_noop(registry: HandlerRegistry) -> None:
    registry.register("noop", noop)


def diamond_template(registry: HandlerRegistry) -> WorkflowTemplate:
    """The diamond, checked against ``registry`` (which needs :func:`noop`)."""
    return parse_template(BENCH_DIAMOND, registry.names(), source="<builtin bench_diamond>")
