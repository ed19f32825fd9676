"""The soak's verdict: pure rules over what the API and the services' records say at the end.

What must hold, whatever the faults and the kills did:

- **every task terminal**: none left ``pending`` or ``in_progress``;
- **no task lost**: every idempotency key was acknowledged with a task id, the API lists exactly
  those tasks, and the key submitted once more names the same task (no second one made);
- **no duplicate**: no second user, no message of one (channel, kind) sent twice to a person
  (:attr:`interlock.audit.Audit.duplicates`), no step with two completed attempts;
- **no registration failed by a kill**: no step ended ``WORKER_LOST*``;
- **every failure explained by its faults alone**: a step that ended ``error`` (or ``degraded``)
  ran out of its attempts, each spoiled by an injected fault (:data:`FAULT_ERROR_CODES`);
- **the records agree**: a complete task's person is active, with a profile, a welcome and
  preferences (unless that step degraded).

:func:`judge` turns the collected facts into a :class:`SoakReport`: the figures, and one line
per broken rule in :attr:`SoakReport.problems` (empty when the soak passed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from interlock.audit import ACTIVE, Audit, PersonAudit
from interlock.soak.faults import FAULT_ERROR_CODES
from orchestrator.lifecycle import WORKER_LOST
from orchestrator.models import TERMINAL_TASK_STATES, StepState, TaskState

#: How many examples a problem line names at most.
EXAMPLES: Final = 5
#: The step whose failure leaves a complete registration without preferences.
PREFERENCES_STEP: Final = "initialize_preferences"


@dataclass(frozen=True, slots=True)
class Submission:
    """One registration as the soak submitted it."""

    #: The idempotency key it was submitted (and resubmitted) with.
    key: str
    #: The person's e-mail.
    email: str
    #: The task id the API answered with; None if no submission was ever acknowledged.
    task_id: str | None
    #: How many ``POST /tasks`` it took (more than one: the orchestrator was down).
    tries: int
    #: Whether the acknowledging answer said the key already named a task (a retry whose
    #: first try had reached the orchestrator before it died).
    found_existing: bool = False


@dataclass(frozen=True, slots=True)
class StepEnd:
    """One step of a task at the end, with its attempts."""

    name: str
    state: str
    #: Attempts counted against ``max_attempts`` (a lost one is given back).
    attempts: int
    max_attempts: int
    #: ``last_error``'s code and kind, when it has one.
    error_code: str | None = None
    error_kind: str | None = None
    #: The error codes of its finished, failed attempts (lost ones not included).
    attempt_codes: tuple[str, ...] = ()
    #: How many of its attempts were lost to a killed orchestrator.
    lost_attempts: int = 0
    #: How many of its attempts completed: at most one, or two workers both ran it.
    completions: int = 0


@dataclass(frozen=True, slots=True)
class TaskEnd:
    """One task as the API shows it at the end."""

    task_id: str
    state: str
    steps: tuple[StepEnd, ...]

    @property
    def lost_attempts(self) -> int:
        return sum(s.lost_attempts for s in self.steps)

    @property
    def ended_steps(self) -> tuple[StepEnd, ...]:
        """The steps that failed for good (``error``) or were given up on (``degraded``)."""
        return tuple(s for s in self.steps if s.state in (StepState.ERROR, StepState.DEGRADED))


@dataclass(frozen=True, slots=True)
class Resubmission:
    """What ``POST /tasks`` answered when a key was submitted once more at the end."""

    task_id: str
    created: bool


@dataclass(frozen=True, slots=True)
class Kill:
    """One SIGKILL of the orchestrator (of one of its workers)."""

    #: Seconds since the soak began submitting.
    at_s: float
    #: Seconds from the kill until the restarted orchestrator answered.
    down_s: float
    #: The worker it hit (:attr:`interlock.supervisor.Supervisor.worker_names`).
    worker: str = "orchestrator"


@dataclass(frozen=True, slots=True)
class SoakReport:
    """The soak's figures and verdict."""

    registrations: int
    kills: int
    #: When each kill came, in seconds since the first submission.
    kill_at_s: tuple[float, ...]
    #: The worker each kill hit, in the order of :attr:`kill_at_s`.
    kill_workers: tuple[str, ...]
    #: The orchestrator workers that shared the work (one on SQLite).
    workers: tuple[str, ...]
    #: Seconds the orchestrator was down, over all kills.
    down_s: float
    #: Registrations whose submission needed more than one try; of them, those whose first
    #: try had made the task before the orchestrator died.
    submissions_retried: int
    submissions_found_existing: int
    tasks: int
    complete: int
    #: Complete tasks with a degraded step (preferences given up on: defaults used).
    degraded: int
    failed: int
    cancelled: int
    unfinished: int
    #: Failed tasks and degraded steps by ``step: ERROR_CODE``.
    failed_why: dict[str, int]
    #: Attempts lost to the kills (recorded, not counted against the steps' attempts).
    lost_attempts: int
    #: How often each service's circuit breaker opened (its steps waited, spending nothing).
    breaker_openings: dict[str, int]
    faults_fired: dict[str, int]
    faults_fired_by_service: dict[str, dict[str, int]]
    idempotent_replays: int
    #: Records held twice (users, messages), tasks beyond one per key, steps completed twice.
    duplicated: int
    #: Keys without exactly their one task.
    lost: int
    #: Failed tasks or degraded steps that a kill explains (``WORKER_LOST*``).
    failed_by_kill: int
    #: Failed tasks or degraded steps the injected faults do not explain.
    unexplained: int
    #: Tasks whose outcome the services' records contradict.
    mismatched: int
    #: Seconds from the first submission until every task was terminal (or the wait gave up).
    elapsed_s: float
    #: One line per broken rule; empty when the soak passed.
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class _Tally:
    failed_why: Counter[str] = field(default_factory=Counter)
    by_kill: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


