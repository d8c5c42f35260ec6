"""What the page's buttons do: the CLI's own verbs.

Each button names an action (`ACTIONS`); `run_action` turns it into the
``python -m cluster`` command line a user would type and runs exactly that
command, as a process of its own, so the page can never drift from the CLI
(and a manager it restarts belongs to that command, as from a terminal).
The answer carries the command, what Docker would have you type for the same
thing (or why Docker has no such verb), and the CLI's last line.
"""

from __future__ import annotations

import itertools
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cluster.local.verbs import equivalent

__all__ = ["ACTIONS", "ActionError", "run_action"]

#: Actions and whether they need a target node.
ACTIONS: dict[str, bool] = {
    "kill": True,
    "restart": True,
    "pause": True,
    "unpause": True,
    "isolate": True,
    "transfer": True,
    "drain": True,
    "activate": True,
    "heal": False,
    "write": False,
    "partition": False,
}

#: Long enough for the slowest verb (a transfer waits for the new leader).
VERB_TIMEOUT = 60.0
_WRITES = itertools.count(1)


class ActionError(ValueError):
    """The request names no known action, or lacks what the action needs."""


def command_for(
    action: str, target: str | None, groups: list[list[str]] | None, data_dir: Path
) -> tuple[list[str], str]:
    """The CLI arguments for an action, and the Docker equivalent (or why there is none)."""
    if action not in ACTIONS:
        raise ActionError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    if ACTIONS[action] and not target:
        raise ActionError(f"{action} needs a target node")
    if action == "partition" and (not groups or len([g for g in groups if g]) < 2):
        raise ActionError("partition needs two non-empty groups of nodes")
    if action != "write":
        found = equivalent(action, str(target or ""), groups=[g for g in groups or [] if g])
        assert found is not None
        return list(found.cli), found.docker
    # write: one config, a real Raft write through the leader
    name = f"web-write-{int(time.time())}-{next(_WRITES)}"
    path = data_dir / "web-writes" / f"{name}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"written from the web view at {time.strftime('%H:%M:%S')}\n")
    return ["config", "create", name, str(path)], f"docker config create {name} ./{path.name}"


def run_action(
    cluster_dir: Path, action: str, target: str | None = None, groups: list[list[str]] | None = None
) -> dict[str, Any]:
    """Run one action as its CLI verb; the answer for the page (never raises for a
    failed verb: its error line is the answer's message)."""
    args, docker = command_for(action, target, groups, cluster_dir)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cluster", "--dir", str(cluster_dir), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=VERB_TIMEOUT,
        )
        code, said = done.returncode, (done.stderr + done.stdout).strip()
    except subprocess.TimeoutExpired:
        code, said = 1, f"no answer within {VERB_TIMEOUT:g} s"
    return {
        "ok": code == 0,
        "action": action,
        "target": target,
        "cli": "python -m cluster " + shlex.join(args),
        "docker": docker,
        "message": said.splitlines()[-1] if said else ("done" if code == 0 else "failed"),
    }
