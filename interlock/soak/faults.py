"""The soak's fault mix: seeded rules for all four services, and the errors they can explain.

Every service gets the same kinds of rule, each with its own seed (derived from the soak's):
latency on a third of the requests, 503s and 500s, TCP resets, lost responses (the work done,
the answer dropped) and a 429 rate limit that fires only under load. The probabilities are
chosen so a step seldom meets a fault on every one of its attempts: most registrations
complete, and the few that do not have run out of attempts on these faults alone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from mock_services.services import SERVICE_NAMES

#: The error codes the engine records for a call these rules spoiled (``orchestrator/http/
#: classify.py``): the injected statuses, a reset or lost response, the rate limit's 429.
FAULT_ERROR_CODES: Final = frozenset({"HTTP_500", "HTTP_503", "HTTP_429", "CONNECTION_ERROR"})


@dataclass(frozen=True, slots=True)
class FaultMix:
    """How much of each fault every service gets."""

    #: Share of requests slowed down, and by how much (uniform in delay .. delay + jitter).
    latency_probability: float = 0.3
    latency_ms: float = 20.0
    latency_jitter_ms: float = 80.0
    #: Share of requests answered 503 / 500 without taking effect.
    error_503_probability: float = 0.03
    error_500_probability: float = 0.01
    #: Share of requests cut off with a TCP reset before they take effect.
    reset_probability: float = 0.02
    #: Share of requests that take effect and whose answer is lost (a reset).
    lost_response_probability: float = 0.03
    #: Share of requests the rate limit counts, and how many counted ones a second it lets
    #: through: a 429 (``Retry-After``) once more arrive, so it fires under load only.
    rate_limit_probability: float = 0.05
    rate_limit_per_s: int = 3

    def rules(self, seed: int) -> dict[str, list[dict[str, Any]]]:
        """Each service's rules, in the order the services apply them, seeded from ``seed``."""
        rng = random.Random(seed)
        return {service: self._service_rules(rng) for service in SERVICE_NAMES}

    def _service_rules(self, rng: random.Random) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = [
            {
                "kind": "latency",
                "probability": self.latency_probability,
                "delay_ms": self.latency_ms,
                "jitter_ms": self.latency_jitter_ms,
            },
            {"kind": "error", "status": 503, "probability": self.error_503_probability},
            {"kind": "error", "status": 500, "probability": self.error_500_probability},
            {"kind": "reset", "probability": self.reset_probability},
            {"kind": "lost_response", "probability": self.lost_response_probability},
            {
                "kind": "rate_limit",
                "probability": self.rate_limit_probability,
                "limit": self.rate_limit_per_s,
                "window_s": 1.0,
            },
        ]
        return [{**rule, "seed": rng.randrange(2**31)} for rule in rules if _fires(rule)]


def _fires(rule: dict[str, Any]) -> bool:
    """A rule with probability 0 is left out (a mix can switch a kind off)."""
    return float(rule["probability"]) > 0


#: The mix the soak runs with unless told otherwise.
DEFAULT_MIX: Final = FaultMix()
