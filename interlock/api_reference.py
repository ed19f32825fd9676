"""docs/api.md, the HTTP API reference, made from the OpenAPI document the API serves.

The reference is generated, not written, so it cannot say something the server does not: every
operation, its parameters with their bounds, its body, every status it answers and the schema
of each answer. ``python -m interlock.api_reference > docs/api.md`` rewrites it;
``tests/interlock/test_api_reference.py`` fails when the two differ.
"""

from __future__ import annotations

import json
import sys
from typing import Final

from orchestrator.api.openapi import openapi_spec
from orchestrator.models import JSON

_METHODS: Final = ("get", "post", "put", "patch", "delete")


def render(spec: JSON) -> str:
    """The Markdown reference of ``spec`` (an OpenAPI 3 document)."""
    out = [
        f"# HTTP API reference: {spec['info']['title']} {spec['info']['version']}",
        "",
        "Generated from `GET /openapi.json` by `python -m interlock.api_reference > docs/api.md`;",
        "do not edit by hand (a test compares the two). Every answer is JSON; errors are",
        "`{error, message, details?: [{path, message}]}` (the `Error` schema below).",
        "",
    ]
    for path, item in spec["paths"].items():
        for method in _METHODS:
            if method in item:
                out += _operation(method, path, item[method])
    out += ["## Schemas", ""]
    for name, schema in spec["components"]["schemas"].items():
        out += [f"### {name}", "", "```json", json.dumps(schema, indent=2), "```", ""]
    return "\n".join(out).rstrip() + "\n"


def _operation(method: str, path: str, op: JSON) -> list[str]:
    out = [f"## `{method.upper()} {path}`", "", op.get("summary", "")]
    if op.get("description"):
        out += ["", op["description"]]
    out.append("")
    params = op.get("parameters", [])
    if params:
        out += ["| parameter | in | schema | |", "|---|---|---|---|"]
        for p in params:
            out.append(
                f"| `{p['name']}` | {p['in']} | {_schema(p.get('schema', {}))} "
                f"| {_cell(p.get('description', ''))}{' (required)' if p.get('required') else ''} |"
            )
        out.append("")
    body = op.get("requestBody")
    if body:
        schema = body["content"]["application/json"]["schema"]
        out += [
            "Body (`application/json`):",
            "",
            "```json",
            json.dumps(schema, indent=2),
            "```",
            "",
        ]
    out += ["| status | meaning | body |", "|---|---|---|"]
    for status, answer in op.get("responses", {}).items():
        content = answer.get("content", {})
        kind = next(iter(content), "")
        schema = content.get(kind, {}).get("schema", {}) if kind else {}
        shown = _schema(schema) if schema else (f"`{kind}`" if kind else "")
        out.append(f"| {status} | {_cell(answer.get('description', ''))} | {shown} |")
    out.append("")
    return out


def _schema(schema: JSON) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    return f"`{_cell(json.dumps(schema, separators=(', ', ': ')))}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> None:
    sys.stdout.write(render(openapi_spec()))


if __name__ == "__main__":
    main()
