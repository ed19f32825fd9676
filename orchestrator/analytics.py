"""Read-side rules: why a step is (not) ready, and which steps are the bottlenecks.

Pure functions on the domain types, so every store serves the same answers and the rules are
tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.models import (
    ACTIVE_TASK_STATES,
    DONE_STEP_STATES,
    AttemptOutcome,
    AttemptStat,
    ErrorKind,
    StepBottleneck,
    StepReadiness,
    StepState,
    StepView,
    TaskView,
)


def step_readiness(task: TaskView, now: float) -> list[StepReadiness]:
    """For each step of ``task``, whether it could be claimed at ``now`` and, if not, why."""
    done = {s.name for s in task.steps if s.state in DONE_STEP_STATES}
    return [_readiness(step, done, task, now) for step in task.steps]


def _readiness(step: StepView, done: set[str], task: TaskView, now: float) -> StepReadiness:
    parents_done = sum(1 for d in step.depends_on if d in done)
    total = len(step.depends_on)
    reason = _not_ready_reason(step, done, task, now, parents_done)
    return StepReadiness(
        step.name,
        step.state,
        parents_done,
        total,
        step.attempts,
        step.max_attempts,
        step.next_attempt_at,
        reason is None,
        reason or "ready",
    )


def _not_ready_reason(
    step: StepView, done: set[str], task: TaskView, now: float, parents_done: int
) -> str | None:
    total = len(step.depends_on)
    if task.state not in ACTIVE_TASK_STATES:
        return f"task is {task.state}"
    if step.state in DONE_STEP_STATES:
        return "done"
    if step.state is StepState.IN_PROGRESS:
        return f"running attempt {step.attempts} of {step.max_attempts}"
    if step.state is StepState.ERROR:
        return "failed; needs an operator (retry or resolve)"
    if step.state is StepState.CANCELLED:
        return "cancelled"
    if parents_done < total:
        waiting = ", ".join(d for d in step.depends_on if d not in done)
        return f"waiting for {total - parents_done} of {total} dependencies: {waiting}"
    if step.next_attempt_at is not None and step.next_attempt_at > now:
        return f"retry due in {step.next_attempt_at - now:.1f} s"
    return None


def bottlenecks(stats: Iterable[AttemptStat]) -> list[StepBottleneck]:
    """Execution statistics per (workflow, step), slowest p95 first."""
    grouped: dict[tuple[str, str], list[AttemptStat]] = {}
    for stat in stats:
        grouped.setdefault((stat.workflow, stat.step_name), []).append(stat)
    found = [_bottleneck(key, items) for key, items in grouped.items()]
    return sorted(found, key=lambda s: s.p95_duration_s, reverse=True)


def _bottleneck(key: tuple[str, str], items: list[AttemptStat]) -> StepBottleneck:
    durations = sorted(s.duration_s for s in items)
    n = len(items)
    failed = [s for s in items if s.outcome is not AttemptOutcome.COMPLETED]
    retried = sum(1 for s in failed if s.error_kind is ErrorKind.RETRYABLE)
    return StepBottleneck(
        workflow=key[0],
        step_name=key[1],
        executions=n,
        mean_duration_s=sum(durations) / n,
        p95_duration_s=durations[p95_index(n)],
        retry_rate=retried / n,
        error_rate=len(failed) / n,
    )


def p95_index(n: int) -> int:
    """The index of the 95th percentile in ``n`` sorted values: nearest rank, ceil(0.95 n).

    Integer arithmetic: ``0.95 * 20`` is not exactly 19 in floating point.
    """
    return max(0, (95 * n + 99) // 100 - 1)
