"""The directed schedule of Figure 8 (a)-(e) on a bare simulator, and the planted
commit rule of the teaching demo (§5.4.2)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from raft.core.messages import NodeId
from raft.core.protocol import RaftCore, Role
from raft.core.quorum import committed_index, majority
from raft.sim.simulator import Simulator

__all__ = ["Hands", "Mark", "ScheduleError", "Story", "figure8", "planted_commit_rule", "play"]

#: How long the schedule waits for anything (virtual ms); generous.
WAIT_MS = 5_000

#: Paper names, by the order the schedule gives its servers roles.
PAPER = ("S1", "S2", "S3", "S4", "S5")


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
        return dict(zip((self.s1, self.s2, s3, s4, self.s5), PAPER, strict=True))


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


def core_of(sim: Simulator, node: NodeId) -> RaftCore:
    c = sim.nodes[node].core
    if c is None:
        raise ScheduleError(f"{node} is down\n{sim.describe()}")
    return c


def live(sim: Simulator) -> list[NodeId]:
    return [n for n in sim.ids if sim.nodes[n].core is not None]


def _leader_among(sim: Simulator, nodes: list[NodeId]) -> NodeId | None:
    """A live leader in ``nodes`` whose term is the highest among the live ``nodes``."""
    live = [n for n in nodes if sim.nodes[n].core is not None]
    if not live:
        return None
    top = max(core_of(sim, n).term for n in live)
    for n in live:
        c = core_of(sim, n)
        if c.role is Role.LEADER and c.term == top:
            return n
    return None


def _holding(sim: Simulator, index: int, term: int) -> list[NodeId]:
    """Live nodes whose log has an entry of ``term`` at ``index``."""
    return [n for n in live(sim) if core_of(sim, n).log.term(index) == term]


def need(sim: Simulator, ok: object, what: str) -> None:
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
    s1 = sim.wait_leader(WAIT_MS)
    need(sim, s1, "no first leader")
    first = core_of(sim, s1).log.last_index  # its own no-op: committed everywhere before (a)
    need(
        sim,
        sim.run_until(lambda: all(core_of(sim, n).commit_index >= first for n in sim.ids), WAIT_MS),
        "the first leader's entry did not reach every node",
    )
    s2, *rest = [n for n in sim.ids if n != s1]
    st.s1, st.s2, st.rest = s1, s2, rest

    # (a) x at index k in S1's term, on S1 and S2 only.
    hands.kill(*rest)
    proposed = sim.propose(b"x", s1)
    need(sim, proposed, f"{s1} refused the proposal of x")
    assert proposed is not None
    st.k, st.term_x = proposed
    need(sim, sim.run_until(lambda: s2 in _holding(sim, st.k, st.term_x), WAIT_MS),
          f"x never reached {s2}")  # fmt: skip
    hands.mark(st, "a")

    # (b) S5 leads a newer term with the votes of S3 and S4 and writes at k, alone.
    hands.kill(s1, s2)
    hands.prefer(rest[-1])
    hands.restart(*rest)
    need(sim, sim.run_until(lambda: _leader_among(sim, rest), WAIT_MS), "no leader in (b)")
    s5 = _leader_among(sim, rest)
    assert s5 is not None
    st.s5 = s5
    st.term_s5 = core_of(sim, s5).term
    need(sim, core_of(sim, s5).log.term(st.k) == st.term_s5, f"{s5} wrote nothing at {st.k}")
    hands.mark(st, "b")
    sim.run_for(0.5)  # S5 leads for a moment; its messages are still on the wire
    hands.kill(s5)

    # (c) S1 leads a third term and copies x to a majority; x is not committed.
    hands.prefer(s1)
    hands.restart(s1, s2)
    need(
        sim,
        sim.run_until(lambda: _leader_among(sim, live(sim)) in (s1, s2), WAIT_MS),
        "neither S1 nor S2 led in (c)",
    )
    lc = _leader_among(sim, live(sim))
    assert lc is not None
    st.leader_c, st.term_c = lc, core_of(sim, lc).term
    quorum = majority(len(sim.ids))
    need(
        sim,
        sim.run_until(lambda: len(_holding(sim, st.k, st.term_x)) >= quorum, WAIT_MS),
        "x never reached a majority in (c)",
    )
    hands.mark(st, "c")

    if branch == "overwrite":
        # (d) S1 crashes before its own entry is on a majority: S5 can win again.
        hands.kill(lc)
        hands.prefer(s5)
        hands.restart(s5)

        def overwritten() -> bool:
            return _leader_among(sim, live(sim)) == s5 and all(
                core_of(sim, n).log.term(st.k) == st.term_s5 for n in live(sim)
            )

        need(sim, sim.run_until(overwritten, WAIT_MS), f"{s5} did not overwrite x in (d)")
        hands.mark(st, "d")
        return st

    # (e) S1's entry of its own term reaches a majority: it commits, and x with it.
    need(sim, sim.wait_committed(st.k, st.term_x, WAIT_MS), "x never committed")
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
    affected until the block ends; `raft/core/` itself is not changed."""

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
