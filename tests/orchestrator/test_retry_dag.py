"""Retry delays and DAG helpers."""

from __future__ import annotations

import random

import pytest

from orchestrator.dag import blocked_by_failure, find_cycle, topological_order
from orchestrator.retry import Backoff, Jitter, RetryPolicy, base_delay_s, retry_delay_s


def test_exponential_backoff_grows_and_is_capped() -> None:
    p = RetryPolicy(initial_delay_s=1, multiplier=2, max_delay_s=5, jitter=Jitter.NONE)
    rng = random.Random(0)
    assert [retry_delay_s(p, n, rng) for n in (1, 2, 3, 4, 50)] == [1, 2, 4, 5, 5]


def test_fixed_and_none_backoff() -> None:
    rng = random.Random(0)
    fixed = RetryPolicy(backoff=Backoff.FIXED, initial_delay_s=3, jitter=Jitter.NONE)
    assert retry_delay_s(fixed, 7, rng) == 3
    assert retry_delay_s(RetryPolicy(backoff=Backoff.NONE), 3, rng) == 0


def test_full_jitter_is_seeded_and_within_bounds() -> None:
    p = RetryPolicy(initial_delay_s=4, multiplier=2, max_delay_s=100)
    first = [retry_delay_s(p, 2, random.Random(42)) for _ in range(3)]
    assert len(set(first)) == 1
    assert first[0] == random.Random(42).uniform(0, 8)
    delays = [retry_delay_s(p, 2, random.Random(seed)) for seed in range(200)]
    assert all(0 <= d <= 8 for d in delays)


def test_equal_jitter_keeps_half() -> None:
    p = RetryPolicy(initial_delay_s=4, jitter=Jitter.EQUAL)
    delays = [retry_delay_s(p, 1, random.Random(seed)) for seed in range(100)]
    assert all(2 <= d <= 4 for d in delays)


def test_retry_after_wins_is_clamped_and_not_jittered() -> None:
    p = RetryPolicy(initial_delay_s=1, max_delay_s=30)
    rng = random.Random(1)
    assert retry_delay_s(p, 1, rng, retry_after_s=7) == 7
    assert retry_delay_s(p, 1, rng, retry_after_s=500) == 30
    assert retry_delay_s(p, 1, rng, retry_after_s=-3) == 0


def test_base_delay_survives_huge_attempt_numbers() -> None:
    assert base_delay_s(RetryPolicy(max_delay_s=9), 10_000) == 9


def test_cycle_detection_and_topological_order() -> None:
    assert find_cycle({"a": [], "b": ["a"], "c": ["b"]}) is None
    assert find_cycle({"a": ["b"], "b": ["a"]}) in (["a", "b", "a"], ["b", "a", "b"])
    assert topological_order({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}) == [
        "a",
        "b",
        "c",
        "d",
    ]
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"a": ["b"], "b": ["a"]})


def test_blocked_by_failure_is_transitive() -> None:
    deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]}
    assert blocked_by_failure(deps, {"b"}) == {"d", "e"}


def test_a_policy_survives_its_round_trip_through_json_with_every_field() -> None:
    policy = RetryPolicy(
        retryable=False,
        max_attempts=7,
        backoff=Backoff.FIXED,
        initial_delay_s=0.25,
        max_delay_s=9.5,
        multiplier=3.0,
        jitter=Jitter.EQUAL,
    )
    data = policy.to_json()
    assert data == {
        "retryable": False,
        "max_attempts": 7,
        "backoff": "fixed",
        "initial_delay_s": 0.25,
        "max_delay_s": 9.5,
        "multiplier": 3.0,
        "jitter": "equal",
    }
    assert RetryPolicy.from_json(data) == policy
    assert RetryPolicy.from_json(RetryPolicy().to_json()) == RetryPolicy()


def test_a_policy_from_json_fills_in_the_defaults_of_missing_fields() -> None:
    assert RetryPolicy.from_json({}) == RetryPolicy()
    assert RetryPolicy() == RetryPolicy(
        retryable=True,
        max_attempts=3,
        backoff=Backoff.EXPONENTIAL,
        initial_delay_s=1.0,
        max_delay_s=60.0,
        multiplier=2.0,
        jitter=Jitter.FULL,
    )
    loaded = RetryPolicy.from_json({"max_attempts": "4", "initial_delay_s": 2, "retryable": 0})
    assert (loaded.max_attempts, loaded.initial_delay_s, loaded.retryable) == (4, 2.0, False)
    assert isinstance(loaded.initial_delay_s, float)


def test_a_policy_that_is_not_retryable_runs_once() -> None:
    assert RetryPolicy(max_attempts=5).effective_max_attempts == 5
    assert RetryPolicy(max_attempts=5, retryable=False).effective_max_attempts == 1


def test_exponential_backoff_uses_the_multiplier_from_the_first_attempt() -> None:
    p = RetryPolicy(initial_delay_s=0.5, multiplier=3, max_delay_s=100, jitter=Jitter.NONE)
    assert [base_delay_s(p, n) for n in (0, 1, 2, 3, 4, 5)] == [0.5, 0.5, 1.5, 4.5, 13.5, 40.5]
    # the exponent is capped at 64 (no overflow), then the delay at max_delay_s
    huge = RetryPolicy(initial_delay_s=1, multiplier=2, max_delay_s=float("inf"))
    assert base_delay_s(huge, 66) == base_delay_s(huge, 1000) == 2.0**64
    assert base_delay_s(huge, 65) == 2.0**64


def test_fixed_backoff_is_capped_too() -> None:
    p = RetryPolicy(backoff=Backoff.FIXED, initial_delay_s=3, max_delay_s=2, jitter=Jitter.NONE)
    assert base_delay_s(p, 1) == base_delay_s(p, 9) == 2


def test_jitter_gives_the_seeded_values() -> None:
    p = RetryPolicy(initial_delay_s=1, multiplier=2, max_delay_s=100)
    assert retry_delay_s(p, 4, random.Random(42)) == random.Random(42).uniform(0.0, 8.0)
    assert retry_delay_s(p, 4, random.Random(42)) == pytest.approx(5.11541438766307)
    equal = RetryPolicy(initial_delay_s=4, jitter=Jitter.EQUAL)
    assert retry_delay_s(equal, 1, random.Random(7)) == 2 + random.Random(7).uniform(0.0, 2.0)
    assert retry_delay_s(equal, 1, random.Random(7)) == pytest.approx(2.6476655296663247)
    rng = random.Random(3)
    assert retry_delay_s(RetryPolicy(jitter=Jitter.NONE), 2, rng) == 2.0
    assert rng.random() == random.Random(3).random()  # no jitter draws nothing


def test_retry_after_is_clamped_at_zero_and_max_delay_exactly() -> None:
    p = RetryPolicy(initial_delay_s=1, max_delay_s=30, jitter=Jitter.NONE)
    rng = random.Random(1)
    assert retry_delay_s(p, 3, rng, retry_after_s=0.0) == 0.0
    assert retry_delay_s(p, 3, rng, retry_after_s=0.25) == 0.25
    assert retry_delay_s(p, 3, rng, retry_after_s=30.0) == 30.0
    assert retry_delay_s(p, 3, rng, retry_after_s=None) == 4.0


def test_a_cycle_reached_by_a_path_is_reported_without_the_path() -> None:
    assert find_cycle({"a": ["b"], "b": ["c"], "c": ["d"], "d": ["b"]}) == ["b", "c", "d", "b"]
    assert find_cycle({"x": [], "a": ["x", "b"], "b": ["a"]}) == ["a", "b", "a"]


def test_unknown_dependencies_are_skipped_not_the_end_of_the_search() -> None:
    assert find_cycle({"a": ["zzz", "b"], "b": ["a"]}) == ["a", "b", "a"]
    assert find_cycle({"a": ["zzz"]}) is None


def test_a_node_finished_once_is_not_walked_again() -> None:
    # d is reached from b and from c: the second visit must not report a cycle.
    assert find_cycle({"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}) is None


def test_topological_order_keeps_the_given_order_between_independent_nodes() -> None:
    assert topological_order({"z": [], "y": [], "x": ["z"]}) == ["z", "y", "x"]
    with pytest.raises(ValueError, match=r"dependency cycle among \['b', 'c'\]"):
        topological_order({"a": [], "b": ["c"], "c": ["b"]})


def test_nothing_is_blocked_without_a_failure() -> None:
    deps = {"a": [], "b": ["a"]}
    assert blocked_by_failure(deps, set()) == set()
    assert blocked_by_failure(deps, {"a"}) == {"b"}
