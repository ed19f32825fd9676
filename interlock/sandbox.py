"""The composition root: mock services, the engine with the registration workflow, its HTTP API.

``open_orchestrator`` wires one engine on a SQLite file to the services' URLs: the HTTP step
adapter, per-service circuit breakers (persisted, consulted as the engine's gate), the
enterprise customisation. ``run_api`` serves the API on a port.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from httpedge import EdgeRunner
from interlock.diamond import diamond_template, register_noop
from interlock.registration.handlers import RegistrationHandlers
from interlock.registration.template import (
    SEQUENTIAL_TEMPLATE_NAME,
    TEMPLATE_NAME,
    enterprise_billing,
    load_registration_template,
    load_sequential_template,
)
from interlock.settings import DEFAULT_API_PORT, DEFAULT_HOST, http_url
from mock_services.errors import CannotListenError, PortInUseError
from orchestrator.api import StreamConfig, create_api
from orchestrator.breaker import BreakerConfig, CircuitBreakers
from orchestrator.clock import Clock
from orchestrator.embedded import open_engine
from orchestrator.engine import Engine, EngineConfig
from orchestrator.handlers import HandlerRegistry
from orchestrator.http import ServiceCaller


@dataclass
class Orchestrator:
    """A running engine and the circuit breakers its service calls go through."""

    engine: Engine
    breakers: CircuitBreakers


@contextlib.asynccontextmanager
async def open_orchestrator(
    db: str | Path,
    service_urls: Mapping[str, str],
    *,
    config: EngineConfig | None = None,
    clock: Clock | None = None,
    breaker_config: BreakerConfig | None = None,
    breaker_configs: Mapping[str, BreakerConfig] | None = None,
    durable: bool = True,
) -> AsyncIterator[Orchestrator]:
    caller = ServiceCaller(service_urls)
    handlers = RegistrationHandlers(caller)
    registry = HandlerRegistry()
    handlers.register(registry)
    register_noop(registry)
    templates = [
        load_registration_template(registry),
        load_sequential_template(registry),
        diamond_template(registry),
    ]
    try:
        async with open_engine(
            db, registry, templates, config=config, clock=clock, durable=durable, start=False
        ) as engine:
            breakers = CircuitBreakers(engine.store, engine.clock, breaker_configs, breaker_config)
            await breakers.load()
            caller.breakers = breakers
            engine.add_gate(breakers.gate)
            for name in (TEMPLATE_NAME, SEQUENTIAL_TEMPLATE_NAME):
                engine.add_customizer(name, enterprise_billing)
            await engine.start()
            yield Orchestrator(engine, breakers)
    finally:
        await caller.close()


@contextlib.asynccontextmanager
async def run_api(
    orchestrator: Orchestrator,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_API_PORT,
    stream: StreamConfig | None = None,
) -> AsyncIterator[str]:
    """Serve the orchestrator API; yields its base URL."""
    runner = EdgeRunner(
        create_api(orchestrator.engine, orchestrator.breakers, stream),
        host_names=[host],
        access_log=None,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError("api", host, port) from None
            raise CannotListenError("api", host, port, exc.strerror or str(exc)) from None
        yield http_url(host, runner.addresses[0][1])
    finally:
        await runner.cleanup()
