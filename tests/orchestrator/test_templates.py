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
from orchestrator.retry import Backoff, Jitter, RetryPolicy
from orchestrator.templates import (
    NormalizedContext,
    TemplateCatalog,
    build_template,
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


def test_every_retry_field_goes_from_yaml_into_the_policy() -> None:
    text = steps_yaml(
        "{name: a, handler: noop, retry: {retryable: false, max_attempts: 7, backoff: none,"
        " initial_delay_s: 0.5, max_delay_s: 9, multiplier: 3, jitter: equal}}",
        "{name: b, handler: noop}",
    )
    t = parse_template(text, HANDLERS)
    assert t.step("a").retry == RetryPolicy(
        retryable=False,
        max_attempts=7,
        backoff=Backoff.NONE,
        initial_delay_s=0.5,
        max_delay_s=9.0,
        multiplier=3.0,
        jitter=Jitter.EQUAL,
    )
    assert t.step("b").retry == RetryPolicy()
    assert isinstance(t.step("a").retry.max_delay_s, float)
    empty = parse_template(steps_yaml("{name: a, handler: noop, retry: }"), HANDLERS)
    assert empty.step("a").retry == RetryPolicy()


def test_a_retry_policy_may_be_zero_and_its_max_follows_a_large_initial_delay() -> None:
    zero = parse_template(
        steps_yaml("{name: a, handler: noop, retry: {initial_delay_s: 0, max_delay_s: 0}}"),
        HANDLERS,
    )
    assert (zero.step("a").retry.initial_delay_s, zero.step("a").retry.max_delay_s) == (0, 0)
    slow = parse_template(
        steps_yaml("{name: a, handler: noop, retry: {initial_delay_s: 90, multiplier: 1}}"),
        HANDLERS,
    )
    assert (slow.step("a").retry.max_delay_s, slow.step("a").retry.multiplier) == (90.0, 1.0)
    same = parse_template(
        steps_yaml("{name: a, handler: noop, retry: {initial_delay_s: 5, max_delay_s: 5}}"),
        HANDLERS,
    )
    assert same.step("a").retry.max_delay_s == 5.0


@pytest.mark.parametrize(
    ("step", "field"),
    [
        ("timeout_s: 0", "timeout_s"),
        ("timeout_s: .nan", "timeout_s"),
        ("timeout_s: .inf", "timeout_s"),
        ("timeout_s: '3'", "timeout_s"),
        ("timeout_s: true", "timeout_s"),
        ("retry: {initial_delay_s: .nan}", "retry.initial_delay_s"),
        ("retry: {max_delay_s: .inf}", "retry.max_delay_s"),
        ("retry: {multiplier: '2'}", "retry.multiplier"),
        ("retry: {initial_delay_s: true}", "retry.initial_delay_s"),
        ("retry: {max_attempts: '3'}", "retry.max_attempts"),
        ("retry: {max_attempts: true}", "retry.max_attempts"),
        ("retry: {max_attempts: 2.5}", "retry.max_attempts"),
        ("retry: {retryable: 'yes'}", "retry.retryable"),
        ("retry: {retryable: 1}", "retry.retryable"),
        ("retry: [1]", "retry"),
        ("handler_config: [1]", "handler_config"),
        ("depends_on: b", "depends_on"),
        ("depends_on: [1]", "depends_on"),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused_naming_its_field(step: str, field: str) -> None:
    text = steps_yaml(f"{{name: a, handler: noop, {step}}}")
    with pytest.raises(TemplateError) as info:
        parse_template(text, HANDLERS, source="kinds.yaml")
    assert (info.value.source, info.value.step, info.value.field) == ("kinds.yaml", "a", field)


def test_the_smallest_valid_numbers_are_accepted() -> None:
    text = steps_yaml("{name: a, handler: noop, timeout_s: 0.001, retry: {max_attempts: 1}}")
    step = parse_template(text, HANDLERS).step("a")
    assert (step.timeout_s, step.retry.max_attempts) == (0.001, 1)
    assert (
        parse_template(steps_yaml("{name: a, handler: noop}"), HANDLERS).step("a").timeout_s is None
    )


def test_a_step_keeps_its_description_config_and_the_template_its_defaults() -> None:
    text = steps_yaml("{name: a, handler: noop, description: first, handler_config: }")
    t = parse_template(text, HANDLERS)
    assert (t.namespace, t.version, t.description) == ("default", "1.0.0", "")
    assert (t.step("a").description, t.step("a").handler_config) == ("first", {})
    assert t.input_schema == {"type": "object"}
    assert t.key == ("default", "t", "1.0.0")
    with pytest.raises(KeyError):
        t.step("zzz")


def test_steps_are_kept_in_dependency_order() -> None:
    text = steps_yaml(
        "{name: c, handler: noop, depends_on: [b]}",
        "{name: b, handler: noop, depends_on: [a]}",
        "{name: a, handler: noop}",
    )
    assert [s.name for s in parse_template(text, HANDLERS).steps] == ["a", "b", "c"]


def test_defaults_apply_inside_array_items_and_are_never_shared() -> None:
    text = (
        "name: t\ninput_schema:\n  type: object\n  properties:\n"
        "    tags: {type: array, items: {type: object, properties:"
        " {labels: {type: array, default: []}, enabled: {type: boolean, default: true}}}}\n"
        "    meta: {type: object, default: {seen: []}}\n"
        "steps:\n  - {name: a, handler: noop}\n"
    )
    t = parse_template(text, HANDLERS)
    first = t.prepare_context({"tags": [{}, {"enabled": False}]})
    assert first == {
        "tags": [{"labels": [], "enabled": True}, {"labels": [], "enabled": False}],
        "meta": {"seen": []},
    }
    first["tags"][0]["labels"].append("x")
    first["meta"]["seen"].append("x")
    assert first["tags"][1]["labels"] == []  # two items do not share one default
    second = t.prepare_context({"tags": [{}]})
    assert second == {"tags": [{"labels": [], "enabled": True}], "meta": {"seen": []}}


def test_errors_after_a_normaliser_name_the_longest_moved_path_as_sent() -> None:
    def lift(context: dict[str, Any]) -> NormalizedContext:
        lifted = {"user": {"email": context.pop("email"), "prefs": context.pop("p"), **context}}
        return NormalizedContext(lifted, {"/user": "", "/user/prefs": "/p"})

    text = (
        "name: t\ninput_schema:\n  type: object\n  properties:\n    user:\n      type: object\n"
        "      maxProperties: 2\n      properties:\n        email: {type: string}\n"
        "        prefs: {type: object, properties: {news: {type: boolean}}}\n"
        "steps:\n  - {name: a, handler: noop}\n"
    )
    t = dataclasses.replace(parse_template(text, HANDLERS), normalize=lift)
    with pytest.raises(ContextValidationError) as info:
        t.prepare_context({"email": 1, "p": {"news": "no"}})
    assert [(d.path, d.message) for d in info.value.details] == [
        ("/email", "1 is not of type 'string'"),
        ("/p/news", "'no' is not of type 'boolean'"),
    ]
    with pytest.raises(ContextValidationError) as info:
        t.prepare_context({"email": "a@b.c", "p": 3})
    assert [(d.path, d.message) for d in info.value.details] == [
        ("/p", "3 is not of type 'object'")
    ]
    with pytest.raises(ContextValidationError) as info:
        t.prepare_context({"email": "a@b.c", "p": {}, "extra": 1})
    assert [d.path for d in info.value.details] == ["/"]  # the whole context was sent as user


def test_a_yaml_error_names_the_line_it_is_on() -> None:
    text = "name: t\nsteps:\n  - {name: a, handler: noop}\n  - {name: b, handler: noop\n"
    with pytest.raises(TemplateError) as info:
        parse_template(text, HANDLERS, source="syntax.yaml")
    assert info.value.line == 5
    assert str(info.value).startswith("syntax.yaml:5: YAML syntax error: ")


def test_yaml_cannot_build_python_objects(tmp_path: Path) -> None:
    target = tmp_path / "created-by-the-template"
    text = f"name: !!python/object/apply:builtins.open ['{target}', 'w']\nsteps: []\n"
    with pytest.raises(TemplateError) as info:
        parse_template(text, HANDLERS, source="evil.yaml")
    assert not target.exists()
    assert "tag:yaml.org,2002:python/object/apply:builtins.open" in str(info.value)
    assert info.value.line == 1


def test_versions_order_by_number_and_a_number_beats_a_word() -> None:
    def latest(*versions: str) -> str:
        templates = [parse_template(GOOD.replace("1.2.0", v), HANDLERS) for v in versions]
        return TemplateCatalog(templates).find("diamond").version

    assert latest("1.9.0", "1.10.0") == "1.10.0"
    assert latest("1.10.0", "1.9.0") == "1.10.0"
    assert latest("1.2.rc1", "1.2.0") == "1.2.0"
    assert latest("1.2.0", "1.2.rc1") == "1.2.0"
    assert latest("1.2.a", "1.2.b") == "1.2.b"
    assert latest("2.beta", "1.10.0") == "2.beta"


def test_a_catalog_lists_its_templates_and_loads_a_directory(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(GOOD)
    (tmp_path / "a.yml").write_text(GOOD.replace("1.2.0", "2.0.0"))
    (tmp_path / "notes.txt").write_text("not a template")
    catalog = TemplateCatalog()
    catalog.load_directory(tmp_path, HANDLERS)
    assert len(catalog) == 2
    assert [t.version for t in catalog] == ["2.0.0", "1.2.0"]
    assert catalog.find("diamond", namespace="demo", version="1.2.0").source.endswith("b.yaml")
    with pytest.raises(UnknownTemplateError):
        catalog.find("diamond", version="3.0.0")
    with pytest.raises(
        TemplateError, match=r"a\.yml: template demo/diamond@2\.0\.0 is defined twice"
    ):
        catalog.load_directory(tmp_path, HANDLERS)


def _step(fields: str) -> str:
    return steps_yaml(f"{{name: a, handler: noop, {fields}}}")


@pytest.mark.parametrize(
    ("text", "step", "field", "message"),
    [
        ("[1, 2]\n", None, None, "a template must be a mapping"),
        ("name: t\n", None, "steps", "must be a non-empty list"),
        ("name: t\nsteps: {a: 1}\n", None, "steps", "must be a non-empty list"),
        (steps_yaml("{name: a, handler: noop}", "[b]"), None, "steps", "step #2 must be a mapping"),
        (
            "steps: [{name: a, handler: noop}]\n",
            None,
            "name",
            "is required and must be a non-empty string",
        ),
        (steps_yaml("{name: a}"), "a", "handler", "is required and must be a non-empty string"),
        (_step("retry: [1]"), "a", "retry", "must be a mapping"),
        (_step("retry: {retryable: 1}"), "a", "retry.retryable", "must be true or false"),
        (_step("retry: {max_attempts: 0}"), "a", "retry.max_attempts", "must be an integer >= 1"),
        (_step("retry: {multiplier: 0}"), "a", "retry.multiplier", "must be a number >= 1"),
        (_step("retry: {max_delay_s: -1}"), "a", "retry.max_delay_s", "must be a number >= 0"),
        (_step("timeout_s: 0"), "a", "timeout_s", "must be a positive number of seconds"),
        (_step("handler_config: [1]"), "a", "handler_config", "must be a mapping"),
        (_step("depends_on: b"), "a", "depends_on", "must be a list of step names"),
        (_step("input_schema: {}"), "a", "input_schema", None),
        (
            "name: t\ninput_schema: [1]\nsteps: [{name: a, handler: noop}]\n",
            None,
            "input_schema",
            "must be a mapping",
        ),
        (_step("results_schema: 1"), "a", "results_schema", "must be a mapping"),
        (
            _step("results_schema: {$schema: 'urn:nope'}"),
            "a",
            "results_schema",
            "unknown $schema 'urn:nope' (known: JSON Schema drafts 4, 6, 7, 2019-09 and 2020-12)",
        ),
        (
            _step("results_schema: {properties: {n: {minimum: x}}}"),
            "a",
            "results_schema",
            "invalid JSON Schema at /properties/n/minimum: 'x' is not of type 'number'",
        ),
        (
            _step("on_failure: continue, fallback_results: 1"),
            "a",
            "fallback_results",
            "must be a mapping (the results the step's dependents get instead)",
        ),
        (
            _step("fallback_results: {}"),
            "a",
            "fallback_results",
            "only a non-critical step (on_failure: continue) may have fallback results",
        ),
        (
            steps_yaml("{name: a, handler: noop}", "{name: a, handler: other}"),
            "a",
            "name",
            "duplicate step name",
        ),
        (_step("depends_on: [a]"), "a", "depends_on", "a step cannot depend on itself"),
        (
            steps_yaml(
                "{name: z, handler: noop}",
                "{name: b, handler: noop, depends_on: [c]}",
                "{name: c, handler: noop, depends_on: [b]}",
            ),
            "b",
            "depends_on",
            "dependency cycle: b -> c -> b",
        ),
        (
            "name: t\nsteps: [{name: a, handler: noop}]\nowner: me\n",
            None,
            "owner",
            "unknown field (allowed: description, input_schema, name, namespace, steps, version)",
        ),
    ],
)
def test_every_refusal_names_where_and_what(
    text: str, step: str | None, field: str, message: str | None
) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(text, HANDLERS, source="where.yaml")
    err = info.value
    assert (err.source, err.step, err.field) == ("where.yaml", step, field)
    if message is not None:
        assert err.message == message


def test_an_unknown_handler_lists_the_registered_ones() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(steps_yaml("{name: a, handler: nope}"), HANDLERS)
    assert info.value.message == "unknown handler 'nope' (registered: noop, other)"
    with pytest.raises(TemplateError) as info:
        parse_template(steps_yaml("{name: a, handler: nope}"), set())
    assert info.value.message == "unknown handler 'nope' (registered: none)"
    assert (info.value.source, info.value.step) == ("<memory>", "a")


def test_a_template_keeps_its_description_handlers_and_source() -> None:
    t = parse_template(GOOD, HANDLERS)
    assert (t.description, t.source) == ("a diamond", "<memory>")
    built = build_template({"name": "t", "steps": [{"name": "a", "handler": "noop"}]}, HANDLERS)
    assert built.source == "<memory>"
    assert [s.handler for s in t.steps] == ["noop", "noop", "other", "noop"]
    assert t.step("b").description == ""
    with pytest.raises(KeyError) as info:
        t.step("zzz")
    assert info.value.args == ("zzz",)


def test_a_yaml_error_that_is_not_about_syntax_names_the_file() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template("name: t\x07\n", HANDLERS, source="bell.yaml")
    assert info.value.source == "bell.yaml"
    assert info.value.message.startswith("YAML error: ")
    assert "special characters are not allowed" in info.value.message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    with pytest.raises(TemplateError) as info:
        load_template(missing, HANDLERS)
    assert (info.value.source, info.value.message) == (
        str(missing),
        "cannot read template: No such file or directory",
    )


def test_schema_defaults_pass_over_boolean_subschemas_and_non_arrays() -> None:
    text = (
        "name: t\ninput_schema:\n  properties:\n    any: true\n    b: {default: 1}\n"
        "    n: {items: {properties: {x: {default: 1}}}}\n"
        "steps:\n  - {name: a, handler: noop}\n"
    )
    t = parse_template(text, HANDLERS)
    assert t.prepare_context({"n": 3}) == {"n": 3, "b": 1}
    assert t.prepare_context({"n": [{}]}) == {"n": [{"x": 1}], "b": 1}


def test_context_errors_name_the_template_and_every_kind_of_problem() -> None:
    text = (
        "name: t\ninput_schema:\n  type: object\n  additionalProperties: false\n"
        "  properties: {a: {type: integer}}\n"
        "steps:\n  - {name: a, handler: noop}\n"
    )
    t = parse_template(text, HANDLERS)
    with pytest.raises(ContextValidationError) as info:
        t.prepare_context({"a": 1, "x": 2})
    assert info.value.template == "t"
    assert [(d.path, d.message) for d in info.value.details] == [
        ("/", "Additional properties are not allowed ('x' was unexpected)")
    ]
    with pytest.raises(ContextValidationError) as info:
        t.prepare_context("x")
    assert info.value.template == "t"
    assert [(d.path, d.message) for d in info.value.details] == [
        ("/", "the context must be a JSON object")
    ]


def test_results_and_lookup_errors_carry_what_they_are_about() -> None:
    text = steps_yaml("{name: a, handler: noop, results_schema: {required: [id]}}")
    with pytest.raises(ResultsValidationError) as results:
        parse_template(text, HANDLERS).step("a").check_results({})
    assert results.value.step == "a"
    catalog = TemplateCatalog([parse_template(GOOD, HANDLERS)])
    with pytest.raises(UnknownTemplateError) as lookup:
        catalog.find("diamond", namespace="demo", version="9")
    assert (lookup.value.name, lookup.value.namespace, lookup.value.version) == (
        "diamond",
        "demo",
        "9",
    )
