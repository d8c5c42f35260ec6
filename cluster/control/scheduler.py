"""The scheduler: which node runs each task that has none yet.

Theory of operation
-------------------
The orchestrator creates a replicated task in state ``new`` with no node.
The scheduler reads the store, picks a node for it and proposes
``task.update(node_id, state="assigned")``; the node's agent takes it from
there (accepted, preparing, starting, running).  A global task is born
pinned to its node, so for it the scheduler only checks that the node can
still take it and moves it to ``assigned``.

A node can take new tasks when it is ``ready`` and its availability is
``active``: a ``pause`` node keeps what it runs but gets nothing new, a
``drain`` node gets nothing (the orchestrator moves its tasks away), a
``down`` node gets nothing.  Among those, the task goes where its service
has the fewest live tasks, then where the fewest live tasks of any service
run, ties broken by node ID: Swarm's spread, made deterministic so that two
managers looking at the same state choose the same node.

When no node fits, the task stays ``pending`` with Docker's explanation in
``Status.Err`` (``no suitable node (2 nodes not available for new tasks)``),
written once, not on every pass.

Every command carries the task's ``Version.Index`` (compare-and-set), so an
assignment computed from a stale read, say by a leader that has just been
deposed, is refused by the store instead of moving a task that has since
changed.  The store also refuses to reassign a task that has a node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.store import Store

PENDING_MESSAGE = "pending task scheduling"
ASSIGNED_MESSAGE = "scheduler assigned task to node"
NO_SUITABLE_NODE = "no suitable node"

#: States of a task that waits for the scheduler.
UNASSIGNED_STATES = frozenset({"new", "allocated", "pending"})


def available(node: o.Obj) -> bool:
    """Can this node be given a new task?  Ready and active, as swarmkit's ready filter."""
    return node["Status"]["State"] == "ready" and node["Spec"]["Availability"] == "active"


def explain(nodes: Collection[o.Obj]) -> str:
    """Swarm's text for a task no node can take, counting the nodes that refused."""
    if not nodes:
        return NO_SUITABLE_NODE
    refused = sum(1 for n in nodes if not available(n))
    noun = "node" if refused == 1 else "nodes"
    return f"{NO_SUITABLE_NODE} ({refused} {noun} not available for new tasks)"


def waiting(task: o.Obj) -> bool:
    """A live task the scheduler still has to assign."""
    return o.task_is_live(task) and task["Status"]["State"] in UNASSIGNED_STATES


class Spread:
    """Live task counts per node, overall and per service, kept up to date as we assign.

    Built from a list of tasks, or from a store (`of_store`): then the totals
    come from the store's task index and a service's counts are read only
    when one of its tasks is placed, so placing a few tasks does not cost a
    scan of every task in the swarm.  Both give the same counts.
    """

    def __init__(self, tasks: Iterable[o.Obj]) -> None:
        self.total: Counter[str] = Counter()
        self.per_service: Counter[tuple[str, str]] = Counter()
        self._store: Store | None = None
        self._loaded: set[str] = set()
        for task in tasks:
            if o.task_is_live(task) and task.get("NodeID"):
                self.add(task["ServiceID"], task["NodeID"])

    @classmethod
    def of_store(cls, store: Store, nodes: Iterable[o.Obj]) -> Spread:
        spread = cls(())
        spread._store = store
        spread.total.update({n["ID"]: store.live_tasks_on(n["ID"]) for n in nodes})
        return spread

    def add(self, service_id: str, node_id: str) -> None:
        self._load(service_id)
        self.total[node_id] += 1
        self.per_service[(service_id, node_id)] += 1

    def _load(self, service_id: str) -> None:
        if self._store is None or service_id in self._loaded:
            return
        self._loaded.add(service_id)
        for task in self._store.tasks(service_id=service_id):
            if o.task_is_live(task) and task.get("NodeID"):
                self.per_service[(service_id, task["NodeID"])] += 1

    def best(self, service_id: str, nodes: Iterable[o.Obj]) -> o.Obj | None:
        """The node with the fewest tasks of this service, then of all, then the lowest ID."""
        self._load(service_id)
        return min(
            nodes,
            key=lambda n: (self.per_service[(service_id, n["ID"])], self.total[n["ID"]], n["ID"]),
            default=None,
        )


def schedule(
    nodes: Iterable[o.Obj],
    tasks: Iterable[o.Obj],
    now: c.Time,
    skip: Collection[str] = (),
    spread: Spread | None = None,
) -> list[bytes]:
    """The commands that place every waiting task, or mark why it cannot be placed.

    ``skip`` names tasks another loop has already decided about in this
    pass (the orchestrator shutting one down, say), so the two do not race.
    ``spread``: the live task counts, when ``tasks`` are not all the tasks
    (the orchestrator passes only the waiting ones and `Spread.of_store`).
    """
    nodes = sorted(nodes, key=lambda n: n["ID"])
    by_id = {n["ID"]: n for n in nodes}
    tasks = list(tasks)
    ready = [n for n in nodes if available(n)]
    spread = spread if spread is not None else Spread(tasks)
    out: list[bytes] = []
    queue = sorted(
        (t for t in tasks if waiting(t) and t["ID"] not in skip),
        key=lambda t: (t["ServiceID"], t.get("Slot", 0), t.get("NodeID", ""), t["ID"]),
    )
    for task in queue:
        pinned = task.get("NodeID")
        if pinned:
            # A global task: its node is fixed; it only has to still be usable.
            node = by_id.get(pinned)
            usable = node is not None and node["Status"]["State"] == "ready"
            usable = usable and node["Spec"]["Availability"] != "drain"
            target = node if usable else None
            reason = explain([node] if node else [])
        else:
            target = spread.best(task["ServiceID"], ready)
            reason = explain(nodes)
        if target is None:
            status = task["Status"]
            if status["State"] != "pending" or status.get("Err") != reason:
                out.append(_pending(task, now, reason))
            continue
        spread.add(task["ServiceID"], target["ID"])
        out.append(
            c.update_task(
                task["ID"],
                now,
                state="assigned",
                message=ASSIGNED_MESSAGE,
                node_id=None if pinned else target["ID"],
                version=task["Version"]["Index"],
            )
        )
    return out


def _pending(task: o.Obj, now: c.Time, reason: str) -> bytes:
    return c.update_task(
        task["ID"],
        now,
        state="pending",
        message=PENDING_MESSAGE,
        err=reason,
        version=task["Version"]["Index"],
    )
