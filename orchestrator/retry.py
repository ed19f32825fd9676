"""Retry policies: when a failed step runs again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Backoff(StrEnum):
    EXPONENTIAL = "exponential"  #: initial * multiplier ** (attempt - 1)
    FIXED = "fixed"  #: always initial_delay_s
    NONE = "none"  #: retry at once


class Jitter(StrEnum):
    FULL = "full"  #: uniform in [0, delay]
    EQUAL = "equal"  #: delay/2 + uniform in [0, delay/2]
    NONE = "none"  #: the computed delay exactly


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how fast a step is retried."""

    retryable: bool = True  #: False: one execution only, whatever the error
    max_attempts: int = 3  #: executions in all, the first included
    backoff: Backoff = Backoff.EXPONENTIAL
    initial_delay_s: float = 1.0
    max_delay_s: float = 60.0
    multiplier: float = 2.0
    jitter: Jitter = Jitter.FULL

    @property
    def effective_max_attempts(self) -> int:
        return self.max_attempts if self.retryable else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "retryable": self.retryable,
            "max_attempts": self.max_attempts,
            "backoff": self.backoff.value,
            "initial_delay_s": self.initial_delay_s,
            "max_delay_s": self.max_delay_s,
            "multiplier": self.multiplier,
            "jitter": self.jitter.value,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RetryPolicy:
        return cls(
            retryable=bool(data.get("retryable", True)),
            max_attempts=int(data.get("max_attempts", 3)),
            backoff=Backoff(data.get("backoff", "exponential")),
            initial_delay_s=float(data.get("initial_delay_s", 1.0)),
            max_delay_s=float(data.get("max_delay_s", 60.0)),
            multiplier=float(data.get("multiplier", 2.0)),
            jitter=Jitter(data.get("jitter", "full")),
        )


def base_delay_s(policy: RetryPolicy, attempt: int) -> float:
    """The un-jittered delay after failed attempt number ``attempt`` (1-based), capped."""
    if policy.backoff is Backoff.NONE:
        return 0.0
    if policy.backoff is Backoff.FIXED:
        return min(policy.initial_delay_s, policy.max_delay_s)
    exponent = max(0, attempt - 1)
    # Cap the exponent so huge attempt counts cannot overflow a float.
    raw = policy.initial_delay_s * policy.multiplier ** min(exponent, 64)
    return min(raw, policy.max_delay_s)


def retry_delay_s(
    policy: RetryPolicy,
    attempt: int,
    rng: random.Random,
    retry_after_s: float | None = None,
) -> float:
    """Seconds to wait before the next attempt after failed attempt ``attempt``.

    A server-given ``retry_after_s`` wins over the computed delay, is clamped to ``max_delay_s``
    and is not jittered: the server knows better than our guess, but we never wait unbounded.
    """
    if retry_after_s is not None:
        return min(max(0.0, retry_after_s), policy.max_delay_s)
    delay = base_delay_s(policy, attempt)
    if policy.jitter is Jitter.FULL:
        return rng.uniform(0.0, delay)
    if policy.jitter is Jitter.EQUAL:
        return delay / 2 + rng.uniform(0.0, delay / 2)
    return delay
