"""The store's reads, written once in SQL both databases run, on top of ``fetchall``.

A store supplies :meth:`SqlReads.fetchall` (``?`` parameters, one statement, one snapshot) and
the two places where the dialects differ; the rows become the core's models here.
"""

from __future__ import annotations

import abc
from typing import Any

from orchestrator import codec
from orchestrator.errors import TaskNotFoundError
from orchestrator.event_types import EventType
from orchestrator.models import (
    ACTIVE_TASK_STATES,
    CLAIMABLE_STEP_STATES,
    AttemptOutcome,
    AttemptStat,
    AttemptView,
    BreakerState,
    BreakerView,
    ErrorInfo,
    ErrorKind,
    Event,
    StepState,
    StepView,
    TaskCounts,
    TaskState,
    TaskSummary,
    TaskView,
)
from orchestrator.store.base import Store
from orchestrator.store.sqltext import in_list, literal

_CLAIMABLE = in_list(CLAIMABLE_STEP_STATES)
_ACTIVE_TASKS = in_list(ACTIVE_TASK_STATES)


class SqlReads(Store):
    """The read half of :class:`Store` for a SQL database."""

    #: ORDER BY text for "newest first, ties in creation order, newest first" on ``tasks``
    newest_first: str

    @abc.abstractmethod
    async def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run one query to its end and return its rows."""

    @abc.abstractmethod
    def json_text(self, column: str, key: str) -> str:
        """SQL for the text of ``key`` in the JSON object held in ``column``."""

    async def _fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def next_wakeup(self) -> float | None:
        row = await self._fetchone(
            "SELECT MIN(s.next_attempt_at) FROM steps s JOIN tasks t ON t.id = s.task_id "
            f"WHERE s.state IN {_CLAIMABLE} AND s.deps_remaining = 0 "
            f"AND t.state IN {_ACTIVE_TASKS}"
        )
        return row[0] if row else None

    async def load_breakers(self) -> list[BreakerView]:
        rows = await self.fetchall(
            "SELECT service, state, failures, successes, opened_at, updated_at, data "
            "FROM breakers ORDER BY service"
        )
        return [
            BreakerView(
                r[0],
                BreakerState(r[1]),
                r[2],
                r[3],
                r[4],
                codec.loads(r[6]).get("open_until"),
                r[5],
            )
            for r in rows
        ]

    # -- reads ----------------------------------------------------------------------------------
    async def get_task(self, task_id: str) -> TaskView:
        # One statement, so one snapshot: the task and its steps as of the same commit.
        rows = await self.fetchall(
            "SELECT t.id, t.name, t.namespace, t.version, t.state, t.correlation_id, t.context, "
            "t.created_at, t.completed_at, t.idempotency_key, t.summary, s.name, s.handler, "
            "s.state, s.depends_on, s.attempts, s.max_attempts, s.results, s.last_error, "
            "s.next_attempt_at, s.started_at, s.completed_at "
            "FROM tasks t LEFT JOIN steps s ON s.task_id = t.id WHERE t.id = ? ORDER BY s.position",
            (task_id,),
        )
        if not rows:
            raise TaskNotFoundError(task_id)
        row = rows[0]
        step_rows = [r[11:] for r in rows if r[11] is not None]
        return TaskView(
            task_id=row[0],
            name=row[1],
            namespace=row[2],
            version=row[3],
            state=TaskState(row[4]),
            correlation_id=row[5],
            context=codec.loads(row[6]),
            created_at=row[7],
            completed_at=row[8],
            idempotency_key=row[9],
            steps=tuple(_step_view(s) for s in step_rows),
            summary=codec.loads(row[10]) if row[10] else None,
        )

    async def task_state(self, task_id: str) -> TaskState:
        row = await self._fetchone("SELECT state FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            raise TaskNotFoundError(task_id)
        return TaskState(row[0])

    async def list_tasks(
        self, state: TaskState | None = None, limit: int = 100, offset: int = 0
    ) -> list[TaskSummary]:
        sql = (
            "SELECT id, name, namespace, version, state, correlation_id, context, created_at, "
            "completed_at FROM tasks"
        )
        params: tuple[Any, ...] = (limit, offset)
        if state is not None:
            sql += " WHERE state = ?"
            params = (state.value, *params)
        sql += " ORDER BY " + self.newest_first + " LIMIT ? OFFSET ?"
        rows = await self.fetchall(sql, params)
        return [
            TaskSummary(
                r[0], r[1], r[2], r[3], TaskState(r[4]), r[5], codec.loads(r[6]), r[7], r[8]
            )
            for r in rows
        ]

    async def count_tasks(self) -> TaskCounts:
        # One statement, so one snapshot: the counts and the last seq they include agree.
        rows = await self.fetchall(
            "SELECT NULL, (SELECT COALESCE(MAX(seq), 0) FROM events), 0 UNION ALL "
            "SELECT state, 0, COUNT(*) FROM tasks GROUP BY state"
        )
        counts = dict.fromkeys(TaskState, 0)
        for state, _seq, n in rows[1:]:
            counts[TaskState(state)] = n
        return TaskCounts(counts, int(rows[0][1]))

    async def count_steps(self) -> dict[StepState, int]:
        rows = await self.fetchall("SELECT state, COUNT(*) FROM steps GROUP BY state")
        counts = dict.fromkeys(StepState, 0)
        for state, n in rows:
            counts[StepState(state)] = n
        return counts

    async def last_event_seq(self) -> int:
        row = await self._fetchone("SELECT COALESCE(MAX(seq), 0) FROM events")
        return int(row[0]) if row else 0

    async def list_attempts(self, task_id: str) -> list[AttemptView]:
        rows = await self.fetchall(
            "SELECT task_id, step_name, attempt, worker_id, started_at, ended_at, duration_s, "
            "outcome, error FROM attempts WHERE task_id = ? ORDER BY id",
            (task_id,),
        )
        return [
            AttemptView(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], ErrorInfo.from_json(_loads(r[8]))
            )
            for r in rows
        ]

    async def list_events(
        self, after: int = 0, limit: int = 1000, task_id: str | None = None
    ) -> list[Event]:
        sql = (
            "SELECT seq, at, type, task_id, step_name, correlation_id, attempt, data "
            "FROM events WHERE seq > ?"
        )
        params: tuple[Any, ...] = (after,)
        if task_id is not None:
            sql += " AND task_id = ?"
            params += (task_id,)
        sql += " ORDER BY seq LIMIT ?"
        rows = await self.fetchall(sql, (*params, limit))
        return [event_from_row(tuple(r)) for r in rows]

    async def attempt_stats(
        self,
        namespace: str | None = None,
        task_name: str | None = None,
        since: float | None = None,
    ) -> list[AttemptStat]:
        sql = "SELECT a.task_name, a.step_name, a.duration_s, a.outcome, a.error FROM attempts a"
        where: list[str] = []
        params: list[Any] = []
        if namespace is not None:
            sql += " JOIN tasks t ON t.id = a.task_id"
            where.append("t.namespace = ?")
            params.append(namespace)
        if task_name is not None:
            where.append("a.task_name = ?")
            params.append(task_name)
        if since is not None:
            where.append("a.ended_at >= ?")
            params.append(since)
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = await self.fetchall(sql + " ORDER BY a.task_name, a.step_name", tuple(params))
        return [
            AttemptStat(r[0], r[1], r[2], AttemptOutcome(r[3]), _error_kind(r[4])) for r in rows
        ]

    async def breaker_openings(self, since: float | None = None) -> dict[str, int]:
        sql = (
            f"SELECT {self.json_text('data', 'service')}, COUNT(*) FROM events "
            f"WHERE type = {literal(EventType.BREAKER_OPENED)}"
        )
        params: tuple[Any, ...] = ()
        if since is not None:
            sql += " AND at >= ?"
            params = (since,)
        rows = await self.fetchall(sql + " GROUP BY 1 ORDER BY 1", params)
        return {str(r[0]): int(r[1]) for r in rows}


def _loads(text: str | None) -> Any:
    return codec.loads(text) if text else None


def event_from_row(row: tuple[Any, ...]) -> Event:
    seq, at, type_, task_id, step_name, corr, attempt, data = row
    return Event(
        seq,
        at,
        type_,
        task_id,
        step_name,
        corr,
        attempt,
        codec.loads(data) if isinstance(data, str) else data,
    )


def _step_view(s: Any) -> StepView:
    return StepView(
        name=s[0],
        handler=s[1],
        state=StepState(s[2]),
        depends_on=tuple(codec.loads(s[3])),
        attempts=s[4],
        max_attempts=s[5],
        results=_loads(s[6]),
        last_error=ErrorInfo.from_json(_loads(s[7])),
        next_attempt_at=s[8],
        started_at=s[9],
        completed_at=s[10],
    )


def _error_kind(text: str | None) -> ErrorKind | None:
    info = ErrorInfo.from_json(_loads(text))
    return info.kind if info else None
