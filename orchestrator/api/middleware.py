"""Every answer is JSON, errors included (``{"error", "message", "details"?}``), never an HTML 500.

:class:`ApiError` is what a handler raises for a bad request; :func:`json_errors`, the app's
middleware, turns it and the engine's typed errors into JSON answers, and logs anything else as
an internal error. The shared edge middleware outside it (:func:`httpedge.edge`) answers for
aiohttp's own errors (404, 405 with ``Allow``, 413) and refuses bad hosts, origins, media types
and JSON before a handler runs.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from httpedge.middleware import HttpError, from_http_exception
from orchestrator.errors import (
    ContextValidationError,
    IdempotencyKeyConflictError,
    InvalidTransitionError,
    ResultsValidationError,
    StepNotFoundError,
    TaskNotFoundError,
    UnknownTemplateError,
)
from orchestrator.models import JSON

_log = logging.getLogger(__name__)


class ApiError(HttpError):
    """A request the API refuses: its status, a machine-readable ``error`` and the details."""


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as exc:
        return exc.to_response()
    except ContextValidationError as exc:
        details = [{"path": d.path, "message": d.message} for d in exc.details]
        return error_response(400, "invalid_context", str(exc), details)
    except IdempotencyKeyConflictError as exc:
        # 422 like the mock services and the IETF Idempotency-Key draft: the request is
        # well-formed, but this key already stands for another one. (409 here means a state
        # conflict an operator action ran into.)
        details = [{"path": "idempotency_key", "message": f"already names task {exc.task_id}"}]
        return error_response(422, "idempotency_key_reused", str(exc), details)
    except ResultsValidationError as exc:
        details = [{"path": d.path, "message": d.message} for d in exc.details]
        return error_response(400, "invalid_results", str(exc), details)
    except (UnknownTemplateError, TaskNotFoundError, StepNotFoundError) as exc:
        return error_response(404, "not_found", str(exc))
    except InvalidTransitionError as exc:
        return error_response(409, "invalid_transition", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return from_http_exception(request, exc).to_response()
    except Exception:
        _log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(
            500, "internal_error", "the orchestrator failed unexpectedly; see its log"
        )


def error_response(
    status: int, error: str, message: str, details: list[JSON] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": error, "message": message}
    if details is not None:
        body["details"] = details
    return web.json_response(body, status=status)
