"""The Raft paper's Figure 8 (§5.4.2, the commit rule), directed on the simulator.

Figure 8 needs control over single messages -- *this* entry reaches *that*
server before *that* one crashes -- which real processes cannot give
reliably, so the built-in scenario ``figure-8`` always runs on the
deterministic simulator (`raft.sim.simulator`), replayable from ``--seed``.

The schedule, on five servers S1..S5 (``manager1``..``manager5``)::

    (a) S1 leads; x goes to index k in S1's term and reaches S2 only.
    (b) S1 and S2 crash; S5 is elected by S3, S4 and itself and writes its
        own entry at index k, in a newer term, alone; then S5 crashes.
    (c) S1 and S2 come back; S1 leads a third term and copies x to S3:
        x is on a majority, but it is an entry of an *older* term, so S1
        does not count it as committed.
    (d) what could happen next (a replay of the same seed up to (c), then
        another branch): S1 crashes, S5 wins again and overwrites x on
        every server.  Legal -- x was never committed.
    (e) what does happen: S1's own entry of the third term reaches a
        majority; that commits it, and x with it (Log Matching).  S1 and S2
        crash, S5 comes back and campaigns -- and every voter refuses it
        (§5.4.1): its last term is older than theirs.

`play` is the schedule itself, written against a bare `Simulator` (the lab
tests replay it: `figure8`) or, through `_TracedHands`, against a
`SimTracer` that records the traces `viz` draws.  `run` is what
``python -m scenarios run figure-8`` calls: both branches, checks, figures
and the study note.

``--unsafe-commit-rule`` is a teaching demo, clearly labelled wherever it
shows: it swaps the leader's commit rule, *for that run only*, for one that
counts replicas of any entry (`planted_commit_rule`), and lets the
simulator's `SafetyChecker` report instead of stop, so the committed x is
seen being overwritten.  `raft/core.py` is not touched; the default run
never does this.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.core.messages import NodeId
from raft.core.protocol import RaftCore, Role
from raft.core.quorum import committed_index, majority
from raft.sim.simulator import SimConfig, Simulator

__all__ = ["ScheduleError", "Story", "figure8", "planted_commit_rule", "play", "run"]

#: How long the schedule waits for anything (virtual ms); generous.
_WAIT_MS = 5_000

#: Paper names, by the order the schedule gives its servers roles.
_PAPER = ("S1", "S2", "S3", "S4", "S5")


class ScheduleError(AssertionError):
    """The simulator did not do what the directed schedule needed."""


@dataclass(slots=True)
class Mark:
    """A key instant of the schedule: its letter and the virtual time (ms)."""

    label: str
    ms: float


@dataclass(slots=True)
class Story:
    """Who played which part, and when the key instants were."""

    k: int = 0  # x's index
    term_x: int = 0
    s1: NodeId = ""
    s2: NodeId = ""
    s5: NodeId = ""
    rest: list[NodeId] = field(default_factory=list)  # S3, S4, S5 in id order
    term_s5: int = 0  # the term in which S5 wrote its own entry at k
    leader_c: NodeId = ""  # who led in (c): S1, or S2 on a bare simulator
    term_c: int = 0
    marks: list[Mark] = field(default_factory=list)

    def at(self, label: str) -> Mark | None:
        return next((m for m in self.marks if m.label == label), None)

    def paper(self) -> dict[NodeId, str]:
        """Simulator id -> the paper's name for the part it played."""
        s3, s4 = [n for n in self.rest if n != self.s5][:2]
        return dict(zip((self.s1, self.s2, s3, s4, self.s5), _PAPER, strict=True))


# ---------------------------------------------------------------------------
# The schedule


