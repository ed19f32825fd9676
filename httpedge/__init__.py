"""The HTTP edge every Interlock server shares: the orchestrator API and the four mock services.

- :mod:`httpedge.limits`: the JSON a request may carry (depth, integer range, finite numbers,
  valid strings, body size), decided once;
- :mod:`httpedge.middleware`: :func:`edge`, the middleware that applies them with the ``Host``,
  ``Origin`` and ``Content-Type`` checks, and :class:`HttpError`, every refusal as JSON;
- :mod:`httpedge.runner`: :class:`EdgeRunner`, whose own protocol errors are JSON too.

It imports nothing of Interlock's, so the mock services (which stand alone) and the orchestrator
(which imports neither them nor the composition root) can both use it.
"""

from httpedge.limits import MAX_BODY_BYTES, JsonLimitError, MalformedJsonError, parse_json
from httpedge.middleware import HttpError, edge, json_body
from httpedge.runner import EdgeRunner

__all__ = [
    "MAX_BODY_BYTES",
    "EdgeRunner",
    "HttpError",
    "JsonLimitError",
    "MalformedJsonError",
    "edge",
    "json_body",
    "parse_json",
]
