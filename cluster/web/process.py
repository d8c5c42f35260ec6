"""The web view as a process: run it in the foreground, or start and stop it
beside a cluster (``up`` in the foreground starts one; ``down`` stops it).

The server writes ``DIR/web.json`` (its PID, the process's start time and its
port) once it listens; that is how ``up`` learns its URL and how ``down``
finds it, whether it was started by ``up`` or by ``web`` in a terminal.  A
PID is signalled only while its start time still matches, so a reused PID is
never hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from cluster.client.wait import attempts
from cluster.local.layout import ClusterDir, ClusterError
from cluster.web.server import process_start, read_info, serve, write_info

__all__ = ["run_foreground", "start_web", "stop_web"]

MODULE = "cluster.web"


def run_foreground(cluster_dir: Path, port: int = 0) -> int:
    """Serve the cluster in ``cluster_dir`` until Ctrl-C; print the URL once listening."""
    ClusterDir(cluster_dir).load()  # one clear line if there is no cluster there

    def ready(bound: int) -> None:
        write_info(cluster_dir, bound)
        print(f"web view: http://127.0.0.1:{bound}/", flush=True)

    try:
        asyncio.run(serve(cluster_dir, port, ready))
    except OSError as e:
        raise ClusterError(f"cannot serve the web view on port {port}: {e.strerror or e}") from None
    finally:
        info = read_info(cluster_dir)
        if info and info.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                (cluster_dir / "web.json").unlink()
    return 0


def start_web(cluster_dir: Path, port: int = 0, timeout: float = 15.0) -> str:
    """Start the web view as a process of its own; its URL once it listens."""
    stop_web(cluster_dir)
    with (cluster_dir / "web.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", MODULE, "--dir", str(cluster_dir), "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    for _ in attempts(within=timeout, every=0.05):
        info = read_info(cluster_dir)
        if info and info.get("pid") == proc.pid:
            return str(info["url"])
        if proc.poll() is not None:
            break
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(5)
    raise ClusterError(f"the web view did not start; see {cluster_dir / 'web.log'}")


def stop_web(cluster_dir: Path, timeout: float = 5.0) -> bool:
    """Stop the web view of this cluster if one runs; True if one was stopped."""
    info = read_info(cluster_dir)
    if not info:
        return False
    pid = info.get("pid")
    stopped = False
    started = info.get("started")
    if isinstance(pid, int) and _alive(pid, started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in attempts(within=timeout, every=0.05):
            if not _alive(pid, started):
                break
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(pid)
        stopped = True
    with contextlib.suppress(OSError):
        (cluster_dir / "web.json").unlink()
    return stopped


def _alive(pid: int, started: object) -> bool:
    """Whether ``pid`` still runs (not a zombie) and is the process that wrote web.json."""
    stat = process_start(pid)
    return stat is not None and stat[1] == started and stat[0] not in ("Z", "X")


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
