"""The OpenAPI 3.1 description of the orchestrator API (served at ``GET /openapi.json``).

Its schemas are JSON Schema 2020-12, so ``tests/e2e/test_api.py`` validates real responses
against them: the description cannot drift from what the API does without a test failing.
The enums (task, step and breaker states, error kinds, event types) are built from the Python
enums, so a new state or event type appears here by itself. Every time is an ISO 8601 string
(``date-time``), as ``orchestrator/api/serialize.py`` makes them.
"""

from __future__ import annotations

from enum import StrEnum

from httpedge.limits import LIMITS as JSON_LIMITS
from orchestrator.api.serialize import EVENT_TIME_FIELDS
from orchestrator.event_types import EventType
from orchestrator.models import JSON, BreakerState, ErrorKind, StepState, TaskState


def _enum(values: type[StrEnum]) -> JSON:
    return {"enum": [member.value for member in values]}


_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
_STR_OR_NULL = {"type": ["string", "null"]}

SCHEMAS: dict[str, JSON] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "limit": {
                "enum": [*JSON_LIMITS, "max_body_bytes"],
                "description": "the limit a refused body broke (400 json_limit_exceeded, 413)",
            },
            "details": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["path", "message"],
                    "properties": {"path": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    },
    "ErrorInfo": {
        "type": ["object", "null"],
        "required": ["kind", "error_code", "message", "http_status"],
        "properties": {
            "kind": {"$ref": "#/components/schemas/ErrorKind"},
            "error_code": _STR_OR_NULL,
            "message": {"type": "string"},
            "http_status": {"type": ["integer", "null"]},
        },
    },
    "Submission": {
        "type": "object",
        "required": ["task_id", "correlation_id", "state", "created"],
        "properties": {
            "task_id": {"type": "string"},
            "correlation_id": {"type": "string"},
            "state": {"$ref": "#/components/schemas/TaskState"},
            "created": {"type": "boolean"},
        },
    },
    "TaskState": _enum(TaskState),
    "StepState": _enum(StepState),
    "ErrorKind": _enum(ErrorKind),
    "BreakerState": _enum(BreakerState),
    "EventType": _enum(EventType),
    "Step": {
        "type": "object",
        "required": [
            "name",
            "state",
            "depends_on",
            "attempts",
            "max_attempts",
            "results",
            "last_error",
            "next_attempt_at",
            "started_at",
            "completed_at",
        ],
        "properties": {
            "name": {"type": "string"},
            "state": {"$ref": "#/components/schemas/StepState"},
            "depends_on": {"type": "array", "items": {"type": "string"}},
            "attempts": {"type": "integer", "minimum": 0},
            "max_attempts": {"type": "integer", "minimum": 1},
            "results": {"type": ["object", "null"]},
            "last_error": {"$ref": "#/components/schemas/ErrorInfo"},
            "next_attempt_at": _TIME_OR_NULL,
            "started_at": _TIME_OR_NULL,
            "completed_at": _TIME_OR_NULL,
        },
    },
    "Task": {
        "type": "object",
        "required": [
            "task_id",
            "name",
            "namespace",
            "version",
            "state",
            "correlation_id",
            "context",
            "created_at",
            "completed_at",
            "degraded_steps",
            "steps",
        ],
        "properties": {
            "task_id": {"type": "string"},
            "name": {"type": "string"},
            "namespace": {"type": "string"},
            "version": {"type": "string"},
            "state": {"$ref": "#/components/schemas/TaskState"},
            "correlation_id": {"type": "string"},
            "context": {"type": "object"},
            "created_at": _TIME,
            "completed_at": _TIME_OR_NULL,
            "summary": {"type": ["object", "null"]},
            "degraded_steps": {
                "type": "array",
                "items": {"type": "string"},
                "description": "non-critical steps (on_failure: continue) that failed for good: "
                "state degraded, their dependents ran with their fallback_results; the task "
                "can still be complete",
            },
            "steps": {"type": "array", "items": {"$ref": "#/components/schemas/Step"}},
        },
    },
    "TaskList": {
        "type": "object",
        "required": ["tasks"],
        "properties": {
            "tasks": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "task_id",
                        "name",
                        "namespace",
                        "version",
                        "state",
                        "correlation_id",
                        "context",
                        "created_at",
                        "completed_at",
                    ],
                    "properties": {
                        "task_id": {"type": "string"},
                        "state": {"$ref": "#/components/schemas/TaskState"},
                        "context": {"type": "object", "description": "as in Task"},
                        "created_at": _TIME,
                        "completed_at": _TIME_OR_NULL,
                    },
                },
            }
        },
    },
    "TaskCounts": {
        "type": "object",
        "required": ["counts", "total", "last_seq"],
        "properties": {
            "counts": {
                "type": "object",
                "required": [state.value for state in TaskState],
                "properties": {
                    state.value: {"type": "integer", "minimum": 0} for state in TaskState
                },
                "additionalProperties": False,
            },
            "total": {"type": "integer", "minimum": 0},
            "last_seq": {
                "type": "integer",
                "minimum": 0,
                "description": "the last event the counts include (read in one snapshot): "
                "a reader of /events/stream adds only later events",
            },
        },
    },
    "Attempts": {
        "type": "object",
        "required": ["attempts"],
        "properties": {
            "attempts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "step_name",
                        "attempt",
                        "worker_id",
                        "started_at",
                        "ended_at",
                        "duration_ms",
                        "outcome",
                        "error",
                    ],
                    "properties": {
                        "attempt": {"type": "integer", "minimum": 1},
                        "started_at": _TIME,
                        "ended_at": _TIME,
                        "outcome": {"enum": ["completed", "failed", "lost"]},
                        "duration_ms": {"type": "number"},
                        "error": {"$ref": "#/components/schemas/ErrorInfo"},
                    },
                },
            }
        },
    },
    "Event": {
        "type": "object",
        "required": [
            "seq",
            "at",
            "type",
            "task_id",
            "step_name",
            "correlation_id",
            "attempt",
            "data",
        ],
        "properties": {
            "seq": {"type": "integer"},
            "at": _TIME,
            "type": {
                "anyOf": [
                    {"$ref": "#/components/schemas/EventType"},
                    {"type": "string", "description": "an event type a handler emits itself"},
                ]
            },
            "task_id": _STR_OR_NULL,
            "step_name": _STR_OR_NULL,
            "correlation_id": _STR_OR_NULL,
            "attempt": {"type": ["integer", "null"]},
            "data": {
                "type": "object",
                "description": "the fields of its type (see EventType); times are ISO 8601",
                "properties": dict.fromkeys(sorted(EVENT_TIME_FIELDS), _TIME_OR_NULL),
            },
        },
    },
    "Events": {
        "type": "object",
        "required": ["events", "last_seq"],
        "properties": {
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
            "last_seq": {"type": "integer"},
        },
    },
    "Breakers": {
        "type": "object",
        "required": ["breakers"],
        "properties": {
            "breakers": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "service",
                        "state",
                        "failures",
                        "successes",
                        "opened_at",
                        "open_until",
                        "updated_at",
                    ],
                    "properties": {
                        "service": {"type": "string"},
                        "state": {"$ref": "#/components/schemas/BreakerState"},
                        "failures": {"type": "integer"},
                        "successes": {"type": "integer"},
                        "opened_at": _TIME_OR_NULL,
                        "open_until": _TIME_OR_NULL,
                        "updated_at": _TIME,
                    },
                },
            }
        },
    },
    "Bottlenecks": {
        "type": "object",
        "required": ["steps", "breaker_openings", "namespace", "task_name", "window_s"],
        "properties": {
            "breaker_openings": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 1},
                "description": "service -> how many times its breaker opened (in the window)",
            },
            "namespace": {"type": ["string", "null"]},
            "task_name": {"type": ["string", "null"]},
            "window_s": {"type": ["integer", "null"]},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": [
                        "workflow",
                        "step_name",
                        "executions",
                        "mean_duration_ms",
                        "p95_duration_ms",
                        "retry_rate",
                        "error_rate",
                    ],
                },
            },
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "worker_id", "running_steps", "last_seq"],
        "properties": {
            "status": {"const": "ok"},
            "worker_id": {"type": "string"},
            "running_steps": {"type": "integer"},
            "last_seq": {
                "type": "integer",
                "minimum": 0,
                "description": "the newest event's seq: follow /events/stream?after= from here",
            },
        },
    },
}