class Hands:
    """What the schedule does to the cluster; on a bare simulator, just that."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def kill(self, *nodes: NodeId) -> None:
        """Crash ``nodes``; what they still had in flight is lost with them."""
        sim = self.sim
        sim.partition(*([n] for n in nodes), [n for n in sim.ids if n not in nodes])
        for n in nodes:
            sim.crash(n)
        sim.run_for(50)
        sim.heal()

    def restart(self, *nodes: NodeId) -> None:
        for n in nodes:
            self.sim.restart(n)

    def prefer(self, node: NodeId) -> None:
        """A hint: ``node`` should time out first from its next start on."""

    def mark(self, story: Story, label: str) -> None:
        story.marks.append(Mark(label, self.sim.now))


def _core(sim: Simulator, node: NodeId) -> RaftCore:
    c = sim.nodes[node].core
    if c is None:
        raise ScheduleError(f"{node} is down\n{sim.describe()}")
    return c


def _up(sim: Simulator) -> list[NodeId]:
    return [n for n in sim.ids if sim.nodes[n].core is not None]


def _leader_among(sim: Simulator, nodes: list[NodeId]) -> NodeId | None:
    """A live leader in ``nodes`` whose term is the highest among the live ``nodes``."""
    live = [n for n in nodes if sim.nodes[n].core is not None]
    if not live:
        return None
    top = max(_core(sim, n).term for n in live)
    for n in live:
        c = _core(sim, n)
        if c.role is Role.LEADER and c.term == top:
            return n
    return None


def _holding(sim: Simulator, index: int, term: int) -> list[NodeId]:
    """Live nodes whose log has an entry of ``term`` at ``index``."""
    return [n for n in _up(sim) if _core(sim, n).log.term(index) == term]


def _need(sim: Simulator, ok: object, what: str) -> None:
    if not ok:
        raise ScheduleError(f"{what}\n{sim.describe()}")


def play(
    sim: Simulator, hands: Hands | None = None, branch: str = "commit", comeback_ms: float = 2_000
) -> Story:
    """Figure 8 on five nodes; returns who played which part and the instants.

    ``branch="commit"`` plays (a), (b), (c), (e) and then S5's failed
    comeback; ``branch="overwrite"`` plays (a), (b), (c) and then the
    paper's (d): S1 crashes and S5 overwrites x, which was never committed.
    ``comeback_ms``: how long S5 campaigns after (e) while S1 and S2 are down.
    The commit rule of §5.4.2 must keep x uncommitted until an entry of the
    new leader's own term is on a majority.
    """
    hands = hands or Hands(sim)
    st = Story()
    s1 = sim.wait_leader(_WAIT_MS)
    _need(sim, s1, "no first leader")
    first = _core(sim, s1).log.last_index  # its own no-op: committed everywhere before (a)
    _need(
        sim,
        sim.run_until(lambda: all(_core(sim, n).commit_index >= first for n in sim.ids), _WAIT_MS),
        "the first leader's entry did not reach every node",
    )
    s2, *rest = [n for n in sim.ids if n != s1]
    st.s1, st.s2, st.rest = s1, s2, rest

    # (a) x at index k in S1's term, on S1 and S2 only.
    hands.kill(*rest)
    proposed = sim.propose(b"x", s1)
    _need(sim, proposed, f"{s1} refused the proposal of x")
    assert proposed is not None
    st.k, st.term_x = proposed
    _need(sim, sim.run_until(lambda: s2 in _holding(sim, st.k, st.term_x), _WAIT_MS),
          f"x never reached {s2}")  # fmt: skip
    hands.mark(st, "a")

    # (b) S5 leads a newer term with the votes of S3 and S4 and writes at k, alone.
    hands.kill(s1, s2)
    hands.prefer(rest[-1])
    hands.restart(*rest)
    _need(sim, sim.run_until(lambda: _leader_among(sim, rest), _WAIT_MS), "no leader in (b)")
    s5 = _leader_among(sim, rest)
    assert s5 is not None
    st.s5 = s5
    st.term_s5 = _core(sim, s5).term
    _need(sim, _core(sim, s5).log.term(st.k) == st.term_s5, f"{s5} wrote nothing at {st.k}")
    hands.mark(st, "b")
    sim.run_for(0.5)  # S5 leads for a moment; its messages are still on the wire
    hands.kill(s5)

    # (c) S1 leads a third term and copies x to a majority; x is not committed.
    hands.prefer(s1)
    hands.restart(s1, s2)
    _need(
        sim,
        sim.run_until(lambda: _leader_among(sim, _up(sim)) in (s1, s2), _WAIT_MS),
        "neither S1 nor S2 led in (c)",
    )
    lc = _leader_among(sim, _up(sim))
    assert lc is not None
    st.leader_c, st.term_c = lc, _core(sim, lc).term
    quorum = majority(len(sim.ids))
    _need(
        sim,
        sim.run_until(lambda: len(_holding(sim, st.k, st.term_x)) >= quorum, _WAIT_MS),
        "x never reached a majority in (c)",
    )
    hands.mark(st, "c")

    if branch == "overwrite":
        # (d) S1 crashes before its own entry is on a majority: S5 can win again.
        hands.kill(lc)
        hands.prefer(s5)
        hands.restart(s5)

        def overwritten() -> bool:
            return _leader_among(sim, _up(sim)) == s5 and all(
                _core(sim, n).log.term(st.k) == st.term_s5 for n in _up(sim)
            )

        _need(sim, sim.run_until(overwritten, _WAIT_MS), f"{s5} did not overwrite x in (d)")
        hands.mark(st, "d")
        return st

    # (e) S1's entry of its own term reaches a majority: it commits, and x with it.
    _need(sim, sim.wait_committed(st.k, st.term_x, _WAIT_MS), "x never committed")
    hands.mark(st, "e")
    # S5 comes back while S1 and S2 are down: it cannot win (§5.4.1).
    hands.kill(s1, s2)
    hands.prefer(s5)
    hands.restart(s5)
    sim.run_for(comeback_ms)
    return st


def figure8(sim: Simulator) -> tuple[int, int, NodeId]:
    """The lab tests' entry point: ``(k, term of x, S5)`` after the schedule."""
    st = play(sim)
    return st.k, st.term_x, st.s5


