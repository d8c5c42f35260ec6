"""Actions about tasks: where they run, watching them move, and management
attempts whose answer is the point.

The Swarm facts an exam asks about -- tasks keep running without a quorum, a
global service follows its nodes, a failed node's tasks move, ``pause`` keeps
tasks -- are claims about *where tasks run at a given moment*.  So these
actions record what they see (`Stage.record`): a ``snapshot`` names one
moment, ``watch_tasks`` samples until the tasks settle, and the checks of
`scenarios.checks.tasks` compare those samples afterwards.

A ``manage`` step tries one operator command once and records the answer,
success or refusal, instead of stopping the run on a refusal: a scenario
that shows management refused without a quorum needs the refusal itself.

On the simulator none of this has meaning (no services, no tasks): the
driver raises `scenarios.steps.driver.NotApplicable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from scenarios.steps.actions import Action
from scenarios.steps.driver import Stage, StepFailed
from scenarios.steps.fields import ParseContext

__all__ = [
    "MANAGE_COMMANDS",
    "CreateGlobalService",
    "ForceUpdate",
    "Manage",
    "Snapshot",
    "WatchTasks",
    "is_quorum_refusal",
    "live_running",
    "settled",
    "summary",
]


# ---------------------------------------------------------------- reading answers

#: Words of the managers' answers that mean "no quorum" (`cluster.api.backend.
#: NoQuorumError`, a follower that knows of no leader, a write that timed out
#: waiting for a majority).  A forward to a dead leader says "could not be
#: reached" instead: that is a connection error, not the quorum's refusal.
_QUORUM_WORDS = ("no quorum", "majority")


def is_quorum_refusal(status: int | None, error: str | None) -> bool:
    """Is this answer the swarm refusing for want of a quorum (a 503 that says so)?"""
    text = (error or "").lower()
    return (
        status == 503
        and any(w in text for w in _QUORUM_WORDS)
        and "could not be reached" not in text
    )


# ---------------------------------------------------------------- reading a sample


def live_running(sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Tasks desired running and running, as the store says (``docker service ps``)."""
    return [t for t in sample["tasks"] if t["desired"] == "running" and t["state"] == "running"]


def summary(sample: dict[str, Any]) -> str:
    """``6 tasks running: manager1 2, worker1 2, worker2 2``."""
    counts: dict[str, int] = {}
    for t in live_running(sample):
        counts[t["node"]] = counts.get(t["node"], 0) + 1
    per_node = ", ".join(f"{n} {k}" for n, k in sorted(counts.items()))
    return f"{sum(counts.values())} tasks running" + (f": {per_node}" if per_node else "")


def settled(sample: dict[str, Any]) -> bool:
    """Nothing left to do: every task that should run is running and up to date --
    and its node's agent, if it answers, says so too (a worker learns each state
    with its next round) --, no task told to stop still runs, and each
    replicated service has its count (a global one: a task on every node that
    can take one)."""
    live = [t for t in sample["tasks"] if t["desired"] == "running"]
    if any(t["state"] != "running" or not t["current"] for t in live):
        return False
    agents = sample["agents"]
    if any(t["node"] in agents and agents[t["node"]]["tasks"].get(t["id"]) != "running"
           for t in live):  # fmt: skip
        return False
    if any(t["desired"] != "running" and t["state"] == "running" for t in sample["tasks"]):
        return False
    eligible = {n for n, v in sample["nodes"].items()
                if v["state"] == "ready" and v["availability"] == "active"}  # fmt: skip
    for name, svc in sample["services"].items():
        want = svc["replicas"]
        mine = [t for t in live if t["service"] == name]
        if want is None:  # global: one on every node that can take one
            if eligible - {t["node"] for t in mine}:
                return False
        elif len(mine) != want:
            return False
    return True


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot(Action):
    """Record where every task runs now, as the store and each node's agent say,
    under ``name`` (the checks compare snapshots by name)."""

    action: ClassVar[str] = "snapshot"
    driver_method: ClassVar[str] = "snapshot_tasks"
    name: str

    def apply(self, stage: Stage) -> str | None:
        sample = stage.driver.snapshot_tasks()
        stage.record("tasks", {**sample, "name": self.name, "step": self.number})
        return f"'{self.name}': {summary(sample)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchTasks(Action):
    """Sample the tasks (every ``every`` s, up to ``timeout``) until they settle
    (`settled`), with none left on node ``off`` / one running on node ``on``.
    Every sample that differs from the one before is recorded, so the figure
    can draw the tasks per node over time."""

    action: ClassVar[str] = "watch_tasks"
    driver_method: ClassVar[str] = "snapshot_tasks"
    off: str | None = None
    on: str | None = None
    timeout: float = 30.0
    every: float = 0.25

    def validate(self, ctx: ParseContext) -> Self:
        for key in ("off", "on"):
            if self.written.get(key) is not None:
                ctx.node_ref(key, self.written[key])
        if self.timeout <= 0 or self.every <= 0:
            ctx.fail("fields 'timeout' and 'every' must be positive")
        return self

    def apply(self, stage: Stage) -> str | None:
        d = stage.driver
        off = stage.node(self.off) if self.off else None
        on = stage.node(self.on) if self.on else None
        start = d.now()
        last_key: Any = None
        while True:
            sample = d.snapshot_tasks()
            key = _shape(sample)
            done = settled(sample) and _wanted(sample, off, on)
            if key != last_key or done:
                stage.record("tasks", {**sample, "name": "", "step": self.number})
                last_key = key
            if done:
                return f"settled after {d.now() - start:.2f} s: {summary(sample)}"
            if d.now() - start > self.timeout:
                what = f" with none on {off}" if off else (f" with one on {on}" if on else "")
                raise StepFailed(f"tasks did not settle{what} within {self.timeout:g} s")
            d.wait(self.every)


