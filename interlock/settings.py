"""Every ``INTERLOCK_*`` environment variable and default port, read once into :class:`Settings`.

The ``interlock`` command calls :meth:`Settings.from_env` first, before it builds its parser, and
hands the result to the commands, the sandbox wiring and the event loop set-up; nothing else
reads the environment. A bad value is a :class:`SettingsError` naming the variable and the value,
which the command prints as one line (exit status 2). An empty variable counts as unset.

The variables, with their defaults, are listed once for users in README.md ("Environment
variables").
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from yarl import URL

from orchestrator.errors import InterlockError

#: Where the sandbox listens, and where the client commands look for it.
DEFAULT_HOST: Final = "127.0.0.1"
#: The orchestrator's HTTP API.
DEFAULT_API_PORT: Final = 8700
#: The four mock services, in the order they are listed and started. ``python -m mock_services``
#: keeps the same map (``mock_services.runner.DEFAULT_PORTS``; it imports nothing of Interlock's),
#: and a test holds the two equal.
SERVICE_PORTS: Final[Mapping[str, int]] = MappingProxyType(
    {"users": 8701, "billing": 8702, "preferences": 8703, "notifications": 8704}
)
#: The SQLite file ``interlock up`` keeps its state in, relative to the working directory.
DEFAULT_DB_PATH: Final = "interlock.db"
#: How long a client command waits for the API or a service.
DEFAULT_CLIENT_TIMEOUT_S: Final = 30.0


class SettingsError(InterlockError):
    """An ``INTERLOCK_*`` variable holds a value it cannot have."""

    def __init__(self, variable: str, value: str, expected: str) -> None:
        super().__init__(f"{variable} must be {expected}, got {value!r}")
        self.variable = variable  #: the variable's name, e.g. ``INTERLOCK_API_PORT``
        self.value = value  #: what it held
        self.expected = expected  #: what it may hold, in words


@dataclass(frozen=True, slots=True)
class Settings:
    """Interlock's configuration from the environment; flags may still override a field."""

    #: ``INTERLOCK_DB``: the SQLite file of ``interlock up`` (``--db``).
    db_path: str = DEFAULT_DB_PATH
    #: ``INTERLOCK_API_PORT``: the API's port for ``interlock up`` (``--api-port``) and, unless
    #: ``INTERLOCK_API_URL`` is set, for the client commands.
    api_port: int = DEFAULT_API_PORT
    #: ``INTERLOCK_API_URL``: where the client commands find the API (``--api``).
    api_url_override: str | None = None
    #: ``INTERLOCK_<SERVICE>_PORT``: each mock service's port (``--<service>-port``).
    service_ports: Mapping[str, int] = field(default_factory=lambda: SERVICE_PORTS)
    #: ``INTERLOCK_<SERVICE>_URL``: where a service is, when it is not on ``host``:its port
    #: (``interlock up --orchestrator-only``, ``interlock fault``).
    service_url_overrides: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: ``INTERLOCK_UVLOOP``: ``1`` (the default) runs the command on uvloop where it is
    #: installed, ``0`` on asyncio's own loop.
    uvloop: bool = True
    #: ``INTERLOCK_CLIENT_TIMEOUT_S``: how long ``submit``, ``status``, ``tasks`` and ``fault``
    #: wait for an answer before they give up, naming the URL that did not answer.
    client_timeout_s: float = DEFAULT_CLIENT_TIMEOUT_S
    #: ``INTERLOCK_LOG_FORMAT``: ``text`` (the default) or ``json`` lines (``up --log-format``).
    log_format: str = "text"
    #: No variable: the address ``interlock up`` binds by default (``--host``) and the client
    #: commands' default host.
    host: str = DEFAULT_HOST

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read every ``INTERLOCK_*`` variable; :class:`SettingsError` for the first bad one."""
        env = {k: v for k, v in environ.items() if k.startswith("INTERLOCK_") and v != ""}
        ports = {
            service: _port(env, f"INTERLOCK_{service.upper()}_PORT", default)
            for service, default in SERVICE_PORTS.items()
        }
        urls = {
            service: _url(env, f"INTERLOCK_{service.upper()}_URL")
            for service in SERVICE_PORTS
            if f"INTERLOCK_{service.upper()}_URL" in env
        }
        api_url = _url(env, "INTERLOCK_API_URL") if "INTERLOCK_API_URL" in env else None
        return cls(
            db_path=env.get("INTERLOCK_DB", DEFAULT_DB_PATH),
            api_port=_port(env, "INTERLOCK_API_PORT", DEFAULT_API_PORT),
            api_url_override=api_url,
            service_ports=MappingProxyType(ports),
            service_url_overrides=MappingProxyType(urls),
            uvloop=_switch(env, "INTERLOCK_UVLOOP", default=True),
            client_timeout_s=_seconds(env, "INTERLOCK_CLIENT_TIMEOUT_S", DEFAULT_CLIENT_TIMEOUT_S),
            log_format=_choice(env, "INTERLOCK_LOG_FORMAT", ("text", "json"), "text"),
        )

    @property
    def api_url(self) -> str:
        """The API's base URL for the client commands."""
        return self.api_url_override or http_url(self.host, self.api_port)

    def service_urls(self, host: str | None = None) -> dict[str, str]:
        """Each service's base URL: its ``INTERLOCK_<SERVICE>_URL``, else ``host`` (default
        :attr:`host`) and its port."""
        host = host or self.host
        return {
            service: self.service_url_overrides.get(service, http_url(host, port))
            for service, port in self.service_ports.items()
        }


def http_url(host: str, port: int) -> str:
    """``http://host:port``, an IPv6 address in brackets (``http://[::1]:8700``)."""
    return str(URL.build(scheme="http", host=host, port=port))


def _port(env: Mapping[str, str], variable: str, default: int) -> int:
    text = env.get(variable)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 65535):
        raise SettingsError(variable, text, "a port number 1-65535")
    return int(text)


def _url(env: Mapping[str, str], variable: str) -> str:
    text = env[variable]
    try:
        url = URL(text)
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise SettingsError(variable, text, "an http:// or https:// URL")
    return text


def _choice(env: Mapping[str, str], variable: str, choices: tuple[str, ...], default: str) -> str:
    text = env.get(variable, default)
    if text not in choices:
        raise SettingsError(variable, text, " or ".join(choices))
    return text


def _switch(env: Mapping[str, str], variable: str, *, default: bool) -> bool:
    text = env.get(variable)
    if text is None:
        return default
    if text not in ("0", "1"):
        raise SettingsError(variable, text, "0 or 1")
    return text == "1"


def _seconds(env: Mapping[str, str], variable: str, default: float) -> float:
    text = env.get(variable)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86_400:
        raise SettingsError(variable, text, "a number of seconds, more than 0 and at most 86400")
    return value
