"""Deterministic task views and events for the dashboard's pure tests and its snapshots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dashboard.model import DashEvent, TaskModel

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
DIAMOND = (
    ("create_user_account", (), 3),
    ("setup_billing_profile", ("create_user_account",), 3),
    ("initialize_preferences", ("create_user_account",), 3),
    ("send_welcome_sequence", ("setup_billing_profile", "initialize_preferences"), 5),
    ("update_user_status", ("send_welcome_sequence",), 3),
)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def view(task_id: str = "t_0000000001", email: str = "ann@example.com") -> dict[str, Any]:
    return {
        "task_id": task_id,
        "name": "user_registration",
        "namespace": "microservices",
        "version": "1.0.0",
        "state": "pending",
        "correlation_id": f"corr-{task_id[-4:]}",
        "context": {"user_info": {"email": email, "name": "Ann"}},
        "created_at": iso(T0),
        "completed_at": None,
        "summary": None,
        "steps": [
            {
                "name": n,
                "depends_on": list(d),
                "max_attempts": m,
                "state": "pending",
                "attempts": 0,
                "results": None,
                "last_error": None,
                "next_attempt_at": None,
            }
            for n, d, m in DIAMOND
        ],
    }


class Script:
    """Builds a task's events in order, with increasing seq and times relative to T0."""

    def __init__(self, task_id: str = "t_0000000001", seq: int = 0) -> None:
        self.task_id = task_id
        self.seq = seq
        self.events: list[DashEvent] = []

    def add(
        self, t: float, type_: str, step: str | None = None, attempt: int | None = None, **data: Any
    ) -> Script:
        self.seq += 1
        self.events.append(
            DashEvent(
                self.seq,
                T0 + t,
                type_,
                self.task_id,
                step,
                f"corr-{self.task_id[-4:]}",
                attempt,
                data,
            )
        )
        return self

    def run(
        self,
        t: float,
        step: str,
        attempt: int = 1,
        took: float = 0.01,
        service: str = "users",
        status: int = 201,
    ) -> Script:
        self.add(t, "step.started", step, attempt, worker_id="w")
        self.add(
            t, "service_call.started", step, attempt, service=service, method="POST", path="/x"
        )
        self.add(
            t + took,
            "service_call.completed",
            step,
            attempt,
            service=service,
            method="POST",
            path="/x",
            status=status,
            duration_ms=took * 1000,
            replayed=False,
        )
        return self.add(t + took, "step.completed", step, attempt, duration_s=took)

    def fail(
        self,
        t: float,
        step: str,
        attempt: int,
        delay: float,
        status: int = 503,
        service: str = "billing",
    ) -> Script:
        error = {
            "kind": "retryable",
            "error_code": f"HTTP_{status}",
            "message": f"{service} answered {status}",
            "http_status": status,
        }
        self.add(t, "step.started", step, attempt, worker_id="w")
        self.add(
            t + 0.002,
            "service_call.failed",
            step,
            attempt,
            service=service,
            method="POST",
            path="/profiles",
            status=status,
            duration_ms=2,
            retryable=True,
            error_code=f"HTTP_{status}",
            message=error["message"],
            http_status=status,
        )
        return self.add(
            t + 0.003,
            "step.retry_scheduled",
            step,
            attempt,
            error=error,
            next_attempt_at=iso(T0 + t + 0.003 + delay),
            delay_s=delay,
        )


def diamond_retrying() -> tuple[TaskModel, Script]:
    """Account made, preferences done, billing waiting 1.2 s for its second attempt."""
    s = Script().add(0, "task.created", name="user_registration", context={})
    s.add(0.001, "task.started")
    s.run(0.001, "create_user_account", took=0.04)
    s.run(0.05, "initialize_preferences", took=0.02, service="preferences")
    s.fail(0.05, "setup_billing_profile", 1, 1.2)
    model = TaskModel.from_view(view(), as_created=True).apply_all(s.events)
    return model, s
