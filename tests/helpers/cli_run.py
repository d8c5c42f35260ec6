"""Running ``python -m cluster`` as a user would, for the CLI's black-box tests.

Every helper here runs the CLI in a subprocess and reads only what a user
sees: exit status, stdout, stderr and (for cleanup) DIR/cluster.json.
`kill_leftovers` is the last resort of the fixtures: it SIGKILLs PIDs that
still run a manager, after checking /proc/PID/cmdline, so a PID the kernel
gave to another program is never touched.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from repo import ROOT

from cluster.client.wait import attempts

T = TypeVar("T")


def cli(
    cdir: Path, *args: str, input: str | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python -m cluster --dir CDIR ARGS...``; never raises on a non-zero exit."""
    env = {k: v for k, v in os.environ.items() if k != "CLUSTER_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "cluster", "--dir", str(cdir), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def ok(cdir: Path, *args: str, input: str | None = None, timeout: float = 60.0) -> str:
    """Run the CLI, insist on exit status 0, return its stdout."""
    r = cli(cdir, *args, input=input, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def status(cdir: Path) -> dict[str, Any]:
    return json.loads(ok(cdir, "status", "--json"))


def wait_until(probe: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """Call ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    last: Any = None
    for _ in attempts(timeout, every):
        if last := probe():
            return last
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what} (last: {last})")


def described_pids(cdir: Path) -> set[int]:
    """The PIDs DIR/cluster.json names (empty if there is no cluster)."""
    try:
        desc = json.loads((cdir / "cluster.json").read_text())
    except (OSError, ValueError):
        return set()
    return {m["pid"] for m in desc.get("members", []) if m.get("pid")}


def is_manager_process(pid: int) -> bool:
    """Whether PID is alive and runs ``cluster.manager`` (not a zombie)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat[stat.rindex(")") + 2 :].split()[0]
    return b"cluster.manager" in cmdline and state not in ("Z", "X")


def kill_leftovers(pids: set[int]) -> list[int]:
    """SIGKILL (after SIGCONT) every PID that still runs a manager; return those killed."""
    killed = []
    for pid in sorted(pids):
        if is_manager_process(pid):
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
            killed.append(pid)
    return killed


class LineReader:
    """Lines of a child's text pipe, each waited for with a bound.

    ``pipe.readline()`` blocks for as long as the child stays silent, so a
    test reading a hung child would hang with it.  A daemon thread does the
    blocking reads and queues the lines; `next_line` waits at most until a
    deadline.  The thread ends when the pipe does (the child exits or is killed).
    """

    def __init__(self, pipe: Any) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: Any) -> None:
        for line in pipe:
            self._lines.put(line)
        self._lines.put("")  # end of file

    def next_line(self, deadline: float) -> str:
        """The next line ("" at end of file); AssertionError once ``deadline``
        (a `time.monotonic` value) has passed."""
        try:
            return self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("the child printed no line before the deadline") from None


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    """Assert the CLI failed the way a user mistake must: one line, no traceback."""
    assert r.returncode != 0, f"expected a failure, got 0: {r.stdout}"
    assert "Traceback" not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {r.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]
