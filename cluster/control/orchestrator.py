"""The orchestrator: the leader's control loop, from desired state to commands.

Theory of operation
-------------------
The user writes *desired* state (a service wants 3 replicas of nginx); agents
report *actual* state (this task is running, that one failed).  Only the
leader closes the gap, and it does so with nothing but the replicated store:
`ControlLoop.step` reads the store and ``now`` and returns the commands
(built with `cluster.state.commands`) that move the actual state one step toward
the desired one.  The leader proposes them through Raft; once they are
applied, it steps again.  No I/O, no clock, no memory between passes, so a
freshly elected leader picks up exactly where the old one stopped (§5.4: the
new leader has every committed entry, hence the same store).

One pass, per service:

1. **Reconcile** (this module).  Each task fills a *slot*: slot 1..Replicas
   of a replicated service, or a node of a global one.  A slot is filled by
   at most one *live* task (desired running, not yet ended,
   `objects.task_is_live`).  The pass shuts down live tasks that must go (on
   a drained node, on a node down longer than the grace period, on a node
   that left, in a slot above Replicas, the extra ones when a slot holds two)
   and creates a task in every wanted slot left empty: scale up, a
   replacement for a task that ended (restart policy ``any``, after its
   ``Delay``), for one shut down on a drained or lost node, or a global task
   for a node that joined.
2. **Update** (`cluster.control.updater`): replace out-of-date tasks in batches,
   in the slots reconcile left alone in this pass.
3. **Schedule** (`cluster.control.scheduler`): place the tasks still waiting for a
   node.

Why nothing is lost or doubled across a failover: every command is safe to
apply after a leader change, even when it was computed from an older read
and commits late (a deposed leader's entry can still be committed, §5.4.2):

* a created task's ID is derived from (service, slot, the IDs of every task
  the slot has ever had), so two leaders that saw the slot alike propose the
  same ID and the store refuses the second (`commands.derived_id`);
* every change to an existing task names its ``Version.Index``, so a change
  decided on a stale read is refused;
* and should two live tasks ever share a slot anyway, the next pass keeps
  the better one and shuts the other down.

Full and incremental passes
---------------------------
A *full* pass (``changes=None``) looks at every service.  An *incremental*
pass is given what changed in the store since the previous one
(`Store.changes_since`, swarmkit's watch) and looks only at the services
that a change can concern (`affected_services`): a changed service; the
service of a changed task; for a changed node, the services of the tasks on
it and every global service.  The scheduler always sees every waiting task
(from the store's task index), so a node that becomes available is used at
once.  Decisions that only *time* can change (a restart delay, a down node's
grace period, an update's delay between batches) are written into
`Pass.wake`, so the caller (`cluster.control.reconciler`) can name those
services again when their time comes.  For the same store and time, an
incremental pass proposes exactly the commands of a full pass; the tests
check that property on random histories.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from cluster.control import reaper, scheduler, updater
from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.changes import Change
from cluster.state.store import Store

NS = 1e9
#: Docker's default restart delay (RestartPolicy.Delay), in seconds.
DEFAULT_RESTART_DELAY = 5.0
#: Task states that mean the task stopped by itself (what a restart policy reacts to).
ENDED_STATES = frozenset({"complete", "failed", "rejected"})


@dataclass(frozen=True, slots=True)
class Settings:
    """How patient the orchestrator is, in seconds.

    ``node_down_grace``: how long a node may be down before its tasks are
    written off and replaced elsewhere (a short network blip should not
    reshuffle the cluster).  ``restart_delay``: used when a service's
    ``RestartPolicy`` names none.
    """

    node_down_grace: float = 60.0
    restart_delay: float = DEFAULT_RESTART_DELAY


@dataclass(slots=True)
class Pass:
    """The commands of one pass, and what they touched (so later stages keep off)."""

    now: float
    commands: list[bytes] = field(default_factory=list)
    touched_tasks: set[str] = field(default_factory=set)
    touched_slots: set[tuple[str, int | str]] = field(default_factory=set)
    #: service ID -> the earliest time (Unix seconds) at which time alone may
    #: change a decision about it (a restart delay ends, a grace period runs out).
    wake: dict[str, float] = field(default_factory=dict)
    #: Services this pass proposed commands for: should one be lost, the next
    #: incremental pass must look again, since no change will name them.
    revisit: set[str] = field(default_factory=set)

    def wake_at(self, service_id: str, when: float) -> None:
        self.wake[service_id] = min(when, self.wake.get(service_id, when))

    def shut_down(self, task: o.Obj, state: str | None = None, message: str | None = None) -> None:
        """Tell a task to stop; ``state`` also ends it when no agent ever will."""
        self.commands.append(
            c.update_task(
                task["ID"],
                self.now,
                desired_state="shutdown",
                state=state,
                message=message,
                version=task["Version"]["Index"],
            )
        )
        self.touched_tasks.add(task["ID"])
        self.touched_slots.add((task["ServiceID"], updater.slot_key(task)))
        self.revisit.add(task["ServiceID"])

    def create(self, service: o.Obj, key: int | str, history: Iterable[o.Obj]) -> None:
        """A new task for one slot, named after the slot's whole history (see the module doc).

        The spec is left out on purpose: the store copies the service's
        template as it stands when the entry is applied, so a late entry
        still starts the newest spec.
        """
        task_id = c.derived_id("task", service["ID"], key, *sorted(t["ID"] for t in history))
        slot, node = (key, None) if isinstance(key, int) else (None, key)
        self.commands.append(c.create_task(task_id, self.now, service["ID"], slot, node))
        self.touched_slots.add((service["ID"], key))
        self.revisit.add(service["ID"])


class ControlLoop:
    """Orchestrator, updater and scheduler in one pure `step`.

    It holds only its settings, so any number of them (one per manager, or
    a fresh one after every election) give the same answer for the same store.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()

    def step(
        self, store: Store, now: float, changes: Collection[Change] | None = None
    ) -> list[bytes]:
        """The commands to propose now (``now`` in Unix seconds); empty when all is well.

        ``changes``: the (kind, ID) pairs changed since the previous pass, for
        an incremental pass; ``None`` for a full one (see the module doc).
        A leader calls this after its previous commands were applied; it
        proposes each command as its own entry, since a refused one (already
        done by an earlier leader) must not take others down with it.
        """
        return self.run(store, now, changes).commands

    def run(
        self,
        store: Store,
        now: float,
        changes: Collection[Change] | None = None,
        also: Iterable[str] = (),
    ) -> Pass:
        """`step`, returning the whole `Pass` (with its wake-ups); ``also``: more service IDs."""
        nodes = {n["ID"]: n for n in store.list(o.NODE)}
        scope = affected_services(store, changes, nodes)
        if scope is None:
            scope = {s["ID"] for s in store.list(o.SERVICE)} | store.task_services()
        scope |= set(also)
        present = {s["ID"]: s for s in store.many(o.SERVICE, scope)}
        owned_by = {sid: store.tasks(service_id=sid) for sid in sorted(scope)}
        work = Pass(now)
        for service_id, owned in owned_by.items():
            if service_id not in present:
                for task in owned:
                    if o.task_is_live(task):
                        work.shut_down(task, *_end_if_unassigned(task, "service removed"))
        for service_id, service in present.items():
            owned = owned_by[service_id]
            self.reconcile(work, service, owned, nodes)
            busy = {key for sid, key in work.touched_slots if sid == service_id}
            plan = updater.plan_update(service, owned, now, busy)
            work.commands.extend(plan.commands)
            if plan.commands:
                work.revisit.add(service_id)
            if plan.wake is not None:
                work.wake_at(service_id, plan.wake)
            for task in plan.replace:
                history = [t for t in owned if updater.slot_key(t) == updater.slot_key(task)]
                work.shut_down(task, *_end_if_unassigned(task, "replaced by update"))
                work.create(service, updater.slot_key(task), history)
        for service_id, command in reaper.reap(store, owned_by, present, work.touched_slots):
            work.commands.append(command)
            work.revisit.add(service_id)  # should the removal be lost, look again
        waiting = [t for state in scheduler.UNASSIGNED_STATES for t in store.tasks(state=state)]
        spread = scheduler.Spread.of_store(store, nodes.values())
        work.commands.extend(
            scheduler.schedule(nodes.values(), waiting, now, skip=work.touched_tasks, spread=spread)
        )
        return work

    # -- reconcile ---------------------------------------------------------------

    def reconcile(
        self, work: Pass, service: o.Obj, tasks: list[o.Obj], nodes: dict[str, o.Obj]
    ) -> None:
        """Shut down what must go and fill every empty wanted slot of one service."""
        slots: dict[int | str, list[o.Obj]] = defaultdict(list)
        for task in tasks:
            slots[updater.slot_key(task)].append(task)
        spec = service["Spec"]
        if o.is_global(spec):
            wanted: list[int | str] = sorted(n for n in nodes if scheduler.available(nodes[n]))
        else:
            wanted = list(range(1, o.replicas(spec) + 1))
        wanted_keys = set(wanted)  # membership in O(1): a list made this O(replicas²)
        for key in sorted(slots, key=lambda k: str(k).zfill(25)):
            live = []
            for task in sorted(slots[key], key=lambda t: t["ID"]):
                if not o.task_is_live(task):
                    if task["DesiredState"] == "running":
                        work.shut_down(task)  # ended by itself: record that it stays down
                    continue
                reason = self._evict(work, task, nodes)
                if reason is not None:
                    work.shut_down(task, *reason)
                elif key not in wanted_keys and not o.is_global(spec):
                    work.shut_down(task, *_end_if_unassigned(task, "scaled down"))
                else:
                    live.append(task)
            if len(live) > 1:
                keep = _best(live, spec["TaskTemplate"])
                for task in live:
                    if task is not keep:
                        work.shut_down(task, *_end_if_unassigned(task, "duplicate in slot"))
        for key in wanted:
            history = slots.get(key, [])
            if any(o.task_is_live(t) and t["ID"] not in work.touched_tasks for t in history):
                continue
            when = self._restart_time(spec, history)
            if when is not None and work.now >= when:
                work.create(service, key, history)
            elif when is not None:
                work.wake_at(service["ID"], when)

    def _evict(
        self, work: Pass, task: o.Obj, nodes: dict[str, o.Obj]
    ) -> tuple[str | None, str | None] | None:
        """Why a live task must leave its node, as (state, message) for `Pass.shut_down`."""
        node_id = task.get("NodeID")
        if not node_id:
            return None
        node = nodes.get(node_id)
        if node is None:
            return "orphaned", "node removed from the swarm"
        if node["Spec"]["Availability"] == "drain":
            return _end_if_unassigned(task, "node drained")
        status = node["Status"]
        if status["State"] == "down":
            since = c.parse_time(status.get("Timestamp") or node["UpdatedAt"])
            if work.now - since >= self.settings.node_down_grace:
                # Nobody is left to report this task's end: record it ourselves.
                return "orphaned", "node down for longer than the grace period"
            work.wake_at(task["ServiceID"], since + self.settings.node_down_grace)
        return None

    def _restart_time(self, spec: o.Obj, history: list[o.Obj]) -> float | None:
        """When an empty slot may be filled: after RestartPolicy.Delay once a task ended.

        ``-inf`` for at once, ``None`` for never (the policy leaves it empty).
        """
        policy = spec["TaskTemplate"].get("RestartPolicy") or {}
        ended = [t for t in history if t["Status"]["State"] in ENDED_STATES]
        if not ended:
            return -math.inf  # a new slot, or its task was shut down on purpose: fill it now
        last = max(ended, key=lambda t: (t["Status"]["Timestamp"], t["ID"]))
        condition = policy.get("Condition", "any")
        if condition == "none" or (
            condition == "on-failure" and last["Status"]["State"] == "complete"
        ):
            return None  # the policy says this slot stays empty
        delay = policy["Delay"] / NS if "Delay" in policy else self.settings.restart_delay
        return c.parse_time(last["Status"]["Timestamp"]) + delay


