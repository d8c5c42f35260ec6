"""Helpers shared by the HTTP API's routes: request parsing, bounded waits, replies.

Two rules live here so that no route can forget them:

* every wait on Raft (a write, a read barrier, a leadership transfer) is
  bounded by the backend's request timeout, so a request without a quorum
  gets a 503 instead of hanging (`bounded`);
* reads are linearizable unless the client asks otherwise (`linearize`).
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import orjson
from aiohttp import web

from cluster.api.backend import Backend, UnavailableError
from cluster.control import agent
from cluster.state import objects as o
from cluster.state.errors import NotFound
from cluster.state.store import Result

T = TypeVar("T")

BACKEND: web.AppKey[Backend] = web.AppKey("backend", Backend)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("forward_session", aiohttp.ClientSession)

#: Set on a request one manager forwards to the leader; a request carrying it
#: is never forwarded again, so a stale leader hint cannot bounce it around.
FORWARDED_HEADER = "X-Swarmraft-Forwarded"
#: On every response: the manager that produced it (the leader, if forwarded).
SERVED_BY_HEADER = "X-Swarmraft-Served-By"
#: Docker's idempotency header; passed to `Backend.write` as the request ID.
REQUEST_ID_HEADER = "X-Request-ID"
#: ``local`` asks for a fast read of this manager's replica (as ``?consistency=``).
CONSISTENCY_HEADER = "X-Swarmraft-Consistency"

#: Bodies above this are refused by aiohttp with 413 before any route runs.
#: Big enough for a 500 KiB secret in base64, so the store's own size rule
#: (with Docker's wording) is what a too-large secret meets.
MAX_BODY = 1024 * 1024
MAX_REQUEST_ID = 200

#: The API's own bound is a little longer than the backend's, so that the
#: backend's more precise error (no quorum, no leader) normally wins.
TIMEOUT_SLACK = 1.25


class ApiError(Exception):
    """A refusal decided by the API itself: status and a Docker-style message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def backend_of(request: web.Request) -> Backend:
    return request.app[BACKEND]


def _base64(value: Any) -> str:
    """json's hook for what it cannot encode: bytes become base64, as `objects.render` does."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


#: orjson writes the bytes of the body in one C call (json.dumps made a str that
#: aiohttp then encoded: two passes).  Non-string keys are written as strings,
#: as json.dumps does; what neither knows (bytes) goes through `_base64`.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _encode(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_base64, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        # What orjson refuses and json takes (an int beyond 64 bits, NaN as a
        # key...): the standard encoder, so no reply becomes a 500 over it.
        return json.dumps(value, default=_base64).encode()


def reply(value: Any, status: int = 200) -> web.Response:
    """A JSON response, encoded straight from the stored (frozen) objects.

    No copy first: bytes (a config's ``Spec.Data``) become base64 in the
    encoder's hook, which gives what `objects.render` would, without
    rebuilding thousands of tasks just to serialise them.
    """
    return web.Response(
        body=_encode(value), status=status, content_type="application/json", charset="utf-8"
    )


def error_reply(status: int, message: str) -> web.Response:
    """Docker's error body: ``{"message": "..."}``."""
    return reply({"message": message}, status=status)


# -- request parsing ---------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: One decoder for every body: ``json.loads`` with an option builds a new
#: decoder on each call, which showed up in the leader's profile under load.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


async def read_json(request: web.Request, *, required: bool = True) -> dict[str, Any] | None:
    """The body as a JSON object; 400 naming the problem otherwise.

    An empty body is ``None`` when not ``required``.  The error never quotes
    the body: it may hold a secret.
    """
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "request body is required (a JSON object)")
        return None
    try:
        # The fast path: orjson reads the bytes in one C call.  Whatever it
        # refuses is read again by the standard decoder below, which decides
        # exactly as before (what it accepts, and the error's wording).
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        doc = _decode_slowly(raw)
    if not isinstance(doc, dict):
        raise ApiError(400, f"request body must be a JSON object, not {json_type(doc)}")
    return doc


def _decode_slowly(raw: bytes) -> Any:
    """The standard library's verdict on a body orjson refused: a value, or a 400 saying why."""
    try:
        return _DECODER.decode(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "invalid JSON body: not UTF-8") from None
    except RecursionError:
        # json's decoder recurses once per level: a body of "[[[[..." within
        # the size limit would otherwise be a 500.
        raise ApiError(400, "invalid JSON body: nested too deeply") from None
    except ValueError as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if hasattr(exc, "lineno") else ""
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise ApiError(400, f"invalid JSON body: {reason}{where}") from None


