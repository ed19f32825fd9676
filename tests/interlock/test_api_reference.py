"""docs/api.md is the OpenAPI document the API serves, rendered: it cannot drift from it."""

from __future__ import annotations

from pathlib import Path

from interlock.api_reference import render
from orchestrator.api.openapi import openapi_spec

ROOT = Path(__file__).resolve().parents[2]


def test_docs_api_md_is_the_served_openapi_document_rendered() -> None:
    written = (ROOT / "docs" / "api.md").read_text()
    assert written == render(openapi_spec()), (
        "docs/api.md is stale: run `.venv/bin/python -m interlock.api_reference > docs/api.md`"
    )


def test_every_operation_and_status_is_in_the_reference() -> None:
    spec, text = openapi_spec(), render(openapi_spec())
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert f"## `{method.upper()} {path}`" in text
            for status in op["responses"]:
                assert f"| {status} |" in text
