"""The live view's aiohttp app, bound to 127.0.0.1.

Routes: ``GET /`` the page (`viz.web.page_html`), ``GET /frame`` the cluster
now (`cluster.web.state.LiveState.frame`), ``POST /action`` one button's
verb (`cluster.web.actions`): body ``{"action", "target", "groups"}``; a bad
body is a 400 with a JSON error and runs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from cluster.local.layout import ClusterDir
from cluster.local.supervisor import Supervisor
from cluster.web.actions import ACTIONS, ActionError, run_action
from cluster.web.state import LiveState
from viz.web import page_html

__all__ = ["make_app", "serve"]

_STATE = web.AppKey("state", LiveState)
_DIR = web.AppKey("dir", Path)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


async def page(request: web.Request) -> web.Response:
    cdir = request.app[_DIR]
    html = page_html("live", f"swarmraft: {cdir.name}", {"dir": str(cdir)})
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


async def frame(request: web.Request) -> web.Response:
    return web.json_response(request.app[_STATE].frame(), headers={"Cache-Control": "no-store"})


async def action(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the body must be a JSON object")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    name, target, groups = body.get("action"), body.get("target"), body.get("groups")
    if name not in ACTIONS:
        return _error(400, f"unknown action {name!r}; known: {', '.join(ACTIONS)}")
    if target is not None and not isinstance(target, str):
        return _error(400, "target must be a node name")
    if groups is not None and not (
        isinstance(groups, list)
        and all(isinstance(g, list) and all(isinstance(n, str) for n in g) for g in groups)
    ):
        return _error(400, "groups must be lists of node names")
    try:
        answer = await asyncio.to_thread(run_action, request.app[_DIR], name, target, groups)
    except ActionError as e:
        return _error(400, str(e))
    return web.json_response(answer)


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


def make_app(cluster_dir: Path) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    cdir = ClusterDir(cluster_dir)
    app[_DIR] = cluster_dir
    app[_STATE] = LiveState(cdir, Supervisor(cdir))
    app.router.add_get("/", page)
    app.router.add_get("/frame", frame)
    app.router.add_post("/action", action)
    app.router.add_get("/favicon.ico", no_icon)
    app.cleanup_ctx.append(_background)
    return app


async def _background(app: web.Application) -> AsyncIterator[None]:
    """The gatherer runs as long as the app: started with it, cancelled at cleanup."""
    task = asyncio.create_task(app[_STATE].run())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def serve(
    cluster_dir: Path, port: int = 0, on_ready: Callable[[int], None] = lambda _: None
) -> None:
    """Serve until SIGINT or SIGTERM; ``on_ready(port)`` once it listens."""
    runner = web.AppRunner(make_app(cluster_dir), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = runner.addresses[0][1]
        on_ready(bound)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def write_info(cluster_dir: Path, port: int) -> None:
    """``DIR/web.json``: how ``down`` and ``web`` find the running server."""
    pid = os.getpid()
    stat = process_start(pid)
    info = {
        "pid": pid,
        "started": stat[1] if stat else None,
        "port": port,
        "url": f"http://127.0.0.1:{port}/",
    }
    tmp = cluster_dir / "web.json.tmp"
    tmp.write_text(json.dumps(info))
    os.replace(tmp, cluster_dir / "web.json")


def process_start(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from ``/proc/PID/stat``; None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[19])  # field 3 is the state, field 22 the start time


def read_info(cluster_dir: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((cluster_dir / "web.json").read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
