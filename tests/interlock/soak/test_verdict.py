"""The soak's verdict rules, on hand-made facts: each broken rule is named, a clean run passes."""

from __future__ import annotations

import dataclasses

import pytest

from interlock.audit import Audit, PersonAudit, ServiceStats
from interlock.soak.verdict import (
    Kill,
    Resubmission,
    StepEnd,
    Submission,
    TaskEnd,
    explain,
    judge,
)

STEPS = (
    "create_user_account",
    "setup_billing_profile",
    "initialize_preferences",
    "send_welcome_sequence",
    "update_user_status",
)


def done(name: str, *, lost: int = 0, completions: int = 1) -> StepEnd:
    return StepEnd(name, "complete", 1, 3, lost_attempts=lost, completions=completions)


def ran_out(name: str, code: str = "HTTP_503", state: str = "error") -> StepEnd:
    return StepEnd(name, state, 3, 3, code, "retryable", (code,) * 3)


def task(i: int, state: str = "complete", **changed: StepEnd) -> TaskEnd:
    return TaskEnd(f"t{i}", state, tuple(changed.get(n, done(n)) for n in STEPS))


def person(i: int, **changes: object) -> PersonAudit:
    base = PersonAudit(f"p{i}@example.com", 1, f"u{i}", "active", True, "free", True, 1, 1, 0)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def facts(
    n: int = 3,
) -> tuple[list[Submission], list[TaskEnd], dict[str, Resubmission], list[PersonAudit]]:
    submissions = [Submission(f"k{i}", f"p{i}@example.com", f"t{i}", 1) for i in range(n)]
    tasks = [task(i) for i in range(n)]
    again = {f"k{i}": Resubmission(f"t{i}", created=False) for i in range(n)}
    return submissions, tasks, again, [person(i) for i in range(n)]


def audit(people: list[PersonAudit]) -> Audit:
    stats = {
        "users": ServiceStats("users", 10, {"error": 2, "latency": 5}, 1),
        "billing": ServiceStats("billing", 10, {"error": 1, "reset": 1}, 2),
    }
    return Audit(tuple(people), stats)


def test_a_clean_run_passes_with_its_figures() -> None:
    submissions, tasks, again, people = facts()
    submissions[1] = dataclasses.replace(submissions[1], tries=3, found_existing=True)
    tasks[0] = task(0, create_user_account=done("create_user_account", lost=2))
    kills = [Kill(1.5, 0.5), Kill(3.0, 0.75)]

    openings = {"users": 0, "preferences": 1}
    report = judge(
        submissions, tasks, again, audit(people), kills, elapsed_s=4.321, breaker_openings=openings
    )

    assert report.ok and report.problems == ()
    assert (report.registrations, report.tasks, report.complete, report.failed) == (3, 3, 3, 0)
    assert (report.kills, report.kill_at_s, report.down_s) == (2, (1.5, 3.0), 1.25)
    assert report.kill_workers == ("orchestrator",) * 2 and report.workers == ("orchestrator",)
    assert (report.submissions_retried, report.submissions_found_existing) == (1, 1)
    assert report.lost_attempts == 2
    assert report.breaker_openings == {"preferences": 1}
    assert report.faults_fired == {"error": 3, "latency": 5, "reset": 1}
    assert report.faults_fired_by_service["billing"] == {"error": 1, "reset": 1}
    assert report.idempotent_replays == 3
    assert report.elapsed_s == 4.32
    assert (report.lost, report.duplicated, report.failed_by_kill, report.unexplained) == (0,) * 4


