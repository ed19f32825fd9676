"""The summary a task gets when it ends: durations, attempts, service time, the critical path.

A pure function of the task's step timings and its ``service_call.*`` events; the store gathers
those inside the transaction that ends the task and writes the summary in the same commit, so a
finished task never lacks its summary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.models import JSON


@dataclass(frozen=True, slots=True)
class StepTiming:
    """When one step of a task ran, as the summary needs it."""

    name: str
    depends_on: tuple[str, ...]
    first_started_at: float | None  #: the start of its first attempt
    completed_at: float | None  #: when it reached complete / resolved / error / degraded
    attempts: int


def task_summary(
    steps: Sequence[StepTiming],
    service_calls: Iterable[Mapping[str, Any]],
    created_at: float,
    now: float,
    degraded_steps: Sequence[str] = (),
) -> JSON:
    """Timings of a task that ends at ``now``; ``steps`` in template (topological) order.

    A step's span runs from the start of its first attempt to its completion (retries and
    backoff included). The critical path is the longest chain of spans through the DAG;
    ``parallel_saved_ms`` is what running independent steps one after another would have
    added (the sum of all spans minus the critical path). Service time sums the
    ``duration_ms`` of the ``service_call.completed`` / ``.failed`` events' data, per service.
    ``degraded_steps`` names the non-critical steps that failed for good and gave their fallback.
    """
    spans = {
        s.name: max(0.0, s.completed_at - s.first_started_at)
        for s in steps
        if s.first_started_at is not None and s.completed_at is not None
    }
    critical = critical_path_s(steps, spans)
    return {
        "total_duration_ms": _ms(now - created_at),
        "step_duration_ms": {name: _ms(span) for name, span in spans.items()},
        "attempts": {s.name: s.attempts for s in steps},
        "service_time_ms": service_time_ms(service_calls),
        "critical_path_ms": _ms(critical),
        "parallel_saved_ms": _ms(sum(spans.values()) - critical),
        "degraded_steps": list(degraded_steps),
    }


def critical_path_s(steps: Sequence[StepTiming], spans: Mapping[str, float]) -> float:
    """The longest chain of step spans through the DAG (steps without a span add nothing)."""
    finish: dict[str, float] = {}
    for step in steps:
        if step.name in spans:
            earliest = max((finish.get(d, 0.0) for d in step.depends_on), default=0.0)
            finish[step.name] = spans[step.name] + earliest
    return max(finish.values(), default=0.0)


def service_time_ms(calls: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Milliseconds spent in calls per service, from service-call end events' data."""
    total: dict[str, float] = {}
    for call in calls:
        service = str(call.get("service"))
        total[service] = total.get(service, 0.0) + float(call.get("duration_ms") or 0.0)
    return {k: round(v, 1) for k, v in sorted(total.items())}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