# ---------------------------------------------------------------------------
# The planted bug (teaching demo only)


@contextlib.contextmanager
def planted_commit_rule() -> Iterator[None]:
    """TEACHING DEMO ONLY: for the duration, leaders commit by counting replicas
    of *any* entry -- what §5.4.2 forbids.  Every `RaftCore` in the process is
    affected until the block ends; `raft/core.py` itself is not changed."""

    def counting(self: RaftCore) -> bool:
        voters = self.conf.voters
        index = committed_index(voters, {p: self._match_of(p) for p in voters})
        if index <= self.log.committed:
            return False
        self.log.committed = index
        term = self.log.term(index)
        self._trace("commit", {"index": index, "term": term, "planted_rule": True})
        return True

    original = RaftCore._maybe_commit
    RaftCore._maybe_commit = counting  # type: ignore[method-assign]
    try:
        yield
    finally:
        RaftCore._maybe_commit = original  # type: ignore[method-assign]


# ---------------------------------------------------------------------------
# The scenario: traced runs


class _TracedHands(Hands):
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
class _Traced:
    tracer: Any
    story: Story
    violations: list[tuple[float, str]]
    error: str | None


def _sim_config(spec: Any) -> tuple[SimConfig, int, int]:
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


def _traced(spec: Any, seed: int, branch: str, unsafe: bool) -> _Traced:
    from scenarios.simtrace import SimTracer

    config, fast, slow = _sim_config(spec)
    ticks = {name: (fast if name == "manager1" else slow) for name in spec.names}
    tracer = SimTracer(config=config, seed=seed, prefix="manager", election_ticks=ticks)
    sim = tracer.sim
    violations: list[tuple[float, str]] = []

    def record(what: str) -> None:  # report, keep running: the story goes on
        violations.append((sim.now, tracer._rename(what.splitlines()[0])))

    sim.checker.fail = record  # type: ignore[method-assign]
    hands = _TracedHands(tracer, fast, slow)
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
                    return len(_up(sim)) == len(sim.ids) and all(
                        _core(sim, n).log.term(story.k) == story.term_x
                        and _core(sim, n).commit_index >= _core(sim, n).log.last_index
                        for n in sim.ids
                    )

                _need(sim, sim.run_until(settled, _WAIT_MS), "the cluster did not settle")
            if branch == "commit":
                hands.mark(story, "end")
    except ScheduleError as e:
        error = str(e).splitlines()[0]
        tracer.snapshot_logs()
    _merge_faults(tracer)
    return _Traced(tracer, story, violations, error)


def _merge_faults(tracer: Any) -> None:
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


# ---------------------------------------------------------------------------
# Checks


@dataclass(slots=True)
class _Facts:
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


def _commit_lines(traces: Path, t0: float) -> list[dict[str, Any]]:
    lines = []
    for path in sorted(traces.rglob("trace.jsonl")):
        for raw in path.read_text(encoding="utf-8").splitlines():
            r = json.loads(raw)
            if r.get("type") == "commit":
                lines.append({**r, "t": r["t"] - t0})
    return sorted(lines, key=lambda r: r["t"])


def _facts(traced: _Traced, traces: Path) -> _Facts:
    from scenarios.simtrace import T0
    from viz.model import read_model

    model = read_model(traces)
    st = traced.story
    names = {n: traced.tracer.name(n) for n in traced.tracer.sim.ids}
    paper = {names[n]: p for n, p in st.paper().items()} if st.s5 else {}
    marks = {m.label: (T0 + m.ms / 1000.0) - model.t0 for m in st.marks}
    commits = _commit_lines(traces, model.t0)
    first = next((c for c in commits if c["index"] >= st.k), None) if st.k else None
    found = [what for _, what in traced.violations]
    return _Facts(model, st, names, paper, marks, commits, first, found)


def _check(name: str, passed: bool, detail: str) -> Any:
    from scenarios.checks import CheckResult

    return CheckResult(name, passed, detail)


