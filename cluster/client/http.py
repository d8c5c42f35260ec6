"""The one HTTP client of the tools: the CLI, the supervisor, joins, scenarios, bench.

The CLI runs one command and exits, so plain blocking `urllib` with short
timeouts is the simplest thing that works; the managers' API is aiohttp.

Three ways in, one way out: `exchange` is the whole answer whatever its
status (for callers that must tell every case apart, like the Jepsen
clients); `request` sends JSON and raises `ApiError` for a 4xx/5xx; `fetch`
returns raw bytes (a PEM certificate).  All raise `Unreachable` when nothing
answered, and say whether the request may have been sent: a refused
connection certainly was not, a timeout may have been.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Answer", "ApiError", "Unreachable", "exchange", "fetch", "request"]


class Unreachable(Exception):
    """The manager did not answer (down, paused, or not listening yet).

    ``sent`` is False only when the request certainly never left (the
    connection was refused): after a timeout it may have been applied."""

    def __init__(self, message: str, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent


class ApiError(Exception):
    """The manager answered with an error status; ``message`` is its JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        #: The whole JSON answer, when it was one (e.g. a 421's leader hint).
        self.body: Any = None


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer of any status: its bytes and headers."""

    status: int
    raw: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The body as JSON (None if empty); ValueError if it is not JSON."""
        return json.loads(self.raw) if self.raw else None


def exchange(
    method: str,
    url: str,
    body: Any = None,
    *,
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
    limit: int | None = None,
) -> Answer:
    """Send ``body`` as JSON (if any); the answer, whatever its status.

    Raises only `Unreachable`.  ``limit``: read at most that many bytes.
    """
    data = None if body is None else json.dumps(body).encode()
    all_headers = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            raw = resp.read() if limit is None else resp.read(limit)
            return Answer(resp.status, raw, dict(resp.headers.items()))
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.read(), dict(e.headers.items()) if e.headers else {})
    except urllib.error.URLError as e:
        refused = isinstance(e.reason, ConnectionRefusedError)
        raise Unreachable(f"{url}: {e.reason}", sent=not refused) from None
    except (TimeoutError, ConnectionError, OSError) as e:
        raise Unreachable(f"{url}: {e}", sent=not isinstance(e, ConnectionRefusedError)) from None


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
    answer = exchange(method, url, body, timeout=timeout, headers=headers, context=context)
    _raise_for_status(answer)
    return answer.json()


def fetch(
    url: str, *, timeout: float = 5.0, context: ssl.SSLContext | None = None, limit: int = 1 << 20
) -> bytes:
    """GET ``url`` and return at most ``limit`` bytes of the answer as they are
    (a PEM certificate, a page); errors as in `request`."""
    answer = exchange("GET", url, timeout=timeout, context=context, limit=limit)
    _raise_for_status(answer)
    return answer.raw


def _raise_for_status(answer: Answer) -> None:
    if answer.status < 400:
        return
    raw = answer.raw
    try:
        message = json.loads(raw).get("message", raw.decode(errors="replace"))
    except (ValueError, AttributeError):
        message = raw.decode(errors="replace").strip() or f"HTTP {answer.status}"
    error = ApiError(answer.status, str(message))
    with contextlib.suppress(ValueError, AttributeError):
        error.body = json.loads(raw)
    raise error
