"""``GET /metrics`` on every service, in Prometheus's text format (prometheus-client): its
requests by status and its faults fired by kind, read from the service's own counters at each
scrape (the same ones ``/__admin/stats`` shows), so the two never disagree. Like the admin API,
the path is never faulted and never journaled."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mock_services.runtime import RUNTIME, ServiceRuntime

METRICS_PATH: Final = "/metrics"


class ServiceCollector(Collector):
    """The service's counters as metric families, read when scraped."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        name, runtime = self.runtime.name, self.runtime
        requests = CounterMetricFamily(
            "mock_service_requests",
            "Requests answered, by status (no_response: the connection was dropped)",
            labels=["service", "status"],
        )
        for status, count in sorted(runtime.journal.by_status.items()):
            requests.add_metric([name, status], count)
        yield requests
        faults = CounterMetricFamily(
            "mock_service_faults_fired", "Fault rules fired, by kind", labels=["service", "kind"]
        )
        for kind, count in sorted(runtime.injector.fired_by_kind.items()):
            faults.add_metric([name, kind], count)
        yield faults
        replays = CounterMetricFamily(
            "mock_service_idempotent_replays",
            "Answers replayed for a repeated Idempotency-Key",
            labels=["service"],
        )
        replays.add_metric([name], runtime.idempotency.replays)
        yield replays
        keys = GaugeMetricFamily(
            "mock_service_idempotency_keys", "Idempotency keys kept", labels=["service"]
        )
        keys.add_metric([name], len(runtime.idempotency))
        yield keys
        rules = GaugeMetricFamily(
            "mock_service_fault_rules", "Fault rules in place", labels=["service"]
        )
        rules.add_metric([name], len(runtime.injector.rules()))
        yield rules


async def metrics(request: web.Request) -> web.Response:
    registry = CollectorRegistry()
    registry.register(ServiceCollector(request.app[RUNTIME]))
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )
