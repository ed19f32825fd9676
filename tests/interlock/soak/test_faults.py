"""The soak's fault mix: valid rules for every service, the same for the same seed."""

from __future__ import annotations

import dataclasses

from interlock.soak.faults import DEFAULT_MIX, FAULT_ERROR_CODES
from mock_services.faults import parse_rule
from mock_services.services import SERVICE_NAMES


def test_every_service_gets_every_kind_with_a_seed_of_its_own() -> None:
    rules = DEFAULT_MIX.rules(seed=7)
    assert list(rules) == list(SERVICE_NAMES)
    kinds = {"latency", "error", "reset", "lost_response", "rate_limit"}
    seeds = set()
    for service_rules in rules.values():
        assert {r["kind"] for r in service_rules} == kinds
        for i, rule in enumerate(service_rules):
            parse_rule(rule, f"r{i}")  # the services would accept it
            seeds.add(rule["seed"])
    assert len(seeds) == sum(len(r) for r in rules.values())
    assert rules == DEFAULT_MIX.rules(seed=7) != DEFAULT_MIX.rules(seed=8)


def test_a_kind_at_probability_zero_is_left_out() -> None:
    mix = dataclasses.replace(DEFAULT_MIX, reset_probability=0, rate_limit_probability=0)
    kinds = {r["kind"] for r in mix.rules(seed=1)["billing"]}
    assert kinds == {"latency", "error", "lost_response"}


def test_the_explained_codes_are_those_of_the_injected_answers() -> None:
    statuses = {r["status"] for r in DEFAULT_MIX.rules(seed=1)["users"] if r["kind"] == "error"}
    assert {f"HTTP_{s}" for s in statuses} | {"HTTP_429", "CONNECTION_ERROR"} == FAULT_ERROR_CODES
