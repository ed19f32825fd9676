"""Fault rules and the injector that decides, per request, which of them fire.

A rule is data (``FaultRule``, validated by :func:`parse_rule`); what it has done so far lives
beside it (``RuleCounters``), so a rule can be listed, changed or removed over the admin API.
Every rule draws from its own ``random.Random(seed)``: the same seed and the same order of
requests give the same faults, whatever other rules exist.

Kinds (parameters in brackets):

- ``error`` [status 400-599 = 500, retry_after_s? (<= 86400), message?]: answer with that
  status, no effect.
- ``rate_limit`` [limit, window_s = 1 (<= 86400)]: once ``limit`` matching requests fell in
  the last ``window_s``, answer 429 with ``Retry-After``.
- ``latency`` [delay_ms, jitter_ms = 0 (each <= 600000)]: delay, then go on (latency rules add
  up; the request may still meet another fault).
- ``hang`` [hold_ms = 60000 (<= 600000)]: hold the request without answering, then drop the
  connection.
- ``reset``: drop the connection at once with a TCP reset, no response.
- ``malformed`` [status = 200]: answer with a truncated JSON body, no effect.
- ``lost_response`` [status?]: run the request (it takes effect), then lose the answer: the
  connection is reset, or, when ``status`` is given, the client gets that status instead.
- ``down``: answer 503 as a service that is down would, no effect.
- ``missing_fields`` [fields]: run the request (it takes effect), then answer with its own
  status and JSON object minus those top-level fields: a service that broke its contract, a
  2xx that lacks what the client needs.

Common fields: ``match`` {method?, path? (a glob)}, ``probability`` (1.0), ``after`` (let that
many matching requests pass first), ``times`` (fire that many times, then stop), ``seed``, and
``per_key`` (false): count ``after`` and ``times`` for each ``Idempotency-Key`` on its own, so
``{"kind": "error", "status": 503, "times": 2, "per_key": true}`` fails every request twice and
then lets its retry through, however many clients retry at once (requests without a key count
together, as one more key).
Every number is finite (no NaN, no infinity).
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import random
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from jsonschema import Draft202012Validator

from mock_services.errors import FaultRuleError

FAULT_KINDS: Final = (
    "error",
    "rate_limit",
    "latency",
    "hang",
    "reset",
    "malformed",
    "lost_response",
    "down",
    "missing_fields",
)

#: Upper bounds of the durations a rule may ask for: long enough for any demo, short enough that
#: a typo cannot hold a request (or a client's retry) for days.
MAX_DELAY_MS: Final = 600_000
MAX_RETRY_AFTER_S: Final = 86_400
MAX_WINDOW_S: Final = 86_400
#: Rules one service holds at once (each is checked on every request): plenty for any
#: scenario; past it, adding one is a 409 until one is removed.
MAX_RULES: Final = 100
_MILLISECONDS = {"type": "number", "minimum": 0, "maximum": MAX_DELAY_MS}
_COMMON = {
    "kind": {"enum": list(FAULT_KINDS)},
    "id": {"type": "string"},
    "match": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "method": {"type": "string", "pattern": "^([A-Za-z]+|\\*)$"},
            "path": {"type": "string", "minLength": 1},
        },
    },
    "probability": {"type": "number", "minimum": 0, "maximum": 1},
    "after": {"type": "integer", "minimum": 0},
    "times": {"type": ["integer", "null"], "minimum": 1},
    "seed": {"type": ["integer", "null"]},
    "per_key": {"type": "boolean"},
}
_KIND_PARAMS: Final[dict[str, dict[str, Any]]] = {
    "error": {
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "retry_after_s": {"type": "number", "minimum": 0, "maximum": MAX_RETRY_AFTER_S},
        "message": {"type": "string"},
    },
    "rate_limit": {
        "limit": {"type": "integer", "minimum": 1},
        "window_s": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_WINDOW_S},
    },
    "latency": {"delay_ms": _MILLISECONDS, "jitter_ms": _MILLISECONDS},
    "hang": {"hold_ms": _MILLISECONDS},
    "reset": {},
    "malformed": {"status": {"type": "integer", "minimum": 200, "maximum": 599}},
    "lost_response": {"status": {"type": "integer", "minimum": 400, "maximum": 599}},
    "down": {},
    "missing_fields": {
        "fields": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {"type": "string", "minLength": 1},
        }
    },
}
_REQUIRED: Final = {"rate_limit": ["limit"], "latency": ["delay_ms"], "missing_fields": ["fields"]}
_DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "error": {"status": 500},
    "rate_limit": {"window_s": 1.0},
    "latency": {"jitter_ms": 0},
    "hang": {"hold_ms": 60_000},
    "malformed": {"status": 200},
}
_COMMON_FIELDS: Final = frozenset(_COMMON)


def _validator(kind: str) -> Draft202012Validator:
    schema = {
        "type": "object",
        "required": ["kind", *_REQUIRED.get(kind, [])],
        "additionalProperties": False,
        "properties": {**_COMMON, **_KIND_PARAMS[kind]},
    }
    return Draft202012Validator(schema)


_VALIDATORS: Final = {kind: _validator(kind) for kind in FAULT_KINDS}


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One validated rule. ``params`` holds the kind's own parameters, defaults applied."""

    id: str
    kind: str
    method: str = "*"  #: HTTP method, or ``*`` for any
    path: str = "*"  #: glob over the request path (``/users*``); ``*`` matches everything
    probability: float = 1.0
    after: int = 0  #: matching requests let through before the rule may fire
    times: int | None = None  #: fire at most this many times; None = unlimited
    seed: int | None = None
    per_key: bool = False  #: ``after`` and ``times`` count for each Idempotency-Key on its own
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if self.method != "*" and self.method != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)

    def to_json(self) -> dict[str, Any]:
        match: dict[str, str] = {}
        if self.method != "*":
            match["method"] = self.method
        if self.path != "*":
            match["path"] = self.path
        return {
            "id": self.id,
            "kind": self.kind,
            "match": match,
            "probability": self.probability,
            "after": self.after,
            "times": self.times,
            "seed": self.seed,
            "per_key": self.per_key,
            **self.params,
        }


