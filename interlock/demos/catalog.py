"""The nine fault-injection demos: each sets up its faults, submits its registrations, waits on
what the events say, and checks the outcome against the services' own records.

Each demo is small on purpose: a handful of people, so every sentence of the narration can be
followed (crash-recovery is the burst). Where a demo's size is bounded by the circuit breaker
(five failures in a row open it), the docstring says so: a demo that tripped the breaker by
accident would tell another story than the one it is named for.
"""

from __future__ import annotations

import asyncio
import inspect
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from interlock.demos.records import email_of, people, person, registrations, requests_of_run
from interlock.demos.stage import DemoError, Stage
from interlock.registration.template import SEQUENTIAL_TEMPLATE_NAME, TEMPLATE_NAME
from orchestrator.event_types import EventType
from orchestrator.models import JSON

#: How long a demo waits for its registrations to end before its verdict says they did not.
SETTLE_S: Final = 55.0
#: How long billing stays down once its breaker is open and holding registrations back.
OUTAGE_AFTER_OPEN_S: Final = 3.0


@dataclass(frozen=True, slots=True)
class Demo:
    """One demo: its name on the command line, a title, the story it tells, and its script."""

    name: str
    title: str
    story: str
    script: Callable[[Stage], Awaitable[None]]
    #: It kills the orchestrator, so it needs a sandbox it can restart.
    needs_restart: bool = False


def _step(task: JSON, name: str) -> JSON:
    for step in task["steps"]:
        if step["name"] == name:
            return dict(step)
    raise DemoError(f"task {task['task_id']} has no step {name}")


def _complete(stage: Stage, tasks: list[JSON], what: str = "registrations") -> bool:
    done = sum(1 for t in tasks if t["state"] == "complete")
    return stage.check(done == len(tasks), f"{done} of {len(tasks)} {what} complete")


async def _no_duplicates(stage: Stage, contexts: list[JSON]) -> None:
    records = await people(stage, [email_of(c) for c in contexts])
    users = sum(len(r.users) for r in records)
    stage.check(users == len(records), f"users holds {users} accounts for {len(records)} people")
    profiles = sum(r.profile is not None for r in records)
    stage.check(profiles == len(records), f"billing holds {profiles} profiles, one per person")
    prefs = sum(r.preferences is not None for r in records)
    stage.check(prefs == len(records), f"preferences holds {prefs} records, one per person")
    welcomed = sum(any(m.get("kind") == "welcome" for m in r.messages) for r in records)
    sent = sum(len(r.messages) for r in records)
    duplicates = sum(r.duplicate_messages for r in records)
    stage.check(
        welcomed == len(records) and duplicates == 0,
        f"notifications welcomed {welcomed} of {len(records)} people ({sent} messages), "
        f"{duplicates} sent twice",
    )
    active = sum(1 for r in records if r.user and r.user.get("status") == "active")
    stage.check(active == len(records), f"{active} of {len(records)} users are active")


async def billing_outage(stage: Stage) -> None:
    """Billing answers 503; the breaker opens after five failures in a row, so the rest wait
    without spending attempts; billing recovers, the breaker closes, every registration ends."""
    contexts = registrations(stage, 8, seed=11)
    rule = await stage.fault("billing", {"kind": "down"}, "every request answers 503 (down)")
    ids = await stage.submit(contexts)
    opened = await stage.until(
        lambda e: e.type == EventType.BREAKER_OPENED and e.data.get("service") == "billing",
        30,
        "billing's breaker opened",
    )
    if opened is not None:
        await stage.until(lambda e: e.type == EventType.STEP_DEFERRED, 15, "a step was deferred")
        stage.say(f"billing stays down {OUTAGE_AFTER_OPEN_S:g} s more")
        await asyncio.sleep(OUTAGE_AFTER_OPEN_S)
        await stage.remove_fault("billing", rule, "billing is back up")
    tasks = await stage.settle(ids, SETTLE_S)
    _complete(stage, tasks)
    opens = stage.count(EventType.BREAKER_OPENED, service="billing")
    closes = stage.count(EventType.BREAKER_CLOSED, service="billing")
    stage.check(opens >= 1 and closes >= 1, f"billing's breaker opened ({opens} x) and closed")
    deferrals = stage.count(EventType.STEP_DEFERRED, service="billing")
    billing = [_step(t, "setup_billing_profile") for t in tasks]
    most = max(s["attempts"] for s in billing)
    stage.check(
        deferrals > 0 and all(s["attempts"] < s["max_attempts"] for s in billing),
        f"{deferrals} deferrals spent no attempt: no billing step used more than {most} "
        f"(of {min(s['max_attempts'] for s in billing)}, more for enterprise)",
    )
    records = await people(stage, [email_of(c) for c in contexts])
    profiles = sum(r.profile is not None for r in records)
    stage.check(profiles == len(records), f"billing holds a profile for {profiles} of {len(ids)}")


