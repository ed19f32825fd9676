"""The engine: claims ready steps, runs their handlers concurrently, records every outcome.

It owns no SQL and no HTTP. The store decides atomically which steps are ready and hands them
out under a lease; the engine runs them on asyncio (bounded by ``max_concurrency``), classifies
failures with the retry policy and reports back. Each completion also claims the steps it made
ready in the same commit, so a workflow advances with one commit per transition.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Mapping
from contextlib import aclosing, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

from orchestrator import analytics, codec, log_context
from orchestrator.clock import Clock, SystemClock
from orchestrator.errors import StepError, UnknownTemplateError
from orchestrator.event_types import EventType
from orchestrator.events import (
    DEFAULT_MAX_BUFFERED,
    EventBus,
    Subscription,
    follow,
    follow_batches,
)
from orchestrator.handlers import HandlerRegistry, StepInput
from orchestrator.ids import new_task_id
from orchestrator.lifecycle import request_hash
from orchestrator.log_context import StepLogContext
from orchestrator.models import (
    JSON,
    TERMINAL_TASK_STATES,
    AttemptView,
    ClaimedStep,
    ErrorInfo,
    ErrorKind,
    Event,
    StepBottleneck,
    StepReadiness,
    StepState,
    TaskCounts,
    TaskState,
    TaskSummary,
    TaskView,
)
from orchestrator.retry import RetryPolicy, retry_delay_s
from orchestrator.store.base import (
    Claim,
    NewEvent,
    NewStep,
    NewTask,
    StepFailure,
    StepSuccess,
    Store,
)
from orchestrator.templates import StepTemplate, TemplateCatalog, WorkflowTemplate

log = logging.getLogger("interlock.engine")

#: Adjusts a step's template for one task from its context (e.g. more attempts for a plan).
StepCustomizer = Callable[[StepTemplate, JSON], StepTemplate]
#: Called before a claimed step runs; returns None to run it, or (until, reason) to defer it.
StepGate = Callable[[ClaimedStep], Any]
_RESERVE_PER_TRANSITION = 8
_END_STATES: dict[str, TaskState] = {
    EventType.TASK_COMPLETED: TaskState.COMPLETE,
    EventType.TASK_FAILED: TaskState.ERROR,
    EventType.TASK_CANCELLED: TaskState.CANCELLED,
}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    max_concurrency: int = 100  #: steps running at once in this engine
    lease_s: float = 30.0  #: a claim's lease; renewed every lease_s / 3 while the step runs
    poll_interval_s: float = 1.0  #: idle re-check for work written by other processes
    reclaim_interval_s: float = 5.0  #: how often expired leases are reclaimed
    worker_id: str | None = None  #: stable id: on start, its own leftover leases are reclaimed
    seed: int | None = None  #: seeds the jitter RNG (tests, reproducible demos)
    shutdown_grace_s: float = 5.0  #: how long stop() lets running steps finish


@dataclass(frozen=True, slots=True)
class Submission:
    task_id: str
    correlation_id: str
    created: bool  #: False when an idempotency key matched an existing task


@dataclass(slots=True)
class _Running:
    claim: ClaimedStep
    task: asyncio.Task[None]


class _StepEvents:
    """The ``events`` a handler gets: appends its own events to the task's log.

    ``emit`` queues the event without waiting for its commit (a service call should not wait
    for the disk to be observed); it still commits before the step's own outcome.
    """

    def __init__(self, engine: Engine, claim: ClaimedStep) -> None:
        self._engine = engine
        self._claim = claim

    async def emit(self, event_type: str, data: JSON) -> None:
        c = self._claim
        self._engine.store.post_events(
            [
                NewEvent(
                    type=event_type,
                    task_id=c.task_id,
                    step_name=c.step_name,
                    correlation_id=c.correlation_id,
                    attempt=c.attempt,
                    data=data,
                    at=self._engine.clock.now(),
                )
            ]
        )


class Engine:
    """A durable workflow engine over a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        registry: HandlerRegistry,
        catalog: TemplateCatalog,
        *,
        clock: Clock | None = None,
        config: EngineConfig | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.catalog = catalog
        self.clock: Clock = clock or SystemClock()
        self.config = config or EngineConfig()
        self.worker_id = self.config.worker_id or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self.bus = EventBus()
        self.store.add_listener(self.bus.publish)
        self._rng = random.Random(self.config.seed)
        self._running: dict[int, _Running] = {}
        self._reserved = 0
        self._backlog = False
        self._wake = asyncio.Event()
        self.store.on_outside_change(self._wake.set)
        self._loops: list[asyncio.Task[None]] = []
        self._customizers: dict[str, list[StepCustomizer]] = {}
        self._gates: list[StepGate] = []
        self._step_cache: dict[
            tuple[str, str, str], tuple[WorkflowTemplate, tuple[NewStep, ...]]
        ] = {}
        self._started = False

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Reclaim what a previous run of this worker left, then start claiming work."""
        if self._started:
            return
        self._started = True
        await self.store.reclaim_expired_leases(self.clock.now(), owner=self.worker_id)
        self._loops = [
            asyncio.create_task(self._schedule_loop(), name="interlock-scheduler"),
            asyncio.create_task(self._lease_loop(), name="interlock-leases"),
        ]

    async def stop(self) -> None:
        """Stop claiming, let running steps finish for a grace period, cancel the rest.

        Cancelled steps keep their lease in the database; a restart of the same worker id (or
        any worker after the lease expires) turns them into a lost attempt and retries them.
        """
        if not self._started:
            return
        self._started = False
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        tasks = [r.task for r in self._running.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.config.shutdown_grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def __aenter__(self) -> Engine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add_customizer(self, template_name: str, customizer: StepCustomizer) -> None:
        """Let ``customizer`` adjust each step of ``template_name`` per task (at submit)."""
        self._customizers.setdefault(template_name, []).append(customizer)

    def add_gate(self, gate: StepGate) -> None:
        """Consult ``gate`` before running each claimed step (e.g. a circuit breaker)."""
        self._gates.append(gate)

    @property
    def running_steps(self) -> int:
        return len(self._running)

    # -- submitting and waiting -----------------------------------------------------------------
    async def submit(
        self,
        name: str,
        context: Any,
        *,
        namespace: str | None = None,
        version: str | None = None,
        idempotency_key: str | None = None,
    ) -> Submission:
        """Validate ``context`` against the template and create a task (idempotent per key).

        An ``idempotency_key`` that already names a task returns that task when this is the same
        request, and raises :class:`~orchestrator.errors.IdempotencyKeyConflictError` when it is
        not (see :func:`~orchestrator.lifecycle.request_hash`).
        """
        return await self._submit(new_task_id(), name, context, namespace, version, idempotency_key)

    async def run(
        self,
        name: str,
        context: Any,
        *,
        namespace: str | None = None,
        version: str | None = None,
        idempotency_key: str | None = None,
        timeout_s: float | None = None,
    ) -> tuple[Submission, TaskState]:
        """Submit a task and wait until it ends; return the submission and the end state.

        Cheaper than ``submit`` then ``wait_for_end``: it listens for the task's events before
        the task exists, so it needs no read to learn whether the task has already ended.
        """
        task_id = new_task_id()
        with self.bus.subscribe(task_id) as sub:
            submission = await self._submit(
                task_id, name, context, namespace, version, idempotency_key
            )
            if submission.created:
                return submission, await self._wait(sub, task_id, timeout_s, read_first=False)
        # The key named an existing task: wait for that one.
        return submission, await self.wait_for_end(submission.task_id, timeout_s)

    async def _submit(
        self,
        task_id: str,
        name: str,
        context: Any,
        namespace: str | None,
        version: str | None,
        idempotency_key: str | None,
    ) -> Submission:
        template = self.catalog.find(name, namespace, version)
        prepared = template.prepare_context(context)
        correlation_id = str(prepared.get("correlation_id") or f"corr-{uuid.uuid4().hex}")
        steps = self._new_steps(template, prepared)
        roots = sum(1 for s in steps if not s.depends_on)
        now = self.clock.now()
        task = NewTask(
            task_id=task_id,
            name=template.name,
            namespace=template.namespace,
            version=template.version,
            correlation_id=correlation_id,
            context=prepared,
            idempotency_key=idempotency_key,
            steps=steps,
            now=now,
            # Only a keyed submission can meet an earlier one; the others skip the hashing.
            request_hash=None
            if idempotency_key is None
            else request_hash(template.name, template.namespace, template.version, prepared),
        )
        with self._slots(roots, now) as claim:
            created = await self.store.create_task(task, claim)
        self._start_claimed(created.claimed)
        if created.created and len(created.claimed) < roots:
            self._note_backlog()
        if not created.created:
            existing = await self.store.get_task(created.task_id)
            return Submission(existing.task_id, existing.correlation_id, created=False)
        return Submission(created.task_id, correlation_id, created=True)

    def _new_steps(self, template: WorkflowTemplate, context: JSON) -> tuple[NewStep, ...]:
        cached = self._step_cache.get(template.key)
        if cached is None or cached[0] is not template:
            cached = (template, tuple(_new_step(s) for s in template.steps))
            self._step_cache[template.key] = cached
        customizers = self._customizers.get(template.name, ())
        if not customizers:
            return cached[1]
        steps = []
        for step, plain in zip(template.steps, cached[1], strict=True):
            customized = step
            for customize in customizers:
                customized = customize(customized, context)
            # An untouched step reuses its prepared NewStep (and the store's cached encodings).
            steps.append(plain if customized is step else _new_step(customized))
        return tuple(steps)

    async def wait(self, task_id: str, timeout_s: float | None = None) -> TaskView:
        """Wait until the task is complete, error or cancelled, and return it."""
        await self.wait_for_end(task_id, timeout_s)
        return await self.store.get_task(task_id)

    async def wait_for_end(self, task_id: str, timeout_s: float | None = None) -> TaskState:
        """Wait until the task is complete, error or cancelled; return that state (cheap)."""
        with self.bus.subscribe(task_id) as sub:
            return await self._wait(sub, task_id, timeout_s, read_first=True)

    async def _wait(
        self, sub: Subscription, task_id: str, timeout_s: float | None, *, read_first: bool
    ) -> TaskState:
        # The bus carries this process's commits; another engine on the same database may end
        # the task, so the state is also re-read every poll interval. No nested cancel scopes:
        # Subscription.wait returns on a timer, so a late event can never be cancelled away.
        # ``read_first=False`` only when ``sub`` was open before the task was created.
        loop = asyncio.get_running_loop()
        deadline = None if timeout_s is None else loop.time() + timeout_s
        read = read_first
        while True:
            if read:
                state = await self.store.task_state(task_id)
                if state in TERMINAL_TASK_STATES:
                    return state
            read = True
            now = loop.time()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"task {task_id} did not end within {timeout_s} s")
            until = now + self.config.poll_interval_s
            ended = await _end_within(sub, until if deadline is None else min(until, deadline))
            if ended is not None:
                return ended

    def subscribe(
        self, task_id: str | None = None, max_buffered: int = DEFAULT_MAX_BUFFERED
    ) -> Subscription:
        """Live events from this process's engine, in commit order.

        A reader that falls ``max_buffered`` behind gets :class:`EventsLostError` (see
        ``orchestrator/events.py``); :meth:`follow` handles that for it.
        """
        return self.bus.subscribe(task_id, max_buffered)

    async def follow(
        self,
        after: int | None = 0,
        task_id: str | None = None,
        *,
        idle_s: float | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> AsyncGenerator[Event | None, None]:
        """Every event after seq ``after`` (None: from now), stored then live, none missed.

        Each event comes once, in strictly increasing seq order, however far the reader falls
        behind; None whenever ``idle_s`` passes without one. Close it with ``aclosing``.
        """
        with self.bus.subscribe(task_id, max_buffered) as sub:
            read = partial(self._read_events, task_id)
            async with aclosing(follow(sub, read, after, idle_s=idle_s)) as events:
                async for item in events:
                    yield item

    async def follow_batches(
        self,
        after: int | None = 0,
        task_id: str | None = None,
        *,
        idle_s: float | None = None,
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> AsyncGenerator[list[Event] | None, None]:
        """:meth:`follow`, a batch of the events available at once at a time (for a writer that
        sends a burst in one write). Close it with ``aclosing``."""
        with self.bus.subscribe(task_id, max_buffered) as sub:
            read = partial(self._read_events, task_id)
            async with aclosing(follow_batches(sub, read, after, idle_s=idle_s)) as batches:
                async for batch in batches:
                    yield batch

    async def _read_events(self, task_id: str | None, after: int, limit: int) -> list[Event]:
        return await self.store.list_events(after, limit, task_id)

    # -- reads ----------------------------------------------------------------------------------
    async def get_task(self, task_id: str) -> TaskView:
        return await self.store.get_task(task_id)

    async def list_tasks(
        self, state: TaskState | None = None, limit: int = 100, offset: int = 0
    ) -> list[TaskSummary]:
        """Newest first: ``limit`` tasks after skipping the ``offset`` newest."""
        return await self.store.list_tasks(state, limit, offset)

    async def task_counts(self) -> TaskCounts:
        """How many tasks are in each state, every state present (zero included), and the last
        event the counts include."""
        return await self.store.count_tasks()

    async def step_counts(self) -> dict[StepState, int]:
        """How many steps are in each state, every state present (zero included)."""
        return await self.store.count_steps()

    async def last_event_seq(self) -> int:
        """Where the event log stands: a live view follows the stream from here."""
        return await self.store.last_event_seq()

    async def attempts(self, task_id: str) -> list[AttemptView]:
        await self.store.get_task(task_id)  # raises TaskNotFoundError for an unknown id
        return await self.store.list_attempts(task_id)

    async def events(
        self, after: int = 0, limit: int = 1000, task_id: str | None = None
    ) -> list[Event]:
        return await self.store.list_events(after, limit, task_id)

    async def readiness(self, task_id: str) -> list[StepReadiness]:
        """Why each step of the task is (not) ready to run now."""
        return analytics.step_readiness(await self.store.get_task(task_id), self.clock.now())

    async def bottlenecks(
        self,
        namespace: str | None = None,
        task_name: str | None = None,
        window_s: float | None = None,
    ) -> list[StepBottleneck]:
        """Execution statistics per workflow step, slowest p95 first: of the tasks in
        ``namespace`` / of template ``task_name``, over the last ``window_s`` seconds."""
        since = None if window_s is None else self.clock.now() - window_s
        return analytics.bottlenecks(await self.store.attempt_stats(namespace, task_name, since))

    async def breaker_openings(self, window_s: float | None = None) -> dict[str, int]:
        """How many times each service's breaker opened (over the last ``window_s`` seconds)."""
        since = None if window_s is None else self.clock.now() - window_s
        return await self.store.breaker_openings(since)

    # -- operator actions -----------------------------------------------------------------------
    async def cancel_task(self, task_id: str) -> TaskView:
        """No new attempts; running ones are cancelled; open steps become ``cancelled``."""
        await self.store.cancel_task(task_id, self.clock.now())
        for running in list(self._running.values()):
            if running.claim.task_id == task_id:
                running.task.cancel()
        return await self.store.get_task(task_id)

    async def retry_step(self, task_id: str, step_name: str) -> TaskView:
        """Give a failed step a fresh set of attempts; the task resumes."""
        await self.store.retry_step(task_id, step_name, self.clock.now())
        self._note_backlog()
        return await self.store.get_task(task_id)

    async def resolve_step(
        self, task_id: str, step_name: str, results: JSON | None = None
    ) -> TaskView:
        """Mark a step done by hand; its dependents then run with ``results``, or without them
        with the step's declared ``fallback_results`` (or ``{}``).

        Given results must satisfy the step's ``results_schema``, if its template declares one
        (:class:`ResultsValidationError` lists every failing path; nothing changes).
        """
        if results is not None:
            await self._check_results(task_id, step_name, results)
        now = self.clock.now()
        with self._slots(_RESERVE_PER_TRANSITION, now) as claim:
            claimed = await self.store.resolve_step(task_id, step_name, results, now, claim)
        self._start_claimed(claimed)
        self._note_backlog()
        return await self.store.get_task(task_id)

    async def _check_results(self, task_id: str, step_name: str, results: JSON) -> None:
        task = await self.store.get_task(task_id)
        try:
            template = self.catalog.find(task.name, task.namespace, task.version)
            step = template.step(step_name)
        except (UnknownTemplateError, KeyError):
            # No loaded template declares this step: nothing to check against. An unknown step
            # is refused by the store (StepNotFoundError).
            return
        step.check_results(results)

    # -- running steps --------------------------------------------------------------------------
    def _free(self) -> int:
        return self.config.max_concurrency - len(self._running) - self._reserved

    @contextmanager
    def _slots(self, wanted: int, now: float) -> Iterator[Claim | None]:
        """Reserve up to ``wanted`` free slots for the steps a transition claims in its commit.

        Yields the claim to pass to the store (None when no slot is free or the engine is not
        running); the reservation ends with the block, when the claimed steps are running.
        """
        got = max(0, min(self._free(), wanted)) if self._started else 0
        self._reserved += got
        try:
            yield Claim(self.worker_id, self.config.lease_s, got, now) if got else None
        finally:
            self._reserved -= got

    def _note_backlog(self) -> None:
        self._backlog = True
        self._wake.set()

    def _start_claimed(self, claimed: Iterable[ClaimedStep]) -> None:
        if not self._started:
            # Claimed while stopping (a completion claims its dependents): leave them leased;
            # a restart of this worker id reclaims them at once.
            return
        for claim in claimed:
            task = asyncio.create_task(self._execute(claim), name=f"step-{claim.step_name}")
            self._running[claim.step_id] = _Running(claim, task)

    async def _execute(self, claim: ClaimedStep) -> None:
        # this task's own context: every line logged while the step runs names it
        log_context.CURRENT.set(
            StepLogContext(claim.correlation_id, claim.task_id, claim.step_name, claim.attempt)
        )
        try:
            if await self._deferred_by_gate(claim):
                return
            started = time.perf_counter()
            outcome = await self._invoke(claim)
            duration_s = time.perf_counter() - started
            if isinstance(outcome, _Failure):
                await self._record_failure(claim, outcome, duration_s)
            else:
                await self._record_success(claim, outcome, duration_s)
        except asyncio.CancelledError:
            # Operator cancel (already recorded) or shutdown (the lease is reclaimed later).
            raise
        except Exception:
            log.exception(
                "could not record the outcome of %s/%s; its lease will be reclaimed",
                claim.task_id,
                claim.step_name,
            )
        finally:
            self._running.pop(claim.step_id, None)
            if self._backlog:
                self._wake.set()

    async def _deferred_by_gate(self, claim: ClaimedStep) -> bool:
        for gate in self._gates:
            verdict = await gate(claim)
            if verdict is not None:
                until, reason = verdict
                await self.store.defer_step(
                    claim.step_id, self.worker_id, until, reason, self.clock.now()
                )
                self._wake.set()
                return True
        return False

    async def _invoke(self, claim: ClaimedStep) -> JSON | _Failure:
        """Run the handler; return its results, or the classified error."""
        try:
            handler = self.registry.get(claim.handler)
        except KeyError as exc:
            return _Failure(ErrorInfo(ErrorKind.PERMANENT, "UNKNOWN_HANDLER", str(exc)))
        step_input = StepInput(
            task_id=claim.task_id,
            task_name=claim.task_name,
            step_name=claim.step_name,
            context=claim.context,
            dependency_results=claim.dependency_results,
            handler_config=claim.handler_config,
            correlation_id=claim.correlation_id,
            attempt=claim.attempt,
            max_attempts=claim.max_attempts,
            events=_StepEvents(self, claim),
        )
        try:
            async with asyncio.timeout(claim.timeout_s):
                results = await handler(step_input)
        except StepError as exc:
            return _failure(exc)
        except TimeoutError:
            return _Failure(
                ErrorInfo(
                    ErrorKind.RETRYABLE,
                    "TIMEOUT",
                    f"step exceeded its timeout of {claim.timeout_s:g} s",
                )
            )
        except Exception as exc:  # an unclassified failure is worth another try
            return _Failure(
                ErrorInfo(ErrorKind.RETRYABLE, "HANDLER_EXCEPTION", f"{type(exc).__name__}: {exc}")
            )
        return _checked_results(results)

    async def _record_success(self, claim: ClaimedStep, results: JSON, duration_s: float) -> None:
        now = self.clock.now()
        # Free this step's slot before reserving, so its own dependents can take it.
        self._running.pop(claim.step_id, None)
        with self._slots(_RESERVE_PER_TRANSITION, now) as dependents:
            transition = await self.store.complete_step(
                StepSuccess(
                    claim.step_id,
                    claim.task_id,
                    claim.step_name,
                    self.worker_id,
                    claim.attempt,
                    results,
                    claim.started_at,
                    duration_s,
                    now,
                ),
                dependents,
            )
        self._start_claimed(transition.claimed)
        if dependents is None or len(transition.claimed) >= dependents.limit:
            self._backlog = True

    async def _record_failure(
        self, claim: ClaimedStep, failure: _Failure, duration_s: float
    ) -> None:
        now = self.clock.now()
        policy = RetryPolicy.from_json(claim.retry)
        next_at: float | None = None
        if (
            failure.info.kind is ErrorKind.RETRYABLE
            and policy.retryable
            and claim.attempt < claim.max_attempts
        ):
            next_at = now + retry_delay_s(policy, claim.attempt, self._rng, failure.retry_after_s)
        failed = StepFailure(
            claim.step_id,
            claim.task_id,
            claim.step_name,
            self.worker_id,
            claim.attempt,
            failure.info,
            next_at,
            claim.started_at,
            duration_s,
            now,
        )
        if next_at is not None:
            await self.store.fail_step(failed)
            self._wake.set()
            return
        # Failing for good may degrade a non-critical step, which frees its dependents: the
        # same commit claims them, as a completion does.
        self._running.pop(claim.step_id, None)
        with self._slots(_RESERVE_PER_TRANSITION, now) as dependents:
            transition = await self.store.fail_step(failed, dependents)
        self._start_claimed(transition.claimed)
        if dependents is None or len(transition.claimed) >= dependents.limit:
            self._note_backlog()

    # -- background loops -----------------------------------------------------------------------
    async def _schedule_loop(self) -> None:
        while True:
            try:
                await self._schedule_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler pass failed; retrying")
                await asyncio.sleep(0.1)

    async def _schedule_once(self) -> None:
        self._wake.clear()
        now = self.clock.now()
        free = self._free()
        if free > 0:
            claimed = await self.store.claim_ready_steps(
                Claim(self.worker_id, self.config.lease_s, free, now)
            )
            self._start_claimed(claimed)
            self._backlog = len(claimed) >= free
        # Deadlines are absolute and taken from the claim's ``now``: if time moves on while we
        # claim, the sleep below returns at once instead of overshooting a due retry.
        deadline = now + self.config.poll_interval_s
        if self._free() > 0:
            next_at = await self.store.next_wakeup()
            if next_at is not None and next_at > now:
                deadline = min(deadline, next_at)
        await _first_of(self._wake.wait(), self.clock.sleep_until(deadline))

    async def _lease_loop(self) -> None:
        renew_every = self.config.lease_s / 3
        last_reclaim = self.clock.now()
        while True:
            await self.clock.sleep(min(renew_every, self.config.reclaim_interval_s))
            try:
                now = self.clock.now()
                await self.store.renew_leases(
                    self.worker_id, list(self._running), now + self.config.lease_s
                )
                if now - last_reclaim >= self.config.reclaim_interval_s:
                    last_reclaim = now
                    if await self.store.reclaim_expired_leases(now):
                        self._note_backlog()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("lease maintenance failed; retrying")


