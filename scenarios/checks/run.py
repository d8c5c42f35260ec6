"""What a run leaves for the checks and the report: step records, check results, `Run`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.steps import ClientOp, Driver, Scenario

__all__ = ["CheckResult", "Run", "StepRecord"]


@dataclass(slots=True)
class StepRecord:
    number: int
    action: str
    text: str
    start: float = 0.0
    end: float = 0.0
    #: ok | failed | skipped (not applicable) | unsupported | not run
    status: str = "not run"
    note: str = ""
    #: The same step as a ``python -m cluster`` command and in Docker (empty
    #: for steps that are no user's command, such as waiting).
    cli: str = ""
    docker: str = ""
    #: What ``leader`` and aliases named while the step ran.
    resolved: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    skipped: bool = False

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "passed": self.passed, "detail": self.detail}
        if self.skipped:
            d["skipped"] = True
        return d


@dataclass(slots=True)
class Run:
    """Everything the checks and the report may look at."""

    scenario: Scenario
    mode: str
    seed: int | None
    driver: Driver
    steps: list[StepRecord]
    ops: list[ClientOp] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    model: Any = None  # viz.model.TraceModel once the traces are read
    metrics: dict[str, Any] = field(default_factory=dict)
    #: Data written by create_secret / create_config steps: name -> plaintext.
    named_data: dict[str, str] = field(default_factory=dict)
    #: (start, end, {key: visible}) of the final linearizable read through the leader.
    final_read: tuple[float, float, dict[str, bool]] | None = None
    data_dirs: dict[str, Path] = field(default_factory=dict)
    quorum_rows: list[dict[str, Any]] = field(default_factory=list)
    #: Trace time when the last step and live check ended, before the cluster stopped.
    end_t: float | None = None
    #: Task placements (task name -> node name) before the first drain and at the end.
    placements: list[dict[str, str]] = field(default_factory=list)
    #: Nodes that joined during the run: {"name", "role", "step"}.
    joined: list[dict[str, Any]] = field(default_factory=list)
    #: What the swarm answered each operator's command, by step number
    #: (`scenarios.steps.admin`): ``ok``, ``status``, ``message`` [, ``table``].
    answers: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Every ``membership`` trace line as (model time, node, voters, learners), in time order.
    conf_lines: list[tuple[float, str, tuple[str, ...], tuple[str, ...]]] = field(
        default_factory=list
    )
    #: What steps saw, by kind (`Stage.record`): ``tasks`` snapshots and samples,
    #: ``manage`` attempts, a rollout's samples, the manager-count measurements.
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def end(self) -> float:
        """The scenario's end in model time (the shutdown that follows is not part of it)."""
        return self.rel(self.end_t) if self.end_t is not None else self.model.end

    def step(self, number: int) -> StepRecord:
        return self.steps[number - 1]

    def rel(self, t: float) -> float:
        """Trace time (Unix seconds) -> seconds from the model's first line."""
        return t - self.model.t0

    def node(self, ref: str) -> str:
        return self.aliases.get(ref, ref)

    def ops_in(self, steps: list[int]) -> list[ClientOp]:
        lo, hi = steps[0], steps[-1]
        return [op for op in self.ops if lo <= op.step <= hi]

    def acked(self) -> list[ClientOp]:
        return [op for op in self.ops if op.outcome == "ok"]
