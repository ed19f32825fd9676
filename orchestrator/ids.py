"""Task ids that sort by creation time (UUID version 7, RFC 9562).

A random UUID4 key lands on a random page of every index that starts with the task id (events,
attempts, steps, the tasks key itself), so each commit dirtied a page per index per task and
the WAL carried them all to disk. Time-ordered ids put the keys of all recent tasks, which are the
ones being written, together at the right edge of those indexes: fewer pages per commit, and the
same ones commit after commit. They are still UUIDs, unique and unguessable in their random part.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_MASK = 0xF << 76
_VARIANT_MASK = 0x3 << 62


def new_task_id() -> str:
    """48 bits of Unix time in ms, then 74 random bits, with the version and variant fields."""
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = (value & ~_VERSION_MASK) | (0x7 << 76)
    value = (value & ~_VARIANT_MASK) | (0x2 << 62)
    return str(uuid.UUID(int=value))


def short_id(task_id: str) -> str:
    """Eight characters to tell tasks apart in a log line: the *last* eight, because the first
    ones of a UUIDv7 are its timestamp and tasks created together share them."""
    return task_id[-8:]
