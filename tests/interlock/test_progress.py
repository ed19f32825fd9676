"""The long commands' progress: what a phase says, and a line redrawn from a timer."""

from __future__ import annotations

import asyncio
import io

from interlock.progress import Progress, StatusLine, shown


def test_a_phase_says_how_far_it_is() -> None:
    progress = Progress()
    progress.begin("engine: 3,000 workflows", 3000)
    progress.advance(1100)
    assert progress.describe().startswith("engine: 3,000 workflows: 1,100/3,000  (")
    progress.begin("dashboard: opening the task list")
    assert progress.describe().startswith("dashboard: opening the task list  (")


async def test_the_line_is_redrawn_while_inside_and_cleared_after() -> None:
    out = io.StringIO()
    progress = Progress()
    async with shown(progress, StatusLine(out, tty=True)):
        progress.begin("burst", 10)
        for _ in range(3):
            progress.advance()
            await asyncio.sleep(0.25)
    text = out.getvalue()
    assert "\rburst: 3/10" in text or "\rburst: 2/10" in text
    assert text.endswith("\r")  # cleared: what follows starts on a line of its own


async def test_without_a_line_nothing_is_drawn() -> None:
    async with shown(Progress(), None) as progress:
        progress.begin("quiet", 1)
    assert progress.phase == "quiet"