def _new_step(step: StepTemplate) -> NewStep:
    return NewStep(
        name=step.name,
        handler=step.handler,
        depends_on=step.depends_on,
        max_attempts=step.retry.effective_max_attempts,
        retry=step.retry.to_json(),
        timeout_s=step.timeout_s,
        handler_config=dict(step.handler_config),
        on_failure=step.on_failure,
        fallback_results=None if step.fallback_results is None else dict(step.fallback_results),
    )


@dataclass(frozen=True, slots=True)
class _Failure:
    """A classified handler failure plus the server's Retry-After, if it gave one."""

    info: ErrorInfo
    retry_after_s: float | None = None


def _failure(exc: StepError) -> _Failure:
    return _Failure(
        ErrorInfo(exc.kind, exc.error_code, exc.message, exc.http_status),
        getattr(exc, "retry_after_s", None),
    )


def _checked_results(results: Any) -> JSON | _Failure:
    if results is None:
        return {}
    if not isinstance(results, Mapping):
        kind = type(results).__name__
        return _Failure(
            ErrorInfo(
                ErrorKind.PERMANENT,
                "INVALID_RESULTS",
                f"a handler must return a JSON object or None, not {kind}",
            )
        )
    try:
        codec.dumps(results)
    except (TypeError, ValueError) as exc:
        return _Failure(
            ErrorInfo(
                ErrorKind.PERMANENT,
                "INVALID_RESULTS",
                f"handler results are not JSON-serialisable: {exc}",
            )
        )
    return dict(results)


async def _end_within(sub: Subscription, until: float) -> TaskState | None:
    """The task's end state if its end event arrives before loop time ``until``, else None."""
    loop = asyncio.get_running_loop()
    while (now := loop.time()) < until:
        await sub.wait(until - now)
        if sub.overflowed:
            # The end event may be among those discarded: None makes the caller read the state
            # now, and what commits after the overflow is buffered again.
            sub.clear_gap()
            return None
        while (event := sub.get_nowait()) is not None:
            end = _END_STATES.get(event.type)
            if end is not None:
                return end
    return None


async def _first_of(*awaitables: Any) -> None:
    """Wait until one of ``awaitables`` is done; cancel and reap the others.

    Reaping uses ``asyncio.wait``, which never raises the reaped tasks' cancellation: a
    ``suppress(CancelledError)`` around it would also swallow a cancellation of *this* task
    arriving at that moment, and the scheduler loop would never stop (seen as a rare hang of
    ``Engine.stop``).
    """
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
