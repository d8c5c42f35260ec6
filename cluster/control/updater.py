"""Rolling updates: replacing a service's tasks batch by batch after its spec changed.

Theory of operation
-------------------
A task is *out of date* when its ``Spec`` differs from the service's
``Spec.TaskTemplate`` (the store copies the template into each task it
creates).  A ``service.update`` clears the service's ``UpdateStatus``; the
updater, seeing out-of-date tasks and no status, starts a rollout and from
then on records where it is in ``UpdateStatus``, exactly the fields
``docker service inspect`` shows::

    (none) --> updating --> completed
                  |  \\
                  |   `--> paused            (FailureAction pause)
                  `------> rollback_started  (FailureAction rollback)
                               |  \\
                               |   `--> rollback_paused
                               `------> rollback_completed

Everything the updater needs is in the replicated store, so a new leader
carries on where the old one stopped, with no memory of its own:

* a batch is *done* when every up-to-date live task is ``running``;
* the next batch may start ``UpdateConfig.Delay`` after the last
  up-to-date task became running (its ``Status.Timestamp``);
* a batch replaces the next ``Parallelism`` out-of-date tasks (0: all),
  lowest slot (or node ID) first, stop-first: the old task is told to shut
  down and a new one is created for the same slot in the same pass;
* a *failure* is an up-to-date task that failed, was rejected or exited
  since ``UpdateStatus.StartedAt``.  More failures than ``MaxFailureRatio``
  of the service's tasks trigger ``FailureAction``: ``pause`` stops the
  rollout until the service is updated again, ``rollback`` puts
  ``PreviousSpec`` back (so the old tasks become the out-of-date ones and the
  same machinery rolls them back, under ``RollbackConfig``), ``continue``
  carries on (the orchestrator restarts the failed task meanwhile).

This module only decides; the orchestrator turns `UpdatePlan.replace` into
commands, because it owns how a slot's task is created.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from cluster.state import commands as c
from cluster.state import objects as o

#: What counts as a new task failing during a rollout ("failure or early termination").
FAILED_STATES = frozenset({"failed", "rejected", "complete"})
PAUSED = {"updating": "paused", "rollback_started": "rollback_paused"}
FINISHED = {"updating": "completed", "rollback_started": "rollback_completed"}
MESSAGES = {
    "updating": "update in progress",
    "completed": "update completed",
    "rollback_completed": "rollback completed",
}
NS = 1e9


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """The updater's decision for one service in one pass.

    ``commands`` record progress (``UpdateStatus``) or roll the spec back;
    ``replace`` are the out-of-date tasks whose turn it is to be replaced.
    """

    commands: tuple[bytes, ...] = ()
    replace: tuple[o.Obj, ...] = ()
    #: When (Unix seconds) the rollout can move on by time alone (``UpdateConfig.Delay``):
    #: an incremental pass must look at the service again then.
    wake: float | None = None


def update_config(service: o.Obj, rolling_back: bool) -> o.Obj:
    """``UpdateConfig``, or ``RollbackConfig`` while rolling back (Docker's defaults filled)."""
    spec = service["Spec"]
    cfg = spec.get("RollbackConfig") if rolling_back else None
    return cfg or spec.get("UpdateConfig") or {"Parallelism": 1, "FailureAction": "pause"}


def slot_key(task: o.Obj) -> int | str:
    """What a task fills: its slot (replicated) or its node (global)."""
    return task["Slot"] if task.get("Slot") else task.get("NodeID", "")


def out_of_date(service: o.Obj, tasks: Iterable[o.Obj]) -> list[o.Obj]:
    """Live tasks whose spec is not the service's current template, in slot order."""
    template = service["Spec"]["TaskTemplate"]
    stale = [t for t in tasks if o.task_is_live(t) and t["Spec"] != template]
    return sorted(stale, key=lambda t: (str(slot_key(t)).zfill(25), t["ID"]))


def plan_update(
    service: o.Obj, tasks: list[o.Obj], now: float, busy: Collection[int | str] = ()
) -> UpdatePlan:
    """Decide the next step of ``service``'s rollout from its tasks and ``now`` (Unix seconds).

    ``tasks`` are all of the service's tasks, live or not.  ``busy`` names
    the slots the orchestrator already changed in this pass; they wait for
    the next one, so the two loops never decide about the same slot at once.
    """
    status = service.get("UpdateStatus") or {}
    state = status.get("State")
    template = service["Spec"]["TaskTemplate"]
    fresh = [t for t in tasks if o.task_is_live(t) and t["Spec"] == template]
    stale = [t for t in out_of_date(service, tasks) if slot_key(t) not in busy]
    version = service["Version"]["Index"]

    if not stale:
        settled = all(t["Status"]["State"] == "running" for t in fresh)
        if state in FINISHED and settled:
            done = FINISHED[state]
            return UpdatePlan((_status(service, now, done, MESSAGES[done], status, completed=now),))
        return UpdatePlan()
    if state in ("paused", "rollback_paused"):
        return UpdatePlan()  # until the user updates the service again

    commands: list[bytes] = []
    if state is None:
        # A new spec: the rollout begins now.
        state, status = "updating", {"StartedAt": c.format_time(now)}
        commands.append(_status(service, now, state, MESSAGES[state], status))
        version = None  # the status command above moves the version
    elif state not in FINISHED:  # completed or rollback_completed
        # Completed earlier: a stray out-of-date task (a stale leader's late
        # create, say) is simply replaced, without a new rollout.
        return UpdatePlan(replace=tuple(stale[: _batch_size(service, False, stale)]))

    rolling_back = state == "rollback_started"
    cfg = update_config(service, rolling_back)
    started = c.parse_time(status["StartedAt"]) if status.get("StartedAt") else now
    failed = sorted(
        (
            t
            for t in tasks
            if t["Spec"] == template
            and t["Status"]["State"] in FAILED_STATES
            and c.parse_time(t["Status"]["Timestamp"]) >= started
        ),
        key=lambda t: (t["Status"]["Timestamp"], t["ID"]),
    )
    # A batch is done when each of its slots runs the new spec or has failed
    # with it (the failure is FailureAction's business, not the pacing's).
    failed_slots = {slot_key(t) for t in failed}
    settled = all(t["Status"]["State"] == "running" or slot_key(t) in failed_slots for t in fresh)
    total = max(1, len(fresh) + len(stale))
    if failed and len(failed) > cfg.get("MaxFailureRatio", 0) * total:
        action = cfg.get("FailureAction", "pause")
        why = f"failure or early termination of task {failed[0]['ID']}"
        if action == "pause" or (action == "rollback" and rolling_back):
            return UpdatePlan((*commands, _pause(service, now, state, why, status, version)))
        if action == "rollback" and service.get("PreviousSpec"):
            rollback = c.batch(
                c.update_service(
                    service["ID"], service["Version"]["Index"], service["PreviousSpec"], now
                ),
                c.set_service_update_status(
                    service["ID"],
                    now,
                    "rollback_started",
                    f"update rolled back due to {why}",
                    started_at=now,
                ),
            )
            # The rollback replaces any status command of this pass: one entry, all or nothing.
            return UpdatePlan((rollback,))

    if not settled:
        return UpdatePlan(tuple(commands))  # the current batch is still starting
    became_running = [
        c.parse_time(t["Status"]["Timestamp"])
        for t in fresh
        if t["Status"]["State"] == "running" and c.parse_time(t["Status"]["Timestamp"]) >= started
    ]
    delay = cfg.get("Delay", 0) / NS
    if became_running and now < max(became_running) + delay:
        # UpdateConfig.Delay between batches.
        return UpdatePlan(tuple(commands), wake=max(became_running) + delay)
    return UpdatePlan(tuple(commands), tuple(stale[: _batch_size(service, rolling_back, stale)]))


def _batch_size(service: o.Obj, rolling_back: bool, stale: list[o.Obj]) -> int:
    parallelism = update_config(service, rolling_back).get("Parallelism", 1)
    return parallelism if parallelism > 0 else len(stale)


def _status(
    service: o.Obj,
    now: float,
    state: str,
    message: str,
    old: o.Obj,
    completed: float | None = None,
) -> bytes:
    return c.set_service_update_status(
        service["ID"],
        now,
        state,
        message,
        started_at=old.get("StartedAt"),
        completed_at=completed,
        version=service["Version"]["Index"],
    )


def _pause(
    service: o.Obj, now: float, state: str, why: str, old: o.Obj, version: int | None
) -> bytes:
    word = "update" if state == "updating" else "rollback"
    return c.set_service_update_status(
        service["ID"],
        now,
        PAUSED[state],
        f"{word} paused due to {why}",
        started_at=old.get("StartedAt"),
        version=version,
    )
