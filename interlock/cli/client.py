"""The client commands' HTTP: one session per command, JSON calls, failures as one line.

Whatever goes wrong on the way (nothing listening, no answer within
:attr:`Settings.client_timeout_s <interlock.settings.Settings.client_timeout_s>`, an answer that
is not JSON or not what the API sends) is one line on stderr naming the URL, and exit status 1
(2 when nothing listens there, with how to point the command elsewhere).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from interlock.cli.loop import run as run_loop
from interlock.settings import Settings

#: A client command: it talks to the API or a service over ``session`` and returns an exit status.
ClientCommand = Callable[[aiohttp.ClientSession, argparse.Namespace], Awaitable[int]]


class RequestFailedError(Exception):
    """The API or a service answered with an error, or not with JSON (exit status 1)."""


class UnreachableError(Exception):
    """Nothing answers at the URL's host and port (exit status 2)."""


def run_client(
    command: ClientCommand, args: argparse.Namespace, settings: Settings, *, where: str = ""
) -> int:
    """Run ``command``; ``where`` says how to point it elsewhere (default: ``--api`` and
    ``INTERLOCK_API_URL``), for the line printed when nothing answers."""
    where = where or "--api or INTERLOCK_API_URL"
    session = _with_session(command, args, settings.client_timeout_s, where)
    return run_loop(session, use_uvloop=settings.uvloop)


async def _with_session(
    command: ClientCommand, args: argparse.Namespace, timeout_s: float, where: str
) -> int:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            return await command(session, args)
        except UnreachableError as exc:
            print(
                f"interlock: {exc} — is `interlock up` running? (set it with {where})",
                file=sys.stderr,
            )
            return 2
        except RequestFailedError as exc:
            print(f"interlock: {exc}", file=sys.stderr)
            return 1
        except (KeyError, TypeError, AttributeError) as exc:
            # JSON that is not what the API sends: another server at that URL, or another version
            print(
                f"interlock: the answer is not what Interlock sends ({exc.__class__.__name__}: "
                f"{exc}); is the URL right? (set it with {where})",
                file=sys.stderr,
            )
            return 1


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    """The JSON answer to one request; :class:`RequestFailedError` for an HTTP error, a timeout,
    or an answer that is not JSON, :class:`UnreachableError` when nothing listens."""
    try:
        async with session.request(method, url, json=body) as resp:
            try:
                data = await resp.json(content_type=None)
            except ValueError:  # not JSON (or not UTF-8)
                raise RequestFailedError(
                    f"{method} {url}: HTTP {resp.status}, and the answer is not JSON"
                ) from None
            status = resp.status
    except aiohttp.ClientConnectorError as exc:
        raise UnreachableError(f"cannot reach {exc.host}:{exc.port} ({url})") from None
    except TimeoutError:
        timeout_s = session.timeout.total
        raise RequestFailedError(
            f"{method} {url}: no answer within {timeout_s:g} s (INTERLOCK_CLIENT_TIMEOUT_S)"
        ) from None
    except aiohttp.ClientError as exc:
        raise RequestFailedError(f"{method} {url}: {exc.__class__.__name__}: {exc}") from None
    if status >= 400:
        raise RequestFailedError(_error_line(method, url, status, data))
    return data


def _error_line(method: str, url: str, status: int, data: Any) -> str:
    if not isinstance(data, dict):
        return f"{method} {url}: HTTP {status}"
    details = data.get("details")
    listed = ""
    if isinstance(details, list):
        listed = "; ".join(
            f"{d.get('path')}: {d.get('message')}" for d in details if isinstance(d, dict)
        )
    message = data.get("message", data)
    return f"{message} (HTTP {status})" + (f": {listed}" if listed else "")
