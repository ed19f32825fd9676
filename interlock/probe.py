"""Is anything answering at a URL: one blocking ``GET``, and why not in a few words.

Blocking on purpose. Its callers run outside any event loop (``interlock dashboard`` before the
TUI starts) or in a worker thread (:meth:`Supervisor.restart_orchestrator
<interlock.supervisor.Supervisor.restart_orchestrator>`, called from the dashboard's loop), so
there is no loop of their own to borrow; the standard library's client needs none.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

#: Proxies are for the world outside; the sandbox is on this machine, so ``http_proxy`` and
#: friends are never consulted (a proxy would answer for a sandbox that is not there).
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe(url: str, *, timeout_s: float) -> str | None:
    """None when ``GET url`` answers 2xx within ``timeout_s``; otherwise why not, e.g.
    ``connection refused`` or ``HTTP 404``."""
    try:
        with _OPENER.open(url, timeout=timeout_s) as resp:
            resp.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}" + _said(exc)
    except urllib.error.URLError as exc:
        reason = exc.reason
        return reason.strerror or str(reason) if isinstance(reason, OSError) else str(reason)
    except (OSError, http.client.HTTPException) as exc:  # a timeout, a reset, a garbled answer
        return str(exc) or type(exc).__name__
    return None


def _said(exc: urllib.error.HTTPError) -> str:
    """``: <message>`` from an Interlock server's JSON error (``Host ... does not name this
    server``, say), or nothing."""
    try:
        message = json.loads(exc.read(4096)).get("message")
    except (OSError, ValueError, AttributeError):
        return ""
    return f": {message}" if isinstance(message, str) else ""