def parse_rule(data: object, rule_id: str) -> FaultRule:
    """Validate a rule as received over HTTP; raise ``FaultRuleError`` naming every bad field."""
    if not isinstance(data, dict):
        raise FaultRuleError([("", "the rule must be a JSON object")])
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _VALIDATORS:
        raise FaultRuleError([("kind", f"must be one of {', '.join(FAULT_KINDS)} (got {kind!r})")])
    problems = _non_finite(data)
    for error in sorted(_VALIDATORS[kind].iter_errors(data), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in error.path)
        if error.validator == "additionalProperties":
            allowed = sorted(_COMMON_FIELDS | set(_KIND_PARAMS[kind]))
            takes = f"a {kind!r} rule takes {', '.join(allowed)}" if not where else ""
            for name in sorted(set(error.instance) - set(error.schema.get("properties", {}))):
                field = f"{where}.{name}" if where else name
                problems.append((field, f"{error.message}; {takes}" if takes else error.message))
        elif error.validator == "required":
            missing = str(error.message).split("'")[1] if "'" in error.message else ""
            problems.append((".".join(p for p in (where, missing) if p), error.message))
        elif where not in {p for p, _ in problems}:  # a non-finite number is named once
            problems.append((where, error.message))
    if problems:
        raise FaultRuleError(problems)
    match = data.get("match") or {}
    params = {
        **_DEFAULTS.get(kind, {}),
        **{k: v for k, v in data.items() if k not in _COMMON_FIELDS},
    }
    return FaultRule(
        id=rule_id,
        kind=kind,
        method=str(match.get("method", "*")).upper(),
        path=str(match.get("path", "*")),
        probability=float(data.get("probability", 1.0)),
        after=int(data.get("after", 0)),
        times=data.get("times"),
        seed=data.get("seed"),
        per_key=bool(data.get("per_key", False)),
        params=params,
    )


def _non_finite(data: dict[str, Any]) -> list[tuple[str, str]]:
    """NaN and infinities (JSON has none; Python callers could pass them): every comparison
    with NaN is false, so no minimum or maximum would stop one."""
    found = []
    for key, value in data.items():
        values = value.items() if isinstance(value, dict) else [("", value)]
        for sub, item in values:
            if isinstance(item, float) and not math.isfinite(item):
                found.append(
                    (f"{key}.{sub}" if sub else str(key), f"{item} is not a finite number")
                )
    return found


@dataclass(slots=True)
class RuleCounters:
    """What one rule has seen and done; reset when the rule is changed."""

    rng: random.Random
    seen: int = 0  #: matching requests
    fired: int = 0
    window: deque[float] = field(default_factory=deque)  #: rate_limit: recent request times
    #: per_key rules: (seen, fired) by Idempotency-Key, oldest first, at most PER_KEY_LIMIT.
    by_key: OrderedDict[str, tuple[int, int]] = field(default_factory=OrderedDict)


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """What the injector decided for one request."""

    delay_ms: float = 0.0  #: total from the latency rules that fired
    terminal: FaultRule | None = None  #: the rule that ends or replaces the request, if any
    retry_after_s: float | None = None  #: for rate_limit: when the window frees up
    fired: tuple[str, ...] = ()  #: kinds that fired, for the journal and stats


