"""The event contract: one enum, documented member by member, and docs/events.md in step."""

from __future__ import annotations

import re
from pathlib import Path

import orchestrator.event_types as module
from orchestrator.event_types import (
    BREAKER_EVENTS,
    SERVICE_CALL_END_EVENTS,
    TASK_END_EVENTS,
    EventType,
)

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> dict[str, str]:
    """Each member's value and its ``#:`` comment lines, read from the source."""
    found: dict[str, str] = {}
    doc: list[str] = []
    for line in Path(module.__file__).read_text(encoding="utf-8").splitlines():
        if m := re.match(r"\s+#: ?(.*)", line):
            doc.append(m.group(1))
        elif m := re.match(r'\s+[A-Z_]+ = "([a-z_.]+)"', line):
            found[m.group(1)] = " ".join(doc)
            doc = []
        elif not line.strip().startswith("#"):
            doc = []
    return found


def test_every_member_is_documented() -> None:
    documented = _documented()
    assert set(documented) == {t.value for t in EventType}
    assert all(documented.values())


def test_docs_list_every_type_with_its_fields() -> None:
    page = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \| (.*) \|$", page, flags=re.M))
    assert rows == _documented()


def test_the_named_sets() -> None:
    assert {t.value for t in TASK_END_EVENTS} == {"task.completed", "task.failed", "task.cancelled"}
    assert all(t.value.startswith("breaker.") for t in BREAKER_EVENTS) and len(BREAKER_EVENTS) == 3
    assert all(t.value.startswith("service_call.") for t in SERVICE_CALL_END_EVENTS)
