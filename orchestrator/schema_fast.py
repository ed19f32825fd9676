"""A compiled JSON Schema check that accepts valid contexts quickly; jsonschema judges the rest.

Validating a registration context with ``jsonschema`` is a few per cent of a registration's
whole CPU budget. ``fastjsonschema`` compiles the schema to Python code that does the same check
in a fraction of the time (docs/benchmarks.md, "Measured choices in the code"), but it stops at
the first error and speaks only drafts 4, 6 and 7. So it is used one way only: when it
*accepts*, the context is valid; when it rejects (or the schema is not one it can compile
safely), ``jsonschema`` runs as before and lists every failing path, and its verdict is the one
that counts. Formats are checked by jsonschema's own format checker in both, so the two agree on
what an ``email`` is.

fastjsonschema turns the schema into Python source. Template schemas have already passed
jsonschema's metaschema check when they reach it (so every keyword has its proper type), and it
writes every value from the schema into that source through ``repr`` and sanitises key names;
a schema cannot smuggle code in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import fastjsonschema
import jsonschema

#: ``$schema`` values fastjsonschema implements (with or without the trailing ``#``).
_DRAFTS = {f"http://json-schema.org/draft-{n:02d}/schema" for n in (4, 6, 7)}

T = TypeVar("T")


def per_schema(build: Callable[[Mapping[str, Any]], T]) -> Callable[[Mapping[str, Any]], T]:
    """Memoise ``build`` per schema object (by identity: schemas are dicts, not hashable).

    The entry keeps the schema itself, so its id cannot be reused by another object while the
    entry lives; templates are few, so the memo is simply emptied if it ever grows past 256.
    """
    memo: dict[int, tuple[Mapping[str, Any], T]] = {}

    def cached(schema: Mapping[str, Any]) -> T:
        hit = memo.get(id(schema))
        if hit is not None and hit[0] is schema:
            return hit[1]
        value = build(schema)
        if len(memo) > 256:
            memo.clear()
        memo[id(schema)] = (schema, value)
        return value

    return cached


def accepts(schema: Mapping[str, Any] | bool, instance: Any) -> bool:
    """True if ``instance`` certainly satisfies ``schema``; False means "ask jsonschema"."""
    if not isinstance(schema, Mapping):  # a boolean schema: nothing to gain
        return False
    check = _compiled(schema)
    if check is None:
        return False
    try:
        check(instance)
    except fastjsonschema.JsonSchemaValueException:
        return False
    return True


@per_schema
def _compiled(schema: Mapping[str, Any]) -> Callable[[Any], Any] | None:
    """The compiled check, or None for a schema only jsonschema should handle.

    Only drafts 4/6/7 named in ``$schema``, and only schemas whose every ``$ref`` is local:
    fastjsonschema would fetch a remote reference over the network while compiling.
    """
    declared = str(schema.get("$schema", "")).rstrip("#")
    if declared not in _DRAFTS or not _refs_are_local(schema):
        return None
    cls = jsonschema.validators.validator_for(schema)
    checker = cls.FORMAT_CHECKER
    formats = {name: _format(checker, name) for name in checker.checkers}
    try:
        return fastjsonschema.compile(dict(schema), formats=formats, use_default=False)
    except fastjsonschema.JsonSchemaDefinitionException:
        return None


def _format(checker: jsonschema.FormatChecker, name: str) -> Callable[[Any], bool]:
    def conforms(value: Any) -> bool:
        return checker.conforms(value, name)

    return conforms


def _refs_are_local(node: Any) -> bool:
    if isinstance(node, Mapping):
        ref = node.get("$ref")
        if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
            return False
        return all(_refs_are_local(v) for v in node.values())
    if isinstance(node, list):
        return all(_refs_are_local(v) for v in node)
    return True
