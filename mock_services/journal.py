"""What a service saw: a bounded journal of requests, counters, and one JSON log line each."""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import asdict, dataclass

ACCESS_LOG = logging.getLogger("mock_services.access")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the service handled it. ``status`` is None when no response was sent."""

    seq: int
    at: str  #: ISO-8601 UTC time the request arrived
    service: str
    method: str
    path: str
    status: int | None
    duration_ms: float
    correlation_id: str
    idempotency_key: str | None
    fault: str | None  #: the fault kinds that fired, comma-separated
    replayed: bool  #: answered from the idempotency store


class RequestJournal:
    """The last ``size`` requests, plus totals that outlive the window."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"journal size must be >= 1, got {size}")
        self._records: deque[RequestRecord] = deque(maxlen=size)
        self.total = 0
        self.by_status: dict[str, int] = {}

    def record(self, record: RequestRecord) -> None:
        self._records.append(record)
        self.total += 1
        key = str(record.status) if record.status is not None else "no_response"
        self.by_status[key] = self.by_status.get(key, 0) + 1
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            ACCESS_LOG.info(json.dumps(asdict(record), separators=(",", ":")))

    def recent(self, limit: int) -> list[RequestRecord]:
        return list(self._records)[-limit:]

    def next_seq(self) -> int:
        return self.total + 1

    def clear(self) -> None:
        self._records.clear()
        self.total = 0
        self.by_status.clear()
