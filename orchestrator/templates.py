"""Workflow templates: YAML in, a validated immutable model out.

A template may name only handlers registered in code; YAML is read with ``yaml.safe_load``.
Every problem is reported as a :class:`TemplateError` naming the file, the step and the field.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

from orchestrator import schema_fast
from orchestrator.dag import find_cycle, topological_order
from orchestrator.errors import (
    ContextValidationError,
    ResultsValidationError,
    TemplateError,
    UnknownTemplateError,
    ValidationDetail,
)
from orchestrator.models import JSON, OnFailure
from orchestrator.retry import Backoff, Jitter, RetryPolicy

_TEMPLATE_KEYS = {"name", "namespace", "version", "description", "input_schema", "steps"}
_STEP_KEYS = {
    "name",
    "description",
    "handler",
    "depends_on",
    "retry",
    "timeout_s",
    "handler_config",
    "on_failure",
    "fallback_results",
    "results_schema",
}
_RETRY_KEYS = {
    "retryable",
    "max_attempts",
    "backoff",
    "initial_delay_s",
    "max_delay_s",
    "multiplier",
    "jitter",
}


@dataclass(frozen=True, slots=True)
class StepTemplate:
    """One step as declared in a template."""

    name: str
    handler: str  #: a name registered in the HandlerRegistry
    description: str = ""
    depends_on: tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout_s: float | None = None  #: None: no per-attempt timeout
    handler_config: Mapping[str, Any] = field(default_factory=dict)
    #: ``fail``: failing for good fails the task; ``continue``: the step ends ``degraded``
    on_failure: OnFailure = OnFailure.FAIL
    #: what dependents get instead of a degraded (or fallback-resolved) step's results
    fallback_results: Mapping[str, Any] | None = None
    #: JSON Schema of the step's results; an operator's resolution is checked against it
    results_schema: Mapping[str, Any] | None = None

    def check_results(self, results: JSON) -> None:
        """Raise :class:`ResultsValidationError` listing every path of ``results`` that fails
        ``results_schema`` (nothing to check without one)."""
        if self.results_schema is None:
            return
        details = schema_errors(self.results_schema, results)
        if details:
            raise ResultsValidationError(self.name, details)


@dataclass(frozen=True, slots=True)
class NormalizedContext:
    """What a template's :data:`ContextNormalizer` made of a submitted context."""

    context: JSON  #: in the one shape the input schema describes
    #: path in ``context`` → the path it was sent at (``{"/user_info": ""}``: the fields were
    #: sent at the top level), so validation errors name what the client wrote
    sent_at: Mapping[str, str] = field(default_factory=dict)


#: Turns another accepted shape of a context into the schema's, before defaults and validation;
#: may raise ``ContextValidationError`` (a context mixing two shapes). Set in code, never YAML.
ContextNormalizer = Callable[[JSON], NormalizedContext]


@dataclass(frozen=True, slots=True)
class WorkflowTemplate:
    """A workflow: a DAG of steps plus the JSON Schema its context must satisfy."""

    name: str
    namespace: str
    version: str
    description: str
    input_schema: Mapping[str, Any]
    steps: tuple[StepTemplate, ...]  #: in topological order
    source: str = "<memory>"
    #: applied to every submitted context first; None: the schema's shape is the only one
    normalize: ContextNormalizer | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.name, self.version)

    def step(self, name: str) -> StepTemplate:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(name)

    def prepare_context(self, context: Any) -> JSON:
        """A copy of ``context`` with schema defaults applied; raises listing every error."""
        if not isinstance(context, dict):
            raise ContextValidationError(
                self.name, [ValidationDetail("/", "the context must be a JSON object")]
            )
        prepared = copy.deepcopy(context)
        sent_at: Mapping[str, str] = {}
        if self.normalize is not None:
            normalized = self.normalize(prepared)
            prepared, sent_at = normalized.context, normalized.sent_at
        apply_defaults(self.input_schema, prepared)
        details = schema_errors(self.input_schema, prepared)
        if details:
            details = [_as_sent(d, sent_at) for d in details]
            details.sort(key=lambda d: d.path)
            raise ContextValidationError(self.name, details)
        return prepared


def schema_errors(schema: Mapping[str, Any], instance: Any) -> list[ValidationDetail]:
    """Every failing path of ``instance`` under ``schema``, sorted by path (none: it is valid).

    The compiled check accepts valid instances quickly; jsonschema judges the rest.
    """
    if schema_fast.accepts(schema, instance):
        return []
    details = [_detail(err) for err in _validator(schema).iter_errors(instance)]
    details.sort(key=lambda d: d.path)
    return details


