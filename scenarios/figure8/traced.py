"""The schedule played through a `SimTracer` (the traces `viz` draws), and the
facts the checks and the note read back from those traces."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raft.core.messages import NodeId
from raft.sim.simulator import SimConfig
from scenarios.figure8.schedule import (
    WAIT_MS,
    Hands,
    ScheduleError,
    Story,
    core_of,
    live,
    need,
    planted_commit_rule,
    play,
)

__all__ = ["Facts", "Traced", "facts", "traced_run"]


class TracedHands(Hands):
    """Hands that also write the fault and ``log`` lines a real cluster would."""

    def __init__(self, tracer: Any, fast: int, slow: int) -> None:
        super().__init__(tracer.sim)
        self.tracer = tracer
        self.fast, self.slow = fast, slow

    def kill(self, *nodes: NodeId) -> None:
        sim = self.sim
        # The cut only drops what the dying nodes had in flight: not a fault of its own.
        sim.partition(*([n] for n in nodes), [n for n in sim.ids if n not in nodes])
        for n in nodes:
            self.tracer.kill(n)
        sim.run_for(50)
        sim.heal()

    def restart(self, *nodes: NodeId) -> None:
        for n in nodes:
            self.tracer.restart(n)

    def prefer(self, node: NodeId) -> None:
        for n in self.sim.ids:
            self.tracer.set_election_ticks(n, self.fast if n == node else self.slow)

    def mark(self, story: Story, label: str) -> None:
        super().mark(story, label)
        self.tracer.snapshot_logs()


@dataclass(slots=True)
class Traced:
    tracer: Any
    story: Story
    violations: list[tuple[float, str]]
    error: str | None


def sim_config(spec: Any) -> tuple[SimConfig, int, int]:
    """The simulator's settings for the scenario's cluster: 10 ms ticks."""
    tick = 10.0
    fast = max(2, round(spec.election_timeout_ms / tick))
    beat = max(1, round(spec.heartbeat_ms / tick))
    config = SimConfig(
        nodes=spec.managers,
        tick_ms=tick,
        election_ticks=fast,
        heartbeat_ticks=beat,
        # One entry per message and one message in flight: entries of different
        # terms travel separately, which is where Figure 8's trap lies.
        pre_vote=False,
        check_quorum=False,
        max_inflight=1,
        max_entries_per_message=1,
    )
    return config, fast, 4 * fast


def traced_run(spec: Any, seed: int, branch: str, unsafe: bool) -> Traced:
    from scenarios.drivers.simtrace import SimTracer

    config, fast, slow = sim_config(spec)
    ticks = {name: (fast if name == "manager1" else slow) for name in spec.names}
    tracer = SimTracer(config=config, seed=seed, prefix="manager", election_ticks=ticks)
    sim = tracer.sim
    violations: list[tuple[float, str]] = []

    def record(what: str) -> None:  # report, keep running: the story goes on
        violations.append((sim.now, tracer._rename(what.splitlines()[0])))

    sim.checker.fail = record  # type: ignore[method-assign]
    hands = TracedHands(tracer, fast, slow)
    story = Story()
    error = None
    guard = planted_commit_rule() if unsafe else contextlib.nullcontext()
    try:
        with guard:
            story = play(sim, hands, branch, comeback_ms=600)
            if branch == "commit" and not unsafe:
                # Everyone back: every server ends with x at index k.
                hands.prefer(story.s1)
                hands.restart(*[n for n in sim.ids if not sim.nodes[n].up])

                def settled() -> bool:
                    return len(live(sim)) == len(sim.ids) and all(
                        core_of(sim, n).log.term(story.k) == story.term_x
                        and core_of(sim, n).commit_index >= core_of(sim, n).log.last_index
                        for n in sim.ids
                    )

                need(sim, sim.run_until(settled, WAIT_MS), "the cluster did not settle")
            if branch == "commit":
                hands.mark(story, "end")
    except ScheduleError as e:
        error = str(e).splitlines()[0]
        tracer.snapshot_logs()
    merge_faults(tracer)
    return Traced(tracer, story, violations, error)


def merge_faults(tracer: Any) -> None:
    """One fault line for nodes killed (or restarted) together, as an operator's
    ``kill manager1 manager2`` would read: the timeline labels them once."""
    merged: list[dict[str, Any]] = []
    for line in tracer.lines.get("faults.jsonl", []):
        last = merged[-1] if merged else None
        if last and last["t"] == line["t"] and last["kind"] == line["kind"] != "partition":
            last["targets"] = [*last["targets"], *line["targets"]]
        else:
            merged.append(dict(line))
    if merged:
        tracer.lines["faults.jsonl"] = merged


@dataclass(slots=True)
class Facts:
    """What the checks and the note need, from the traces (model time, seconds)."""

    model: Any
    story: Story
    names: dict[NodeId, str]  # sim id -> manager name
    paper: dict[str, str]  # manager name -> S1..S5
    marks: dict[str, float]  # label -> model time
    commits: list[dict[str, Any]]  # every commit line, in time order (t in model time)
    first_cover: dict[str, Any] | None  # the first commit line with index >= k
    violations: list[str]  # what the SafetyChecker reported

    def paper_name(self, s: str) -> str:
        """``S3``, with the manager's name when it is not simply ``manager3``."""
        name = next((n for n, p in self.paper.items() if p == s), None)
        return s if name is None or name.endswith(s[1:]) else f"{s} ({name})"


def commit_lines(traces: Path, t0: float) -> list[dict[str, Any]]:
    lines = []
    for path in sorted(traces.rglob("trace.jsonl")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(raw)
            if r.get("type") == "commit":
                lines.append({**r, "t": r["t"] - t0})
    return sorted(lines, key=lambda r: r["t"])


def facts(traced: Traced, traces: Path) -> Facts:
    from scenarios.drivers.simtrace import T0
    from viz.model import read_model

    model = read_model(traces)
    st = traced.story
    names = {n: traced.tracer.name(n) for n in traced.tracer.sim.ids}
    paper = {names[n]: p for n, p in st.paper().items()} if st.s5 else {}
    marks = {m.label: (T0 + m.ms / 1000.0) - model.t0 for m in st.marks}
    commits = commit_lines(traces, model.t0)
    first = next((c for c in commits if c["index"] >= st.k), None) if st.k else None
    found = [what for _, what in traced.violations]
    return Facts(model, st, names, paper, marks, commits, first, found)
