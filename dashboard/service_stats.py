"""Per service: requests/s, error rate and latency as the orchestrator saw them; breakers.

The numbers come from the ``service_call.*`` events (the calls the engine made, with their status
and ``duration_ms``), so they cost the services nothing and include injected latency. They are
kept in one-second buckets over the last :data:`WINDOW_S` seconds: the rate is the mean of the
last few buckets, the sparkline one mean latency per bucket. Breaker state comes from
``GET /breakers`` once and then from the ``breaker.*`` events; active faults from the services'
admin API (``GET /__admin/faults``), polled by the app: four small requests, not one per task.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from dashboard.model import DashEvent, parse_time
from orchestrator.event_types import BREAKER_EVENTS, SERVICE_CALL_END_EVENTS, EventType

#: Seconds of history kept per service.
WINDOW_S: Final = 60
#: Seconds the request rate and error rate are averaged over.
RATE_S: Final = 5


@dataclass(slots=True)
class Bucket:
    second: int
    calls: int = 0
    errors: int = 0
    latency_ms: float = 0.0
    rate_limited: int = 0


@dataclass(slots=True)
class ServiceHealth:
    """One service as the panel shows it."""

    name: str
    buckets: deque[Bucket] = field(default_factory=lambda: deque(maxlen=WINDOW_S))
    breaker: str = "closed"
    open_until: float | None = None
    failures: int = 0
    faults: list[Mapping[str, Any]] = field(default_factory=list)
    reachable: bool | None = None  #: None until the admin API was asked
    last_status: int | None = None

    def record(self, second: int, status: int | None, ok: bool, duration_ms: float) -> None:
        if not self.buckets or self.buckets[-1].second < second:
            self.buckets.append(Bucket(second))
        bucket = self.buckets[-1]  # a late event counts in the newest bucket
        bucket.calls += 1
        bucket.errors += 0 if ok else 1
        bucket.rate_limited += 1 if status == 429 else 0
        bucket.latency_ms += duration_ms
        self.last_status = status

    def _recent(self, now: float) -> list[Bucket]:
        horizon = int(now) - RATE_S
        return [b for b in self.buckets if b.second > horizon]

    def rate(self, now: float) -> float:
        """Calls per second over the last :data:`RATE_S` seconds."""
        return sum(b.calls for b in self._recent(now)) / RATE_S

    def error_rate(self, now: float) -> float:
        recent = self._recent(now)
        calls = sum(b.calls for b in recent)
        return sum(b.errors for b in recent) / calls if calls else 0.0

    def rate_limited(self, now: float) -> bool:
        return any(b.rate_limited for b in self._recent(now))

    def latency_ms(self, now: float) -> float | None:
        recent = self._recent(now)
        calls = sum(b.calls for b in recent)
        return sum(b.latency_ms for b in recent) / calls if calls else None

    def sparkline(self, now: float, width: int) -> list[float]:
        """Mean latency per second for the last ``width`` seconds (0 where no call was made)."""
        by_second = {b.second: (b.latency_ms / b.calls if b.calls else 0.0) for b in self.buckets}
        start = int(now) - width + 1
        return [by_second.get(s, 0.0) for s in range(start, start + width)]


class ServiceBoard:
    """Every service's health, fed by events, breaker views and fault listings."""

    def __init__(self, names: Iterable[str]) -> None:
        self.services: dict[str, ServiceHealth] = {n: ServiceHealth(n) for n in names}
        self.version = 0

    def _service(self, name: str) -> ServiceHealth:
        if name not in self.services:
            self.services[name] = ServiceHealth(name)
        return self.services[name]

    def apply(self, event: DashEvent) -> str | None:
        """Fold an event in; returns an alert to show (a breaker opened, closed...) or None."""
        if event.type in SERVICE_CALL_END_EVENTS:
            data = event.data
            status = data.get("status")
            health = self._service(str(data.get("service")))
            health.record(
                int(event.at),
                status if isinstance(status, int) else None,
                event.type == EventType.SERVICE_CALL_COMPLETED,
                float(data.get("duration_ms") or 0.0),
            )
            self.version += 1
            return None
        if event.type in BREAKER_EVENTS:
            data = event.data
            health = self._service(str(data.get("service")))
            health.breaker = str(data.get("to") or event.type.removeprefix("breaker."))
            health.open_until = parse_time(data.get("open_until"))
            health.failures = int(data.get("failures") or 0)
            self.version += 1
            return _breaker_alert(health, event)
        return None

    def load_breakers(self, breakers: Iterable[Mapping[str, Any]]) -> None:
        for raw in breakers:
            health = self._service(str(raw.get("service")))
            health.breaker = str(raw.get("state") or "closed")
            health.open_until = parse_time(raw.get("open_until"))
            health.failures = int(raw.get("failures") or 0)
        self.version += 1

    def load_faults(self, name: str, faults: Sequence[Mapping[str, Any]] | None) -> None:
        """The service's active rules, or None when its admin API did not answer."""
        health = self._service(name)
        health.reachable = faults is not None
        health.faults = list(faults or [])
        self.version += 1

    def open_breakers(self) -> list[ServiceHealth]:
        return [s for s in self.services.values() if s.breaker != "closed"]


def _breaker_alert(health: ServiceHealth, event: DashEvent) -> str:
    if event.type == EventType.BREAKER_OPENED:
        return f"breaker OPEN: {health.name} after {health.failures} failures in a row"
    if event.type == EventType.BREAKER_HALF_OPEN:
        return f"breaker half-open: {health.name} lets probes through"
    return f"breaker closed: {health.name} answers again"