def _safe_checks(f: _Facts, main: _Traced, counter: _Traced | None) -> list[Any]:
    st, m = f.story, f.model
    out = []
    if main.error:
        out.append(_check("the directed schedule", False, main.error))
    if counter is not None and counter.error:
        out.append(_check("the directed schedule, branch (d)", False, counter.error))
    if main.error:
        return out
    # 1. x is first covered by a commit of a newer term's entry.
    c = f.first_cover
    tc = f.marks.get("c")
    row_c = m.log_matrix(tc) if tc is not None else None
    holders = [r.node for r in row_c.rows if r.entries.get(st.k) == st.term_x] if row_c else []
    top_c = max((r.commit for r in row_c.rows), default=0) if row_c else 0
    if c is None:
        out.append(_check("x never counted as committed while only old-term replicas existed",
                          False, "no commit line ever covered x's index"))  # fmt: skip
    else:
        ok = c["term"] > st.term_x and top_c < st.k
        out.append(_check(
            "x never counted as committed while only old-term replicas existed",
            ok,
            f"at {tc:.3f} s x (index {st.k}, term {st.term_x}) was on {len(holders)} of "
            f"{len(m.nodes)} ({', '.join(holders)}), the highest commit index was {top_c}; "
            f"the first commit covering index {st.k} was {c['node']}'s commit of index "
            f"{c['index']} (term {c['term']}) at {c['t']:.3f} s",
        ))  # fmt: skip
    # 2. S5 never led after x committed.
    s5 = f.names[st.s5]
    t_commit = c["t"] if c else m.end
    later = [iv for iv in m.leaders() if iv.node == s5 and iv.end > t_commit + 1e-9]
    earlier = [iv for iv in m.leaders() if iv.node == s5 and iv.end <= t_commit + 1e-9]
    refused = [v for v in m.votes if v.candidate == s5 and not v.granted and v.t >= t_commit]
    behind = [v.reason for v in refused if v.reason and "behind" in v.reason]
    detail = (
        f"{s5} led term {earlier[0].term} at {earlier[0].start:.3f} s, before x committed at "
        f"{t_commit:.3f} s; "
        if earlier
        else ""
    )
    if later:
        detail += f"but it led term {later[0].term} from {later[0].start:.3f} s"
    else:
        reasons = behind or sorted({v.reason for v in refused if v.reason})
        detail += f"after it, {len(refused)} of its vote requests were refused" + (
            f" ({reasons[0]})" if reasons else ""
        )
    out.append(_check("S5 never led after x committed", not later and c is not None, detail))
    # 3. Every node ends with x at index k (the final log lines, and the data itself).
    end = m.log_matrix(m.end)
    sim = main.tracer.sim
    missing = [
        r.node
        for r in (end.rows if end else [])
        if r.entries.get(st.k) != st.term_x or r.commit < st.k
    ]
    wrong_data = [
        f.names[n]
        for n in sim.ids
        if sim.nodes[n].core is None or sim.nodes[n].core.log.entry(st.k).data != b"x"
    ]
    out.append(_check(
        "every node ends with x at index k",
        end is not None and not missing and not wrong_data,
        f"index k = {st.k}: term {st.term_x}, committed, on "
        f"{len(m.nodes) - len(missing)} of {len(m.nodes)} nodes"
        + (f"; missing on {', '.join(missing)}" if missing else "")
        + (f"; other data on {', '.join(wrong_data)}" if wrong_data else ""),
    ))  # fmt: skip
    # 4. The simulator's own checker.
    runs = [("main", main)] + ([("branch (d)", counter)] if counter else [])
    found = [(name, v) for name, r in runs for v in r.violations]
    batches = sum(r.tracer.sim.checker.checks for _, r in runs)
    out.append(_check(
        "the simulator's SafetyChecker found nothing",
        not found,
        f"{batches} batches checked against Raft's Figure 3 properties in both branches"
        + (f"; {found[0][0]}: {found[0][1][1]}" if found else ""),
    ))  # fmt: skip
    # 5. The counterfactual: overwriting an uncommitted x is legal.
    if counter is not None and not counter.error:
        cs = counter.story
        cnames = {n: counter.tracer.name(n) for n in counter.tracer.sim.ids}
        out.append(_check(
            "(d) x, never committed, may be overwritten",
            not counter.violations and cs.at("d") is not None,
            f"replaying seed {counter.tracer.sim.seed} to (c) and crashing "
            f"{cnames[cs.leader_c]} instead: "
            f"{cnames[cs.s5]} led again and replaced x at index {cs.k} with its term-"
            f"{cs.term_s5} entry on every live node; the checker found nothing",
        ))  # fmt: skip
    return out


