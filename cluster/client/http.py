"""The one HTTP client of the tools: the CLI, the supervisor, joins, scenarios, bench.

The CLI runs one command and exits, so plain blocking `urllib` with short
timeouts is the simplest thing that works; the managers' API is aiohttp.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

__all__ = ["ApiError", "Unreachable", "fetch", "request"]


class Unreachable(Exception):
    """The manager did not answer (down, paused, or not listening yet)."""


class ApiError(Exception):
    """The manager answered with an error status; ``message`` is its JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: The whole JSON answer, when it was one (e.g. a 421's leader hint).
        self.body: Any = None


def request(
    method: str,
    url: str,
    body: Any = None,
    *,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> Any:
    """Send ``body`` as JSON; return the decoded JSON answer (None if empty).

    Raises `Unreachable` when nothing answers within ``timeout`` and
    `ApiError` for a 4xx/5xx answer.  ``context``: for an ``https`` URL.
    """
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    raw = _send(method, url, data, all_headers, timeout, context, limit=None)
    return json.loads(raw) if raw else None


def fetch(
    url: str, *, timeout: float = 5.0, context: ssl.SSLContext | None = None, limit: int = 1 << 20
) -> bytes:
    """GET ``url`` and return at most ``limit`` bytes of the answer as they are
    (a PEM certificate, a page); errors as in `request`."""
    return _send("GET", url, None, {}, timeout, context, limit=limit)


def _send(
    method: str,
    url: str,
    data: bytes | None,
    headers: dict[str, str],
    timeout: float,
    context: ssl.SSLContext | None,
    limit: int | None,
) -> bytes:
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.read() if limit is None else resp.read(limit)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            message = json.loads(raw).get("message", raw.decode(errors="replace"))
        except (ValueError, AttributeError):
            message = raw.decode(errors="replace").strip() or e.reason
        error = ApiError(e.code, str(message))
        with contextlib.suppress(ValueError, AttributeError):
            error.body = json.loads(raw)
        raise error from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise Unreachable(f"{url}: {reason}") from None