def _end_if_unassigned(task: o.Obj, why: str) -> tuple[str | None, str | None]:
    """A task no agent has taken yet is ended here, since no agent will ever report it."""
    taken = o.TASK_STATE_RANK[task["Status"]["State"]] >= o.TASK_STATE_RANK["assigned"]
    if task.get("NodeID") and taken:
        return None, None
    return "shutdown", f"shutdown before assignment: {why}"


def _best(live: list[o.Obj], template: o.Obj) -> o.Obj:
    """Of two live tasks in one slot, the one to keep: furthest along, up to date, lowest ID."""
    return min(
        live,
        key=lambda t: (-o.TASK_STATE_RANK[t["Status"]["State"]], t["Spec"] != template, t["ID"]),
    )


def affected_services(
    store: Store, changes: Collection[Change] | None, nodes: dict[str, o.Obj]
) -> set[str] | None:
    """The services a pass must look at after ``changes``; ``None``: all of them.

    A change to a service concerns that service; to a task, its service (a
    task that is gone, nothing: only the reaper removes tasks, ended ones);
    to a node, the services with tasks on it (drained, down,
    removed) and every global service (its wanted nodes changed).  Secrets,
    configs and the cluster object concern no pass.
    """
    if changes is None:
        return None
    scope: set[str] = set()
    changed_node = False
    for kind, obj_id in changes:
        if kind == o.SERVICE:
            scope.add(obj_id)
        elif kind == o.TASK:
            found = store.many(o.TASK, [obj_id])
            if found:
                scope.add(found[0]["ServiceID"])
            # A task that is gone was removed by the reaper (`cluster.control.reaper`),
            # the only remover, and only once it had ended for good: its absence
            # changes no decision, so it widens no pass.
        elif kind == o.NODE:
            changed_node = True
            scope.update(t["ServiceID"] for t in store.tasks(node_id=obj_id))
    if changed_node:
        scope.update(s["ID"] for s in store.list(o.SERVICE, lambda s: o.is_global(s["Spec"])))
    return scope
