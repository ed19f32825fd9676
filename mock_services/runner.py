"""Start the four services on their ports (0 = any free port) and stop them cleanly.

::

    running = await start_services({"users": 0, "billing": 0, "preferences": 0, "notifications": 0})
    running.urls["users"]  # "http://127.0.0.1:41234"
    await running.stop()
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from yarl import URL

from httpedge import EdgeRunner
from mock_services.app import create_app
from mock_services.errors import CannotListenError, PortInUseError
from mock_services.runtime import RUNTIME, ServiceConfig, ServiceRuntime
from mock_services.services import SERVICE_NAMES, SandboxData

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORTS: Final = {"users": 8701, "billing": 8702, "preferences": 8703, "notifications": 8704}


@dataclass
class RunningServices:
    """The services of one sandbox while they run."""

    urls: dict[str, str]
    data: SandboxData
    runtimes: dict[str, ServiceRuntime]
    _runners: list[web.AppRunner] = field(default_factory=list, repr=False)

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    def reset(self) -> None:
        """Clear every service's faults, counters, keys, journal and data."""
        for runtime in self.runtimes.values():
            runtime.reset()


async def start_services(
    ports: Mapping[str, int] | None = None,
    *,
    host: str = DEFAULT_HOST,
    config: ServiceConfig | None = None,
    data: SandboxData | None = None,
) -> RunningServices:
    """Start the named services (all four by default) and return once every one listens."""
    ports = dict(DEFAULT_PORTS if ports is None else ports)
    unknown = sorted(set(ports) - set(SERVICE_NAMES))
    if unknown:
        raise ValueError(
            f"unknown service(s) {', '.join(unknown)}; expected {', '.join(SERVICE_NAMES)}"
        )
    data = data or SandboxData()
    running = RunningServices(urls={}, data=data, runtimes={})
    try:
        for service in (s for s in SERVICE_NAMES if s in ports):
            app = create_app(service, data, config)
            runner = EdgeRunner(app, host_names=[host], access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            running._runners.append(runner)
            try:
                await web.TCPSite(runner, host, ports[service]).start()
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUseError(service, host, ports[service]) from None
                reason = exc.strerror or str(exc)
                raise CannotListenError(service, host, ports[service], reason) from None
            bound_port = runner.addresses[0][1]
            running.urls[service] = str(URL.build(scheme="http", host=host, port=bound_port))
            running.runtimes[service] = app[RUNTIME]
    except BaseException:
        await running.stop()
        raise
    return running
