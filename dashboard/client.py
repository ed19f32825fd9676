"""The dashboard's HTTP client: the orchestrator's API and the services' admin API, nothing else.

Every call returns parsed JSON or raises :class:`ApiError` carrying what the server said (its
``error`` / ``message`` and the ``details`` of a 400), or :class:`UnreachableError` when nothing
answered, so the screens can show the server's own words instead of a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from orchestrator.models import JSON


class DashboardError(Exception):
    """Something the dashboard asked for did not happen; the message says what, for a person."""


class UnreachableError(DashboardError):
    """Nothing answered at the URL (refused, reset, timed out)."""


class ApiError(DashboardError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.details = details or []


def _message(status: int, body: object) -> tuple[str, list[Any]]:
    if isinstance(body, dict):
        text = body.get("message") or body.get("error") or json.dumps(body)
        details = body.get("details") if isinstance(body.get("details"), list) else []
        parts = [str(text)]
        for item in details or []:
            if isinstance(item, dict):
                parts.append(f"{item.get('path')}: {item.get('message')}")
        return "; ".join(parts), list(details or [])
    return f"HTTP {status}: {str(body)[:200]}", []


class Client:
    """One aiohttp session for the API and the services' admin endpoints."""

    def __init__(
        self, api_url: str, service_urls: Mapping[str, str], timeout_s: float = 5.0
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.service_urls = {k: v.rstrip("/") for k, v in service_urls.items()}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        url: str,
        body: JSON | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> JSON:
        try:
            async with self.session.request(
                method,
                url,
                json=body,
                params={k: str(v) for k, v in (params or {}).items() if v is not None},
            ) as resp:
                raw = await resp.read()
                try:
                    parsed: Any = json.loads(raw) if raw else {}
                except ValueError:
                    parsed = raw.decode("utf-8", "replace")
                if resp.status >= 400:
                    message, details = _message(resp.status, parsed)
                    raise ApiError(resp.status, message, details)
                return parsed if isinstance(parsed, dict) else {"value": parsed}
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise UnreachableError(f"{url} did not answer ({type(exc).__name__})") from None

    # -- the orchestrator --------------------------------------------------------------------
    async def api(self, method: str, path: str, body: JSON | None = None, **params: Any) -> JSON:
        return await self.request(method, self.api_url + path, body, params)

    async def health(self) -> JSON:
        return await self.api("GET", "/health")

    async def counts(self) -> JSON:
        return await self.api("GET", "/tasks/counts")

    async def tasks(
        self, state: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[JSON]:
        found = await self.api("GET", "/tasks", state=state, limit=limit, offset=offset or None)
        return list(found.get("tasks", []))

    async def task(self, task_id: str) -> JSON:
        return await self.api("GET", f"/tasks/{task_id}")

    async def task_events(self, task_id: str) -> list[JSON]:
        events: list[JSON] = []
        after = 0
        while True:
            page = await self.api("GET", "/events", after=after, limit=10_000, task_id=task_id)
            batch = list(page.get("events", []))
            events.extend(batch)
            if len(batch) < 10_000:
                return events
            after = int(batch[-1]["seq"])

    async def submit(self, name: str, context: JSON) -> JSON:
        return await self.api("POST", "/tasks", {"name": name, "context": context})

    async def cancel(self, task_id: str) -> JSON:
        return await self.api("POST", f"/tasks/{task_id}/cancel")

    async def retry(self, task_id: str, step: str) -> JSON:
        return await self.api("POST", f"/tasks/{task_id}/steps/{step}/retry")

    async def resolve(self, task_id: str, step: str, results: JSON | None) -> JSON:
        body = {"results": results} if results is not None else None
        return await self.api("POST", f"/tasks/{task_id}/steps/{step}/resolve", body)

    async def breakers(self) -> list[JSON]:
        return list((await self.api("GET", "/breakers")).get("breakers", []))

    async def bottlenecks(self, window_s: int | None = None) -> JSON:
        """``{"steps": [...], "breaker_openings": {service: n}, ...}``"""
        return await self.api("GET", "/analytics/bottlenecks", window_s=window_s)

    # -- the services' admin API -------------------------------------------------------------
    def _admin(self, service: str, path: str) -> str:
        if service not in self.service_urls:
            raise DashboardError(f"unknown service {service!r}")
        return f"{self.service_urls[service]}/__admin{path}"

    async def faults(self, service: str) -> list[JSON]:
        return list((await self.request("GET", self._admin(service, "/faults"))).get("faults", []))

    async def add_fault(self, service: str, rule: JSON) -> JSON:
        return await self.request("POST", self._admin(service, "/faults"), rule)

    async def clear_faults(self, service: str) -> JSON:
        return await self.request("DELETE", self._admin(service, "/faults"))