def _ref(name: str) -> JSON:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: str) -> JSON:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_ERR = _json("error", "Error")


def _query(name: str, schema: JSON, description: str) -> JSON:
    return {"name": name, "in": "query", "schema": schema, "description": description}


_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
_STEP = {"name": "step", "in": "path", "required": True, "schema": {"type": "string"}}
_AFTER = {
    "name": "after",
    "in": "query",
    "schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
    "description": "only events with a greater seq (default 0: from the start)",
}
_LIMIT = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 10_000},
}
#: What any request may get from the shared edge (httpedge) before a handler runs.
_EDGE: JSON = {
    "403": _json(
        "a Host that does not name this server, or a cross-origin Origin "
        "(host_not_allowed, cross_origin)",
        "Error",
    ),
}
#: ... and a request with a body (POST): a JSON body, within httpedge's limits.
_BODY_EDGE: JSON = {
    **_EDGE,
    "400": _json(
        "the body is not JSON (malformed_json), breaks a JSON limit (json_limit_exceeded, "
        "naming it in limit), or is not what the operation takes",
        "Error",
    ),
    "413": _json("the body is over 1 MiB (body_too_large)", "Error"),
    "415": _json(
        "a body sent without Content-Type: application/json (unsupported_media_type)", "Error"
    ),
}
_TASK_FILTER = {"name": "task_id", "in": "query", "schema": {"type": "string"}}


