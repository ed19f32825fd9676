"""The orchestrator's HTTP API: ``app`` (:func:`create_api`, the route table), ``handlers``,
``middleware`` (every error as JSON), ``serialize`` (domain objects → JSON, one time format:
ISO 8601 UTC) and ``openapi`` (the description served at ``GET /openapi.json``)."""

from orchestrator.api.app import create_api
from orchestrator.api.handlers import StreamConfig

__all__ = ["StreamConfig", "create_api"]
