"""Follow ``/events/stream`` for ever: reconnect when the orchestrator goes away, resume by seq.

The stream is the dashboard's only source of live data. :func:`follow` yields parsed events and
:class:`Link` changes: ``live`` once connected, ``reconnecting`` (with the reason) when the
connection dropped or was refused, for instance because the orchestrator was killed. It then
retries with a short capped backoff and asks for ``after=<last seq seen>``, so the events
committed while it was away arrive first and nothing is missed or repeated. Blank lines are the
server's keep-alives and are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Final

import aiohttp

from dashboard.model import DashEvent
from orchestrator import codec

#: Lines read before the follower lets the event loop run something else.
YIELD_EVERY: Final = 64
#: The longest line the follower takes (an event is a few hundred bytes).
MAX_LINE_BYTES: Final = 1 << 20


@dataclass(frozen=True, slots=True)
class Link:
    """The connection changed: ``live`` or ``reconnecting``."""

    state: str
    reason: str = ""
    after: int = 0  #: the last seq seen when it changed


async def follow(
    session: aiohttp.ClientSession,
    api_url: str,
    after: int = 0,
    *,
    retry_s: float = 0.25,
    max_retry_s: float = 2.0,
    idle_timeout_s: float = 15.0,
) -> AsyncIterator[DashEvent | Link]:
    """Events after ``after``, across reconnects, until the caller stops iterating."""
    last = after
    delay = retry_s
    live = False
    while True:
        try:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=2, sock_read=idle_timeout_s)
            async with session.get(
                f"{api_url}/events/stream", params={"after": str(last)}, timeout=timeout
            ) as resp:
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(
                        resp.request_info, (), status=resp.status, message="stream refused"
                    )
                live, delay = True, retry_s
                yield Link("live", after=last)
                read = 0
                async for line in _lines(resp.content):
                    read += 1
                    if read % YIELD_EVERY == 0:
                        # lines already buffered are read without a pause: give the loop to a
                        # key press or a frame between two batches of a burst
                        await asyncio.sleep(0)
                    if not line.strip():
                        continue
                    # orjson: a burst streams thousands of events a second, and decoding
                    # them with json was a twentieth of the dashboard's CPU
                    event = DashEvent.from_json(codec.loads(line))
                    if event.seq > last:
                        last = event.seq
                        yield event
            reason = "the orchestrator closed the stream"
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            reason = _reason(exc)
        if live or delay == retry_s:
            yield Link("reconnecting", reason, after=last)
        live = False
        await asyncio.sleep(delay)
        delay = min(max_retry_s, delay * 2)


async def _lines(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The stream's lines, split from whatever arrived at once: during a burst the server
    writes a batch of events in one write, and reading them a line at a time
    (``StreamReader.readline``) cost a tenth of the dashboard's CPU. A line cut between two
    chunks waits for the rest; a last line without its newline is not an event yet. A line
    longer than :data:`MAX_LINE_BYTES` is no event the orchestrator writes: ``ValueError``
    (the follower reconnects, as for any line that is not JSON)."""
    pending = bytearray()
    async for chunk in content.iter_any():
        pending += chunk
        end = pending.rfind(b"\n")
        if end < 0:
            if len(pending) > MAX_LINE_BYTES:
                raise ValueError(f"a stream line longer than {MAX_LINE_BYTES} bytes")
            continue
        lines = bytes(pending[:end]).split(b"\n")
        del pending[: end + 1]
        for line in lines:
            yield line


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "the orchestrator is unreachable (connection refused)"
    if isinstance(exc, TimeoutError):
        return "the orchestrator stopped answering"
    if isinstance(exc, ValueError):
        return "the stream sent a line that is not JSON"
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return "the orchestrator went away mid-stream (stopped or killed)"
    return f"the connection dropped ({type(exc).__name__})"
