"""One-key fault presets: the stories people inject most, as rules for the services' admin API.

Each preset names the service(s) it touches and the rules it adds there; the same rules could be
typed into the fault form. Clearing a preset clears that service's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from orchestrator.models import JSON


@dataclass(frozen=True, slots=True)
class Preset:
    key: str  #: the key that applies it in the presets menu
    name: str
    description: str
    rules: tuple[tuple[str, JSON], ...]  #: (service, rule) pairs


ALL_SERVICES: Final = ("users", "billing", "preferences", "notifications")

PRESETS: Final[tuple[Preset, ...]] = (
    Preset(
        "1",
        "billing outage",
        "billing answers 503 to every profile request until cleared: its breaker opens",
        (("billing", {"kind": "down", "match": {"path": "/profiles*"}}),),
    ),
    Preset(
        "2",
        "flaky email",
        "notifications fails half of the welcome sends with a 500",
        (
            (
                "notifications",
                {
                    "kind": "error",
                    "status": 500,
                    "probability": 0.5,
                    "seed": 7,
                    "match": {"path": "/welcome"},
                },
            ),
        ),
    ),
    Preset(
        "3",
        "rate-limited notifications",
        "notifications allows 5 welcome sends a second, then 429 with Retry-After",
        (
            (
                "notifications",
                {"kind": "rate_limit", "limit": 5, "window_s": 1, "match": {"path": "/welcome"}},
            ),
        ),
    ),
    Preset(
        "4",
        "lost responses",
        "users and billing perform the request but the answer is lost (30 %)",
        (
            (
                "users",
                {
                    "kind": "lost_response",
                    "probability": 0.3,
                    "seed": 3,
                    "match": {"method": "POST"},
                },
            ),
            (
                "billing",
                {
                    "kind": "lost_response",
                    "probability": 0.3,
                    "seed": 4,
                    "match": {"method": "POST"},
                },
            ),
        ),
    ),
    Preset(
        "5",
        "slow preferences",
        "preferences answers after 400 ms (± 200 ms)",
        (("preferences", {"kind": "latency", "delay_ms": 400, "jitter_ms": 200, "seed": 5}),),
    ),
    Preset(
        "6",
        "chaos on everything",
        "every service: 10 % errors, 10 % resets, 50 ms latency",
        tuple(
            pair
            for i, service in enumerate(ALL_SERVICES)
            for pair in (
                (service, {"kind": "error", "status": 503, "probability": 0.1, "seed": 10 + i}),
                (service, {"kind": "reset", "probability": 0.1, "seed": 20 + i}),
                (service, {"kind": "latency", "delay_ms": 50, "jitter_ms": 25, "seed": 30 + i}),
            )
        ),
    ),
)
