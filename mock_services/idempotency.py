"""``Idempotency-Key`` bookkeeping: remember the first answer to a key and replay it.

Rules (the same as the big payment APIs use):

- same key, same request (method, path, query and body) → the stored first response, replayed;
- same key, different request → 422, nothing runs;
- same key while the first request is still running → 409 with ``Retry-After``;
- a 5xx or 429 answer, or a request that raised, is not stored: the key is free to try again;
- keys expire ``ttl_s`` after the first request;
- a key is at most :data:`MAX_KEY_CHARS` characters (a longer one is a 400), and a service keeps
  at most ``max_keys`` of them (:data:`MAX_KEYS` by default): past it, the oldest answered keys
  are forgotten first, as if they had expired.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from httpedge.limits import MAX_IDEMPOTENCY_KEY_CHARS

#: The longest ``Idempotency-Key`` a service accepts (the orchestrator's ``idempotency_key`` too).
MAX_KEY_CHARS: Final = MAX_IDEMPOTENCY_KEY_CHARS
#: How many keys a service keeps by default; beyond it the oldest answered ones go first.
MAX_KEYS: Final = 10_000


class KeyState(StrEnum):
    IN_FLIGHT = "in_flight"  #: the first request with this key is still running
    DONE = "done"  #: a response is stored


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class KeyEntry:
    fingerprint: str
    created_at: float
    state: KeyState = KeyState.IN_FLIGHT
    response: StoredResponse | None = None


@dataclass(frozen=True, slots=True)
class Begin:
    """What to do with a request that carries a key."""

    outcome: str  #: "run", "replay", "mismatch" or "in_flight"
    response: StoredResponse | None = None


def fingerprint(method: str, path_qs: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path_qs.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyStore:
    """Keys of one service, in creation order so expired ones are dropped from the front."""

    def __init__(self, ttl_s: float, clock: Callable[[], float], max_keys: int = MAX_KEYS) -> None:
        if ttl_s <= 0:
            raise ValueError(f"idempotency ttl_s must be > 0, got {ttl_s}")
        if max_keys < 1:
            raise ValueError(f"idempotency max_keys must be >= 1, got {max_keys}")
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[str, KeyEntry] = OrderedDict()
        self.replays = 0

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def begin(self, key: str, request_fingerprint: str) -> Begin:
        self._expire()
        entry = self._entries.get(key)
        if entry is None:
            self._make_room()
            self._entries[key] = KeyEntry(request_fingerprint, self._clock())
            return Begin("run")
        if entry.fingerprint != request_fingerprint:
            return Begin("mismatch")
        if entry.state is KeyState.IN_FLIGHT:
            return Begin("in_flight")
        self.replays += 1
        return Begin("replay", entry.response)

    def complete(self, key: str, response: StoredResponse) -> None:
        entry = self._entries.get(key)
        if entry is not None:
            entry.state = KeyState.DONE
            entry.response = response

    def release(self, key: str) -> None:
        """Forget a key whose request failed in a way worth retrying."""
        entry = self._entries.get(key)
        if entry is not None and entry.state is KeyState.IN_FLIGHT:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()
        self.replays = 0

    def _make_room(self) -> None:
        """Forget the oldest answered keys until one more fits (running ones are kept)."""
        excess = len(self._entries) - self.max_keys + 1
        if excess <= 0:
            return
        oldest = []
        for key, entry in self._entries.items():  # oldest first; stops at the first few
            if entry.state is KeyState.DONE:
                oldest.append(key)
                if len(oldest) == excess:
                    break
        for key in oldest:
            del self._entries[key]

    def _expire(self) -> None:
        horizon = self._clock() - self.ttl_s
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.created_at > horizon:
                break
            if entry.state is KeyState.IN_FLIGHT:
                # Never expire a running request's key under it; it ends soon and is kept then.
                break
            del self._entries[key]
