"""The node processes: start, signal, stop -- always by PID *and* start time.

The supervisor is not a daemon: every CLI command loads ``cluster.json``,
acts on the processes it names, saves it back and exits.  So a process is
known only by what ``cluster.json`` recorded: its PID and its start time
(``/proc/PID/stat``, field 22).  Both must match before it is signalled, so
a PID the kernel gave to another program after a node died is never touched.

Apart from the rest because this is the only place that sends a signal or
spawns a process: what a command *does* to the cluster (faults, joins,
recovery) is written elsewhere in terms of these few calls.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from cluster.client.wait import attempts
from cluster.local.layout import ClusterDir, ClusterError, Member

__all__ = ["STOP_GRACE", "Processes", "proc_stat"]

#: How long a manager gets to stop after SIGTERM before SIGKILL.
STOP_GRACE = 8.0


def proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest[0], int(rest[19])


class Processes:
    """The processes of the nodes in one cluster directory."""

    def __init__(self, cdir: ClusterDir) -> None:
        self.cdir = cdir

    def state(self, m: Member) -> str:
        """ "running", "paused" or "down" -- checked against PID reuse."""
        if m.pid is None:
            return "down"
        st = proc_stat(m.pid)
        if st is None or st[1] != m.pid_start or st[0] in ("Z", "X"):
            return "down"
        return "paused" if st[0] in ("T", "t") else "running"

    def signal(self, m: Member, sig: signal.Signals) -> bool:
        """Send ``sig`` to ``m``'s process if it is still the one we started."""
        if self.state(m) == "down":
            return False
        assert m.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(m.pid, sig)
        return True

    def wait_down(self, members: Iterable[Member], timeout: float) -> list[Member]:
        """Wait until every member's process is gone; return those still alive."""
        pending = list(members)
        for _ in attempts(timeout, every=0.05):
            pending = [m for m in pending if self.state(m) != "down"]
            if not pending:
                break
        return pending

    def start(self, m: Member, unlock_key: str | None = None) -> None:
        """Start ``m``'s process on its ``config.json``; record its PID and start time.

        ``unlock_key``: an autolocked manager's first start gets it on its
        stdin (never on its command line, environment or disk).
        """
        d = self.cdir.node_dir(m.name)
        module = "cluster.worker" if m.role == "worker" else "cluster.manager"
        cmd = [sys.executable, "-m", module, "--config", str(d / "config.json")]
        if m.netns:
            # Netns mode: `ip netns exec` enters the namespace and then execs
            # Python in its own place, so the PID we get is the node's.
            cmd = ["ip", "netns", "exec", m.netns, *cmd]
        log = (d / "node.log").open("ab")
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE if unlock_key else subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own session: Ctrl-C in the user's terminal reaches the CLI,
                # which then stops the managers in order.
                start_new_session=True,
            )
        finally:
            log.close()
        if unlock_key and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(unlock_key.encode() + b"\n")
            proc.stdin.close()
        st = proc_stat(proc.pid)
        m.pid, m.pid_start = proc.pid, st[1] if st else None

    def stop(self, members: list[Member]) -> None:
        """SIGTERM (and SIGCONT, so a paused one can exit), then SIGKILL the stuck."""
        for m in members:
            self.signal(m, signal.SIGTERM)
            self.signal(m, signal.SIGCONT)  # a paused process must run to exit
        stuck = self.wait_down(members, STOP_GRACE)
        for m in stuck:
            self.signal(m, signal.SIGKILL)
        still = self.wait_down(stuck, 5.0)
        if still:
            raise ClusterError(f"could not stop {', '.join(m.name for m in still)}")