def _unsafe_checks(f: _Facts, main: _Traced) -> list[Any]:
    st, m = f.story, f.model
    if main.error and not st.at("c"):
        return [_check("the directed schedule", False, main.error)]
    out = []
    c = f.first_cover
    out.append(_check(
        "planted rule: x counted committed with only old-term replicas",
        c is not None and c["index"] == st.k and c["term"] == st.term_x,
        (f"{c['node']} committed index {c['index']} (term {c['term']}) at {c['t']:.3f} s, "
         f"while leading term {st.term_c}") if c else "x was never counted committed",
    ))  # fmt: skip
    s5 = f.names.get(st.s5, "?")
    t_commit = c["t"] if c else m.end
    later = [iv for iv in m.leaders() if iv.node == s5 and iv.start > t_commit]
    out.append(_check(
        "S5 led after x was counted committed",
        bool(later),
        f"{s5} led term {later[0].term} from {later[0].start:.3f} s" if later
        else f"{s5} did not lead again",
    ))  # fmt: skip
    end = m.log_matrix(m.end)
    lost = [r.node for r in (end.rows if end else [])
            if r.state != "down" and r.entries.get(st.k) not in (None, st.term_x)]  # fmt: skip
    out.append(_check(
        "x, counted committed, was overwritten",
        bool(lost),
        f"at the end index {st.k} holds term {st.term_s5}, not x's term {st.term_x}, on "
        f"{', '.join(lost) or 'no node'}",
    ))  # fmt: skip
    v = main.violations
    out.append(_check(
        "the SafetyChecker reported the violation",
        bool(v),
        (f"{len(v)} violations; first at {v[0][0] / 1000:.3f} s: {v[0][1]}") if v
        else "nothing reported",
    ))  # fmt: skip
    return out


# ---------------------------------------------------------------------------
# Figures

_CAPTIONS = {
    "a": "(a) {S1} leads term {tx}: x at index {k} reaches {S2} only",
    "b": "(b) {S5} leads term {t5} (votes of {S3}, {S4}) and writes its own entry at {k}",
    "c": "(c) {L} leads term {tc}: x (term {tx}) is on a majority, NOT committed",
    "d": "(d) instead: {L} crashes, {S5} wins term {td} and overwrites x -- legal, x was "
    "never committed",
    "e": "(e) {L}'s term-{tc} entry reaches a majority: it commits, and x with it",
    "end": "after (e): {S5} was refused; everyone is back and holds x at index {k}",
}
_UNSAFE_CAPTIONS = {
    "e": "(c') PLANTED BUG: {L} counts x's old-term replicas and commits index {k}",
    "end": "(d) PLANTED BUG: {S5} wins term {td} and overwrites the committed x",
}


def _caption(label: str, f: _Facts, unsafe: bool, story: Story | None = None) -> str:
    st = story or f.story
    td = max((iv.term for iv in f.model.leaders()), default=0)
    text = (_UNSAFE_CAPTIONS if unsafe else {}).get(label, _CAPTIONS[label])
    return text.format(
        **{s: f.paper_name(s) for s in _PAPER},
        L=f.paper_name(f.paper.get(f.names.get(st.leader_c, ""), "S1")),
        k=st.k,
        tx=st.term_x,
        t5=st.term_s5,
        tc=st.term_c,
        td=td,
    )


def _figures(out: Path, f: _Facts, counter: _Facts | None, unsafe: bool) -> list[Path]:
    from viz.figures.figure8 import LogInstant, render_figure8

    title = (
        "Figure 8 with the PLANTED unsafe commit rule (teaching demo)"
        if unsafe
        else "Figure 8 (§5.4.2): roles over virtual time; dotted lines are the instants (a)-(e)"
    )
    names = {"e": "log-c2", "end": "log-d"} if unsafe else {"end": "log-end"}
    logs = [
        LogInstant(
            t, names.get(label, f"log-{label}"), f"{_caption(label, f, unsafe)}  [{t:.3f} s]"
        )
        for label, t in f.marks.items()
    ]
    branch = None
    if counter is not None and "d" in counter.marks:
        t = counter.marks["d"]
        title_d = f"{_caption('d', counter, False)}  [{t:.3f} s, branch (d)]"
        branch = (counter.model, counter.story.k, LogInstant(t, "log-d", title_d))
    return render_figure8(out, f.model, f.story.k, title, dict(f.marks), logs, branch)


# ---------------------------------------------------------------------------
# The study note

_WHY = """\
**The trap (§5.4.2).** In (c) x is stored on {S1}, {S2} and {S3} -- three of
five, a majority -- yet it is not committed, and rightly so: in (d) {S5} can
still win an election (its last entry, term {t5}, is newer than the last
entries of {S2}, {S3} and {S4}, so §5.4.1 lets them vote for it) and then
replace x everywhere.  "Stored on a majority" is only "safe" when no later
leader can be elected without it, and that holds for entries of the
*current* term only.

**The rule.** A leader advances its commit index by counting replicas only
for an entry of its own current term (`RaftCore._maybe_commit`, guarded by
`log.term(index) == term`).  Entries of earlier terms are never counted;
they become committed *with* the first entry of the current term that
reaches a majority, because of the **Log Matching** property (§5.3): a
follower that accepts the leader's entry at index {k1} in term {tc} holds the
leader's log up to it, x included.  In the run, the first commit line that
covers index {k} is {first} -- an entry of term {tc}, not x's term {tx}.

**Why that is enough: Leader Completeness (§5.4.3).** Once the term-{tc} entry
is on a majority, every later candidate needs a vote from that majority, and
each of those voters refuses a candidate whose last entry is older than term
{tc} (the election restriction, §5.4.1).  {S5}'s last entry is from term {t5}: in
the run its vote requests were refused {asks} times after x committed (e.g.
_{reason}_), so it never led again.  Every future leader holds x at index
{k}, and no server ever applies anything else there (State Machine Safety).

(Pre-vote and check-quorum are off in this scenario, as in the paper, so
{S5}'s hopeless campaigns push the terms up -- see the terms figure.  With
pre-vote (dissertation §9.6) it would have asked first and left the terms
alone; safety does not depend on it.)"""

