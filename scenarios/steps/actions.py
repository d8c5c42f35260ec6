"""The actions a scenario's steps may take: one frozen class each.

A class is the whole of an action except what a particular cluster does:
its fields (the file's schema, read by `scenarios.steps.fields.Record`),
its own validation, how a person would say it (`Action.describe`) and what
it does (`Action.apply`), which resolves ``leader`` and aliases, calls the
`scenarios.steps.driver.Driver` method of the same name and says what
happened.  Adding a verb is one class here plus one method in each driver.

The file's names for actions may use hyphens or underscores, and a few other
words a reader of DESIGN.md would reach for are accepted (`ACTION_ALIASES`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from scenarios.steps.driver import Driver, Stage, StepFailed
from scenarios.steps.fields import ParseContext, Record, canonical, toml_name, unknown

__all__ = [
    "WAIT_ALIASES",
    "WAIT_FOR",
    "Action",
    "Demote",
    "ForceNewCluster",
    "Heal",
    "Isolate",
    "Kill",
    "NodeAction",
    "Partition",
    "Pause",
    "Promote",
    "QuorumTable",
    "Restart",
    "SetElectionTimeout",
    "TraceLog",
    "Unpause",
    "Wait",
    "Write",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Action(Record):
    """One step of a scenario."""

    #: The action's canonical name, as files write it (after hyphens became underscores).
    action: ClassVar[str]
    #: The `Driver` method this action calls (its own name, unless said otherwise).
    driver_method: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # (No zero-argument super() in a slotted dataclass: it is a new class.)
        if "action" in cls.__dict__ and "driver_method" not in cls.__dict__:
            cls.driver_method = cls.action

    def apply(self, stage: Stage) -> str | None:
        """Do it on ``stage.driver``; a note for the progress line, or None."""
        raise NotImplementedError

    def describe(self) -> str:
        """The step as a person would say it: ``kill leader (as old_leader)``."""
        parts = [self.action]
        for k, v in self.written.items():
            if k == "as":
                continue
            if isinstance(v, list):
                v = " | ".join(",".join(g) if isinstance(g, list) else str(g) for g in v)
            parts.append(f"{v}" if k in ("node", "for") else f"{k}={v}")
        if "as" in self.written:
            parts.append(f"(as {self.written['as']})")
        return " ".join(str(p) for p in parts)

    @classmethod
    def from_toml(cls, number: int, raw: Mapping[str, Any], ctx: ParseContext) -> Self:
        step = super(Action, cls).from_toml(number, raw, ctx)
        alias = raw.get("as")
        if alias is not None:  # later steps and checks may use it for the node
            if alias in ctx.names or alias == "leader":
                ctx.fail(f"field 'as': {alias!r} is already a node name")
            ctx.aliases.add(alias)
        return step


# ---------------------------------------------------------------- faults on one node


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeAction(Action):
    """An action on one node, which later steps may call by ``as``."""

    node: str
    alias: str | None = toml_name("as")
    #: Say which node ``leader`` (or an alias) turned out to be.
    names_it: ClassVar[bool] = True

    def validate(self, ctx: ParseContext) -> Self:
        ctx.node_ref("node", self.node)
        return self

    def act(self, driver: Driver, node: str) -> None:
        raise NotImplementedError

    def apply(self, stage: Stage) -> str | None:
        node = stage.node(self.node)
        self.act(stage.driver, node)
        stage.remember(self.alias, node)
        return f"{self.action} {node}" if self.names_it and self.node != node else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Kill(NodeAction):
    """SIGKILL the node's process: it stops at once, keeping only what it persisted."""

    action: ClassVar[str] = "kill"

    def act(self, driver: Driver, node: str) -> None:
        driver.kill(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class Restart(NodeAction):
    """Start a stopped node again from its data directory."""

    action: ClassVar[str] = "restart"

    def act(self, driver: Driver, node: str) -> None:
        driver.restart(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pause(NodeAction):
    """SIGSTOP: alive but silent, like a long GC pause (its timers stop too)."""

    action: ClassVar[str] = "pause"

    def act(self, driver: Driver, node: str) -> None:
        driver.pause(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unpause(NodeAction):
    """SIGCONT a paused node: it resumes where it was, with a stale view."""

    action: ClassVar[str] = "unpause"

    def act(self, driver: Driver, node: str) -> None:
        driver.unpause(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class Isolate(NodeAction):
    """Cut the node off from every other (both directions)."""

    action: ClassVar[str] = "isolate"

    def act(self, driver: Driver, node: str) -> None:
        driver.isolate(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class Promote(NodeAction):
    """``docker node promote``: the leader makes the node a Raft voter (§4).  A
    ``managerN`` the cluster does not have yet joins first (later steps may name it)."""

    action: ClassVar[str] = "promote"

    names_it: ClassVar[bool] = False

    def validate(self, ctx: ParseContext) -> Self:
        if re.fullmatch(r"manager[1-9]", self.node) and self.node not in ctx.names:
            ctx.names.append(self.node)
        return NodeAction.validate(self, ctx)

    def act(self, driver: Driver, node: str) -> None:
        driver.promote(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class Demote(NodeAction):
    """``docker node demote``: the node becomes a learner (no vote, no quorum share)."""

    action: ClassVar[str] = "demote"

    names_it: ClassVar[bool] = False

    def act(self, driver: Driver, node: str) -> None:
        driver.demote(node)


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceNewCluster(NodeAction):
    """``docker swarm init --force-new-cluster`` on a survivor: a cluster of one."""

    action: ClassVar[str] = "force_new_cluster"

    names_it: ClassVar[bool] = False

    def act(self, driver: Driver, node: str) -> None:
        driver.force_new_cluster(node)


# ---------------------------------------------------------------- the network


@dataclass(frozen=True, slots=True, kw_only=True)
class Partition(Action):
    """Split the cluster: nodes talk only within their group (unnamed nodes form one more).

    With ``oneway`` the two groups are FROM and TO: only FROM's traffic to TO
    is cut, and nodes in neither group are not touched.
    """

    action: ClassVar[str] = "partition"
    groups: list[list[str]]
    oneway: bool = False

    def validate(self, ctx: ParseContext) -> Self:
        if self.oneway and len(self.groups) != 2:
            ctx.fail("field 'groups': a one-way cut names two groups, FROM and TO")
        seen: set[str] = set()
        for group in self.groups:
            for ref in group:
                ctx.node_ref("groups", ref)
                if ref in seen:
                    ctx.fail(f"field 'groups': {ref!r} is in two groups")
                seen.add(ref)
        return self

    def apply(self, stage: Stage) -> str | None:
        groups = [[stage.node(r) for r in g] for g in self.groups]
        flat = [n for g in groups for n in g]
        twice = sorted({n for n in flat if flat.count(n) > 1})
        if twice:  # "leader" or an alias named a node another group names
            raise StepFailed(f"{', '.join(twice)} would be in two groups")
        if self.oneway:
            stage.driver.partition(groups, oneway=True)
            return f"{','.join(groups[0])} -> {','.join(groups[1])} (one way)"
        stage.driver.partition(groups)
        return " | ".join(",".join(g) for g in groups)


@dataclass(frozen=True, slots=True, kw_only=True)
class Heal(Action):
    """Every node can reach every other again."""

    action: ClassVar[str] = "heal"

    def apply(self, stage: Stage) -> str | None:
        stage.driver.heal()
        return None


# ---------------------------------------------------------------- clients and time


@dataclass(frozen=True, slots=True, kw_only=True)
class Write(Action):
    """``count`` client writes, one after the other, each a new object."""

    action: ClassVar[str] = "write"
    count: int = 1
    #: The node the client talks to (default: the leader, else any running one).
    via: str | None = None
    kind: str = "config"  # config | service | secret
    #: How long the client waits for each (default: the request timeout).
    timeout: float | None = None

    def validate(self, ctx: ParseContext) -> Self:
        if self.via is not None:
            ctx.node_ref("via", self.via)
        if self.count < 1:
            ctx.fail("field 'count' must be at least 1")
        if self.kind not in ("config", "service", "secret"):
            ctx.fail("field 'kind' must be config, service or secret")
        return self

    def apply(self, stage: Stage) -> str | None:
        via = stage.node(self.via) if self.via else None
        base = stage.write_count
        # Object names: a service's must be a DNS label (no '.' or '_').
        prefix = re.sub(r"[^A-Za-z0-9-]+", "-", stage.scenario_name)[:40].strip("-") or "w"
        ops = [
            stage.driver.write(self.number, key, self.kind, via, self.timeout)
            for key in (f"{prefix}-{base + i + 1:03d}" for i in range(self.count))
        ]
        stage.record_ops(ops)
        counts: dict[str, int] = {}
        for op in ops:
            counts[op.outcome] = counts.get(op.outcome, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in counts.items())
        err = next((op.error for op in ops if op.error), None)
        return f"{len(ops)} writes: {summary}" + (f" ({err})" if err else "")


#: ``wait for = ...`` conditions and the fields they need.
WAIT_FOR: dict[str, tuple[str, ...]] = {
    "leader": (),
    "no_leader": (),
    "leader_in": ("nodes",),
    "term_above": ("term",),
    "converged": (),
    "tasks_running": (),
    "voters": ("nodes",),
    "ready": ("nodes",),
}

#: Other names for ``wait for`` conditions -> the canonical one.
WAIT_ALIASES = {"leader_elected": "leader", "no_quorum": "no_leader", "voter": "voters"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait(Action):
    """Let ``seconds`` pass, or wait (up to ``timeout``) ``for`` a condition."""

    action: ClassVar[str] = "wait"
    seconds: float | None = None
    until: str | None = toml_name("for")
    nodes: list[str] | None = None
    term: int | None = None
    timeout: float = 15.0

    def validate(self, ctx: ParseContext) -> Self:
        if (self.seconds is None) == (self.until is None):
            ctx.fail("give exactly one of 'seconds' or 'for'")
        if self.seconds is not None and self.seconds < 0:
            ctx.fail("field 'seconds' must not be negative")
        if self.until is None:
            return self
        cond = canonical(self.until, WAIT_ALIASES)
        if cond not in WAIT_FOR:
            ctx.fail(f"field 'for': {unknown('condition', self.until, list(WAIT_FOR))}")
        for need in WAIT_FOR[cond]:
            if need not in self.written:
                ctx.fail(f"field {need!r} is needed with for = {cond!r}")
        for ref in self.nodes or []:
            ctx.node_ref("nodes", ref)
        return dataclasses.replace(self, until=cond, written={**self.written, "for": cond})

    def apply(self, stage: Stage) -> str | None:
        d = stage.driver
        if self.seconds is not None:
            d.wait(self.seconds)
            return None
        cond, timeout = self.until, self.timeout
        if cond == "converged":
            if not d.converge(timeout):
                raise StepFailed(f"applied indexes did not converge within {timeout:g} s")
            return "every running manager applied the same index"
        nodes = self.nodes or []
        tests: dict[str | None, Callable[[], Any]] = {
            "leader": lambda: d.leader(),
            "no_leader": lambda: d.leader() is None,
            "leader_in": lambda: d.leader() in [stage.node(n) for n in nodes],
            "term_above": lambda: d.max_term() > (self.term or 0),
            "tasks_running": lambda: d.tasks_running(),
            "voters": lambda: set(map(stage.node, nodes)) <= set(d.voters()),
            "ready": lambda: d.nodes_ready([stage.node(n) for n in nodes]),
        }
        test = tests[cond]
        start = d.now()
        while not test():
            if d.now() - start > timeout:
                raise StepFailed(f"waited {timeout:g} s for {cond}: it never came")
            d.poll()
        waited = d.now() - start
        leader = d.leader() if cond in ("leader", "leader_in") else None
        if cond == "voters":
            n = len(d.voters())
            return f"voters after {waited:.2f} s: {n}, quorum {n // 2 + 1} of {n}"
        return f"{cond} after {waited:.2f} s" + (f": {leader}" if leader else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class SetElectionTimeout(Action):
    """Give one node its own election timeout (it restarts with it)."""

    action: ClassVar[str] = "set_election_timeout"
    node: str
    ms: int
    alias: str | None = toml_name("as")

    def validate(self, ctx: ParseContext) -> Self:
        ctx.node_ref("node", self.node)
        if self.ms < 10:
            ctx.fail("field 'ms' must be at least 10")
        return self

    def apply(self, stage: Stage) -> str | None:
        node = stage.node(self.node)
        stage.driver.set_election_timeout(node, self.ms)
        stage.remember(self.alias, node)
        return f"{node} restarted with a {self.ms} ms election timeout"


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceLog(Action):
    """Every running manager traces its whole log (for the log figures)."""

    action: ClassVar[str] = "trace_log"

    def apply(self, stage: Stage) -> str | None:
        stage.driver.trace_log()
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class QuorumTable(Action):
    """For each cluster size, kill managers one at a time until writes stop:
    the measured fault tolerance beside (N-1)/2."""

    action: ClassVar[str] = "quorum_table"
    driver_method: ClassVar[str] = "measure_tolerance"
    sizes: list[int] | None = None
    #: Sizes measured on real processes (in real mode; the rest are simulated).
    real: list[int] | None = None

    def apply(self, stage: Stage) -> str | None:
        sizes = self.sizes if self.sizes is not None else list(range(1, 10))
        for n in sizes:
            measured, mode = stage.driver.measure_tolerance(n, self.real or [])
            row = {
                "managers": n,
                "quorum": n // 2 + 1,
                "expected_tolerance": (n - 1) // 2,
                "measured_tolerance": measured,
                "mode": mode,
            }
            stage.record_quorum_row(row)
            stage.say(
                f"{n} managers ({mode}): quorum {row['quorum']}, "
                f"writes survived {measured} failures"
            )
        return f"{len(sizes)} cluster sizes measured"