async def flaky_email(stage: Stage) -> None:
    """Notifications fails every welcome twice, then accepts it; backoff finishes the job.
    Two people: four failures in a row at most, one short of opening the breaker."""
    contexts = registrations(stage, 2, seed=12)
    await stage.fault(
        "notifications",
        {
            "kind": "error",
            "status": 503,
            "times": 2,
            "per_key": True,
            "match": {"method": "POST", "path": "/welcome"},
        },
        "every welcome fails twice (503), then goes through",
    )
    ids = await stage.submit(contexts)
    tasks = await stage.settle(ids, SETTLE_S)
    _complete(stage, tasks)
    attempts = [_step(t, "send_welcome_sequence")["attempts"] for t in tasks]
    stage.check(
        all(a == 3 for a in attempts),
        f"each welcome took 3 attempts (2 failed, then sent): {attempts}",
    )
    retries = stage.count(EventType.STEP_RETRY_SCHEDULED)
    stage.check(retries == 2 * len(ids), f"{retries} retries scheduled with backoff")
    await _no_duplicates(stage, contexts)


async def rate_limited(stage: Stage) -> None:
    """Notifications answers each welcome's first try with 429 and ``Retry-After: 3``; the
    retry waits those 3 s, not the 1 s its backoff would have chosen (measured). A 429 is the
    service saying "later", not failing, so it never counts towards the breaker."""
    retry_after = 3
    contexts = registrations(stage, 6, seed=13)  # six 429s: more than would open a breaker
    await stage.fault(
        "notifications",
        {
            "kind": "error",
            "status": 429,
            "retry_after_s": retry_after,
            "times": 1,
            "per_key": True,
            "match": {"method": "POST", "path": "/welcome"},
        },
        f"each welcome's first try is rate-limited (429, Retry-After: {retry_after})",
    )
    ids = await stage.submit(contexts)
    tasks = await stage.settle(ids, SETTLE_S)
    _complete(stage, tasks)
    waits = []
    for task_id in ids:
        tries = [
            a for a in await stage.attempts(task_id) if a["step_name"] == "send_welcome_sequence"
        ]
        tries.sort(key=lambda a: a["attempt"])
        if len(tries) >= 2:
            waits.append(_seconds(tries[1]["started_at"]) - _seconds(tries[0]["ended_at"]))
    opened = stage.count(EventType.BREAKER_OPENED, service="notifications")
    stage.check(opened == 0, f"notifications' breaker stayed closed through {len(ids)} 429s")
    shortest = min(waits, default=0.0)
    stage.check(
        len(waits) == len(ids) and shortest >= retry_after - 0.05,
        f"every welcome waited the Retry-After before its retry: {len(waits)} waits, "
        f"shortest {shortest:.2f} s, longest {max(waits, default=0.0):.2f} s "
        f"(Retry-After {retry_after} s)",
    )
    await _no_duplicates(stage, contexts)


