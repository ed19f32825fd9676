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
