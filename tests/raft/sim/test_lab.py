"""The classic Raft lab scenarios, replayed deterministically on `raft.sim.simulator`.

Each test builds a `Simulator` from a fixed seed and drives it in *virtual*
time (`run_for`, `run_until`, `wait_leader`, `wait_committed`): there is no
wall clock anywhere, so a failure replays exactly.  Every simulator here is
built with ``replay=`` set to the pytest node id of the test that made it, so
a `SafetyViolation` (raised by the simulator's checker after every event) and
every assertion message below end with the command that runs the case again.

The scenarios follow the usual lab list: elections (§5.2, pre-vote §9.6),
agreement (§5.3), failures and rejoins, fast log backup (end of §5.3),
persistence across crashes (Figure 2), Figure 8 (§5.4.2) under crashes and an
unreliable network, message counts, and finally one test per safety property
that plants a bug and shows the checker catches it -- a checker that cannot
fail proves nothing.

Two small helpers reach under the simulator's public surface, because it has
no API for them: `Tap` wraps ``Simulator._transmit`` to record each message
handed to the network (the simulator only counts them), and `deliver` feeds a
hand-made message to one core and drains its batches through
``Simulator._drive`` (the simulator has no "inject a message" call).
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable

import pytest

import raft.core.protocol
from raft.core import persist
from raft.core.log import RaftLog
from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    Message,
    NodeId,
    RequestVote,
    RequestVoteResponse,
)
from raft.core.persist import Step
from raft.core.protocol import RaftCore, Role
from raft.core.quorum import VoteResult
from raft.core.storage import MemoryStorage, PersistentState
from raft.sim.simulator import NetConfig, SafetyViolation, SimConfig, Simulator
from scenarios.figure8 import figure8  # the directed schedule, shared with the scenario

SEEDS = [0, 1, 2, 3]

#: An election (pre-vote + vote) takes 100-400 ms of virtual time with the
#: default timeout of 10-20 ticks of 10 ms; give it a generous bound.
ELECTION_BOUND_MS = 2_000

#: Every message takes 5 ms, so links are FIFO: nothing overtakes anything.
FIFO = NetConfig(min_delay=5, max_delay=5)


# ---------------------------------------------------------------------------
# Helpers


@pytest.fixture
def make_sim(request: pytest.FixtureRequest) -> Callable[..., Simulator]:
    """Build a Simulator whose failure report names this very test."""

    def make(seed: int, net: NetConfig | None = None, **config: object) -> Simulator:
        cfg = SimConfig(net=net or NetConfig(), **config)
        return Simulator(cfg, seed, replay=f"pytest '{request.node.nodeid}'")

    return make


class Tap:
    """Records every message a simulator hands to its network (before loss)."""

    def __init__(self, sim: Simulator) -> None:
        self.sent: list[Message] = []
        transmit = sim._transmit

        def tapped(m: Message) -> None:
            self.sent.append(m)
            transmit(m)

        sim._transmit = tapped  # type: ignore[method-assign]

    def mark(self) -> int:
        return len(self.sent)

    def since(self, mark: int) -> list[Message]:
        return self.sent[mark:]


def deliver(sim: Simulator, m: Message) -> None:
    """Hand ``m`` to its destination now, as if the network had carried it."""
    node = sim.nodes[m.dst]
    assert node.core is not None, f"{m.dst} is down\n{sim.describe()}"
    node.core.step(m)
    sim._drive(node)


def core(sim: Simulator, node: NodeId) -> RaftCore:
    c = sim.nodes[node].core
    assert c is not None, f"{node} is down\n{sim.describe()}"
    return c


def applied(sim: Simulator, node: NodeId) -> list[bytes]:
    """The commands ``node``'s state machine applied, in order."""
    return [e.data for e in sim.nodes[node].applied]


def log_of(sim: Simulator, node: NodeId) -> list[tuple[int, int, bytes]]:
    return [(e.index, e.term, e.data) for e in core(sim, node).log.entries]


def leader_among(sim: Simulator, nodes: list[NodeId]) -> NodeId | None:
    """A leader in ``nodes`` whose term is the highest among ``nodes``."""
    live = [n for n in nodes if sim.nodes[n].core is not None]
    if not live:
        return None
    top = max(core(sim, n).term for n in live)
    for n in live:
        c = core(sim, n)
        if c.role is Role.LEADER and c.term == top:
            return n
    return None


def commit(sim: Simulator, data: bytes, timeout_ms: float = 10_000) -> tuple[int, int]:
    """Propose ``data`` like a client (§8): retry at the leader until it commits."""
    deadline = sim.now + timeout_ms
    while sim.now < deadline:
        p = sim.propose(data)
        if p is None:
            sim.run_for(20)
        elif sim.wait_committed(*p, timeout_ms=1_000):
            return p
    raise AssertionError(f"{data!r} did not commit within {timeout_ms} ms\n{sim.describe()}")


