"""The sequential registration: the diamond's steps in a chain, the baseline of the demo."""

from __future__ import annotations

from interlock.registration.template import SEQUENTIAL_TEMPLATE_NAME
from interlock.sandbox import Orchestrator
from mock_services.payloads import RegistrationFaker
from orchestrator.models import TaskState


async def test_preferences_starts_only_after_billing_finished(
    orch: Orchestrator, fake: RegistrationFaker
) -> None:
    sub, state = await orch.engine.run(SEQUENTIAL_TEMPLATE_NAME, fake.registration(), timeout_s=20)
    assert state is TaskState.COMPLETE
    task = await orch.engine.get_task(sub.task_id)
    assert task.degraded_steps == []  # every step did its work: nothing fell back
    attempts = {a.step_name: a for a in await orch.engine.attempts(sub.task_id)}
    billing, prefs = attempts["setup_billing_profile"], attempts["initialize_preferences"]
    assert prefs.started_at >= billing.ended_at
    depends_on = {s.name: s.depends_on for s in task.steps}
    assert depends_on["initialize_preferences"] == ("create_user_account", "setup_billing_profile")
