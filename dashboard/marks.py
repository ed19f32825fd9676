"""The meaning that never changes: one mark, colour and word per state, everywhere on screen.

Colour is never the only signal: every state has its mark and its word too, for monochrome
terminals and colour-blind operators. Task states, step states and the refinements the dashboard
adds (``retrying``, ``deferred``, ``degraded``, ``already_exists``) share this one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Mark:
    symbol: str
    style: str  #: a Rich style
    word: str


MARKS: Final[dict[str, Mark]] = {
    "complete": Mark("✓", "green", "complete"),
    "already_exists": Mark("≡", "green", "already exists"),
    "resolved_manually": Mark("✓", "green italic", "resolved"),
    "in_progress": Mark("●", "dodger_blue1", "running"),
    "running": Mark("●", "dodger_blue1", "running"),
    "waiting_for_retry": Mark("⟳", "yellow", "retrying"),
    "retrying": Mark("⟳", "yellow", "retrying"),
    "deferred": Mark("⏸", "magenta", "deferred"),
    "error": Mark("✗", "red", "failed"),
    "cancelled": Mark("⊘", "bright_black", "cancelled"),
    "pending": Mark("·", "bright_black", "pending"),
    "degraded": Mark("◐", "dark_orange", "degraded"),
}

UNKNOWN: Final = Mark("?", "white", "unknown")


def mark(state: str) -> Mark:
    """The mark of a state; a state this dashboard does not know keeps its own name."""
    found = MARKS.get(state)
    return found if found is not None else Mark(UNKNOWN.symbol, UNKNOWN.style, state)


#: Attempt outcomes in the timeline and the step detail.
OUTCOME_STYLES: Final[dict[str, str]] = {
    "running": "dodger_blue1",
    "completed": "green",
    "retry": "yellow",
    "failed": "red",
    "lost": "magenta",
}
