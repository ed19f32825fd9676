"""Every task the dashboard lists, kept up to date from the event stream, and the counts by state.

The task list shows the newest tasks first, with a mark for what each is doing (running, waiting
for a retry, held back by a breaker). All of it follows from events: ``task.created`` adds a row
(its ``context`` names the person), the other ``task.*`` events move it between states, and the
``step.*`` events say whether one of its steps is waiting. Counts start from ``GET /tasks/counts``
and move with the events; when an event concerns a task the dashboard never loaded (older than
what it fetched) the counts are marked stale and the app re-reads them.

Only the newest :data:`MAX_ROWS` rows stay in memory (a burst of 10,000 registrations must not
grow the dashboard without bound); older ones are paged in from ``GET /tasks?offset=``.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from dashboard.model import DashEvent, parse_time
from orchestrator.event_types import EventType
from orchestrator.models import TaskState

#: The activities a task is counted under besides its state (waiting on one of its steps).
_WAITING_ACTIVITIES: Final = frozenset({"retrying", "deferred"})
#: Rows kept in memory; the oldest finished ones go first past it.
MAX_ROWS: Final = 5_000

_ENDS: Final[Mapping[str, TaskState]] = {
    EventType.TASK_COMPLETED: TaskState.COMPLETE,
    EventType.TASK_FAILED: TaskState.ERROR,
    EventType.TASK_CANCELLED: TaskState.CANCELLED,
}
_WAITING: Final = frozenset({EventType.STEP_RETRY_SCHEDULED, EventType.STEP_DEFERRED})
_RUNNING_AGAIN: Final = frozenset(
    {
        EventType.STEP_STARTED,
        EventType.STEP_COMPLETED,
        EventType.STEP_FAILED,
        EventType.STEP_RESOLVED,
        EventType.STEP_CANCELLED,
    }
)
_STEP_TYPES: Final = _WAITING | _RUNNING_AGAIN
_TASK_TYPES: Final = frozenset(
    {EventType.TASK_CREATED, EventType.TASK_STARTED, EventType.TASK_RESUMED, *_ENDS}
)


def label_of(context: object) -> str:
    """Who or what a task is about, from its context: an email, a name, or the first value."""
    if not isinstance(context, dict):
        return ""
    for key in ("email", "name", "id"):
        if isinstance(context.get(key), str):
            return str(context[key])
    user = context.get("user_info")
    if isinstance(user, dict):
        return label_of(user)
    for value in context.values():
        if isinstance(value, str):
            return value
    return ""


@dataclass(slots=True)
class TaskRow:
    task_id: str
    state: str
    created_at: float
    completed_at: float | None = None
    label: str = ""
    name: str = ""
    correlation_id: str | None = None
    #: step name -> ``backoff`` or ``deferred``, for the steps waiting right now
    waiting: dict[str, str] = field(default_factory=dict)
    failed_steps: tuple[str, ...] = ()

    @property
    def activity(self) -> str:
        """The task's state, refined by what its steps wait for (``retrying``, ``deferred``)."""
        if self.state in (TaskState.PENDING, TaskState.IN_PROGRESS) and self.waiting:
            return "deferred" if "deferred" in self.waiting.values() else "retrying"
        return self.state

    def age_s(self, now: float) -> float:
        return max(0.0, (self.completed_at or now) - self.created_at)


