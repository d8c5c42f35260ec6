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

An idle node must cost nothing
------------------------------
With 20,000 running tasks, each manager's agent re-read its ~7,000 tasks
four times a second to find that none needed a report: a tenth of a core
per manager, doing nothing.  `TaskWatch` looks instead only at the tasks of
this node that changed since its previous round (the store's change log,
as the leader's `cluster.control.reconciler` does), plus those it reported
last round (a report can be lost: a leader change, a timeout) and, every
`FULL_EVERY` seconds or when the log cannot say what changed, all of them.
A settled task (running, or ended) never changes by itself, so nothing is
missed.  And what a round finds goes to the leader as *one* entry
(`report_command`), not one entry per task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.state import commands
from cluster.state import objects as o
from cluster.state.store import Store

__all__ = [
    "FAILING_TAG",
    "FULL_EVERY",
    "REPORTS_PER_ENTRY",
    "Report",
    "TaskWatch",
    "next_reports",
    "report_command",
    "wants_configs",
    "wants_secrets",
]

#: An image with this tag fails at "starting", for update-failure scenarios.
FAILING_TAG = "fail"

#: Seconds between two rounds that look at every task of the node (a repair).
FULL_EVERY = 10.0

#: Reports per entry: applying one ``task.update`` takes tens of microseconds on
#: every manager, so an entry of thousands would hold each manager's event loop
#: for a good part of an election timeout.
REPORTS_PER_ENTRY = 500

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


def report_command(reports: list[Report], now: float) -> bytes:
    """One entry carrying every report of a round (`commands.batch`: all or none).

    All or none, because that is what a batch is; should the store refuse
    one report (its task was removed meanwhile), the sender falls back to
    one entry per report (`report_commands`), so the others still land.
    """
    return commands.batch(*report_commands(reports, now))


def report_commands(reports: list[Report], now: float) -> list[bytes]:
    """One ``task.update`` per report."""
    return [
        commands.update_task(r.task_id, now, state=r.state, message=r.message, err=r.err or None)
        for r in reports
    ]


class TaskWatch:
    """Which of a node's tasks its agent must look at this round (see the module doc).

    Pure: the store and the time come in, the tasks to look at go out; the
    agent says which tasks it reported (`reported`) so that they are
    looked at again next round, whether or not their report landed.
    """

    def __init__(self, node_id: str, full_every: float = FULL_EVERY) -> None:
        self.node_id = node_id
        self.full_every = full_every
        self._cursor: int | None = None
        self._next_full = 0.0
        self._again: set[str] = set()
        #: Rounds done, by kind: for tests and the curious.
        self.rounds = {"full": 0, "changed": 0}

    def step(self, store: Store, now: float) -> tuple[list[dict[str, Any]], set[str] | None]:
        """(this node's tasks to look at, the IDs of the tasks that changed or went).

        In a full round the second is ``None`` and the first is every task of
        this node: whatever is not among them is not this node's any more.
        """
        changes = None
        if self._cursor is not None and now < self._next_full:
            changes = store.changes_since(self._cursor)
        self._cursor = store.applied_index
        if changes is None:
            self._next_full = now + self.full_every
            self._again.clear()
            self.rounds["full"] += 1
            return store.tasks(node_id=self.node_id), None
        self.rounds["changed"] += 1
        changed = {obj_id for kind, obj_id in changes if kind == o.TASK}
        wanted = changed | self._again
        self._again = set()
        found = store.many(o.TASK, wanted)
        return [t for t in found if t.get("NodeID") == self.node_id], changed

    def reported(self, task_ids: set[str]) -> None:
        """These tasks were reported this round: look at them again next round."""
        self._again |= task_ids
