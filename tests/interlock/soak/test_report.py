"""The soak's report as text: every figure on a line of its own, the verdict last."""

from __future__ import annotations

from interlock.audit import Audit, PersonAudit, ServiceStats
from interlock.soak.report import format_report
from interlock.soak.verdict import Kill, Resubmission, StepEnd, Submission, TaskEnd, judge

STEPS = ("create_user_account", "update_user_status")


def run(*, duplicated: bool, workers: tuple[str, ...] = ("orchestrator",)) -> str:
    people = [
        PersonAudit("a@example.com", 1, "u1", "active", True, "pro", True, 2, 1, 0),
        PersonAudit("b@example.com", 1, "u2", "pending", False, None, False, 0, 0, 0),
    ]
    if duplicated:
        people[0] = PersonAudit("a@example.com", 1, "u1", "active", True, "pro", True, 4, 2, 2)
    failed = StepEnd(
        "create_user_account", "error", 3, 3, "HTTP_503", "retryable", ("HTTP_503",) * 3
    )
    tasks = [
        TaskEnd(
            "t1", "complete", tuple(StepEnd(n, "complete", 1, 3, completions=1) for n in STEPS)
        ),
        TaskEnd("t2", "error", (failed, StepEnd("update_user_status", "cancelled", 0, 3))),
    ]
    submissions = [
        Submission("k1", "a@example.com", "t1", 1),
        Submission("k2", "b@example.com", "t2", 2),
    ]
    again = {"k1": Resubmission("t1", False), "k2": Resubmission("t2", False)}
    stats = {"users": ServiceStats("users", 9, {"error": 3, "latency": 2}, 1)}
    return format_report(
        judge(
            submissions,
            tasks,
            again,
            Audit(tuple(people), stats),
            [Kill(1.0, 0.5, workers[0])],
            elapsed_s=2.0,
            breaker_openings={"users": 1},
            workers=workers,
        )
    )


def test_a_passing_report_gives_every_figure_and_the_verdict() -> None:
    text = run(duplicated=False)
    lines = text.splitlines()
    assert lines[0] == "registrations   2 in 2.0 s (1.0/s), 2 tasks"
    assert lines[1].startswith("kills           1 (SIGKILL + restart; down 0.5 s in all)")
    assert lines[2].startswith("submissions     1 retried with their key")
    assert "workers" not in text  # one orchestrator: nothing to tell apart
    assert "  create_user_account: HTTP_503" in text
    assert "faults fired    error 3, latency 2" in text
    assert "breakers opened users 1" in text
    assert lines[-1].startswith("verdict         PASS")


def test_a_failing_report_lists_what_broke() -> None:
    text = run(duplicated=True)
    assert "duplicated      2" in text
    assert text.splitlines()[-2:] == [
        "verdict         FAIL",
        "  1 people with duplicate records: a@example.com",
    ]


def test_with_several_workers_it_says_which_each_kill_hit() -> None:
    lines = run(duplicated=False, workers=("soak-w1", "soak-w2")).splitlines()
    assert lines[2] == "workers         2 on one database, killed in turn: soak-w1 1, soak-w2 0"