class Fleet:
    """The listed tasks by id, newest first on demand, and the counts by state."""

    def __init__(self) -> None:
        self.rows: dict[str, TaskRow] = {}
        self.counts: dict[str, int] = {s.value: 0 for s in TaskState}
        self.counts_stale = False  #: an event moved a task this fleet does not hold
        #: the last seq the loaded counts include: older events must not count twice
        self.counts_seq = 0
        self.version = 0  #: bumped on every change, so a view redraws only when needed
        self._counting = True
        self._seq = 0  #: the seq of the event being applied
        #: (seq, old state, new state) of the recent count changes, so a counts snapshot older
        #: than the events already applied gets them again instead of losing them
        self._deltas: deque[tuple[int, str | None, str]] = deque(maxlen=100_000)
        #: (created_at, task_id) of every row, oldest first: the list reads it backwards, so a
        #: key that shows the newest 100 visits 100 rows instead of sorting thousands
        self._order: list[tuple[float, str]] = []
        #: how many rows are ``retrying`` and ``deferred`` (:attr:`TaskRow.activity`), kept as
        #: rows change: the counts line needs them at every key and redraw
        self.waiting_counts: Counter[str] = Counter()
        #: how many rows are in each state, kept as rows change: a filter that lists none of the
        #: rows held (most of them, in a burst) answers at once instead of visiting every row
        self._held: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def load_counts(self, counts: Mapping[str, Any], as_of_seq: int = 0) -> None:
        """Counts from ``GET /tasks/counts``, which include every event up to ``as_of_seq``."""
        self.counts = {s.value: int(counts.get(s.value, 0)) for s in TaskState}
        self.counts_seq = as_of_seq
        for seq, old, new in self._deltas:  # applied here already, not yet in the snapshot
            if seq > as_of_seq:
                self._shift(old, new)
        self.counts_stale = False
        self.version += 1

    def load_summaries(self, summaries: Iterable[Mapping[str, Any]]) -> None:
        """Rows from ``GET /tasks`` (they replace what was known of those tasks)."""
        for raw in summaries:
            task_id = str(raw["task_id"])
            old = self.rows.get(task_id)
            if old is not None:
                self._forget(old)
            row = self.rows[task_id] = TaskRow(
                task_id=task_id,
                state=str(raw.get("state")),
                created_at=parse_time(raw.get("created_at")) or 0.0,
                completed_at=parse_time(raw.get("completed_at")),
                label=label_of(raw.get("context")),
                name=str(raw.get("name") or ""),
                correlation_id=raw.get("correlation_id"),
                waiting=old.waiting if old else {},
            )
            self._remember(row)
        self._trim()
        self.version += 1

    def apply(self, event: DashEvent) -> None:
        task_id = event.task_id
        if task_id is None:
            return
        kind = event.type
        if kind in _STEP_TYPES:
            self._apply_step(self.rows.get(task_id), kind, event.step_name)
            return
        if kind not in _TASK_TYPES:
            return  # service calls, breakers: nothing the list shows
        self._counting = event.seq > self.counts_seq
        self._seq = event.seq
        row = self.rows.get(task_id)
        was = row.activity if row is not None else None
        if kind == EventType.TASK_CREATED:
            if row is None:
                row = self.rows[task_id] = TaskRow(
                    task_id=task_id,
                    state=TaskState.PENDING.value,
                    created_at=event.at,
                    label=label_of(event.data.get("context")),
                    name=str(event.data.get("name") or ""),
                    correlation_id=event.correlation_id,
                )
                self._remember(row)
                was = row.activity
                self._count(None, TaskState.PENDING)
                self._trim()
        elif kind in _ENDS:
            self._move(row, _ENDS[kind], completed_at=event.at)
            if row is not None:
                row.waiting.clear()
                failed = event.data.get("failed_steps")
                row.failed_steps = tuple(failed) if isinstance(failed, list) else ()
        else:  # started or resumed
            self._move(row, TaskState.IN_PROGRESS, completed_at=None)
        if row is not None and task_id in self.rows:
            self._waiting_moved(was, row.activity)
        self.version += 1

    def _apply_step(self, row: TaskRow | None, kind: str, step: str | None) -> None:
        """A step began or stopped waiting; a step event that changes no wait changes nothing
        the list shows (most of a burst's: ``version`` stays, so nothing is redrawn for it)."""
        if row is None or step is None:
            return
        was = row.activity
        if kind in _WAITING:
            wait = "deferred" if kind == EventType.STEP_DEFERRED else "backoff"
            if row.waiting.get(step) == wait:
                return
            row.waiting[step] = wait
        elif row.waiting.pop(step, None) is None:
            return
        self._waiting_moved(was, row.activity)
        self.version += 1

    def _remember(self, row: TaskRow) -> None:
        bisect.insort(self._order, (row.created_at, row.task_id))  # mostly at the end
        self._held[row.state] += 1
        self._waiting_moved(None, row.activity)

    def _forget(self, row: TaskRow) -> None:
        i = bisect.bisect_left(self._order, (row.created_at, row.task_id))
        if i < len(self._order) and self._order[i] == (row.created_at, row.task_id):
            del self._order[i]
        self._held[row.state] -= 1
        self._waiting_moved(row.activity, None)

    def _waiting_moved(self, was: str | None, now: str | None) -> None:
        if was == now:
            return
        if was in _WAITING_ACTIVITIES:
            self.waiting_counts[was] -= 1
        if now in _WAITING_ACTIVITIES:
            self.waiting_counts[now] += 1

    def _move(self, row: TaskRow | None, state: TaskState, *, completed_at: float | None) -> None:
        if row is None:
            self.counts_stale = self.counts_stale or self._counting
            return
        self._count(row.state, state)
        self._held[row.state] -= 1
        self._held[state.value] += 1
        row.state = state.value
        row.completed_at = completed_at

    def _count(self, old: str | None, new: TaskState) -> None:
        if not self._counting:
            return
        self._deltas.append((self._seq, old, new.value))
        self._shift(old, new.value)

    def _shift(self, old: str | None, new: str) -> None:
        if old is not None and old in self.counts:
            self.counts[old] = max(0, self.counts[old] - 1)
        self.counts[new] = self.counts.get(new, 0) + 1

    def newest(self, activity: str | None = None, limit: int = 200) -> list[TaskRow]:
        """The newest rows, optionally only those whose :attr:`TaskRow.activity` or state is
        ``activity``. The walk stops once it has every row that matches (a row's activity is its
        state, or ``retrying`` / ``deferred``, which no state is)."""
        if activity is not None:
            limit = min(limit, self._held[activity] + self.waiting_counts[activity])
        rows: list[TaskRow] = []
        if limit <= 0:
            return rows
        for row in self._newest_first():
            if activity is None or activity in (row.activity, row.state):
                rows.append(row)
                if len(rows) >= limit:
                    break
        return rows

    def _newest_first(self) -> Iterator[TaskRow]:
        rows = self.rows
        for _, task_id in reversed(self._order):
            yield rows[task_id]

    def _trim(self) -> None:
        """Forget the oldest finished rows past :data:`MAX_ROWS`, walking from the oldest (a
        sort of every row at each new task cost milliseconds per ``task.created``)."""
        excess = len(self.rows) - MAX_ROWS
        if excess <= 0:
            return
        gone: list[TaskRow] = []
        for _, task_id in self._order:
            row = self.rows[task_id]
            if row.state not in ("pending", "in_progress"):
                gone.append(row)
                if len(gone) >= excess:
                    break
        for row in gone:
            self._forget(row)
            del self.rows[row.task_id]