def judge(
    submissions: Sequence[Submission],
    tasks: Sequence[TaskEnd],
    resubmissions: Mapping[str, Resubmission],
    audit: Audit,
    kills: Sequence[Kill],
    *,
    elapsed_s: float,
    breaker_openings: Mapping[str, int] | None = None,
    workers: Sequence[str] = ("orchestrator",),
) -> SoakReport:
    """The verdict on one soak; ``audit.people`` is in the order of ``submissions``."""
    by_id = {t.task_id: t for t in tasks}
    lost_keys, extra_tasks = _lost_and_extra(submissions, by_id, resubmissions)
    tally = _Tally()
    for submission, person in zip(submissions, audit.people, strict=True):
        task = by_id.get(submission.task_id or "")
        if task is not None:
            _judge_task(task, person, tally)
    states = Counter(t.state for t in tasks)
    unfinished = [t.task_id for t in tasks if t.state not in TERMINAL_TASK_STATES]
    twice = [f"{t.task_id} {s.name}" for t in tasks for s in t.steps if s.completions > 1]
    duplicated = audit.duplicates + len(extra_tasks) + len(twice)
    problems = [
        _problem("tasks not terminal", unfinished),
        _problem("keys without exactly one task", lost_keys),
        _problem("tasks no key was acknowledged with", extra_tasks),
        _problem("people with duplicate records", [p.email for p in audit.duplicated_people]),
        _problem("steps completed more than once", twice),
        _problem("failed by a kill", tally.by_kill),
        _problem("failures the faults do not explain", tally.unexplained),
        _problem("outcomes the services' records contradict", tally.mismatched),
    ]
    return SoakReport(
        registrations=len(submissions),
        kills=len(kills),
        kill_at_s=tuple(k.at_s for k in kills),
        kill_workers=tuple(k.worker for k in kills),
        workers=tuple(workers),
        down_s=round(sum(k.down_s for k in kills), 2),
        submissions_retried=sum(s.tries > 1 for s in submissions),
        submissions_found_existing=sum(s.found_existing for s in submissions),
        tasks=len(tasks),
        complete=states[TaskState.COMPLETE],
        degraded=sum(
            t.state == TaskState.COMPLETE and any(s.state == StepState.DEGRADED for s in t.steps)
            for t in tasks
        ),
        failed=states[TaskState.ERROR],
        cancelled=states[TaskState.CANCELLED],
        unfinished=len(unfinished),
        failed_why=dict(tally.failed_why.most_common()),
        lost_attempts=sum(t.lost_attempts for t in tasks),
        breaker_openings={s: n for s, n in sorted((breaker_openings or {}).items()) if n},
        faults_fired=audit.faults_fired,
        faults_fired_by_service={
            name: dict(sorted(stats.faults_fired.items())) for name, stats in audit.services.items()
        },
        idempotent_replays=audit.idempotent_replays,
        duplicated=duplicated,
        lost=len(lost_keys),
        failed_by_kill=len(tally.by_kill),
        unexplained=len(tally.unexplained),
        mismatched=len(tally.mismatched),
        elapsed_s=round(elapsed_s, 2),
        problems=tuple(p for p in problems if p),
    )


