"""The store's writes, the same for every SQL store: each one an operation of
``store/transitions.py`` queued for the store's next batch.

A store supplies :meth:`SqlWrites.write` (queue an operation and await its outcome) and
:meth:`SqlWrites.post` (queue it without waiting). Both are told which task rows the
operation changes (``tasks``), which idempotency keys it may take (``keys``) and which task's
writes it must stay in order with (``lane``): a store whose writers run side by side locks the
first two before the batch and keeps a task's writes on one writer (PostgreSQL); a store with
one writer ignores all three.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from typing import Any

from orchestrator.models import JSON, BreakerView, ClaimedStep
from orchestrator.store import transitions as tr
from orchestrator.store.base import (
    Claim,
    CreatedTask,
    NewEvent,
    NewTask,
    StepFailure,
    StepSuccess,
    Transition,
)
from orchestrator.store.reads import SqlReads

Op = Callable[[tr.Tx], Coroutine[Any, Any, Any]]


class SqlWrites(SqlReads):
    """The write half of :class:`Store` (and, through :class:`SqlReads`, the read half)."""

    @abc.abstractmethod
    async def write(
        self,
        op: Op,
        tasks: tuple[str, ...] = (),
        keys: tuple[str, ...] = (),
        lane: str | None = None,
    ) -> Any:
        """Queue ``op`` for the next batch and return its outcome once that batch committed
        (``lane`` defaults to the first of ``tasks``)."""

    @abc.abstractmethod
    def post(self, op: Op, lane: str | None) -> None:
        """Queue ``op`` without waiting for it; it commits before any write of task ``lane``
        queued after it."""

    async def task_of_step(self, step_id: int) -> str | None:
        """The task of a step, for a store that locks tasks (None: it does not need to know)."""
        del step_id
        return None

    # -- hot path -------------------------------------------------------------------------------
    async def create_task(self, task: NewTask, claim: Claim | None) -> CreatedTask:
        keys = () if task.idempotency_key is None else (task.idempotency_key,)
        op = partial(tr.create_task, new=task, claim=claim)
        result: CreatedTask = await self.write(op, keys=keys, lane=task.task_id)
        return result

    async def complete_step(self, success: StepSuccess, claim: Claim | None) -> Transition:
        op = partial(tr.complete_step, done=success, claim=claim)
        result: Transition = await self.write(op, (success.task_id,))
        return result

    async def fail_step(self, failure: StepFailure, claim: Claim | None = None) -> Transition:
        op = partial(tr.fail_step, failed=failure, claim=claim)
        result: Transition = await self.write(op, (failure.task_id,))
        return result

    async def claim_ready_steps(self, claim: Claim) -> list[ClaimedStep]:
        started = time.perf_counter()
        result: list[ClaimedStep] = await self.write(partial(tr.claim_ready_steps, claim=claim))
        self.observer.claimed(len(result), time.perf_counter() - started)
        return result

    async def defer_step(
        self, step_id: int, owner: str, until: float, reason: JSON, now: float
    ) -> bool:
        task = await self.task_of_step(step_id)
        result: bool = await self.write(
            lambda tx: tr.defer_step(tx, step_id, owner, until, reason, now),
            () if task is None else (task,),
        )
        return result

    async def append_events(self, events: Sequence[NewEvent]) -> None:
        lane = events[0].task_id if events else None
        await self.write(partial(tr.add_events, events=events), lane=lane)

    def post_events(self, events: Sequence[NewEvent]) -> None:
        self.post(partial(tr.add_events, events=events), events[0].task_id if events else None)

    async def renew_leases(self, owner: str, step_ids: Sequence[int], until: float) -> int:
        if not step_ids:
            return 0
        result: int = await self.write(lambda tx: tr.renew_leases(tx, owner, step_ids, until))
        return result

    async def reclaim_expired_leases(self, now: float, owner: str | None = None) -> int:
        result: int = await self.write(lambda tx: tr.reclaim_expired_leases(tx, now, owner))
        return result

    # -- operator actions -----------------------------------------------------------------------
    async def cancel_task(self, task_id: str, now: float) -> None:
        await self.write(lambda tx: tr.cancel_task(tx, task_id, now), (task_id,))

    async def retry_step(self, task_id: str, step_name: str, now: float) -> None:
        await self.write(lambda tx: tr.retry_step(tx, task_id, step_name, now), (task_id,))

    async def resolve_step(
        self, task_id: str, step_name: str, results: JSON | None, now: float, claim: Claim | None
    ) -> list[ClaimedStep]:
        result: list[ClaimedStep] = await self.write(
            lambda tx: tr.resolve_step(tx, task_id, step_name, results, now, claim), (task_id,)
        )
        return result

    async def save_breaker(self, breaker: BreakerView, events: Sequence[NewEvent]) -> None:
        await self.write(partial(tr.save_breaker, breaker=breaker, events=events))