def openapi_spec() -> JSON:
    """The whole document: every operation with every status it can answer."""
    spec = _document()
    for operations in spec["paths"].values():
        for method, operation in operations.items():
            edge = _BODY_EDGE if method in ("post", "put", "patch") else _EDGE
            operation["responses"] = {**edge, **operation["responses"]}
    return spec


def _document() -> JSON:
    action_responses: JSON = {"200": _json("the task", "Task"), "404": _ERR, "409": _ERR}
    task_action: JSON = {"parameters": [_TASK_ID, _STEP], "responses": action_responses}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Interlock orchestrator",
            "version": "1.0.0",
            "description": "Durable workflows: submit tasks, watch them, act on them.",
        },
        "paths": {
            "/tasks": {
                "post": {
                    "summary": "Submit a task (idempotent per idempotency_key)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["name", "context"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "namespace": {"type": "string"},
                                        "version": {"type": "string"},
                                        "context": {"type": "object"},
                                        "idempotency_key": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json("created", "Submission"),
                        "200": _json("an existing task (same key, same request)", "Submission"),
                        "400": _ERR,
                        "404": _ERR,
                        "422": _json(
                            "idempotency_key already used for a different request "
                            "(error idempotency_key_reused, naming the key and its task)",
                            "Error",
                        ),
                    },
                },
                "get": {
                    "summary": "List tasks, newest first",
                    "description": (
                        "Page with offset: offset=0&limit=N is the N newest, offset=N&limit=N "
                        "the next N. Tasks created between two requests shift the pages."
                    ),
                    "parameters": [
                        {"name": "state", "in": "query", "schema": _ref("TaskState")},
                        _LIMIT,
                        {
                            "name": "offset",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
                        },
                    ],
                    "responses": {"200": _json("tasks", "TaskList"), "400": _ERR},
                },
            },
            "/tasks/counts": {
                "get": {
                    "summary": "How many tasks are in each state (every state, zero included)",
                    "responses": {"200": _json("counts by state", "TaskCounts")},
                }
            },
            "/tasks/{task_id}": {
                "get": {
                    "parameters": [_TASK_ID],
                    "responses": {"200": _json("the task with its steps", "Task"), "404": _ERR},
                }
            },
            "/tasks/{task_id}/attempts": {
                "get": {
                    "parameters": [_TASK_ID],
                    "responses": {"200": _json("every finished attempt", "Attempts"), "404": _ERR},
                }
            },
            "/tasks/{task_id}/cancel": {
                "post": {
                    "parameters": [_TASK_ID],
                    "responses": {
                        "200": _json("the cancelled task", "Task"),
                        "404": _ERR,
                        "409": _ERR,
                    },
                }
            },
            "/tasks/{task_id}/steps/{step}/retry": {
                "post": {
                    **task_action,
                    "summary": "Give a failed or degraded step fresh attempts; the task resumes",
                }
            },
            "/tasks/{task_id}/steps/{step}/resolve": {
                "post": {
                    **task_action,
                    "summary": "Mark a step done by hand",
                    "description": (
                        "Its dependents run with the given results, or without them with the "
                        "step's declared fallback_results ({} if none). Results that fail the "
                        "step's results_schema get a 400 naming every failing path."
                    ),
                    "responses": {**action_responses, "400": _ERR},
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"results": {"type": "object"}},
                                }
                            }
                        }
                    },
                }
            },
            "/events": {
                "get": {
                    "parameters": [
                        _AFTER,
                        _TASK_FILTER,
                        _LIMIT,
                    ],
                    "responses": {
                        "200": _json("events after a sequence number", "Events"),
                        "400": _ERR,
                    },
                }
            },
            "/events/stream": {
                "get": {
                    "summary": "Every event after `after`, stored then live, none skipped",
                    "description": (
                        "Each event once, in strictly increasing seq order, however slowly the "
                        "client reads; reconnect with after=<the last seq seen> to resume. A "
                        "blank line is a keep-alive, written after a quiet spell without events "
                        "(5 s by default): skip blank lines. During a burst events are written "
                        "a batch at a time, at most every 25 ms; the first after a quiet "
                        "moment goes out at once."
                    ),
                    "parameters": [_AFTER, _TASK_FILTER],
                    "responses": {
                        "200": {
                            "description": "stored, then live events; one JSON Event per line",
                            "content": {"application/x-ndjson": {"schema": _ref("Event")}},
                        },
                        "400": _ERR,
                    },
                }
            },
            "/breakers": {"get": {"responses": {"200": _json("circuit breakers", "Breakers")}}},
            "/analytics/bottlenecks": {
                "get": {
                    "parameters": [
                        _query("namespace", {"type": "string"}, "only tasks in this namespace"),
                        _query("task_name", {"type": "string"}, "only tasks of this template"),
                        _query(
                            "window_s",
                            {"type": "integer", "minimum": 1, "maximum": 10**9},
                            "only attempts that ended (and breakers that opened) in the last "
                            "window_s seconds",
                        ),
                    ],
                    "responses": {
                        "200": _json("per-step statistics", "Bottlenecks"),
                        "400": _ERR,
                    },
                }
            },
            "/health": {"get": {"responses": {"200": _json("alive", "Health")}}},
            "/metrics": {
                "get": {
                    "summary": "Metrics in Prometheus's text format (orchestrator/api/metrics.py)",
                    "responses": {
                        "200": {
                            "description": "step attempts, service calls, breakers, tasks",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "responses": {
                        "200": {
                            "description": "this document",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    }
                }
            },
        },
        "components": {"schemas": SCHEMAS},
    }