_SWARM = """\
Docker Swarm's managers replicate the cluster state (services, tasks,
secrets, configs, nodes) with this Raft, and a manager acknowledges a change
-- `docker service create` returning an ID -- only once its entry is
*committed*, never when it is merely stored on some managers.  A write that
sat on a majority in an old term, like x in (c), has not been acknowledged;
if the leader fails then, the client gets an error or a timeout and retries,
and the entry may legitimately vanish, as in (d).  What the DCA exam asks
follows from the same arithmetic: a majority ((N/2)+1) of managers must be
reachable to commit anything, N managers tolerate (N-1)/2 failures, and an
acknowledged change survives any later election."""

_UNSAFE = """\
**This run is a teaching demo with a PLANTED BUG.**  For this run only, the
scenario replaced the leader's commit rule (in memory, `RaftCore._maybe_commit`
monkeypatched inside `scenarios/figure8.py`; `raft/core.py` is unchanged) with
one that counts replicas of *any* entry, and told the simulator's
`SafetyChecker` to record violations instead of stopping.  Never run Raft
like this.  The default `python -m scenarios run figure-8` uses the real rule."""


def _note(out: Path, scn: Any, seed: int, f: _Facts, counter: _Facts | None,
          checks: list[Any], passed: bool, unsafe: bool, main: _Traced) -> None:  # fmt: skip
    st, m = f.story, f.model
    verdict = "passed" if passed else "**FAILED**"
    title = scn.title
    if unsafe:
        title = "TEACHING DEMO (planted bug): Figure 8 with an unsafe commit rule"
    spec = scn.cluster
    variant = " (variant: unsafe-commit-rule)" if unsafe else ""
    lines = [f"# {title}", ""]
    if unsafe:
        lines += [_UNSAFE, ""]
        verdict += (" (the demonstration reproduced: the bug lost a committed entry)"
                    if passed else " (the demonstration did not reproduce)")  # fmt: skip
    lines += [
        f"Scenario `{scn.name}`{variant} -- {verdict}; {spec.managers} managers on the "
        f"deterministic simulator (seed {seed}; replay with "
        f"`python -m scenarios run figure-8 --seed {seed}"
        + (" --unsafe-commit-rule" if unsafe else "")
        + "`); times are *virtual* seconds. Election timeout "
        f"{spec.election_timeout_ms} ms for the server that should campaign first, 4x that for "
        f"the others; one entry per message, one message in flight.",
        "",
        "This is the Raft paper's Figure 8 (§5.4.2, *Committing entries from previous "
        "terms*). The paper's servers S1..S5 are "
        + ", ".join(f"{p} = {n}" for n, p in sorted(f.paper.items(), key=lambda x: x[1]))
        + f"; x is the entry at index k = {st.k}. Our terms run one below the paper's "
        "(the paper's S1 is already in term 2 in (a)).",
        "",
    ]
    if scn.description and not unsafe:
        lines += [scn.description, ""]
    lines += ["## What happened", "", "| virtual time | instant | what the logs show |",
              "| ---: | --- | --- |"]  # fmt: skip
    events: list[tuple[float, str, str]] = []
    for label, t in f.marks.items():
        events.append((t, _figlink(label, unsafe), _caption(label, f, unsafe)))
    for e in m.won():
        who = f"{e.node} ({f.paper.get(e.node, '?')})"
        events.append((e.decided if e.decided is not None else e.t, "",
                       f"{who} elected leader for term {e.term} "
                       f"({len(e.granted) + 1} of {len(m.nodes)} votes)"))  # fmt: skip
    if f.first_cover is not None:
        c = f.first_cover
        events.append((c["t"], "", f"**{c['node']} commits index {c['index']} (term "
                       f"{c['term']})**" + (" -- x's own old term: the planted rule"
                                            if c["term"] == st.term_x else
                                            f" -- x at {st.k} is committed with it")))  # fmt: skip
    for fl in m.faults:
        if fl.kind in ("kill", "restart"):
            events.append((fl.t, "", f"{fl.kind} {', '.join(fl.targets)}"))
    events += _refusals(m)
    for t, what in main.violations:
        events.append((t / 1000.0, "", f"**SafetyChecker: {what}**"))
    events.sort(key=lambda x: (x[0], x[1] == ""))
    if len(events) > 60:
        events = [*events[:59], (events[-1][0], "", "...")]
    lines += [f"| {t:.3f} s | {lab} | {text} |" for t, lab, text in events]
    lines.append("")
    if counter is not None and "d" in counter.marks:
        cs = counter.story
        lines += [
            "### (d): what could have happened instead", "",
            f"The simulator is deterministic, so the scenario replays seed {seed} a second "
            f"time up to (c) and then takes the other branch of the paper's figure: "
            f"{counter.paper_name('S1')} crashes at {counter.marks['c']:.3f} s, before its own "
            f"term-{cs.term_c} entry is on a majority. {counter.paper_name('S5')} comes back, "
            f"wins with the votes of servers whose last entry is older than its own, and at "
            f"{counter.marks['d']:.3f} s has replaced x at index {cs.k} with its term-"
            f"{cs.term_s5} entry everywhere it can reach ([(d)](log-d.png)). Nothing "
            "acknowledged was lost -- x was never committed -- and the SafetyChecker, which "
            "watched that run too, agrees: "
            + ("it found nothing." if not _violations(counter) else
               f"it reported {_violations(counter)}."),
            "",
        ]  # fmt: skip
    if not unsafe and f.first_cover is not None:
        c = f.first_cover
        s5 = f.names.get(st.s5, "")
        asks = [v for v in m.votes if v.candidate == s5 and not v.granted and v.t >= c["t"]]
        behind = [v.reason for v in asks if v.reason and "behind" in v.reason]
        reasons = behind or sorted({v.reason for v in asks if v.reason})
        sub = {s: f.paper_name(s) for s in _PAPER}
        lines += ["## Why Raft is safe here", "", _WHY.format(
            **sub, k=st.k, k1=c["index"], tc=st.term_c, tx=st.term_x, t5=st.term_s5,
            first=f"{c['node']}'s commit of index {c['index']} in term {c['term']} at "
                  f"{c['t']:.3f} s", asks=len(asks), reason=reasons[0] if reasons else "-",
        ), ""]  # fmt: skip
    elif unsafe:
        lines += ["## What the planted bug broke", "",
                  f"In (c') the leader counted x's replicas -- all of term {st.term_x}, older "
                  f"than its own term {st.term_c} -- and committed index {st.k}; it may even "
                  "have applied x and answered a client. Then S1 and S2 crashed and {S5} came "
                  "back: its last "
                  f"entry (term {st.term_s5}) is newer than x's, so {{S3}} and {{S4}} voted for "
                  "it (§5.4.1 compares last terms, and nothing of the leader's own term had "
                  f"reached them), and as leader it replaced x at index {st.k} with its own "
                  "entry. A committed entry was lost: the checker reports **Leader "
                  "Completeness** (a leader without a committed entry) and the damage that "
                  "follows. With the real rule (§5.4.2) x is not counted until an entry of "
                  f"term {st.term_c} is on a majority, and that entry makes {{S5}} unelectable.",
                  ""]  # fmt: skip
        lines[-2] = lines[-2].replace("{S5}", "S5").replace("{S3}", "S3").replace("{S4}", "S4")
    lines += ["## The Swarm / DCA angle", "", _SWARM, ""]
    figs = sorted(p.name for p in out.glob("*.png"))
    order = ["timeline.png", "log-a.png", "log-b.png", "log-c.png", "log-c2.png", "log-d.png",
             "log-e.png", "log-end.png", "votes.png", "commit.png", "terms.png"]  # fmt: skip
    figs.sort(key=lambda n: (order.index(n) if n in order else len(order), n))
    lines += ["## Figures", "", "The log matrices: one row per server, one cell per index, "
              "labelled with the entry's term; solid = committed, dashed and faded = not "
              "committed; the black bar is each server's own commit index.", ""]  # fmt: skip
    for name in figs:
        lines += [f"![{name[:-4]}]({name})", ""]
    lines += ["## Checks", "", "| check | result | detail |", "| --- | --- | --- |"]
    for ch in checks:
        res = "pass" if ch.passed else "**FAIL**"
        lines.append(f"| {ch.name} | {res} | {ch.detail.replace('|', '/')} |")
    lines += ["", "Raw traces: [traces/](traces/) (`python -m viz traces` redraws the figures)"
              + ("; branch (d): [traces-d/](traces-d/)." if counter else "."), ""]  # fmt: skip
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")