class FaultInjector:
    """Holds the rules of one service and decides which fire for each request."""

    #: Keys a ``per_key`` rule remembers; past it the oldest is forgotten (and counts anew if
    #: it comes back), so a rule cannot grow a service without bound.
    PER_KEY_LIMIT: Final = 10_000

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._rules: dict[str, FaultRule] = {}
        self._counters: dict[str, RuleCounters] = {}
        self._ids = itertools.count(1)
        self.fired_by_kind: dict[str, int] = {}

    @property
    def active(self) -> bool:
        """Whether any rule exists (a cheap check for the request path)."""
        return bool(self._rules)

    def rules(self) -> list[FaultRule]:
        return list(self._rules.values())

    def counters(self, rule_id: str) -> RuleCounters:
        return self._counters[rule_id]

    def get(self, rule_id: str) -> FaultRule | None:
        return self._rules.get(rule_id)

    def add(self, data: object) -> FaultRule:
        rule = parse_rule(data, "")  # a rejected rule uses up no id
        rule = replace(rule, id=f"f{next(self._ids)}")
        self._install(rule)
        return rule

    def change(self, rule_id: str, changes: object) -> FaultRule:
        """Merge ``changes`` over the rule's definition; the changed rule starts counting anew."""
        old = self._rules[rule_id]
        if not isinstance(changes, dict):
            raise FaultRuleError([("", "the changes must be a JSON object")])
        merged = {**old.to_json(), **changes}
        merged.pop("id", None)
        if merged.get("kind") != old.kind:
            # Parameters of the old kind make no sense for a new one: keep only common fields.
            merged = {k: v for k, v in merged.items() if k in _COMMON_FIELDS or k in changes}
        rule = replace(parse_rule(merged, rule_id), id=rule_id)
        self._install(rule)
        return rule

    def remove(self, rule_id: str) -> bool:
        self._counters.pop(rule_id, None)
        return self._rules.pop(rule_id, None) is not None

    def clear(self) -> None:
        self._rules.clear()
        self._counters.clear()

    def reset(self) -> None:
        self.clear()
        self.fired_by_kind.clear()
        self._ids = itertools.count(1)

    def _install(self, rule: FaultRule) -> None:
        self._rules[rule.id] = rule
        self._counters[rule.id] = RuleCounters(rng=random.Random(rule.seed))

    def plan(
        self, method: str, path: str, extra: FaultRule | None = None, *, key: str | None = None
    ) -> FaultPlan:
        """Decide the faults for one request (``key``: its Idempotency-Key), updating every
        matching rule's counters."""
        rules = [*self._rules.values()]
        counters = dict(self._counters)
        if extra is not None:  # a one-shot rule from a request header
            rules.insert(0, extra)
            counters[extra.id] = RuleCounters(rng=random.Random(extra.seed))
        delay_ms = 0.0
        fired: list[str] = []
        for rule in rules:
            if not rule.matches(method, path):
                continue
            state = counters[rule.id]
            retry_after = self._fires(rule, state, key)
            if retry_after is False:
                continue
            fired.append(rule.kind)
            self.fired_by_kind[rule.kind] = self.fired_by_kind.get(rule.kind, 0) + 1
            if rule.kind == "latency":
                jitter = float(rule.params["jitter_ms"])
                delay_ms += float(rule.params["delay_ms"]) + state.rng.uniform(0, jitter)
                continue
            return FaultPlan(
                delay_ms, rule, retry_after if retry_after is not True else None, tuple(fired)
            )
        return FaultPlan(delay_ms, None, None, tuple(fired))

    def _fires(self, rule: FaultRule, state: RuleCounters, key: str | None) -> float | bool:
        """False if the rule stays quiet; True if it fires; a Retry-After for a rate limit."""
        state.seen += 1
        seen, fired = state.seen, state.fired
        if rule.per_key:
            seen, fired = state.by_key.pop(key or "", (0, 0))
            seen += 1
            state.by_key[key or ""] = (seen, fired)  # now the newest
            if len(state.by_key) > self.PER_KEY_LIMIT:
                state.by_key.popitem(last=False)
        if seen <= rule.after:
            return False
        if rule.times is not None and fired >= rule.times:
            return False
        if rule.probability < 1.0 and state.rng.random() >= rule.probability:
            return False
        result: float | bool = True
        if rule.kind == "rate_limit":
            result = self._rate_limited(rule, state)
            if result is False:
                return False
        state.fired += 1
        if rule.per_key:
            state.by_key[key or ""] = (seen, fired + 1)
        return result

    def _rate_limited(self, rule: FaultRule, state: RuleCounters) -> float | bool:
        now = self._clock()
        window_s = float(rule.params["window_s"])
        while state.window and state.window[0] <= now - window_s:
            state.window.popleft()
        if len(state.window) < int(rule.params["limit"]):
            state.window.append(now)
            return False
        return max(1.0, math.ceil(state.window[0] + window_s - now))
