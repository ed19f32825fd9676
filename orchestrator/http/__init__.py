"""Calling services over HTTP from step handlers.

``adapter`` (:class:`ServiceCaller`: a call in, a parsed response or a typed step error out),
``classify`` (the table of HTTP answers → step errors), ``transport`` (the interface the adapter
sends through, and :class:`MockTransport` for tests), ``client`` (the keep-alive HTTP/1.1
client on httptools that is the real transport). Only this package and ``orchestrator.api``
import HTTP libraries.
"""

from orchestrator.http.adapter import ServiceCaller, ServiceResponse
from orchestrator.http.classify import classify, parse_retry_after
from orchestrator.http.client import HttpClient
from orchestrator.http.transport import HttpRequest, HttpResponse, MockTransport, Transport

__all__ = [
    "HttpClient",
    "HttpRequest",
    "HttpResponse",
    "MockTransport",
    "ServiceCaller",
    "ServiceResponse",
    "Transport",
    "classify",
    "parse_retry_after",
]