def _violations(f: _Facts) -> str:
    return "; ".join(f.violations)


def _refusals(m: Any) -> list[tuple[float, str, str]]:
    """Refused votes, one row per run of refusals by the same voters for the same reason."""
    rows: list[tuple[float, str, str]] = []
    groups: dict[tuple[str, int], list[Any]] = {}
    for v in m.votes:
        if not v.granted and v.reason:
            groups.setdefault((v.candidate, v.term), []).append(v)
    runs: list[dict[str, Any]] = []
    for (cand, term), vs in sorted(groups.items(), key=lambda kv: kv[1][0].t):
        voters = ", ".join(sorted({v.voter for v in vs}))
        reason = vs[0].reason
        generic = re.sub(r"\d+", "#", reason)
        last = runs[-1] if runs else None
        if last and (last["cand"], last["voters"], last["generic"]) == (cand, voters, generic):
            last["terms"].append(term)
            continue
        runs.append({"t": vs[0].t, "cand": cand, "voters": voters, "generic": generic,
                     "reason": reason, "terms": [term]})  # fmt: skip
    for r in runs:
        terms = r["terms"]
        which = (f"term {terms[0]}" if len(terms) == 1
                 else f"terms {terms[0]}-{terms[-1]} ({len(terms)} campaigns)")  # fmt: skip
        rows.append((r["t"], "", f"{r['voters']} refused {r['cand']}'s vote for {which}: "
                     f"_{r['reason']}_"))  # fmt: skip
    return rows