def test_failures_from_faults_alone_and_a_degraded_step_pass() -> None:
    submissions, tasks, again, people = facts()
    tasks[1] = task(1, "error", setup_billing_profile=ran_out("setup_billing_profile"))
    people[1] = person(1, profile=False, messages=0, welcome_messages=0, user_status="pending")
    prefs = ran_out("initialize_preferences", "CONNECTION_ERROR", state="degraded")
    tasks[2] = task(2, initialize_preferences=prefs)
    people[2] = person(2, preferences=False)

    report = judge(submissions, tasks, again, audit(people), [], elapsed_s=1)

    assert report.ok, report.problems
    assert (report.complete, report.degraded, report.failed) == (2, 1, 1)
    assert report.failed_why == {
        "setup_billing_profile: HTTP_503": 1,
        "initialize_preferences: CONNECTION_ERROR": 1,
    }


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (ran_out("send_welcome_sequence", "WORKER_LOST_REPEATEDLY"), "WORKER_LOST_REPEATEDLY"),
        (ran_out("send_welcome_sequence", "USER_CONFLICT"), "USER_CONFLICT, not an injected"),
        (
            dataclasses.replace(ran_out("send_welcome_sequence"), attempts=1),
            "HTTP_503 after 1 of 3 attempts",
        ),
        (
            dataclasses.replace(
                ran_out("send_welcome_sequence"), attempt_codes=("HTTP_503", "TIMEOUT")
            ),
            "attempts failed with TIMEOUT",
        ),
        (dataclasses.replace(ran_out("send_welcome_sequence"), error_code=None), "no error"),
    ],
)
def test_a_failure_the_faults_do_not_explain_says_why(step: StepEnd, reason: str) -> None:
    assert reason in (explain(step) or "")
    assert explain(ran_out("send_welcome_sequence", "HTTP_429")) is None


def test_a_kill_that_fails_a_registration_is_named_apart() -> None:
    submissions, tasks, again, people = facts()
    lost = ran_out("update_user_status", "WORKER_LOST_REPEATEDLY")
    tasks[0] = task(0, "error", update_user_status=lost)
    tasks[1] = task(1, "error", update_user_status=ran_out("update_user_status", "CONFLICT"))

    report = judge(submissions, tasks, again, audit(people), [], elapsed_s=1)

    assert (report.failed_by_kill, report.unexplained) == (1, 1)
    assert report.problems == (
        "1 failed by a kill: p0@example.com (update_user_status: WORKER_LOST_REPEATEDLY)",
        "1 failures the faults do not explain: p1@example.com (update_user_status: CONFLICT, "
        "not an injected fault)",
    )


def test_lost_keys_extra_tasks_and_duplicates_fail_the_run() -> None:
    submissions, tasks, again, people = facts(4)
    submissions[0] = dataclasses.replace(submissions[0], task_id=None)  # never acknowledged
    again["k1"] = Resubmission("t9", created=True)  # the key made a second task
    tasks = [t for t in tasks if t.task_id not in ("t0", "t2")]  # t2: acknowledged, then gone
    tasks.append(task(7))  # a task no key was acknowledged with
    people[3] = person(3, users_found=2, duplicate_messages=1)
    tasks[0] = task(1, send_welcome_sequence=done("send_welcome_sequence", completions=2))

    report = judge(submissions, tasks, again, audit(people), [], elapsed_s=1)

    assert not report.ok
    assert report.lost == 3
    # The extra user, the repeated message, the extra task, the step that completed twice.
    assert report.duplicated == 4
    assert report.problems == (
        "3 keys without exactly one task: k0; k1; k2",
        "1 tasks no key was acknowledged with: t7",
        "1 people with duplicate records: p3@example.com",
        "1 steps completed more than once: t1 send_welcome_sequence",
    )


def test_unfinished_tasks_and_records_that_contradict_the_outcome_fail_the_run() -> None:
    submissions, tasks, again, people = facts()
    tasks[0] = dataclasses.replace(tasks[0], state="in_progress")
    people[1] = person(1, user_status="pending", welcome_messages=0)
    people[2] = person(2, preferences=False)  # complete, preferences not degraded

    report = judge(submissions, tasks, again, audit(people), [], elapsed_s=1)

    assert report.unfinished == 1 and report.mismatched == 2
    assert report.problems == (
        "1 tasks not terminal: t0",
        "2 outcomes the services' records contradict: p1@example.com (complete, but user "
        "pending, no welcome); p2@example.com (complete, but no preferences)",
    )


def test_a_problem_line_names_a_few_examples_and_counts_the_rest() -> None:
    submissions, _, again, people = facts(8)
    report = judge(submissions, [], again, audit(people), [], elapsed_s=1)
    assert report.problems == ("8 keys without exactly one task: k0; k1; k2; k3; k4; and 3 more",)