def explain(step: StepEnd) -> str | None:
    """Why ``step`` (failed or degraded) cannot be put down to the injected faults; None
    when it can: it used up its attempts, each spoiled by one of them."""
    code = step.error_code or "no error recorded"
    if code.startswith(WORKER_LOST):
        return f"{step.name}: {code}"
    if code not in FAULT_ERROR_CODES:
        return f"{step.name}: {code}, not an injected fault"
    if step.attempts < step.max_attempts:
        return f"{step.name}: {code} after {step.attempts} of {step.max_attempts} attempts"
    others = sorted(set(step.attempt_codes) - FAULT_ERROR_CODES)
    if others:
        return f"{step.name}: attempts failed with {', '.join(others)}"
    return None


def _judge_task(task: TaskEnd, person: PersonAudit, tally: _Tally) -> None:
    ended = task.ended_steps
    for step in ended:
        tally.failed_why[f"{step.name}: {step.error_code}"] += 1
        reason = explain(step)
        if reason is None:
            continue
        if (step.error_code or "").startswith(WORKER_LOST):
            tally.by_kill.append(f"{person.email} ({reason})")
        else:
            tally.unexplained.append(f"{person.email} ({reason})")
    if task.state == TaskState.ERROR and not any(s.state == StepState.ERROR for s in ended):
        tally.unexplained.append(f"{person.email} (error, with no step in error)")
    if task.state == TaskState.CANCELLED:
        tally.unexplained.append(f"{person.email} (cancelled)")
    if task.state == TaskState.COMPLETE:
        degraded = {s.name for s in ended}
        missing = _missing_records(person, preferences_degraded=PREFERENCES_STEP in degraded)
        if missing:
            tally.mismatched.append(f"{person.email} (complete, but {missing})")


def _missing_records(person: PersonAudit, *, preferences_degraded: bool) -> str:
    missing = []
    if person.user_status != ACTIVE:
        missing.append(f"user {person.user_status or 'missing'}")
    if not person.profile:
        missing.append("no profile")
    if not person.preferences and not preferences_degraded:
        missing.append("no preferences")
    if not person.welcome_messages:
        missing.append("no welcome")
    return ", ".join(missing)


def _lost_and_extra(
    submissions: Sequence[Submission],
    by_id: Mapping[str, TaskEnd],
    resubmissions: Mapping[str, Resubmission],
) -> tuple[list[str], list[str]]:
    lost = []
    for s in submissions:
        again = resubmissions.get(s.key)
        if (
            s.task_id is None
            or s.task_id not in by_id
            or again is None
            or again.created
            or again.task_id != s.task_id
        ):
            lost.append(s.key)
    acknowledged = {s.task_id for s in submissions}
    extra = [task_id for task_id in by_id if task_id not in acknowledged]
    return lost, extra


def _problem(what: str, examples: Sequence[str]) -> str:
    if not examples:
        return ""
    shown = "; ".join(examples[:EXAMPLES])
    more = f"; and {len(examples) - EXAMPLES} more" if len(examples) > EXAMPLES else ""
    return f"{len(examples)} {what}: {shown}{more}"
