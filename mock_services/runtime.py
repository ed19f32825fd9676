"""One service's moving parts (faults, idempotency keys, journal), shared by app and admin API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web

from mock_services.faults import FaultInjector
from mock_services.idempotency import MAX_KEYS, IdempotencyStore
from mock_services.journal import RequestJournal
from mock_services.services import SandboxData


@dataclass(frozen=True)
class ServiceConfig:
    """Settings shared by the services of one sandbox."""

    idempotency_ttl_s: float = 24 * 3600.0
    idempotency_max_keys: int = MAX_KEYS  #: keys kept per service; the oldest answered go first
    faults_enabled: bool = True  #: False removes the fault layer entirely (for the overhead bench)
    allow_fault_headers: bool = False  #: honour a per-request ``X-Interlock-Fault`` rule
    journal_size: int = 1000


@dataclass
class ServiceRuntime:
    """One service's moving parts, reachable from handlers and the admin API."""

    name: str
    config: ServiceConfig
    data: SandboxData
    injector: FaultInjector
    idempotency: IdempotencyStore
    journal: RequestJournal
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.injector.reset()
        self.idempotency.clear()
        self.journal.clear()
        self.data.clear(self.name)


RUNTIME: Final = web.AppKey("runtime", ServiceRuntime)
