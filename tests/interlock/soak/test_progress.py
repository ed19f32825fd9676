"""The soak's status line: redrawn in place on a terminal, a line now and then in a log."""

from __future__ import annotations

import io
from dataclasses import replace

from interlock import progress
from interlock.soak.progress import SoakStatus, StatusLine

STATUS = SoakStatus(
    elapsed_s=3.25,
    registrations=100,
    acknowledged=40,
    complete=30,
    failed=1,
    running=9,
    kills_done=1,
    kills=2,
    down=("orchestrator",),
    open_breakers=("users",),
)


def test_the_status_says_where_the_soak_stands() -> None:
    assert STATUS.describe() == (
        "soak    3.2 s: submitted 40/100, complete 30, failed 1, running 9, kills 1/2, "
        "breaker open: users (orchestrator down)"
    )


def test_with_several_workers_it_names_the_one_down() -> None:
    status = replace(STATUS, down=("soak-w2",), open_breakers=())
    assert status.describe().endswith("kills 1/2 (soak-w2 down)")


def test_on_a_terminal_the_line_is_redrawn_and_a_note_clears_it() -> None:
    out = io.StringIO()
    line = StatusLine(out, tty=True)
    line.update(STATUS)
    line.note("kill 1/2")
    line.close()
    text = STATUS.describe()
    assert out.getvalue() == f"\r{text}\r{' ' * len(text)}\rkill 1/2\n"


def test_in_a_log_a_line_is_written_at_most_every_few_seconds() -> None:
    now = [100.0]
    out = io.StringIO()
    line = StatusLine(out, tty=False, clock=lambda: now[0])
    line.update(STATUS)
    now[0] += 1
    line.update(STATUS)  # too soon: not written
    now[0] += progress.LINE_EVERY_S
    line.update(STATUS)
    line.close()
    assert out.getvalue() == f"{STATUS.describe()}\n" * 2
