"""Every error Interlock raises, in one small tree.

::

    InterlockError
    ├── TemplateError            a workflow template is invalid (file, step, field named)
    ├── ContextValidationError   a submitted context fails the template's JSON Schema
    ├── ResultsValidationError   an operator's results fail the step's results_schema
    ├── UnknownTemplateError     no template with that name / namespace / version
    ├── TaskNotFoundError        no task with that id
    ├── IdempotencyKeyConflictError  an idempotency key already names a different request
    ├── InvalidTransitionError   an operator action that the current state does not allow
    │   └── StepNotFoundError    the task has no step of that name
    ├── StoreError               the database is unusable (schema too new, closed store)
    ├── EventsLostError          a live subscription overflowed: re-read its gap from the store
    ├── ExchangeError            an HTTP exchange with a service got no complete answer
    └── StepError                raised by handlers to tell the engine how a step failed
        ├── RetryableError       try again later (backoff, or the server's Retry-After)
        └── PermanentError       stop; record why (error_code)
            └── ResponseContractError  a 2xx answer lacks a field the step needs

Handlers raise ``StepError`` subclasses; any other exception from a handler counts as retryable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from orchestrator.models import ErrorKind


class InterlockError(Exception):
    """Root of every error Interlock raises on purpose."""


class TemplateError(InterlockError):
    """A workflow template is invalid. Names the file, the step and the field when known."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        step: str | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.source = source
        self.step = step
        self.field = field
        self.line = line
        where = []
        if source:
            where.append(f"{source}:{line}" if line is not None else source)
        if step:
            where.append(f"step {step!r}")
        if field:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


@dataclass(frozen=True, slots=True)
class ValidationDetail:
    """One failing location in a submitted context."""

    path: str  #: JSON-pointer-like path, e.g. ``/user_info/email`` (``/`` for the root)
    message: str  #: what is wrong there


class ContextValidationError(InterlockError):
    """A context fails the template's input schema; ``details`` lists every failing path."""

    def __init__(self, template: str, details: list[ValidationDetail]) -> None:
        self.template = template
        self.details = details
        listed = "; ".join(f"{d.path}: {d.message}" for d in details)
        super().__init__(f"context does not match the input schema of {template!r}: {listed}")


class ResultsValidationError(InterlockError):
    """Results given to resolve a step fail its ``results_schema``; ``details`` lists every
    failing path (the same shape as :class:`ContextValidationError`'s)."""

    def __init__(self, step: str, details: list[ValidationDetail]) -> None:
        self.step = step
        self.details = details
        listed = "; ".join(f"{d.path}: {d.message}" for d in details)
        super().__init__(f"results do not match the results_schema of step {step!r}: {listed}")


class UnknownTemplateError(InterlockError):
    """No registered template matches the requested name / namespace / version."""

    def __init__(self, name: str, namespace: str | None, version: str | None) -> None:
        self.name = name
        self.namespace = namespace
        self.version = version
        parts = [name]
        if namespace:
            parts.insert(0, f"{namespace}/")
        if version:
            parts.append(f"@{version}")
        super().__init__(f"unknown template {''.join(parts)!r}")


