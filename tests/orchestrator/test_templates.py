"""Template loading: every kind of bad template is rejected with file, step and field named."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import (
    ContextValidationError,
    ResultsValidationError,
    TemplateError,
    UnknownTemplateError,
)
from orchestrator.models import OnFailure
from orchestrator.retry import Backoff, Jitter
from orchestrator.templates import (
    NormalizedContext,
    TemplateCatalog,
    load_template,
    parse_template,
)

HANDLERS = {"noop", "other"}

GOOD = """
name: diamond
namespace: demo
version: 1.2.0
description: a diamond
input_schema:
  type: object
  required: [user]
  properties:
    user:
      type: object
      required: [email]
      properties:
        email: {type: string, format: email}
        plan: {type: string, enum: [free, pro], default: free}
    prefs:
      type: object
      default: {}
      properties:
        news: {type: boolean, default: false}
steps:
  - name: a
    handler: noop
    retry: {max_attempts: 5, backoff: fixed, initial_delay_s: 2, max_delay_s: 2, jitter: none}
    timeout_s: 3
    handler_config: {url: "http://127.0.0.1:1"}
  - {name: b, handler: noop, depends_on: [a]}
  - {name: c, handler: other, depends_on: [a]}
  - {name: d, handler: noop, depends_on: [b, c]}
