"""Fault-injection demos that check themselves: ``interlock demo NAME``, or from the dashboard.

Each demo (:mod:`interlock.demos.catalog`) prepares its faults, submits its registrations,
narrates what happens from the event stream (:mod:`interlock.demos.narrator`) and ends with a
verdict checked against the services' own records (:mod:`interlock.demos.records`). A demo is
an HTTP client of a running sandbox (:mod:`interlock.demos.stage`): the one ``interlock demo``
starts, one started by hand, or the dashboard's.
"""

from __future__ import annotations

import time

from interlock.demos.catalog import BY_NAME, DEMOS, Demo
from interlock.demos.stage import Check, DemoError, Narrate, Target, Verdict, staged

__all__ = ["BY_NAME", "DEMOS", "Check", "Demo", "DemoError", "Target", "Verdict", "run_demo"]


async def run_demo(demo: Demo, target: Target, narrate: Narrate) -> Verdict:
    """Run ``demo`` against ``target``, narrating to ``narrate``; its verdict. The demo's
    fault rules are removed at the end, however it ended. :class:`DemoError` when it could
    not be run at all (the sandbox unreachable or not ready, no way to restart the
    orchestrator); a sandbox that fails it once it runs (a service whose records cannot be
    read) is a failed check of the verdict."""
    if demo.needs_restart and target.restart is None:
        raise DemoError(
            f"{demo.name} kills the orchestrator: it needs a sandbox it started "
            "(`interlock demo` without --attach, or the dashboard without --attach)"
        )
    started = time.monotonic()
    async with staged(target, narrate) as stage:
        stage.say(demo.title)
        try:
            await demo.script(stage)
        except DemoError as exc:  # the sandbox answered the demo, then failed it: a verdict
            stage.check(False, f"the demo could not go on: {exc}")
    return Verdict(demo.name, tuple(stage.checks), time.monotonic() - started)