class TaskNotFoundError(InterlockError):
    """No task with the given id exists."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        super().__init__(f"no task {task_id!r}")


class IdempotencyKeyConflictError(InterlockError):
    """A submission reuses an ``idempotency_key`` that already names a different request.

    "The same request" means the same template (name, namespace, version, as resolved) and the
    same context after the schema's defaults: a client that retries a submission gets its task
    back, but a key reused for something else would silently drop the new request, so it is
    refused instead (the API answers 422, as the mock services do for their own keys).
    """

    def __init__(self, key: str, task_id: str) -> None:
        self.key = key  #: the reused key
        self.task_id = task_id  #: the task the key already names
        super().__init__(
            f"idempotency_key {key!r} was already used for a different request (task {task_id}); "
            "resubmit the same name, namespace, version and context, or use a new key"
        )


class InvalidTransitionError(InterlockError):
    """An operator action is not allowed in the current state (e.g. retrying a complete step)."""

    def __init__(self, message: str, *, current_state: str | None = None) -> None:
        self.current_state = current_state
        super().__init__(message)


class StepNotFoundError(InvalidTransitionError):
    """An operator action names a step the task does not have."""


class StoreError(InterlockError):
    """The database cannot be used: closed, or written by a newer schema version."""


class EventsLostError(InterlockError):
    """A subscriber fell more than ``max_buffered`` events behind; its buffer was discarded.

    Nothing is lost from the store: the events after ``after_seq`` are there, in order. The
    reader re-reads them (``Engine.events(after_seq, ...)``), then calls
    :meth:`~orchestrator.events.Subscription.clear_gap` to go on with the live ones.
    """

    def __init__(self, after_seq: int, dropped: int) -> None:
        self.after_seq = after_seq  #: every event after this seq may be missing from the buffer
        self.dropped = dropped  #: events discarded by this subscription so far
        super().__init__(
            f"a live event subscription fell behind and discarded its buffer ({dropped} events "
            f"so far); re-read the events after seq {after_seq} from the store"
        )


class ExchangeError(InterlockError):
    """No complete HTTP answer: no connection, a reset, an early close, or bytes that are not
    HTTP. The service call adapter turns it into a retryable ``CONNECTION_ERROR``."""


class StepError(InterlockError):
    """Base of the errors a step handler raises to classify its failure."""

    kind: ClassVar[ErrorKind] = ErrorKind.RETRYABLE  #: how the engine treats it

    def __init__(
        self,
        message: str,
        *,
        error_code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        self.message = message
        self.error_code = error_code
        self.http_status = http_status
        super().__init__(message)


class RetryableError(StepError):
    """Transient failure: the engine retries with backoff, or after ``retry_after_s`` if given.

    A server-given ``retry_after_s`` wins over the computed delay, is clamped to the policy's
    ``max_delay_s`` and is not jittered.
    """

    kind = ErrorKind.RETRYABLE

    def __init__(
        self,
        message: str,
        *,
        retry_after_s: float | None = None,
        error_code: str | None = "RETRYABLE",
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, error_code=error_code, http_status=http_status)
        self.retry_after_s = retry_after_s


class PermanentError(StepError):
    """Failure that retrying cannot fix: the step ends in ``error`` at once."""

    kind = ErrorKind.PERMANENT

    def __init__(
        self,
        message: str,
        *,
        error_code: str = "PERMANENT",
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, error_code=error_code, http_status=http_status)


class ResponseContractError(PermanentError):
    """A service said yes (2xx, or a status the step accepts) without what the step needs.

    A created user with no id, a profile with no price: the service broke its contract, and the
    same request would get the same answer, so this is permanent, not a handler crash retried
    until the attempts run out. ``error_code`` names the missing thing:
    ``MISSING_<WHAT>_IN_RESPONSE`` when the field is absent or null (or the body is not a JSON
    object at all), ``INVALID_<WHAT>_IN_RESPONSE`` when it is there with the wrong type.
    """

    def __init__(
        self,
        *,
        service: str,
        request: str,
        status: int,
        field: str,
        what: str,
        problem: str,
        invalid: bool = False,
    ) -> None:
        self.service = service  #: the service that answered
        self.request = request  #: ``METHOD /path``
        self.field = field  #: where in the body, e.g. ``id`` or ``users[0].plan``
        self.what = what  #: what the step needed it for, e.g. ``user_id``
        prefix = "INVALID" if invalid else "MISSING"
        super().__init__(
            f"{service} answered {request} with {status} but {problem}: the step needs {what}",
            error_code=f"{prefix}_{what.upper()}_IN_RESPONSE",
            http_status=status,
        )