"""


def steps_yaml(*lines: str) -> str:
    return "name: t\nsteps:\n" + "\n".join(f"  - {line}" for line in lines) + "\n"


def test_good_template_parses_into_typed_model() -> None:
    t = parse_template(GOOD, HANDLERS, source="good.yaml")
    assert (t.namespace, t.name, t.version) == ("demo", "diamond", "1.2.0")
    assert [s.name for s in t.steps] == ["a", "b", "c", "d"]
    a = t.step("a")
    assert a.retry.max_attempts == 5
    assert a.retry.backoff is Backoff.FIXED
    assert a.retry.jitter is Jitter.NONE
    assert a.timeout_s == 3.0
    assert a.handler_config == {"url": "http://127.0.0.1:1"}
    assert t.step("d").depends_on == ("b", "c")


def test_defaults_are_applied_including_nested_ones() -> None:
    t = parse_template(GOOD, HANDLERS)
    ctx = t.prepare_context({"user": {"email": "a@example.com"}})
    assert ctx == {"user": {"email": "a@example.com", "plan": "free"}, "prefs": {"news": False}}


def test_prepare_context_does_not_mutate_the_input() -> None:
    t = parse_template(GOOD, HANDLERS)
    original = {"user": {"email": "a@example.com"}}
    t.prepare_context(original)
    assert original == {"user": {"email": "a@example.com"}}


def test_context_errors_list_every_failing_path() -> None:
    t = parse_template(GOOD, HANDLERS)
    with pytest.raises(ContextValidationError) as info:
        t.prepare_context({"user": {"email": "not-an-email", "plan": "gold"}, "prefs": {"news": 1}})
    paths = [d.path for d in info.value.details]
    assert paths == ["/prefs/news", "/user/email", "/user/plan"]


def test_missing_required_field_names_its_path() -> None:
    t = parse_template(GOOD, HANDLERS)
    with pytest.raises(ContextValidationError) as info:
        t.prepare_context({"user": {}})
    assert [(d.path, d.message) for d in info.value.details] == [("/user/email", "is required")]


def _lift_user(context: dict[str, Any]) -> NormalizedContext:
    """A normaliser for a second shape: ``email`` at the top level instead of under ``user``."""
    if "email" not in context:
        return NormalizedContext(context)
    return NormalizedContext({"user": {"email": context.pop("email")}, **context}, {"/user": ""})


def test_a_normaliser_runs_first_and_errors_name_the_paths_as_sent() -> None:
    t = dataclasses.replace(parse_template(GOOD, HANDLERS), normalize=_lift_user)
    assert t.prepare_context({"email": "a@example.com"})["user"] == {
        "email": "a@example.com",
        "plan": "free",
    }
    assert t.prepare_context({"user": {"email": "b@example.com"}})["user"]["email"] == (
        "b@example.com"
    )
    with pytest.raises(ContextValidationError) as info:
        t.prepare_context({"email": "nope", "prefs": {"news": 1}})
    assert [d.path for d in info.value.details] == ["/email", "/prefs/news"]
    original = {"email": "a@example.com"}
    t.prepare_context(original)
    assert original == {"email": "a@example.com"}  # the normaliser works on a copy


def test_non_object_context_is_rejected() -> None:
    t = parse_template(GOOD, HANDLERS)
    with pytest.raises(ContextValidationError, match="must be a JSON object"):
        t.prepare_context(["x"])


@pytest.mark.parametrize(
    ("text", "step", "field", "needle"),
    [
        (
            steps_yaml("{name: a, handler: noop, depends_on: [zzz]}"),
            "a",
            "depends_on",
            "unknown dependency 'zzz'",
        ),
        (
            steps_yaml("{name: a, handler: noop}", "{name: a, handler: noop}"),
            "a",
            "name",
            "duplicate step name",
        ),
        (steps_yaml("{name: a, handler: nope}"), "a", "handler", "unknown handler 'nope'"),
        (
            steps_yaml("{name: a, handler: noop, retry: {max_attempts: 0}}"),
            "a",
            "retry.max_attempts",
            "integer >= 1",
        ),
        (
            steps_yaml("{name: a, handler: noop, retry: {initial_delay_s: -1}}"),
            "a",
            "retry.initial_delay_s",
            ">= 0",
        ),
        (
            steps_yaml("{name: a, handler: noop, retry: {initial_delay_s: 10, max_delay_s: 5}}"),
            "a",
            "retry.max_delay_s",
            "less than initial_delay_s",
        ),
        (
            steps_yaml("{name: a, handler: noop, retry: {multiplier: 0.5}}"),
            "a",
            "retry.multiplier",
            ">= 1",
        ),
        (
            steps_yaml("{name: a, handler: noop, retry: {backoff: linear}}"),
            "a",
            "retry.backoff",
            "'linear' is not one of",
        ),
        (
            steps_yaml("{name: a, handler: noop, retry: {jitter: some}}"),
            "a",
            "retry.jitter",
            "is not one of",
        ),
        (
            steps_yaml("{name: a, handler: noop, retry: {tries: 3}}"),
            "a",
            "retry.tries",
            "unknown field",
        ),
        (steps_yaml("{name: a, handler: noop, timeout_s: -2}"), "a", "timeout_s", "positive"),
        (
            steps_yaml("{name: a, handler: noop, depends_of: [b]}"),
            "a",
            "depends_of",
            "unknown field",
        ),
        (
            steps_yaml("{name: a, handler: noop, depends_on: [a]}"),
            "a",
            "depends_on",
            "cannot depend on itself",
        ),
        (steps_yaml("{handler: noop}"), "#1", "name", "required"),
        (
            steps_yaml("{name: a, handler: noop, on_failure: ignore}"),
            "a",
            "on_failure",
            "'ignore' is not one of: fail, continue",
        ),
        (
            steps_yaml("{name: a, handler: noop, on_failure: continue, fallback_results: [1]}"),
            "a",
            "fallback_results",
            "must be a mapping",
        ),
        (
            steps_yaml("{name: a, handler: noop, fallback_results: {x: 1}}"),
            "a",
            "fallback_results",
            "only a non-critical step (on_failure: continue)",
        ),
        (
            steps_yaml("{name: a, handler: noop, on_failure: fail, fallback_results: {}}"),
            "a",
            "fallback_results",
            "only a non-critical step",
        ),
        (
            steps_yaml(
                "{name: a, handler: noop, on_failure: continue, fallback_results: {x: 1},"
                " results_schema: {required: [y], properties: {x: {type: string}}}}"
            ),
            "a",
            "fallback_results",
            "does not match the step's results_schema: /x: 1 is not of type 'string'; "
            "/y: is required",
        ),
        (
            steps_yaml("{name: a, handler: noop, results_schema: {type: 12}}"),
            "a",
            "results_schema",
            "invalid JSON Schema",
        ),
        (
            steps_yaml("{name: a, handler: noop, results_schema: [object]}"),
            "a",
            "results_schema",
            "must be a mapping",
        ),
    ],
)
def test_bad_step_is_rejected_naming_file_step_and_field(
    text: str, step: str, field: str, needle: str
) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(text, HANDLERS, source="bad.yaml")
    err = info.value
    assert (err.source, err.step, err.field) == ("bad.yaml", step, field)
    assert needle in str(err)
    assert "bad.yaml" in str(err)


def test_a_non_critical_step_with_fallback_and_results_schema() -> None:
    text = steps_yaml(
        "{name: a, handler: noop}",
        "{name: b, handler: noop, depends_on: [a], on_failure: continue,"
        " fallback_results: {prefs: {news: false}},"
        " results_schema: {type: object, required: [prefs], properties: {prefs: {type: object}}}}",
    )
    t = parse_template(text, HANDLERS)
    a, b = t.step("a"), t.step("b")
    assert (a.on_failure, a.fallback_results, a.results_schema) == (OnFailure.FAIL, None, None)
    assert b.on_failure is OnFailure.CONTINUE
    assert b.fallback_results == {"prefs": {"news": False}}
    b.check_results({"prefs": {}})
    a.check_results({"anything": 1})  # no schema: nothing to check
    with pytest.raises(ResultsValidationError) as info:
        b.check_results({"prefs": 1})
    assert [(d.path, d.message) for d in info.value.details] == [
        ("/prefs", "1 is not of type 'object'")
    ]
    with pytest.raises(ResultsValidationError) as info:
        b.check_results({})
    assert [(d.path, d.message) for d in info.value.details] == [("/prefs", "is required")]


def test_a_non_critical_step_may_go_without_a_fallback() -> None:
    t = parse_template(steps_yaml("{name: a, handler: noop, on_failure: continue}"), HANDLERS)
    assert (t.step("a").on_failure, t.step("a").fallback_results) == (OnFailure.CONTINUE, None)


def test_cycle_is_named() -> None:
    text = steps_yaml(
        "{name: a, handler: noop, depends_on: [c]}",
        "{name: b, handler: noop, depends_on: [a]}",
        "{name: c, handler: noop, depends_on: [b]}",
        "{name: z, handler: noop}",
    )
    with pytest.raises(TemplateError, match=r"dependency cycle: a -> c -> b -> a"):
        parse_template(text, HANDLERS, source="cycle.yaml")


def test_invalid_json_schema_is_rejected() -> None:
    text = "name: t\ninput_schema: {type: objekt}\nsteps:\n  - {name: a, handler: noop}\n"
    with pytest.raises(TemplateError) as info:
        parse_template(text, HANDLERS, source="schema.yaml")
    assert info.value.field == "input_schema"
    assert "invalid JSON Schema" in str(info.value)


def test_the_schema_draft_follows_dollar_schema() -> None:
    draft7 = (
        "name: t\ninput_schema:\n  $schema: 'http://json-schema.org/draft-07/schema#'\n"
        "  properties: {n: {type: integer, exclusiveMinimum: 0}}\n"
        "steps:\n  - {name: a, handler: noop}\n"
    )
    template = parse_template(draft7, HANDLERS, source="d7.yaml")
    assert template.prepare_context({"n": 1}) == {"n": 1}
    with pytest.raises(ContextValidationError, match="/n"):
        template.prepare_context({"n": 0})
    # exclusiveMinimum: true is a draft-4 boolean: draft 7 rejects it as a schema.
    bad = draft7.replace("exclusiveMinimum: 0", "exclusiveMinimum: true")
    with pytest.raises(TemplateError, match="invalid JSON Schema"):
        parse_template(bad, HANDLERS, source="d7.yaml")
    unknown = draft7.replace("draft-07", "draft-99")
    with pytest.raises(TemplateError, match=r"unknown \$schema"):
        parse_template(unknown, HANDLERS, source="d99.yaml")


def test_yaml_syntax_error_reports_the_line() -> None:
    text = "name: t\nsteps:\n  - {name: a, handler: noop\n  - name: b\n"
    with pytest.raises(TemplateError) as info:
        parse_template(text, HANDLERS, source="syntax.yaml")
    assert info.value.line is not None
    assert "syntax.yaml:" in str(info.value)
    assert "YAML syntax error" in str(info.value)


def test_yaml_is_loaded_safely() -> None:
    text = "name: !!python/object/apply:os.system ['true']\nsteps: []\n"
    with pytest.raises(TemplateError):
        parse_template(text, HANDLERS)


def test_unknown_top_level_field_and_missing_steps() -> None:
    with pytest.raises(TemplateError, match="unknown field"):
        parse_template("name: t\nstepz: []\n", HANDLERS)
    with pytest.raises(TemplateError, match="non-empty list"):
        parse_template("name: t\nsteps: []\n", HANDLERS)


def test_load_template_from_file_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert load_template(path, HANDLERS).source == str(path)
    with pytest.raises(TemplateError, match="cannot read template"):
        load_template(tmp_path / "missing.yaml", HANDLERS)


def test_catalog_finds_latest_version_and_rejects_unknown() -> None:
    v1 = parse_template(GOOD, HANDLERS)
    v2 = parse_template(GOOD.replace("1.2.0", "1.10.0"), HANDLERS)
    catalog = TemplateCatalog([v1, v2])
    assert catalog.find("diamond").version == "1.10.0"
    assert catalog.find("diamond", version="1.2.0") is v1
    with pytest.raises(UnknownTemplateError):
        catalog.find("diamond", namespace="other")
    with pytest.raises(TemplateError, match="defined twice"):
        catalog.add(v1)