def json_type(value: Any) -> str:
    """A value's JSON type name, for error messages that must not quote values."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def query_version(request: web.Request) -> int:
    """The ``version`` an update was read at: compare-and-set needs it."""
    raw = request.query.get("version")
    if raw is None:
        raise ApiError(400, "missing version query parameter: send the Version.Index you last read")
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, f"invalid version {raw[:40]!r}: expected a non-negative integer")
    return int(raw)


def query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value in ("1", "true", "yes"):
        return True
    if value in ("", "0", "false", "no"):
        return False
    raise ApiError(400, f"invalid {name} {raw[:40]!r}: expected true or false")


def request_id_of(request: web.Request) -> str | None:
    rid = request.headers.get(REQUEST_ID_HEADER)
    if rid is None:
        return None
    if not rid or len(rid) > MAX_REQUEST_ID:
        raise ApiError(400, f"invalid {REQUEST_ID_HEADER}: 1 to {MAX_REQUEST_ID} characters")
    return rid


# -- waiting on Raft -----------------------------------------------------------


async def bounded(backend: Backend, what: str, awaitable: Awaitable[T]) -> T:
    """Await a backend call for at most about ``request_timeout`` seconds.

    A backend that hangs (a partitioned leader that has not yet stepped
    down, a slow disk) still gives the client a 503 in bounded time.
    """
    limit = backend.request_timeout * TIMEOUT_SLACK
    try:
        async with asyncio.timeout(limit):
            return await awaitable
    except TimeoutError:
        raise UnavailableError(
            f"{what} timed out after {limit:.1f}s: no quorum or no leader "
            "(a majority of managers may be down or partitioned)"
            + ("; the write may still be committed later" if what == "write" else "")
        ) from None


def wants_local_read(request: web.Request) -> bool:
    """``?consistency=local`` (or the header): read this replica without a barrier."""
    raw = request.query.get("consistency") or request.headers.get(CONSISTENCY_HEADER)
    if raw is None or raw in ("linearizable", "default"):
        return False
    if raw == "local":
        return True
    raise ApiError(400, f"invalid consistency {raw[:40]!r}: expected linearizable or local")


async def linearize(request: web.Request) -> None:
    """The read barrier before a read (ReadIndex), unless a local read was asked for."""
    if wants_local_read(request):
        return
    backend = backend_of(request)
    await bounded(backend, "linearizable read", backend.read_barrier(backend.request_timeout))


async def write(request: web.Request, command: bytes) -> Any:
    """Commit a command through Raft; the store's refusal is raised as its error."""
    backend = backend_of(request)
    rid = request_id_of(request)
    result = await bounded(backend, "write", backend.write(command, request_id=rid))
    return result.unwrap()


async def lookup_fresh(request: web.Request, kind: str, ref: str) -> o.Obj:
    """Resolve a reference for a write: locally, then once more after a barrier.

    The local replica may lag (a follower, or a leader elected a moment ago)
    and not know an object the client just created; a read barrier makes it
    catch up before we answer 404.  The happy path costs nothing.

    What it returns is the stored object itself, frozen (`cluster.state.frozen`):
    free to read into a command, impossible to change.
    """
    backend = backend_of(request)
    find = backend.store.lookup
    try:
        return find(kind, ref)
    except NotFound:
        pass
    await bounded(backend, "read barrier", backend.read_barrier(backend.request_timeout))
    return find(kind, ref)


_TASK_REPORT_FIELDS = {"State": str, "Message": str, "Err": str}


#: Reports one ``POST /tasks/status`` may carry (an agent sends `agent.REPORTS_PER_ENTRY`).
MAX_TASK_REPORTS = 2_000


def task_reports(body: dict[str, Any]) -> list[agent.Report]:
    """``{"Reports": [{ID, State, Message?, Err?}, ...]}`` -> the reports; 400 on a bad one."""
    if set(body) != {"Reports"}:
        raise ApiError(400, 'expected {"Reports": [...]} and nothing else')
    body = body["Reports"]
    if not isinstance(body, list) or not body:
        raise ApiError(400, "Reports must be a non-empty list of task reports")
    if len(body) > MAX_TASK_REPORTS:
        raise ApiError(400, f"at most {MAX_TASK_REPORTS} task reports per request")
    out = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("ID"), str):
            raise ApiError(400, "each task report is an object with a string 'ID'")
        state, message, err = task_report({k: v for k, v in item.items() if k != "ID"})
        out.append(agent.Report(item["ID"], state, message or "", err or ""))
    return out


async def write_reports(
    write: Callable[[bytes], Awaitable[Result]], reports: list[agent.Report], now: float
) -> list[str | None]:
    """Commit a round of task reports: one entry for all, else one entry each.

    The batch is all or none, so one report the store refuses (its task was
    removed, or already moved past that state) would take the others down
    with it: then each is written on its own.  Answers each report's error
    (None: applied).
    """
    result = await write(agent.report_command(reports, now))
    if result.ok:
        return [None] * len(reports)
    if len(reports) == 1:
        return [str(result.error)]
    errors: list[str | None] = []
    for command in agent.report_commands(reports, now):
        single = await write(command)
        errors.append(None if single.ok else str(single.error))
    return errors


def task_report(body: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """An agent's task report ``{State, Message?, Err?}`` -> (state, message, err); 400 else.

    Both channels take it: a manager's own agent on the API, a worker on the
    swarm port (`cluster.api.swarm`).
    """
    for key, value in body.items():
        want = _TASK_REPORT_FIELDS.get(key)
        if want is None:
            raise ApiError(400, f"unknown field {key!r} in task status")
        if not isinstance(value, want):
            raise ApiError(400, f"{key} must be a string")
    if "State" not in body:
        raise ApiError(400, "missing field 'State'")
    return body["State"], body.get("Message"), body.get("Err")


__all__ = [
    "BACKEND",
    "CONSISTENCY_HEADER",
    "FORWARDED_HEADER",
    "MAX_BODY",
    "REQUEST_ID_HEADER",
    "SERVED_BY_HEADER",
    "SESSION",
    "ApiError",
    "backend_of",
    "bounded",
    "error_reply",
    "json_type",
    "linearize",
    "lookup_fresh",
    "query_bool",
    "query_version",
    "read_json",
    "reply",
    "request_id_of",
    "task_report",
    "task_reports",
    "wants_local_read",
    "write",
    "write_reports",
]
