"""The task reaper: a slot keeps its last few tasks, not every task it ever had.

Why
---
Every restart, update and scale-down leaves an ended task behind, and the
state machine keeps each one: a long-lived swarm's task table (and with it
every manager's memory, snapshot and `service ps`) would grow for ever.
Docker keeps ``TaskHistoryRetentionLimit`` tasks per slot (per node for a
global service), 5 by default (``docker swarm update --task-history-limit``),
and deletes the oldest ended ones beyond it; a removed service's tasks go
once they have ended.

What may go: a task that has ended *and* was told to stay down (its desired
state is past ``running``), so no agent still runs it and no pass still
wants it.  A live task is never removed, nor one in a slot this pass is
already changing (the slot's history names the next task's ID, and a create
in flight must see the same history it was planned with).  Removing ended
tasks changes no decision: the restart delay reads the newest ended task of
a slot, which is always kept.

Pure, like the rest of `cluster.control`: store in, commands out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from cluster.control import updater
from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.store import Store

__all__ = ["DEFAULT_LIMIT", "MAX_PER_PASS", "history_limit", "reap"]

DEFAULT_LIMIT = 5
#: Removals proposed in one pass: a big backlog is worked off over several
#: passes rather than in one burst of entries.
MAX_PER_PASS = 200

_RUNNING = o.TASK_STATE_RANK["running"]


def history_limit(store: Store) -> int:
    """The swarm's ``TaskHistoryRetentionLimit``; a negative one keeps everything."""
    cluster = store.cluster() or {}
    orchestration = cluster.get("Spec", {}).get("Orchestration") or {}
    limit = orchestration.get("TaskHistoryRetentionLimit", DEFAULT_LIMIT)
    return limit if isinstance(limit, int) else DEFAULT_LIMIT


def removable(task: o.Obj) -> bool:
    """Ended, and told to stay down: nobody runs it and nobody wants it back."""
    desired = o.TASK_STATE_RANK.get(task.get("DesiredState", ""), _RUNNING + 1)
    state = o.TASK_STATE_RANK.get(task.get("Status", {}).get("State", ""), 0)
    return desired > _RUNNING and state > _RUNNING


def reap(
    store: Store,
    owned_by: dict[str, list[o.Obj]],
    present: Iterable[str],
    busy: set[tuple[str, int | str]],
) -> list[tuple[str, bytes]]:
    """``(service ID, task.remove command)`` for the services in ``owned_by`` (ID -> its tasks).

    ``present``: the services that still exist (the others' ended tasks all
    go); ``busy``: the (service, slot) pairs this pass already changes.
    """
    limit = history_limit(store)
    if limit < 0:
        return []
    alive = set(present)
    out: list[tuple[str, bytes]] = []
    for service_id in sorted(owned_by):
        slots: dict[int | str, list[o.Obj]] = defaultdict(list)
        for task in owned_by[service_id]:
            slots[updater.slot_key(task)].append(task)
        for key in sorted(slots, key=lambda k: str(k).zfill(25)):
            if (service_id, key) in busy:
                continue
            history = slots[key]
            keep = limit if service_id in alive else 0
            if len(history) <= keep:
                continue
            # Oldest first, by creation: a late status report can change an old
            # task after a newer one, but the history kept is the newest tasks.
            ended = sorted(
                (t for t in history if removable(t)),
                key=lambda t: (c.parse_time(t["CreatedAt"]), t["ID"]),
            )
            for task in ended[: len(history) - keep]:
                out.append((service_id, c.remove_task(task["ID"])))
                if len(out) >= MAX_PER_PASS:
                    return out
    return out