async def duplicate_signup(stage: Stage) -> None:
    """One person registers, then registers again: the 409 is checked against the existing
    user (same person: ``already_exists``, no second welcome). Someone else with the same
    e-mail is refused with ``USER_CONFLICT``, and nothing of theirs is written."""
    first = registrations(stage, 1, seed=14, plan="pro")[0]
    (ada,) = await stage.submit([first])
    await stage.settle([ada], SETTLE_S)
    before = await person(stage, email_of(first))
    impostor = {**first, "user_info": {**first["user_info"], "name": "Someone Else"}}
    stage.say("the same person registers again, and someone else signs up with their e-mail")
    again, other = await stage.submit([first, impostor])
    tasks = await stage.settle([ada, again, other], SETTLE_S)
    _complete(stage, tasks[:2], "registrations of the same person")
    account = _step(tasks[1], "create_user_account")
    found = (account.get("results") or {}).get("status")
    stage.check(found == "already_exists", f"the second registration found the account: {found}")
    welcome = (_step(tasks[1], "send_welcome_sequence").get("results") or {}).get("status")
    stage.check(welcome == "already_sent", f"the second welcome was not sent again: {welcome}")
    error = _step(tasks[2], "create_user_account").get("last_error") or {}
    stage.check(
        tasks[2]["state"] == "error" and error.get("error_code") == "USER_CONFLICT",
        f"someone else with that e-mail: {tasks[2]['state']}, {error.get('error_code')}",
    )
    after = await person(stage, email_of(first))
    stage.check(
        len(after.users) == 1
        and after.user is not None
        and after.user.get("name") == first["user_info"]["name"],
        f"users holds {len(after.users)} account for the e-mail, still named "
        f"{after.user.get('name') if after.user else None}",
    )
    stage.check(
        len(after.messages) == len(before.messages) and after.duplicate_messages == 0,
        f"notifications sent the person {len(after.messages)} messages, as after the first "
        f"registration ({len(before.messages)})",
    )


async def lost_responses(stage: Stage) -> None:
    """Every service does each write and then loses its answer (a connection reset); the retry
    carries the same Idempotency-Key and gets the first answer back. Three people: at most
    four lost answers in a row per service, under the breaker's five."""
    contexts = registrations(stage, 3, seed=15)
    writes = {"users": ("POST", "PATCH"), "billing": ("POST",), "preferences": ("POST",)}
    writes["notifications"] = ("POST",)
    for service, methods in writes.items():
        for method in methods:
            await stage.fault(
                service,
                {"kind": "lost_response", "times": 1, "per_key": True, "match": {"method": method}},
                f"does every {method}, then loses its answer once",
            )
    ids = await stage.submit(contexts)
    tasks = await stage.settle(ids, SETTLE_S)
    _complete(stage, tasks)
    replayed = stage.count(EventType.SERVICE_CALL_COMPLETED, replayed=True)
    stage.check(
        replayed >= 5 * len(ids),
        f"{replayed} answers were replayed by Idempotency-Key (five writes a registration)",
    )
    await _no_duplicates(stage, contexts)


async def crash_recovery(stage: Stage) -> None:
    """A burst with every call a little slow, so work is always in flight; the orchestrator is
    SIGKILLed a third of the way through and started again on the same database. Every
    registration completes, nothing is done twice, and no attempt is spent on the crash."""
    restart = stage.target.restart
    if restart is None:
        raise DemoError("crash-recovery kills the orchestrator: run it on a sandbox it starts")
    contexts = registrations(stage, 200, seed=16)
    for service in ("users", "billing", "preferences", "notifications"):
        await stage.fault(service, {"kind": "latency", "delay_ms": 50}, "every call takes 50 ms")
    ids = await stage.submit(contexts)
    third = len(ids) // 3
    seen = await stage.until(
        lambda e: e.type == EventType.TASK_COMPLETED and len(stage.finished) >= third,
        SETTLE_S,
        f"{third} registrations completed",
    )
    unfinished_at_kill = 0
    if seen is not None:
        unfinished_at_kill = len(ids) - len(stage.finished)
        stage.say(f"☠ {len(stage.finished)} done: SIGKILL to the orchestrator, mid-burst")
        await restart()
        stage.say("the orchestrator is back on the same database: it resumes what was running")
    tasks = await stage.settle(ids, SETTLE_S)
    stage.narrator.progress()
    stage.check(
        unfinished_at_kill > 0,
        f"the kill came mid-burst: {unfinished_at_kill} registrations were unfinished",
    )
    _complete(stage, tasks)
    lost = stage.count(EventType.STEP_WORKER_LOST)
    stage.check(lost > 0, f"the kill cut {lost} running steps short; each ran again")
    spent = [s["attempts"] for t in tasks for s in t["steps"]]
    stage.check(
        all(a == 1 for a in spent),
        f"no attempt was spent on the crash: every step counts {max(spent, default=0)} attempt",
    )
    await _no_duplicates(stage, contexts)


