"""The four mock services and the data they share.

Each module holds one service's schemas, rules and routes. The services share one
``SandboxData`` so that billing, preferences and notifications can answer 404 for a user the
users service never created, as the real services behind one product would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from mock_services.services import billing, notifications, preferences, users
from mock_services.services.notifications import NotificationsStore
from mock_services.services.users import UsersStore
from mock_services.validation import JSON

SERVICE_NAMES: Final = ("users", "billing", "preferences", "notifications")


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SandboxData:
    """Everything the services store; cleared per service by ``/__admin/reset``."""

    users: UsersStore = field(default_factory=UsersStore)
    billing: dict[str, JSON] = field(default_factory=dict)  #: user id → profile
    preferences: dict[str, JSON] = field(default_factory=dict)  #: user id → record
    notifications: NotificationsStore = field(default_factory=NotificationsStore)
    now: Callable[[], datetime] = _utc_now  #: wall clock for timestamps
    monotonic: Callable[[], float] = time.monotonic  #: for rate windows

    def now_iso(self) -> str:
        return self.now().isoformat()

    def clear(self, service: str) -> None:
        getattr(self, service).clear()


def service_routes(service: str, data: SandboxData) -> list[web.RouteDef]:
    builders: dict[str, Callable[[SandboxData], list[web.RouteDef]]] = {
        "users": users.routes,
        "billing": billing.routes,
        "preferences": preferences.routes,
        "notifications": notifications.routes,
    }
    if service not in builders:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
    return builders[service](data)