def _validator_class(schema: Mapping[str, Any]) -> Any:
    """The draft the schema names in ``$schema`` (2020-12 when it names none), or None.

    Drafts differ in cost: draft 7 validates a registration context in about half the time of
    2020-12, whose dynamic-scope machinery the registration schema does not need.
    """
    if "$schema" not in schema:
        return jsonschema.Draft202012Validator
    known: Any = None  # validator_for's stubs do not admit None as the fallback it returns
    return jsonschema.validators.validator_for(schema, default=known)


@schema_fast.per_schema
def _validator(schema: Mapping[str, Any]) -> Any:
    """One validator per schema object (templates are immutable and few)."""
    cls = _validator_class(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _detail(error: jsonschema.ValidationError) -> ValidationDetail:
    path = list(error.absolute_path)
    message = error.message
    if error.validator == "required" and isinstance(error.instance, dict):
        required: list[str] = list(error.validator_value)  # type: ignore[arg-type]
        missing = [p for p in required if p not in error.instance]
        if len(missing) == 1:
            path.append(missing[0])
            message = "is required"
    return ValidationDetail("/" + "/".join(str(p) for p in path), message)


def _as_sent(detail: ValidationDetail, sent_at: Mapping[str, str]) -> ValidationDetail:
    """The detail at the path the client sent the value at, before normalisation moved it."""
    for moved in sorted(sent_at, key=len, reverse=True):
        if detail.path == moved or detail.path.startswith(moved + "/"):
            path = sent_at[moved] + detail.path[len(moved) :]
            return ValidationDetail(path or "/", detail.message)
    return detail


def apply_defaults(schema: Mapping[str, Any], instance: Any) -> None:
    """Fill in ``default`` values from ``schema`` into ``instance`` in place, nested ones too.

    A missing property with a default gets a copy of it; then, whether given or defaulted, an
    object value is descended into, so defaults inside it apply as well.
    """
    if isinstance(instance, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if not isinstance(sub, dict):
                continue
            if name not in instance and "default" in sub:
                instance[name] = copy.deepcopy(sub["default"])
            if name in instance:
                apply_defaults(sub, instance[name])
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            apply_defaults(schema["items"], item)


def load_template(path: str | Path, handler_names: Collection[str]) -> WorkflowTemplate:
    """Read and validate one template file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read template: {exc.strerror}", source=str(path)) from exc
    return parse_template(text, handler_names, source=str(path))


def parse_template(
    text: str, handler_names: Collection[str], *, source: str = "<memory>"
) -> WorkflowTemplate:
    """Parse template YAML text; raise :class:`TemplateError` for anything wrong in it."""
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise TemplateError(f"YAML syntax error: {exc.problem}", source=source, line=line) from exc
    except yaml.YAMLError as exc:
        raise TemplateError(f"YAML error: {exc}", source=source) from exc
    return build_template(data, handler_names, source=source)


def build_template(
    data: Any, handler_names: Collection[str], *, source: str = "<memory>"
) -> WorkflowTemplate:
    """Validate an already-parsed mapping into a :class:`WorkflowTemplate`."""
    if not isinstance(data, dict):
        raise TemplateError("a template must be a mapping", source=source)
    _reject_unknown(data, _TEMPLATE_KEYS, source=source)
    name = _required_str(data, "name", source=source)
    namespace = str(data.get("namespace", "default"))
    version = str(data.get("version", "1.0.0"))
    schema = _build_schema(
        data.get("input_schema", {"type": "object"}), source=source, fld="input_schema"
    )
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise TemplateError("must be a non-empty list", source=source, field="steps")
    steps = [_build_step(raw, i, handler_names, source) for i, raw in enumerate(raw_steps)]
    _check_graph(steps, source)
    order = topological_order({s.name: s.depends_on for s in steps})
    by_name = {s.name: s for s in steps}
    return WorkflowTemplate(
        name=name,
        namespace=namespace,
        version=version,
        description=str(data.get("description", "")),
        input_schema=schema,
        steps=tuple(by_name[n] for n in order),
        source=source,
    )


def _build_schema(
    schema: Any, *, source: str, fld: str, step: str | None = None
) -> Mapping[str, Any]:
    """A JSON Schema from a template, checked against its draft's metaschema."""
    if not isinstance(schema, dict):
        raise TemplateError("must be a mapping", source=source, step=step, field=fld)
    validator_class = _validator_class(schema)
    if validator_class is None:
        raise TemplateError(
            f"unknown $schema {schema['$schema']!r} (known: JSON Schema drafts "
            "4, 6, 7, 2019-09 and 2020-12)",
            source=source,
            step=step,
            field=fld,
        )
    try:
        validator_class.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise TemplateError(
            f"invalid JSON Schema at /{where}: {exc.message}", source=source, step=step, field=fld
        ) from exc
    return schema


def _reject_unknown(
    data: Mapping[str, Any],
    allowed: set[str],
    *,
    source: str,
    step: str | None = None,
    prefix: str = "",
) -> None:
    for key in data:
        if key not in allowed:
            raise TemplateError(
                f"unknown field (allowed: {', '.join(sorted(allowed))})",
                source=source,
                step=step,
                field=f"{prefix}{key}",
            )


def _required_str(
    data: Mapping[str, Any], key: str, *, source: str, step: str | None = None
) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(
            "is required and must be a non-empty string", source=source, step=step, field=key
        )
    return value


def _build_step(raw: Any, index: int, handler_names: Collection[str], source: str) -> StepTemplate:
    if not isinstance(raw, dict):
        raise TemplateError(f"step #{index + 1} must be a mapping", source=source, field="steps")
    label = raw.get("name") if isinstance(raw.get("name"), str) else f"#{index + 1}"
    name = _required_str(raw, "name", source=source, step=label)
    _reject_unknown(raw, _STEP_KEYS, source=source, step=name)
    handler = _required_str(raw, "handler", source=source, step=name)
    if handler not in handler_names:
        known = ", ".join(sorted(handler_names)) or "none"
        raise TemplateError(
            f"unknown handler {handler!r} (registered: {known})",
            source=source,
            step=name,
            field="handler",
        )
    depends_on = raw.get("depends_on", []) or []
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        raise TemplateError(
            "must be a list of step names", source=source, step=name, field="depends_on"
        )
    timeout_s = raw.get("timeout_s")
    if timeout_s is not None and (not _is_number(timeout_s) or timeout_s <= 0):
        raise TemplateError(
            "must be a positive number of seconds", source=source, step=name, field="timeout_s"
        )
    config = raw.get("handler_config", {}) or {}
    if not isinstance(config, dict):
        raise TemplateError("must be a mapping", source=source, step=name, field="handler_config")
    on_failure, fallback, results_schema = _build_degradation(raw, source, name)
    return StepTemplate(
        name=name,
        handler=handler,
        description=str(raw.get("description", "")),
        depends_on=tuple(depends_on),
        retry=_build_retry(raw.get("retry", {}) or {}, source, name),
        timeout_s=float(timeout_s) if timeout_s is not None else None,
        handler_config=config,
        on_failure=on_failure,
        fallback_results=fallback,
        results_schema=results_schema,
    )


def _build_degradation(
    raw: Mapping[str, Any], source: str, step: str
) -> tuple[OnFailure, Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """``on_failure``, ``fallback_results`` and ``results_schema``, checked together.

    Only a non-critical step (``on_failure: continue``) may declare a fallback: a critical one
    never hands its dependents anything but its own results. A declared fallback must be an
    object and satisfy the step's ``results_schema``, if it has one.
    """
    on_failure = _enum(OnFailure, raw.get("on_failure", "fail"), source, step, "on_failure")
    results_schema = None
    if "results_schema" in raw:
        results_schema = _build_schema(
            raw["results_schema"], source=source, fld="results_schema", step=step
        )
    if "fallback_results" not in raw:
        return on_failure, None, results_schema
    fallback = raw["fallback_results"]
    if not isinstance(fallback, dict):
        raise TemplateError(
            "must be a mapping (the results the step's dependents get instead)",
            source=source,
            step=step,
            field="fallback_results",
        )
    if on_failure is not OnFailure.CONTINUE:
        raise TemplateError(
            "only a non-critical step (on_failure: continue) may have fallback results",
            source=source,
            step=step,
            field="fallback_results",
        )
    if results_schema is not None and (errors := schema_errors(results_schema, fallback)):
        listed = "; ".join(f"{d.path}: {d.message}" for d in errors)
        raise TemplateError(
            f"does not match the step's results_schema: {listed}",
            source=source,
            step=step,
            field="fallback_results",
        )
    return on_failure, fallback, results_schema


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _build_retry(raw: Any, source: str, step: str) -> RetryPolicy:
    if not isinstance(raw, dict):
        raise TemplateError("must be a mapping", source=source, step=step, field="retry")
    _reject_unknown(raw, _RETRY_KEYS, source=source, step=step, prefix="retry.")
    defaults = RetryPolicy()

    def number(key: str, default: float, *, minimum: float) -> float:
        value = raw.get(key, default)
        if not _is_number(value) or value < minimum:
            raise TemplateError(
                f"must be a number >= {minimum:g}", source=source, step=step, field=f"retry.{key}"
            )
        return float(value)

    retryable = raw.get("retryable", True)
    if not isinstance(retryable, bool):
        raise TemplateError(
            "must be true or false", source=source, step=step, field="retry.retryable"
        )
    max_attempts = raw.get("max_attempts", defaults.max_attempts)
    if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
        raise TemplateError(
            "must be an integer >= 1", source=source, step=step, field="retry.max_attempts"
        )
    initial = number("initial_delay_s", defaults.initial_delay_s, minimum=0)
    maximum = number("max_delay_s", max(defaults.max_delay_s, initial), minimum=0)
    if maximum < initial:
        raise TemplateError(
            f"max_delay_s ({maximum:g}) is less than initial_delay_s ({initial:g})",
            source=source,
            step=step,
            field="retry.max_delay_s",
        )
    multiplier = number("multiplier", defaults.multiplier, minimum=1)
    return RetryPolicy(
        retryable=retryable,
        max_attempts=max_attempts,
        backoff=_enum(Backoff, raw.get("backoff", "exponential"), source, step, "retry.backoff"),
        initial_delay_s=initial,
        max_delay_s=maximum,
        multiplier=multiplier,
        jitter=_enum(Jitter, raw.get("jitter", "full"), source, step, "retry.jitter"),
    )


_E = TypeVar("_E", Backoff, Jitter, OnFailure)


def _enum(kind: type[_E], value: Any, source: str, step: str, fld: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise TemplateError(
            f"{value!r} is not one of: {allowed}", source=source, step=step, field=fld
        ) from None


def _check_graph(steps: list[StepTemplate], source: str) -> None:
    seen: set[str] = set()
    for step in steps:
        if step.name in seen:
            raise TemplateError("duplicate step name", source=source, step=step.name, field="name")
        seen.add(step.name)
    for step in steps:
        for dep in step.depends_on:
            if dep not in seen:
                raise TemplateError(
                    f"unknown dependency {dep!r}", source=source, step=step.name, field="depends_on"
                )
            if dep == step.name:
                raise TemplateError(
                    "a step cannot depend on itself",
                    source=source,
                    step=step.name,
                    field="depends_on",
                )
    cycle = find_cycle({s.name: s.depends_on for s in steps})
    if cycle:
        raise TemplateError(
            f"dependency cycle: {' -> '.join(cycle)}",
            source=source,
            step=cycle[0],
            field="depends_on",
        )


class TemplateCatalog:
    """The templates an engine knows, looked up by name with optional namespace and version."""

    def __init__(self, templates: Iterable[WorkflowTemplate] = ()) -> None:
        self._templates: dict[tuple[str, str, str], WorkflowTemplate] = {}
        for template in templates:
            self.add(template)

    def add(self, template: WorkflowTemplate) -> None:
        if template.key in self._templates:
            ns, name, version = template.key
            raise TemplateError(
                f"template {ns}/{name}@{version} is defined twice", source=template.source
            )
        self._templates[template.key] = template

    def load_directory(self, directory: str | Path, handler_names: Collection[str]) -> None:
        for path in sorted(Path(directory).glob("*.y*ml")):
            self.add(load_template(path, handler_names))

    def __iter__(self) -> Any:
        return iter(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)

    def find(
        self, name: str, namespace: str | None = None, version: str | None = None
    ) -> WorkflowTemplate:
        """The matching template; without a version, the highest version."""
        matches = [
            t
            for t in self._templates.values()
            if t.name == name
            and (namespace is None or t.namespace == namespace)
            and (version is None or t.version == version)
        ]
        if not matches:
            raise UnknownTemplateError(name, namespace, version)
        return max(matches, key=lambda t: _version_key(t.version))


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in version.split("."))
