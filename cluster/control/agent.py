"""The task side of a node: a simulated container runtime.

There is no Docker engine here, so a node's agent *plays* the containers of
the tasks assigned to it: it walks each task through Swarm's states
(assigned -> accepted -> preparing -> starting -> running) one step per
report, and stops it (shutdown) when the orchestrator no longer wants it.
Each report goes to the leader, which commits it through Raft: exactly the
traffic a real Swarm worker sends its dispatcher.

A task fails on purpose when its image's tag is ``fail`` (``nginx:fail``):
that is how the update-failure scenarios make a rolling update pause or roll
back.  Secrets a task references are decrypted into the agent's memory when
the task starts and dropped when it ends (Swarm mounts them on a tmpfs); they
never reach a disk, and only their names are ever shown.  Configs a task
references are handed over the same way but in plain (Swarm mounts them as
ordinary files, not on a tmpfs): nothing about a config is secret.

`next_reports` is pure: the store's tasks in, the reports to send out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.state import objects as o

__all__ = ["FAILING_TAG", "Report", "next_reports", "wants_configs", "wants_secrets"]

#: An image with this tag fails at "starting", for update-failure scenarios.
FAILING_TAG = "fail"

#: One step forward per report: what a container runtime would say next.
_NEXT = {
    "assigned": "accepted",
    "accepted": "preparing",
    "preparing": "starting",
    "starting": "running",
}


@dataclass(frozen=True, slots=True)
class Report:
    task_id: str
    state: str
    message: str = ""
    err: str = ""


def _image(task: dict[str, Any]) -> str:
    spec = task.get("Spec", {}).get("ContainerSpec", {})
    return str(spec.get("Image", ""))


def next_reports(node_id: str, tasks: list[dict[str, Any]]) -> list[Report]:
    """The state reports this node's agent sends now for ``tasks`` (all tasks)."""
    out: list[Report] = []
    for t in tasks:
        if t.get("NodeID") != node_id:
            continue
        state = t.get("Status", {}).get("State", "")
        desired = t.get("DesiredState", "running")
        if state in o.TERMINAL_TASK_STATES:
            continue
        if desired != "running":
            # Told to stop (scale down, update, drain): the container exits.
            if o.TASK_STATE_RANK.get(state, 0) >= o.TASK_STATE_RANK["assigned"]:
                out.append(Report(t["ID"], "shutdown", "shutdown"))
            continue
        nxt = _NEXT.get(state)
        if nxt is None:
            continue
        if nxt == "running" and _image(t).rsplit(":", 1)[-1] == FAILING_TAG:
            out.append(
                Report(
                    t["ID"], "failed", "started", "simulated container failure (image tag :fail)"
                )
            )
            continue
        out.append(Report(t["ID"], nxt, nxt))
    return out


def wants_secrets(task: dict[str, Any]) -> list[tuple[str, str]]:
    """(secret ID, target file name) of every secret the task references."""
    refs = task.get("Spec", {}).get("ContainerSpec", {}).get("Secrets") or []
    out = []
    for r in refs:
        target = (r.get("File") or {}).get("Name") or r.get("SecretName", "")
        out.append((r.get("SecretID", ""), target))
    return out


def wants_configs(task: dict[str, Any]) -> list[tuple[str, str]]:
    """(config ID, target file name) of every config the task references."""
    refs = task.get("Spec", {}).get("ContainerSpec", {}).get("Configs") or []
    return [(r.get("ConfigID", ""), (r.get("File") or {}).get("Name") or r.get("ConfigName", ""))
            for r in refs]  # fmt: skip