def wait_applied(sim: Simulator, index: int, nodes: list[NodeId] | None = None) -> None:
    """Every node in ``nodes`` (default: all) has applied up to ``index``."""
    nodes = nodes or sim.ids

    def done() -> bool:
        return all(
            sim.nodes[n].core is not None and sim.nodes[n].core.applied_index >= index
            for n in nodes
        )

    assert sim.run_until(done, 5_000), f"not applied up to {index}\n{sim.describe()}"


def assert_same_applied(sim: Simulator, nodes: list[NodeId] | None = None) -> list[bytes]:
    nodes = nodes or sim.ids
    first = applied(sim, nodes[0])
    for n in nodes[1:]:
        assert applied(sim, n) == first, (
            f"{n} applied {applied(sim, n)}, {nodes[0]} applied {first}\n{sim.describe()}"
        )
    return first


def heal_all(sim: Simulator) -> None:
    sim.heal()
    for n in sim.ids:
        sim.restart(n)


def finish(sim: Simulator) -> list[bytes]:
    """Heal everything; a final command commits and every node converges."""
    heal_all(sim)
    assert sim.wait_leader(10_000), f"no leader after healing\n{sim.describe()}"
    index, _ = commit(sim, b"final")
    wait_applied(sim, index)
    return assert_same_applied(sim)


# ---------------------------------------------------------------------------
# Elections (§5.2, §9.6)