async def permanent_failure(stage: Stage) -> None:
    """A disposable e-mail domain is refused at once: a permanent error is not retried, and no
    service holds anything of the person."""
    contexts = registrations(stage, 2, seed=17, domain="mailinator.com")
    ids = await stage.submit(contexts)
    tasks = await stage.settle(ids, SETTLE_S)
    failed = [t for t in tasks if t["state"] == "error"]
    stage.check(len(failed) == len(ids), f"{len(failed)} of {len(ids)} registrations failed")
    account = [_step(t, "create_user_account") for t in tasks]
    codes = {(s.get("last_error") or {}).get("error_code") for s in account}
    stage.check(codes == {"BLOCKED_EMAIL_DOMAIN"}, f"error code {', '.join(map(str, codes))}")
    stage.check(
        all(s["attempts"] == 1 for s in account),
        "each failed on its first attempt, without a retry",
    )
    others = {s["state"] for t in tasks for s in t["steps"] if s["name"] != "create_user_account"}
    stage.check(others <= {"pending", "cancelled"}, f"no later step ran: {sorted(others)}")
    records = await people(stage, [email_of(c) for c in contexts])
    stage.check(
        all(r.untouched for r in records),
        f"no service holds anything of them ({sum(r.untouched for r in records)} untouched)",
    )
    calls = await requests_of_run(stage)
    stage.check(
        not any(calls.values()),
        "no service was even called: "
        + ", ".join(f"{name} {n} requests" for name, n in calls.items()),
    )


async def graceful_degradation(stage: Stage) -> None:
    """Preferences is down for good. Preferences is not critical: the step ends degraded, the
    welcome goes out with the default preferences, the registration completes. Once
    preferences is back an operator retries the step, and the person's choices are stored.
    One person: three failures, short of opening the breaker (which would only slow it)."""
    (context,) = registrations(stage, 1, seed=18, plan="pro")
    context["preferences"] = {"marketing_emails": True, "newsletter": True}
    rule = await stage.fault("preferences", {"kind": "down"}, "down for good (503)")
    (task_id,) = await stage.submit([context])
    (task,) = await stage.settle([task_id], SETTLE_S)
    stage.check(
        task["state"] == "complete" and task.get("degraded_steps") == ["initialize_preferences"],
        f"the registration ended {task['state']}, degraded: {task.get('degraded_steps')}",
    )
    welcome = _step(task, "send_welcome_sequence").get("results") or {}
    stage.check(
        welcome.get("status") == "sent" and welcome.get("default_preferences") is True,
        "the welcome went out with the default preferences",
    )
    await stage.remove_fault("preferences", rule, "preferences is back up")
    before = await person(stage, email_of(context))  # read with the service up: a real answer
    stage.check(before.preferences is None, "preferences holds nothing for them yet")
    stage.say("an operator retries initialize_preferences")
    stage.finished.pop(task_id, None)
    await stage.api("POST", f"/tasks/{task_id}/steps/initialize_preferences/retry")
    (task,) = await stage.settle([task_id], SETTLE_S)
    prefs = _step(task, "initialize_preferences")
    stage.check(prefs["state"] == "complete", f"the retried step is {prefs['state']}")
    after = await person(stage, email_of(context))
    stored = (after.preferences or {}).get("preferences", {})
    stage.check(
        stored.get("marketing_emails") is True and stored.get("newsletter") is True,
        f"preferences now holds the person's choices: {stored or None}",
    )
    stage.check(
        len(after.messages) == len(before.messages),
        f"the welcome was not sent again ({len(after.messages)} messages)",
    )