def _shape(sample: dict[str, Any]) -> Any:
    """What a figure would draw differently: tasks' nodes and states, nodes' states."""
    tasks = tuple(sorted((t["id"], t["node"], t["desired"], t["state"]) for t in sample["tasks"]))
    nodes = tuple(sorted((n, v["state"], v["availability"]) for n, v in sample["nodes"].items()))
    return tasks, nodes


def _wanted(sample: dict[str, Any], off: str | None, on: str | None) -> bool:
    running = live_running(sample)
    if off is not None and any(t["node"] == off for t in running):
        return False
    return on is None or any(t["node"] == on for t in running)


#: What a ``manage`` step may try.
MANAGE_COMMANDS = ("service_create", "service_scale", "node_update")


@dataclass(frozen=True, slots=True, kw_only=True)
class Manage(Action):
    """Try one operator command once and record its answer (accepted, or refused
    with the HTTP status and message): ``command`` is ``service_create`` (service
    ``service``, ``replicas``), ``service_scale`` (``service`` to ``replicas``)
    or ``node_update`` (``node`` to ``availability``)."""

    action: ClassVar[str] = "manage"
    command: str
    service: str | None = None
    replicas: int = 1
    node: str | None = None
    availability: str = "active"

    def validate(self, ctx: ParseContext) -> Self:
        if self.command not in MANAGE_COMMANDS:
            ctx.fail(f"field 'command' must be one of {', '.join(MANAGE_COMMANDS)}")
        if self.command.startswith("service") and not self.service:
            ctx.fail(f"field 'service' is needed with command = {self.command!r}")
        if self.command == "node_update":
            if not self.node:
                ctx.fail("field 'node' is needed with command = 'node_update'")
            ctx.node_ref("node", self.node)
            if self.availability not in ("drain", "pause", "active"):
                ctx.fail("field 'availability' must be drain, pause or active")
        if self.replicas < 0:
            ctx.fail("field 'replicas' must not be negative")
        return self

    def apply(self, stage: Stage) -> str | None:
        node = stage.node(self.node) if self.node else None
        target = node if self.command == "node_update" else self.service
        value = self.availability if self.command == "node_update" else str(self.replicas)
        start = stage.driver.now()
        answer = stage.driver.manage(self.command, target or "", value)
        end = stage.driver.now()
        attempt = {"step": self.number, "command": self.command, "target": target}
        stage.record("manage", {**answer, **attempt, "start": start, "end": end})
        if answer["outcome"] == "ok":
            return f"accepted by {answer['node']}"
        status = answer.get("status")
        return f"refused by {answer['node']}: {status or 'no answer'} {answer.get('error', '')}"


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateGlobalService(Action):
    """``docker service create --mode global``: one task on every node that can take one."""

    action: ClassVar[str] = "create_global_service"
    name: str
    image: str = "nginx:alpine"

    def apply(self, stage: Stage) -> str | None:
        stage.driver.create_global_service(self.name, self.image)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceUpdate(Action):
    """``docker service update --force``: replace every task, even with an unchanged
    spec; the replacements are placed afresh, so they spread over the nodes."""

    action: ClassVar[str] = "force_update"
    service: str

    def apply(self, stage: Stage) -> str | None:
        stage.driver.force_update(self.service)
        return None
