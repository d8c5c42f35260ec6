"""The HTTP API every manager serves on 127.0.0.1: app factory, errors, forwarding.

Theory of operation
-------------------
The routes (`cluster.api.routes`) are written for the happy path on the
leader.  Everything else is decided here, in one middleware, so that every
route behaves the same:

* **Errors** become Docker's body, ``{"message": "..."}``, with a status
  from the error: `ApiError` (the API's own 400s), `StoreError.http_status`
  (404 not found, 409 name taken or stale version, 400 invalid or ambiguous),
  `BackendError` (503: no leader, no quorum, timed out), aiohttp's own
  (404 no such route, 405, 413 body too large), and 500 for a bug.
* **Forwarding.**  Only the leader can commit (§5.1), so a write that reaches
  a follower raises `NotLeaderError` naming the leader.  The middleware then
  replays the *original* request (method, path and query, body, request ID)
  against the leader's API and relays the answer.  The leader re-resolves
  names and chooses IDs itself, so nothing the follower computed from its
  possibly stale replica leaks into the write.  A forwarded request carries
  `FORWARDED_HEADER`; if it meets a non-leader again (leadership moved in
  between) it is answered 503, never forwarded twice, so a stale hint cannot
  make two managers bounce a request between them.
* **Bounded time.**  Every wait on Raft is bounded (`api_common.bounded`) and
  so is the forwarding hop, so without a quorum a client gets a 503 within
  a few election timeouts, never a hang.
* **Logging**: one line per request at debug level, with method, path,
  status and time.  Never a body, never a query string: bodies carry
  secrets.

Setup and teardown use aiohttp's ``cleanup_ctx``: the one client session used
for forwarding is opened when the app starts and closed when it stops.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web

from cluster.api.backend import Backend, BackendError, NotLeaderError
from cluster.api.common import (
    BACKEND,
    CONSISTENCY_HEADER,
    FORWARDED_HEADER,
    MAX_BODY,
    REQUEST_ID_HEADER,
    SERVED_BY_HEADER,
    SESSION,
    TIMEOUT_SLACK,
    ApiError,
    error_reply,
)
from cluster.api.routes import routes
from cluster.state.errors import StoreError

__all__ = [
    "FORWARDED_HEADER",
    "SERVED_BY_HEADER",
    "bound_port",
    "make_app",
    "run_api",
    "serve_app",
]

log = logging.getLogger("cluster.api.server")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Headers of the original request that the leader needs to see as well.
_FORWARD_HEADERS = ("Content-Type", REQUEST_ID_HEADER, CONSISTENCY_HEADER)


def make_app(backend: Backend) -> web.Application:
    """The API for one manager.  Serve it with `run_api` (or a test server)."""
    app = web.Application(middlewares=[_middleware], client_max_size=MAX_BODY)
    app[BACKEND] = backend
    app.cleanup_ctx.append(_forwarding_session)
    app.add_routes(routes)
    return app


async def run_api(backend: Backend, host: str = "127.0.0.1", port: int = 0) -> web.AppRunner:
    """Start serving; the caller stops with ``await runner.cleanup()``.

    ``port=0`` binds a free port; `bound_port` tells which.  aiohttp's own
    access log is off: our middleware logs each request once, at debug.
    """
    return await serve_app(make_app(backend), host, port)


async def serve_app(
    app: web.Application, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` (HTTPS with ``ssl_context``) until ``runner.cleanup()``."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner


def bound_port(runner: web.AppRunner) -> int:
    """The TCP port a runner from `run_api` listens on."""
    return int(runner.addresses[0][1])


async def _forwarding_session(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[SESSION] = session
        yield


# -- the middleware --------------------------------------------------------------


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    backend = request.app[BACKEND]
    response = await _respond(request, handler)
    if SERVED_BY_HEADER not in response.headers:
        response.headers[SERVED_BY_HEADER] = backend.name
    log.debug(
        "%s %s -> %d (%.1f ms)",
        request.method,
        request.path,
        response.status,
        (time.monotonic() - started) * 1000,
    )
    return response


async def _respond(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the route and turn every way it can fail into Docker's error body."""
    try:
        return await handler(request)
    except NotLeaderError as exc:
        return await _forward(request, exc)
    except ApiError as exc:
        return error_reply(exc.status, exc.message)
    except StoreError as exc:
        return error_reply(exc.http_status, str(exc))
    except BackendError as exc:
        return error_reply(exc.http_status, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_reply(exc.status, exc.text or exc.reason)
    except Exception:
        # A bug.  The traceback goes to the log; the client learns only that.
        log.exception("internal error serving %s %s", request.method, request.path)
        return error_reply(500, "internal error in the manager; see its log")


async def _forward(request: web.Request, exc: NotLeaderError) -> web.StreamResponse:
    """Replay the request on the leader and relay its answer (at most one hop)."""
    backend = request.app[BACKEND]
    via = request.headers.get(FORWARDED_HEADER)
    if via is not None:
        return error_reply(
            503,
            f"{backend.name} is not the leader either (request forwarded by {via[:40]}): "
            "leadership is changing; retry",
        )
    if not exc.leader_api_url:
        return error_reply(
            503, f"no leader: {backend.name} knows of no leader (election under way or no quorum)"
        )
    url = exc.leader_api_url.rstrip("/") + request.raw_path
    headers = {h: request.headers[h] for h in _FORWARD_HEADERS if h in request.headers}
    headers[FORWARDED_HEADER] = backend.name
    try:
        body = await request.read()
    except web.HTTPException as err:  # 413: a route that never read its body meets the limit here
        return error_reply(err.status, err.text or err.reason)
    # The leader bounds its own answer by its request timeout; allow for it.
    timeout = aiohttp.ClientTimeout(total=backend.request_timeout * TIMEOUT_SLACK + 1.0)
    leader = exc.leader_name or exc.leader_api_url
    try:
        async with request.app[SESSION].request(
            request.method, url, data=body, headers=headers, timeout=timeout
        ) as resp:
            payload = await resp.read()
            relayed = {"Content-Type": resp.headers.get("Content-Type", "application/json")}
            served_by = resp.headers.get(SERVED_BY_HEADER)
            if served_by:
                relayed[SERVED_BY_HEADER] = served_by
            return web.Response(status=resp.status, body=payload, headers=relayed)
    except (aiohttp.ClientError, TimeoutError) as err:
        return error_reply(
            503,
            f"the leader {leader} could not be reached from {backend.name} "
            f"({type(err).__name__}); retry",
        )