async def sequential_vs_diamond(stage: Stage) -> None:
    """The same registrations as a chain and as the diamond, at once, with billing and
    preferences each taking 300 ms: the diamond runs the two side by side and saves the
    shorter one's time on every registration (measured from the tasks' own timings)."""
    latency_ms = 300
    for service in ("billing", "preferences"):
        await stage.fault(
            service,
            {"kind": "latency", "delay_ms": latency_ms, "match": {"method": "POST"}},
            f"every write takes {latency_ms} ms",
        )
    chain = registrations(stage, 5, seed=19)
    diamond = registrations(stage, 5, seed=20)
    chain_ids, diamond_ids = await asyncio.gather(
        stage.submit(chain, SEQUENTIAL_TEMPLATE_NAME), stage.submit(diamond, TEMPLATE_NAME)
    )
    chained = await stage.settle(chain_ids, SETTLE_S)
    diamonds = await stage.settle(diamond_ids, SETTLE_S)
    _complete(stage, chained + diamonds)
    chained = [t for t in chained if t["state"] == "complete"]
    diamonds = [t for t in diamonds if t["state"] == "complete"]
    if not (chained and diamonds):
        stage.check(False, "both shapes completed a registration to measure")
        return
    chain_ms = statistics.mean(_duration_ms(t) for t in chained)
    diamond_ms = statistics.mean(_duration_ms(t) for t in diamonds)
    saved = chain_ms - diamond_ms
    stage.say(f"chain {chain_ms:.0f} ms, diamond {diamond_ms:.0f} ms per registration (mean)")
    stage.check(
        saved >= 0.6 * latency_ms,
        f"the diamond saved {saved:.0f} ms per registration ({saved / chain_ms:.0%}); the "
        f"branches' overlap is worth up to {latency_ms} ms",
    )
    overlap = statistics.mean(
        float((t.get("summary") or {}).get("parallel_saved_ms") or 0) for t in diamonds
    )
    stage.check(
        overlap >= 0.6 * latency_ms,
        f"the diamond's own summary counts {overlap:.0f} ms saved by the parallel branches",
    )
    await _no_duplicates(stage, chain + diamond)


def _seconds(at: str) -> float:
    return datetime.fromisoformat(at).timestamp()


def _duration_ms(task: JSON) -> float:
    return (_seconds(task["completed_at"]) - _seconds(task["created_at"])) * 1000


def _demo(
    name: str,
    title: str,
    script: Callable[[Stage], Awaitable[None]],
    *,
    needs_restart: bool = False,
) -> Demo:
    story = " ".join((inspect.getdoc(script) or "").split()).replace("``", "")
    return Demo(name, title, story, script, needs_restart)


DEMOS: Final = (
    _demo("billing-outage", "Billing outage: the breaker opens and closes", billing_outage),
    _demo("flaky-email", "Flaky e-mail: backoff finishes the job", flaky_email),
    _demo("rate-limited", "Rate-limited notifications: Retry-After honoured", rate_limited),
    _demo("duplicate-signup", "Duplicate sign-up: a verified 409", duplicate_signup),
    _demo("lost-responses", "Lost responses: idempotency keys, exactly once", lost_responses),
    _demo(
        "crash-recovery", "Crash recovery: SIGKILL mid-burst", crash_recovery, needs_restart=True
    ),
    _demo("permanent-failure", "Permanent failure: refused, nothing written", permanent_failure),
    _demo("graceful-degradation", "Graceful degradation: preferences down", graceful_degradation),
    _demo(
        "sequential-vs-diamond", "Sequential vs diamond: what parallel saves", sequential_vs_diamond
    ),
)
BY_NAME: Final = {demo.name: demo for demo in DEMOS}
