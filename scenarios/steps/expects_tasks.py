"""The expectations about tasks and management: one frozen class each.

They compare the task snapshots that ``snapshot`` and ``watch_tasks`` steps
recorded (by the snapshot's ``name``), or read the answers ``manage`` steps
recorded; how each is checked is `scenarios.checks.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from scenarios.steps.expects import Expectation

__all__ = [
    "TASK_EXPECTATIONS",
    "DrainedManagerVotes",
    "ManagementAccepted",
    "ManagementRefusedNoQuorum",
    "OneTaskPerNode",
    "PlacementUnchanged",
    "TasksKeptRunning",
    "TasksRescheduled",
    "TasksSpread",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TasksKeptRunning(Expectation):
    """Every task the nodes' agents ran at snapshot ``since`` they still run at
    ``at`` (``nodes``: only those nodes; ``exactly``: and nothing more)."""

    check: ClassVar[str] = "tasks_kept_running"
    since: str
    at: str
    nodes: list[str] | None = None
    exactly: bool = False

    def label(self) -> str:
        where = f" on {', '.join(self.nodes)}" if self.nodes else ""
        return f"{self.check}{where} ('{self.since}' to '{self.at}')"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagementRefusedNoQuorum(Expectation):
    """Every ``manage`` attempt of the steps was refused by a live manager with
    the no-quorum answer (503), not by a connection error to a dead one."""

    check: ClassVar[str] = "management_refused_no_quorum"
    steps: list[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagementAccepted(Expectation):
    """Every ``manage`` attempt of the steps was accepted."""

    check: ClassVar[str] = "management_accepted"
    steps: list[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class OneTaskPerNode(Expectation):
    """At snapshot ``at``, the global ``service`` runs exactly one task on each
    node that can take one (ready, active) and none elsewhere; ``nodes``: and
    those are exactly these nodes."""

    check: ClassVar[str] = "one_task_per_node"
    service: str
    at: str
    nodes: list[str] | None = None

    def label(self) -> str:
        return f"{self.check} {self.service} at '{self.at}'"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementUnchanged(Expectation):
    """The same tasks run on the same nodes at snapshots ``since`` and ``at``."""

    check: ClassVar[str] = "placement_unchanged"
    since: str
    at: str

    def label(self) -> str:
        return f"{self.check} ('{self.since}' to '{self.at}')"


@dataclass(frozen=True, slots=True, kw_only=True)
class TasksSpread(Expectation):
    """At snapshot ``at``, ``service``'s tasks are spread over the nodes that can
    take them: each runs some, and no two differ by more than one."""

    check: ClassVar[str] = "tasks_spread"
    service: str
    at: str

    def label(self) -> str:
        return f"{self.check} {self.service} at '{self.at}'"


@dataclass(frozen=True, slots=True, kw_only=True)
class TasksRescheduled(Expectation):
    """The tasks ``service`` ran on ``node`` at snapshot ``since`` were replaced on
    other nodes by snapshot ``at``, and the service is back to its replica count."""

    check: ClassVar[str] = "tasks_rescheduled"
    node: str
    service: str
    since: str
    at: str

    def label(self) -> str:
        return f"{self.check} off {self.node} ('{self.since}' to '{self.at}')"


@dataclass(frozen=True, slots=True, kw_only=True)
class DrainedManagerVotes(Expectation):
    """A drained manager ``node`` is still a Raft voter, and its vote counted: the
    steps' writes committed while only a bare majority, ``node`` among it, was up."""

    check: ClassVar[str] = "drained_manager_votes"
    node: str
    steps: list[int]


#: In the order docs/scenarios.md lists them.
TASK_EXPECTATIONS: tuple[type[Expectation], ...] = (
    TasksKeptRunning,
    ManagementRefusedNoQuorum,
    ManagementAccepted,
    OneTaskPerNode,
    PlacementUnchanged,
    TasksSpread,
    TasksRescheduled,
    DrainedManagerVotes,
)
