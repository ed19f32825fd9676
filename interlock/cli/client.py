"""The client commands' HTTP: one session per command, JSON calls, failures as one line."""

from __future__ import annotations

import argparse
import json
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


def run_client(command: ClientCommand, args: argparse.Namespace, settings: Settings) -> int:
    return run_loop(_with_session(command, args), use_uvloop=settings.uvloop)


async def _with_session(command: ClientCommand, args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        try:
            return await command(session, args)
        except aiohttp.ClientConnectorError as exc:
            print(
                f"interlock: cannot reach {exc.host}:{exc.port} — is `interlock up` "
                "running? (set the URL with --api or INTERLOCK_*_URL)",
                file=sys.stderr,
            )
            return 2
        except RequestFailedError as exc:
            print(f"interlock: {exc}", file=sys.stderr)
            return 1


async def call(session: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    """The JSON answer to one request; :class:`RequestFailedError` for an HTTP error."""
    async with session.request(method, url, json=body) as resp:
        try:
            data = await resp.json(content_type=None)
        except json.JSONDecodeError:
            raise RequestFailedError(f"{method} {url}: HTTP {resp.status}, not JSON") from None
        if resp.status >= 400:
            details = "".join(f"\n  {d['path']}: {d['message']}" for d in data.get("details", []))
            raise RequestFailedError(f"{data.get('message', data)} (HTTP {resp.status}){details}")
        return data
