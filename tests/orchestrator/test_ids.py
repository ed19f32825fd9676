"""Task ids: UUID version 7, so recent tasks' index keys sit together."""

from __future__ import annotations

import time
import uuid

from orchestrator.ids import new_task_id, short_id


def test_ids_are_version_7_uuids_and_unique() -> None:
    ids = [new_task_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    for text in ids[:10]:
        parsed = uuid.UUID(text)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == text


def test_ids_sort_by_creation_time() -> None:
    before = time.time()
    first = new_task_id()
    time.sleep(0.003)  # ids within one millisecond share their time part
    second = new_task_id()
    assert first < second
    millis = uuid.UUID(first).int >> 80
    assert abs(millis / 1000 - before) < 1


def test_short_ids_of_tasks_created_together_differ() -> None:
    ids = [new_task_id() for _ in range(50)]
    assert len({short_id(i) for i in ids}) == 50
    assert all(len(short_id(i)) == 8 and i.endswith(short_id(i)) for i in ids)