@pytest.mark.parametrize("seed", SEEDS)
def test_initial_election(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, f"no leader within {ELECTION_BOUND_MS} ms\n{sim.describe()}"
    term = core(sim, leader).term

    def settled() -> bool:
        return all(
            n == leader or (core(sim, n).role is Role.FOLLOWER and core(sim, n).term == term)
            for n in sim.ids
        )

    assert sim.run_until(settled, 500), f"nodes do not follow {leader}\n{sim.describe()}"
    # Nothing fails: the leader stays and nobody starts an election.
    notes = len(sim.log)
    sim.run_for(5_000)
    assert sim.leader() == leader, sim.describe()
    assert {core(sim, n).term for n in sim.ids} == {term}, sim.describe()
    assert sim.log[notes:] == [], f"unprovoked elections: {sim.log[notes:]}\n{sim.describe()}"


@pytest.mark.parametrize("seed", SEEDS)
def test_reelection_and_rejoin(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    old = sim.wait_leader(ELECTION_BOUND_MS)
    assert old, sim.describe()
    others = [n for n in sim.ids if n != old]

    sim.isolate(old)
    assert sim.run_until(lambda: leader_among(sim, others), ELECTION_BOUND_MS), (
        f"no new leader after isolating {old}\n{sim.describe()}"
    )
    new = leader_among(sim, others)
    new_term = core(sim, new).term
    # Pre-vote (§9.6): the isolated node cannot win, so it never bumps its term.
    sim.run_for(1_000)
    assert core(sim, old).term < new_term, sim.describe()
    assert core(sim, old).role is not Role.LEADER, f"check-quorum (§6.2)\n{sim.describe()}"

    # The old leader rejoins: it follows, and disturbs nobody.
    sim.heal()
    sim.run_for(2_000)
    assert sim.leader() == new, sim.describe()
    assert {core(sim, n).term for n in sim.ids} == {new_term}, sim.describe()
    assert core(sim, old).leader_id == new, sim.describe()

    # No majority, no leader; a majority again, a leader again.
    sim.partition([new], [others[0] if others[0] != new else others[1]], [old])
    sim.run_for(2_000)
    assert sim.leader() is None, f"a leader without a majority\n{sim.describe()}"
    sim.heal()
    assert sim.wait_leader(ELECTION_BOUND_MS), sim.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_many_elections(make_sim, seed):
    sim = make_sim(seed, nodes=7)
    rng = random.Random(seed)
    assert sim.wait_leader(ELECTION_BOUND_MS), sim.describe()
    for _ in range(10):
        cut = rng.sample(sim.ids, 3)
        rest = [n for n in sim.ids if n not in cut]
        sim.partition(*([n] for n in cut), rest)
        # Four of seven is a majority: it must (re-)elect within the bound.
        assert sim.run_until(lambda rest=rest: leader_among(sim, rest), ELECTION_BOUND_MS), (
            f"no leader among {rest}\n{sim.describe()}"
        )
        sim.heal()
    sim.run_for(1_000)
    assert sim.leader(), sim.describe()


# ---------------------------------------------------------------------------
# Agreement (§5.3)


@pytest.mark.parametrize("seed", SEEDS)
def test_basic_agreement(make_sim, seed):
    sim = make_sim(seed, nodes=5)
    assert sim.wait_leader(ELECTION_BOUND_MS), sim.describe()
    want = []
    for i in range(10):
        data = f"cmd{i}".encode()
        assert all(data not in applied(sim, n) for n in sim.ids), "applied before proposed"
        index, _ = commit(sim, data)
        want.append(data)
        wait_applied(sim, index)
        for n in sim.ids:
            assert applied(sim, n) == want, f"{n}: {applied(sim, n)}\n{sim.describe()}"


@pytest.mark.parametrize("seed", SEEDS)
def test_follower_failure(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, sim.describe()
    commit(sim, b"a")
    f1, f2 = [n for n in sim.ids if n != leader]
    sim.crash(f1)
    index, _ = commit(sim, b"b")  # two of three still agree
    wait_applied(sim, index, [leader, f2])
    assert applied(sim, leader) == applied(sim, f2) == [b"a", b"b"], sim.describe()

    sim.crash(f2)
    committed = core(sim, leader).commit_index
    p = sim.propose(b"c")
    sim.run_for(2_000)
    assert p is None or not sim.is_committed(*p), f"committed alone\n{sim.describe()}"
    assert core(sim, leader).commit_index == committed, sim.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_leader_failure(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    first = sim.wait_leader(ELECTION_BOUND_MS)
    assert first, sim.describe()
    commit(sim, b"a")
    sim.crash(first)
    second = sim.wait_leader(ELECTION_BOUND_MS)
    assert second and second != first, sim.describe()
    index, _ = commit(sim, b"b")
    live = [n for n in sim.ids if n != first]
    wait_applied(sim, index, live)
    assert_same_applied(sim, live)

    sim.crash(second)
    p = sim.propose(b"c")
    sim.run_for(2_000)
    assert p is None or not sim.is_committed(*p), sim.describe()
    assert sim.leader() is None, f"one node of three leads\n{sim.describe()}"


@pytest.mark.parametrize("seed", SEEDS)
def test_fail_agree(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, sim.describe()
    wait_applied(sim, commit(sim, b"a")[0])
    lagging = next(n for n in sim.ids if n != leader)
    sim.isolate(lagging)
    for i in range(5):
        commit(sim, f"while-away-{i}".encode())
    assert applied(sim, lagging) == [b"a"], sim.describe()
    sim.heal()
    index, _ = commit(sim, b"after")
    wait_applied(sim, index)
    cmds = assert_same_applied(sim)
    assert cmds == [b"a", *(f"while-away-{i}".encode() for i in range(5)), b"after"]


@pytest.mark.parametrize("seed", SEEDS)
def test_fail_no_agree(make_sim, seed):
    sim = make_sim(seed, nodes=5)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, sim.describe()
    commit(sim, b"a")
    cut = [n for n in sim.ids if n != leader][:3]
    sim.partition(*([n] for n in cut), [n for n in sim.ids if n not in cut])
    committed = max(core(sim, n).commit_index for n in sim.ids)
    p = sim.propose(b"lonely")
    assert p is not None, sim.describe()
    sim.run_for(2_000)
    assert not sim.is_committed(*p), f"committed without a majority\n{sim.describe()}"
    assert max(core(sim, n).commit_index for n in sim.ids) == committed, sim.describe()

    sim.heal()
    for i in range(3):
        commit(sim, f"again-{i}".encode())
    cmds = finish(sim)
    assert cmds[0] == b"a" and cmds[-4:] == [b"again-0", b"again-1", b"again-2", b"final"]


@pytest.mark.parametrize("seed", SEEDS)
def test_concurrent_proposals(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    tap = Tap(sim)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, sim.describe()
    commit(sim, b"warm-up")
    mark = tap.mark()
    # 20 clients at once: their commands reach the core between two batches.
    c = core(sim, leader)
    burst = [f"client-{i}".encode() for i in range(20)]
    indexes = [c.propose(d) for d in burst]
    term = c.term
    assert sim.run_until(lambda: all(sim.is_committed(i, term) for i in indexes), 2_000), (
        sim.describe()
    )
    wait_applied(sim, indexes[-1])
    assert assert_same_applied(sim) == [b"warm-up", *burst]
    batch = max(
        (len(m.entries) for m in tap.since(mark) if isinstance(m, AppendEntries)), default=0
    )
    assert batch >= len(burst), f"largest AppendEntries carried {batch}\n{sim.describe()}"


# ---------------------------------------------------------------------------
# Overwriting uncommitted entries (§5.3)


@pytest.mark.parametrize("seed", SEEDS)
def test_rejoin_of_partitioned_leader(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    l1 = sim.wait_leader(ELECTION_BOUND_MS)
    assert l1, sim.describe()
    commit(sim, b"a")
    sim.isolate(l1)
    for d in (b"x1", b"x2", b"x3"):  # never committed: nobody hears of them
        assert sim.propose(d, l1), sim.describe()
    others = [n for n in sim.ids if n != l1]
    assert sim.run_until(lambda: leader_among(sim, others), ELECTION_BOUND_MS), sim.describe()
    l2 = leader_among(sim, others)
    commit(sim, b"b")

    # The new leader goes away; the old one comes back to the third node.
    third = next(n for n in others if n != l2)
    sim.partition([l2], [l1, third])
    assert sim.run_until(lambda: leader_among(sim, [l1, third]), ELECTION_BOUND_MS), sim.describe()
    commit(sim, b"c")
    sim.heal()
    index, _ = commit(sim, b"d")
    wait_applied(sim, index)
    assert assert_same_applied(sim) == [b"a", b"b", b"c", b"d"]
    majority_log = log_of(sim, third)
    assert log_of(sim, l1) == majority_log, f"{l1}'s log kept stale entries\n{sim.describe()}"
    assert not {b"x1", b"x2", b"x3"} & {d for _, _, d in majority_log}, sim.describe()


def backup(sim: Simulator) -> list[AppendEntriesResponse]:
    """Two rounds of conflicting uncommitted entries on a minority leader
    while the majority commits others; returns the AppendEntries
    rejections from the moment the first minority rejoins a majority.
    Every node must converge."""
    tap = Tap(sim)
    l1 = sim.wait_leader(ELECTION_BOUND_MS)
    assert l1, sim.describe()
    commit(sim, b"init")
    f1, a, b, c = [n for n in sim.ids if n != l1]

    sim.partition([l1, f1], [a, b, c])
    for i in range(60):  # never committed: only l1 and f1 hear of them
        assert sim.propose(f"lost-{i}".encode(), l1), sim.describe()
    sim.run_for(50)
    assert core(sim, f1).log.last_index > 60, f"{f1} should hold them\n{sim.describe()}"
    assert sim.run_until(lambda: leader_among(sim, [a, b, c]), ELECTION_BOUND_MS), sim.describe()
    kept = [f"kept-{i}".encode() for i in range(50)]
    for d in kept:
        commit(sim, d)
    wait_applied(sim, core(sim, sim.leader()).commit_index, [a, b, c])

    # The majority's leader and one follower go off with 50 more lost
    # entries; the third rejoins l1 and f1, and from them a new majority.
    l2 = sim.leader()
    x, y = [n for n in (a, b, c) if n != l2]
    sim.partition([l2, x], [l1, f1, y])
    for i in range(50):
        assert sim.propose(f"lost-again-{i}".encode(), l2), sim.describe()
    mark = tap.mark()
    assert sim.run_until(lambda: leader_among(sim, [l1, f1, y]) == y, ELECTION_BOUND_MS), (
        f"{y} holds the most up-to-date log and must win\n{sim.describe()}"
    )
    more = [f"more-{i}".encode() for i in range(50)]
    for d in more:
        commit(sim, d)

    sim.heal()
    index, _ = commit(sim, b"after-heal")
    wait_applied(sim, index)
    assert assert_same_applied(sim) == [b"init", *kept, *more, b"after-heal"]
    ref = log_of(sim, y)
    for n in sim.ids:
        assert log_of(sim, n) == ref, f"{n} did not converge\n{sim.describe()}"
    return [m for m in tap.since(mark) if isinstance(m, AppendEntriesResponse) and not m.success]


@pytest.mark.parametrize("seed", SEEDS)
def test_backup(make_sim, seed):
    """Many conflicting entries are skipped a term at a time (end of §5.3)."""
    sim = make_sim(seed, net=FIFO, nodes=5, max_entries_per_message=64)
    rejections = len(backup(sim))
    # One entry per round trip would take ~50 rejections per stale node; with
    # the conflict hint, one per stale node and divergent term suffices.
    assert rejections <= 4, f"{rejections} AppendEntries rejections\n{sim.describe()}"


@pytest.mark.parametrize("seed", SEEDS)
def test_backup_with_reordering(make_sim, seed):
    """On a reordering network a follower also rejects appends that overtook
    an earlier one (a gap: conflict_term 0); those are not backup steps."""
    sim = make_sim(seed, nodes=5, max_entries_per_message=64)
    conflicts = [m for m in backup(sim) if m.conflict_term != 0]
    assert len(conflicts) <= 8, f"{len(conflicts)} conflict rejections\n{sim.describe()}"


def test_backup_bound_can_fail(make_sim, monkeypatch):
    """Without the conflict hint (back up one entry per rejection) the bound
    of test_backup does not hold: the bound measures something."""
    monkeypatch.setattr(RaftCore, "_next_after_rejection", lambda self, m: m.match_index)
    sim = make_sim(0, net=FIFO, nodes=5, max_entries_per_message=64)
    assert len(backup(sim)) > 50, sim.describe()


# ---------------------------------------------------------------------------
# Persistence (Figure 2: term, vote and log survive a crash)


@pytest.mark.parametrize("seed", SEEDS)
def test_persist_restart_all(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    assert sim.wait_leader(ELECTION_BOUND_MS), sim.describe()
    for i in range(5):
        commit(sim, f"before-{i}".encode())
    terms = {n: core(sim, n).term for n in sim.ids}
    for n in sim.ids:
        sim.crash(n)
    sim.run_for(500)
    for n in sim.ids:
        sim.restart(n)
        assert core(sim, n).term == terms[n], f"{n} forgot its term\n{sim.describe()}"
    assert sim.wait_leader(ELECTION_BOUND_MS), sim.describe()
    index, _ = commit(sim, b"after")
    wait_applied(sim, index)
    want = [f"before-{i}".encode() for i in range(5)] + [b"after"]
    assert assert_same_applied(sim) == want


@pytest.mark.parametrize("seed", SEEDS)
def test_persist_restart_leader(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    want = []
    for i in range(4):
        leader = sim.wait_leader(ELECTION_BOUND_MS)
        assert leader, sim.describe()
        want.append(f"cmd-{i}".encode())
        commit(sim, want[-1])
        sim.crash(leader)
        sim.run_for(50 + 100 * i)  # away for longer each round
        sim.restart(leader)
    assert finish(sim) == [*want, b"final"]


@pytest.mark.parametrize("seed", SEEDS)
def test_persist_partial_crashes(make_sim, seed):
    sim = make_sim(seed, nodes=5)
    rng = random.Random(seed)
    want = []
    for i in range(15):
        down = rng.sample(sim.ids, rng.randrange(0, 3))  # a majority stays up
        for n in down:
            sim.crash(n)
        want.append(f"cmd-{i}".encode())
        commit(sim, want[-1])
        for n in down:
            sim.restart(n)
    got = finish(sim)
    assert got == [*want, b"final"], sim.describe()


def test_no_second_vote_after_restart_in_same_term(make_sim):
    """A vote is durable before it is sent: restarted in the same term, a
    node refuses a second candidate (Figure 2, votedFor on stable storage)."""
    sim = make_sim(7, nodes=3, pre_vote=False, check_quorum=False)
    tap = Tap(sim)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, sim.describe()
    voter, a = [n for n in sim.ids if n != leader]
    c = core(sim, voter)
    term = c.term + 1
    last = (c.log.last_index, c.log.last_term)
    deliver(sim, RequestVote(term, a, voter, *last))
    sim.crash(voter)
    sim.restart(voter)
    assert core(sim, voter).vote == a, sim.describe()
    mark = tap.mark()
    deliver(sim, RequestVote(term, leader, voter, *last))
    answers = [m for m in tap.since(mark) if isinstance(m, RequestVoteResponse)]
    assert answers and not answers[0].granted, f"voted twice in term {term}\n{sim.describe()}"
    sim.run_for(1_000)  # the checker watched all of it


def _vote_then_crash_before_fsync(sim: Simulator) -> tuple[NodeId, NodeId, NodeId, int]:
    """A voter grants ``a`` a vote and crashes inside that batch, before its fsync."""
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, sim.describe()
    voter, a = [n for n in sim.ids if n != leader]
    c = core(sim, voter)
    term = c.term + 1
    last = (c.log.last_index, c.log.last_term)
    sim.crash(voter, before=Step.SYNC)
    deliver(sim, RequestVote(term, a, voter, *last))
    assert not sim.nodes[voter].up, sim.describe()
    sim.restart(voter)
    deliver(sim, RequestVote(term, leader, voter, *last))
    return leader, voter, a, term


def test_a_crash_before_the_fsync_loses_a_vote_nobody_heard(make_sim):
    """Persist before send (Figure 2): crashed between granting a vote and its
    fsync, the voter comes back without it -- and, the grant never having
    left, may safely vote again in that term."""
    sim = make_sim(7, nodes=3, pre_vote=False, check_quorum=False)
    tap = Tap(sim)
    leader, voter, _, term = _vote_then_crash_before_fsync(sim)
    grants = [m for m in tap.sent if isinstance(m, RequestVoteResponse) and m.term == term]
    assert [(m.src, m.dst, m.granted) for m in grants] == [(voter, leader, True)], sim.describe()
    sim.run_for(1_000)  # the checker watched all of it


def test_checker_catches_a_vote_sent_before_its_fsync(make_sim, monkeypatch):
    """Planted bug: the persistence order lets a grant leave before the fsync;
    the same crash then makes the voter forget a vote it gave (§5.2)."""
    real = persist.plan

    def hasty(*args, **kwargs):
        p = real(*args, **kwargs)
        votes = [m for m in p.late if isinstance(m, RequestVoteResponse)]
        rest = [m for m in p.late if not isinstance(m, RequestVoteResponse)]
        return dataclasses.replace(p, early=p.early + votes, late=rest)

    monkeypatch.setattr(persist, "plan", hasty)
    sim = make_sim(7, nodes=3, pre_vote=False, check_quorum=False)
    with pytest.raises(SafetyViolation, match=r"term went back|voted for \w+ and \w+ in term"):
        _vote_then_crash_before_fsync(sim)


@pytest.mark.parametrize("seed", range(8))
def test_votes_survive_bounces(make_sim, seed):
    """Crash-restarts in the middle of elections, without pre-vote so that
    terms move: the checker sees every vote and must see at most one per
    node and term."""
    net = NetConfig(min_delay=1, max_delay=15, drop=0.05)
    sim = make_sim(seed, net=net, nodes=5, pre_vote=False)
    rng = random.Random(seed)
    for _ in range(60):
        victim = rng.choice(sim.ids)
        sim.crash(victim)
        sim.run_for(rng.uniform(0, 40))
        sim.restart(victim)
        sim.propose(b"v")
        sim.run_for(rng.uniform(0, 150))
    assert len(sim.checker.votes) > 10, sim.describe()
    finish(sim)


# ---------------------------------------------------------------------------
# Figure 8 and an unreliable network (§5.4.2)


@pytest.mark.parametrize("seed", range(6))
def test_figure8_unreliable_with_crashes(make_sim, seed):
    net = NetConfig(min_delay=1, max_delay=15, drop=0.1, long=0.1, long_delay=300)
    # One entry per message: entries of different terms travel separately.
    sim = make_sim(seed, net=net, nodes=5, max_entries_per_message=1, max_inflight=4)
    rng = random.Random(seed)
    proposed = []
    for it in range(1_000):
        leader = sim.leader()
        if leader is not None:
            p = sim.propose(f"f8-{it}".encode())
            if p:
                proposed.append(p)
        sim.run_for(rng.choice((2, 10, 40)))
        r = rng.random()
        if leader is not None and r < 0.08:
            sim.crash(leader)
        elif r < 0.12:
            sim.crash(rng.choice(sim.ids))
        elif r < 0.13:
            shuffled = rng.sample(sim.ids, 5)
            sim.partition(shuffled[:2], shuffled[2:])
        elif r < 0.16:
            sim.heal()
        up = [n for n in sim.ids if sim.nodes[n].up]
        if len(up) < 3 or rng.random() < 0.1:
            down = [n for n in sim.ids if not sim.nodes[n].up]
            if down:
                sim.restart(rng.choice(down))
    cmds = finish(sim)
    committed = [p for p in proposed if sim.is_committed(*p)]
    assert len(committed) > 20, f"only {len(committed)} commits\n{sim.describe()}"
    crashes = sum(n.crashes for n in sim.nodes.values())
    terms = max(core(sim, n).term for n in sim.ids)
    assert crashes > 30 and terms > 10, f"too tame: {crashes} crashes, {terms} terms"
    assert len(set(cmds)) == len(cmds), "a command applied twice"


@pytest.mark.parametrize("seed", SEEDS)
def test_unreliable_agreement(make_sim, seed):
    net = NetConfig(min_delay=1, max_delay=10, drop=0.1, long=0.1, long_delay=1_000)
    sim = make_sim(seed, net=net, nodes=5)
    assert sim.wait_leader(5_000), sim.describe()
    cmds = [f"u-{i}".encode() for i in range(30)]
    for d in cmds:
        commit(sim, d, timeout_ms=20_000)
    got = finish(sim)
    # A retried command may commit twice (§8 needs client ids to prevent it);
    # every command commits, in order of first appearance.
    firsts = list(dict.fromkeys(d for d in got if d != b"final"))
    assert firsts == cmds, sim.describe()


@pytest.mark.parametrize("seed", SEEDS)
def test_churn(make_sim, seed):
    net = NetConfig(min_delay=1, max_delay=15, drop=0.02)
    sim = make_sim(seed, net=net, nodes=5)
    rng = random.Random(seed)
    proposed = []
    for it in range(200):
        r = rng.random()
        if r < 0.2:
            sim.crash(rng.choice(sim.ids))
        elif r < 0.5:
            sim.restart(rng.choice(sim.ids))
        for k in range(rng.randrange(0, 4)):
            p = sim.propose(f"churn-{it}-{k}".encode())
            if p:
                proposed.append((p, f"churn-{it}-{k}".encode()))
        sim.run_for(rng.uniform(5, 80))
    cmds = finish(sim)
    acked = [d for p, d in proposed if sim.is_committed(*p)]
    assert acked, f"nothing committed under churn\n{sim.describe()}"
    assert [d for d in cmds if d in set(acked)] == acked, sim.describe()


# ---------------------------------------------------------------------------
# Message counts


@pytest.mark.parametrize("seed", SEEDS)
def test_election_message_count(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, sim.describe()
    # Pre-vote, vote, answers and the leader's no-op: about a dozen.
    assert sim.messages_sent <= 30, f"{sim.messages_sent} messages\n{sim.describe()}"


@pytest.mark.parametrize("seed", SEEDS)
def test_idle_cluster_sends_heartbeats_only(make_sim, seed):
    sim = make_sim(seed, nodes=3)
    tap = Tap(sim)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert leader, sim.describe()
    sim.run_for(500)
    mark, term = tap.mark(), core(sim, leader).term
    sim.run_for(5_000)
    sent = tap.since(mark)
    kinds = Counter(type(m).__name__ for m in sent)
    assert set(kinds) <= {"AppendEntries", "AppendEntriesResponse"}, kinds
    assert all(not m.entries for m in sent if isinstance(m, AppendEntries)), "entries when idle"
    assert core(sim, leader).term == term and sim.leader() == leader, sim.describe()
    # One heartbeat per follower per heartbeat interval, and one answer each.
    cfg = sim.config
    per_second = 2 * (cfg.nodes - 1) * 1_000 / (cfg.heartbeat_ticks * cfg.tick_ms)
    rate = len(sent) / 5
    assert 0.9 * per_second <= rate <= 1.1 * per_second, f"{rate}/s, expected {per_second}/s"


@pytest.mark.parametrize("seed", SEEDS)
def test_agreement_message_count(make_sim, seed):
    # FIFO links: on a reordering network a heartbeat can overtake an append
    # and be rejected, and the leader resends; that is counted elsewhere.
    sim = make_sim(seed, net=FIFO, nodes=3)
    assert sim.wait_leader(ELECTION_BOUND_MS), sim.describe()
    sim.run_for(100)
    before = sim.messages_sent
    started = sim.now
    for i in range(10):
        commit(sim, f"cmd-{i}".encode())
    heartbeats = 2 * 2 * (sim.now - started) / (sim.config.heartbeat_ticks * sim.config.tick_ms)
    # Per command: an append and an answer per follower, plus the commit
    # notice and its answer; heartbeats on top.
    extra = sim.messages_sent - before - heartbeats
    assert extra <= 10 * 8 + 10, f"{extra} messages beyond heartbeats\n{sim.describe()}"


# ---------------------------------------------------------------------------
# The checker can fail: one planted bug per property


def _first_violation(run: Callable[[int], None], seeds: range) -> str:
    for seed in seeds:
        try:
            run(seed)
        except SafetyViolation as e:
            # The report says how to run the case again.
            assert f"seed {seed} at " in str(e) and "replay: pytest 'tests/" in str(e), str(e)
            return str(e)
    raise AssertionError(f"no SafetyViolation in seeds {seeds.start}..{seeds.stop - 1}")


def _random_faults(sim: Simulator, seed: int, rounds: int = 30) -> None:
    """A short soak-like run: partitions, crashes, bounces and proposals."""
    rng = random.Random(seed)
    for r in range(rounds):
        f = rng.random()
        if f < 0.25:
            ids = rng.sample(sim.ids, len(sim.ids))
            k = rng.randrange(1, len(ids))
            sim.partition(ids[:k], ids[k:])
        elif f < 0.45:
            sim.crash(sim.leader() or rng.choice(sim.ids))
        elif f < 0.6:
            victim = rng.choice(sim.ids)
            sim.crash(victim)
            sim.run_for(rng.uniform(0, 30))
            sim.restart(victim)
        elif f < 0.8:
            sim.heal()
            for n in sim.ids:
                sim.restart(n)
        for k in range(rng.randrange(0, 4)):
            sim.propose(f"{r}:{k}".encode())
        sim.run_for(rng.uniform(20, 300))


def test_checker_catches_two_leaders_in_a_term(make_sim, monkeypatch):
    """Planted bug: a candidate wins with two votes out of five."""

    def sloppy(voters, votes):
        return VoteResult.WON if sum(votes.values()) >= 2 else VoteResult.PENDING

    monkeypatch.setattr(raft.core.protocol, "vote_result", sloppy)

    def run(seed):
        sim = make_sim(seed, nodes=5, pre_vote=False)
        leader = sim.wait_leader(ELECTION_BOUND_MS)
        wait_applied(sim, commit(sim, b"a")[0])
        a, b, c, d = [n for n in sim.ids if n != leader]
        sim.partition([leader], [a, b], [c, d])  # two pairs elect in step
        sim.run_for(2_000)

    msg = _first_violation(run, range(20))
    # Either the second leader of the term is seen, or (a stricter checker)
    # already the first one's minority win.
    assert "Election Safety" in msg or "not a majority" in msg, msg


def test_checker_catches_a_forgotten_vote(make_sim, monkeypatch):
    """Planted bug: storage drops votedFor, so a restarted node votes again."""
    set_hs = MemoryStorage.set_hard_state

    def forgetful(self, hs: HardState) -> None:
        set_hs(self, HardState(hs.term, None, hs.commit))

    monkeypatch.setattr(MemoryStorage, "set_hard_state", forgetful)
    # The directed schedule of test_no_second_vote_after_restart_in_same_term.
    sim = make_sim(7, nodes=3, pre_vote=False, check_quorum=False)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    voter, a = [n for n in sim.ids if n != leader]
    c = core(sim, voter)
    term, last = c.term + 1, (c.log.last_index, c.log.last_term)
    deliver(sim, RequestVote(term, a, voter, *last))
    sim.crash(voter)
    sim.restart(voter)
    with pytest.raises(SafetyViolation, match=f"voted for {a} and {leader} in term {term}"):
        deliver(sim, RequestVote(term, leader, voter, *last))


def test_checker_catches_log_mismatch(make_sim, monkeypatch):
    """Planted bug: a follower accepts a client command into its own log."""
    original = RaftCore.propose

    def anywhere(self, data):
        if self.role is Role.LEADER:
            return original(self, data)
        return self._append_own(data, EntryKind.NORMAL)

    monkeypatch.setattr(RaftCore, "propose", anywhere)
    sim = make_sim(3, nodes=3)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    commit(sim, b"a")
    follower = next(n for n in sim.ids if n != leader)
    sim.propose(b"rogue", follower)
    with pytest.raises(SafetyViolation, match="Log Matching"):
        sim.propose(b"honest", leader)


def test_checker_catches_a_stale_leader(make_sim, monkeypatch):
    """Planted bug: the election restriction (§5.4.1) is gone."""
    monkeypatch.setattr(RaftLog, "is_up_to_date", lambda self, index, term: True)

    def run(seed):
        sim = make_sim(seed, nodes=3)
        leader = sim.wait_leader(ELECTION_BOUND_MS)
        stale = next(n for n in sim.ids if n != leader)
        sim.isolate(stale)
        for i in range(3):
            commit(sim, f"c{i}".encode())
        sim.heal()
        sim.crash(leader)  # the stale node and the up-to-date one race
        sim.run_for(2_000)

    assert "Leader Completeness" in _first_violation(run, range(20))


@pytest.mark.parametrize("seed", SEEDS)
def test_figure8_directed(make_sim, seed):
    sim = make_sim(
        seed, nodes=5, pre_vote=False, check_quorum=False, max_entries_per_message=1, max_inflight=1
    )
    k, t1, s5 = figure8(sim)
    assert sim.leader() != s5, f"S5 would overwrite committed x\n{sim.describe()}"
    finish(sim)
    for n in sim.ids:
        assert core(sim, n).log.entry(k) == Entry(t1, k, b"x"), f"{n}\n{sim.describe()}"


def test_checker_catches_figure8(make_sim, monkeypatch):
    """Planted bug: the leader commits an earlier term's entry by counting
    replicas (what §5.4.2 forbids); in Figure 8 it is then overwritten."""

    def counting(self) -> bool:
        voters = self.conf.voters
        index = raft.core.protocol.committed_index(voters, {p: self._match_of(p) for p in voters})
        if index <= self.log.committed:
            return False
        self.log.committed = index
        return True

    monkeypatch.setattr(RaftCore, "_maybe_commit", counting)
    sim = make_sim(
        0, nodes=5, pre_vote=False, check_quorum=False, max_entries_per_message=1, max_inflight=1
    )
    with pytest.raises(SafetyViolation, match="Leader Completeness"):
        figure8(sim)


def test_checker_catches_a_corrupted_command(make_sim, monkeypatch):
    """Planted bug: storage hands back a different command than it stored."""

    def corrupt(self) -> PersistentState:
        s = self._state
        entries = [
            Entry(e.term, e.index, b"bit-rot", e.kind) if e.data == b"victim" else e
            for e in s.entries
        ]
        return PersistentState(s.hard_state, s.snapshot, entries)

    monkeypatch.setattr(MemoryStorage, "load", corrupt)
    sim = make_sim(5, nodes=3)
    assert sim.wait_leader(ELECTION_BOUND_MS)
    index, _ = commit(sim, b"victim")
    wait_applied(sim, index)
    victim = next(n for n in sim.ids if n != sim.leader())
    sim.crash(victim)
    sim.restart(victim)
    with pytest.raises(SafetyViolation, match="State Machine Safety"):
        sim.run_for(1_000)


def test_checker_catches_a_term_going_back(make_sim, monkeypatch):
    """Planted bug: storage loses the current term on a crash."""
    sim = make_sim(2, nodes=3)
    leader = sim.wait_leader(ELECTION_BOUND_MS)
    assert core(sim, leader).term >= 1
    victim = next(n for n in sim.ids if n != leader)
    store = sim.nodes[victim].storage
    load = store.load

    def amnesia() -> PersistentState:
        s = load()
        return PersistentState(HardState(0, None, 0), s.snapshot, s.entries)

    monkeypatch.setattr(store, "load", amnesia)
    sim.crash(victim)
    with pytest.raises(SafetyViolation, match="term went back"):
        sim.restart(victim)
