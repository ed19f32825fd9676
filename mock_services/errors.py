"""Errors raised by the mock services' own Python API (not HTTP responses).

::

    MockServicesError
    ├── FaultRuleError   a fault rule is invalid; ``problems`` lists each bad field
    ├── PortInUseError   a service could not bind its port: another process has it
    └── CannotListenError  a service could not listen at all (an unknown or foreign --host)

HTTP clients never see these: requests get JSON error responses (see ``validation.ApiError``).
"""

from __future__ import annotations


class MockServicesError(Exception):
    """Root of the errors the mock services raise on purpose."""


class FaultRuleError(MockServicesError):
    """A fault rule is invalid. ``fields`` holds ``(field, what is wrong)`` for each problem
    (the field dotted, ``match.path``; ``""`` for the rule as a whole), ``problems`` the same as
    ``"field: what is wrong"`` lines."""

    def __init__(self, fields: list[tuple[str, str]]) -> None:
        self.fields = fields
        self.problems = [f"{path}: {message}" if path else message for path, message in fields]
        super().__init__("invalid fault rule: " + "; ".join(self.problems))


class PortInUseError(MockServicesError):
    """A service's port is taken; names the service, the address and how to choose another."""

    def __init__(self, service: str, host: str, port: int) -> None:
        self.service, self.host, self.port = service, host, port
        super().__init__(
            f"{service}: {host}:{port} is already in use (is another Interlock running?); "
            f"choose another port with --{service}-port or INTERLOCK_{service.upper()}_PORT"
        )


class CannotListenError(MockServicesError):
    """A server cannot listen on its address for another reason than a taken port: a host name
    that does not resolve, an address that is not this machine's."""

    def __init__(self, service: str, host: str, port: int, reason: str) -> None:
        self.service, self.host, self.port, self.reason = service, host, port, reason
        super().__init__(
            f"{service}: cannot listen on {host}:{port}: {reason} "
            "(choose this machine's address with --host)"
        )