def _figlink(label: str, unsafe: bool) -> str:
    base = ({"e": "log-c2", "end": "log-d"} if unsafe else {"end": "log-end"}).get(
        label, f"log-{label}"
    )
    shown = {"e": "(c')", "end": "(d)"} if unsafe else {"end": "end"}
    return f"[{shown.get(label, f'({label})')}]({base}.png)"


# ---------------------------------------------------------------------------
# Entry point for the runner


def run(
    scn: Any,
    out_root: Path,
    *,
    seed: int = 1,
    progress: Callable[[str], None] = lambda _: None,
    unsafe_commit_rule: bool = False,
) -> Any:
    """Run the figure-8 scenario; write figures, ``report.md``, ``result.json``."""
    from scenarios.runner import Outcome

    unsafe = unsafe_commit_rule
    name = scn.name + ("-unsafe-commit-rule" if unsafe else "")
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    wall0 = time.monotonic()
    what = "TEACHING DEMO with a planted unsafe commit rule, " if unsafe else ""
    progress(f"[{name}] {what}{scn.cluster.managers} simulated managers, seed {seed}")
    main = _traced(scn.cluster, seed, "commit", unsafe)
    main.tracer.write_dir(out / "traces")
    f = _facts(main, out / "traces")
    counter = cf = None
    if not unsafe:
        counter = _traced(scn.cluster, seed, "overwrite", False)
        counter.tracer.write_dir(out / "traces-d")
        cf = _facts(counter, out / "traces-d")
    for label, t in f.marks.items():
        progress(f"[{name}] +{t:6.3f}s  {_caption(label, f, unsafe)}")
    if cf is not None and "d" in cf.marks:
        progress(f"[{name}] +{cf.marks['d']:6.3f}s  {_caption('d', cf, False)} (branch)")
    checks = _unsafe_checks(f, main) if unsafe else _safe_checks(f, main, counter)
    passed = bool(checks) and all(c.passed for c in checks)
    _figures(out, f, cf, unsafe)
    st = f.story
    metrics: dict[str, Any] = {
        "k": st.k,
        "term_x": st.term_x,
        "term_s5": st.term_s5,
        "term_c": st.term_c,
        "instants_s": {lab: round(t, 3) for lab, t in f.marks.items()},
        "x_committed_s": round(f.first_cover["t"], 3) if f.first_cover else None,
        "votes_refused": sum(not v.granted for v in f.model.votes),
        "elections": len([e for e in f.model.elections if not e.pre_vote]),
        "max_term": max((iv.term for iv in f.model.leaders()), default=0),
        "safety_violations": len(main.violations),
        "checker_batches": main.tracer.sim.checker.checks,
        "scenario_time_s": round(f.model.end, 3),
    }
    if cf is not None:
        metrics["branch_d_s"] = round(cf.marks["d"], 3) if "d" in cf.marks else None
    _note(out, scn, seed, f, cf, checks, passed, unsafe, main)
    duration = time.monotonic() - wall0
    metrics["duration_s"] = round(duration, 2)
    result = {
        "scenario": name,
        "passed": passed,
        "mode": "simulated",
        "seed": seed,
        "variant": "unsafe-commit-rule (teaching demo, planted bug)" if unsafe else "default",
        "checks": [c.as_json() for c in checks],
        "metrics": metrics,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    verdict = "PASSED" if passed else "FAILED"
    progress(f"[{name}] {verdict} in {duration:.1f} s: {out / 'report.md'}")
    return Outcome(name, passed, out, duration, metrics, checks)
