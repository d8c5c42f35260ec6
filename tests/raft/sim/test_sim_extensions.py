"""The core's part two in the simulator: seeded, virtual time only.

The simulator's `SafetyChecker` runs after every event (Figure 3's
properties, quorum of the leader's own configuration, read freshness), so
each test here is also a safety test under its faults.  Each test names the
section it checks.
"""

from __future__ import annotations

import random

import pytest

from raft.core.membership import ConfChangeOp
from raft.core.messages import NodeId
from raft.core.protocol import Role
from raft.sim.simulator import NetConfig, SimConfig, Simulator

SEEDS = [0, 1, 2]
LOSSY = NetConfig(min_delay=1, max_delay=12, drop=0.05, duplicate=0.05, long=0.02)


@pytest.fixture
def make_sim(request: pytest.FixtureRequest):
    def make(seed: int, net: NetConfig | None = None, **config: object) -> Simulator:
        cfg = SimConfig(net=net or NetConfig(), **config)
        return Simulator(cfg, seed, replay=f"pytest '{request.node.nodeid}'")

    return make


def commit(sim: Simulator, data: bytes, timeout_ms: float = 10_000) -> tuple[int, int]:
    """Retry at the leader like a client (§8) until ``data`` commits."""
    deadline = sim.now + timeout_ms
    while sim.now < deadline:
        p = sim.propose(data)
        if p is None:
            sim.run_for(20)
        elif sim.wait_committed(*p, timeout_ms=1_000):
            return p
    raise AssertionError(f"{data!r} did not commit\n{sim.describe()}")


def applied(sim: Simulator, node: NodeId) -> list[bytes]:
    return [e.data for e in sim.nodes[node].applied]


def converge(sim: Simulator, nodes: list[NodeId]) -> None:
    index, _ = commit(sim, b"final")

    def done() -> bool:
        return all(
            sim.nodes[n].core is not None and sim.nodes[n].core.applied_index >= index
            for n in nodes
        )

    assert sim.run_until(done, 10_000), sim.describe()
    first = applied(sim, nodes[0])
    for n in nodes[1:]:
        assert applied(sim, n) == first, f"{n} differs\n{sim.describe()}"


def change(sim: Simulator, op: ConfChangeOp, node: NodeId, timeout_ms: float = 10_000) -> None:
    """Retry a membership change until it commits (one at a time, §4)."""
    deadline = sim.now + timeout_ms
    while sim.now < deadline:
        index = sim.add_node(node) if op is ConfChangeOp.ADD_LEARNER else sim.change(op, node)
        leader = sim.leader()
        if index is not None and leader is not None:
            term = sim.nodes[leader].core.term
            if sim.wait_committed(index, term, timeout_ms=1_000):
                return
        sim.run_for(50)
    raise AssertionError(f"{op.value} {node} did not commit\n{sim.describe()}")


def promote_when_caught_up(sim: Simulator, node: NodeId) -> None:
    def caught_up() -> bool:
        leader = sim.leader()
        if leader is None:
            return False
        core = sim.nodes[leader].core
        pr = core.progress.get(node)
        return pr is not None and pr.match >= core.commit_index

    assert sim.run_until(caught_up, 10_000), sim.describe()
    change(sim, ConfChangeOp.PROMOTE, node)


# ============================================================ §7


# §7 under a lossy network: a follower that was down while the others
# compacted comes back behind the snapshot and catches up by InstallSnapshot
# in small chunks, lost, duplicated and reordered on the way.
@pytest.mark.parametrize("seed", SEEDS)
def test_crashed_follower_catches_up_by_snapshot(make_sim, seed):
    sim = make_sim(seed, LOSSY, snapshot_entries=8, trailing_entries=2, snapshot_chunk_bytes=32)
    assert sim.wait_leader()
    leader = sim.leader()
    victim = next(i for i in sim.ids if i != leader)
    sim.crash(victim)
    for k in range(40):
        commit(sim, f"c{k}".encode())
    others = [i for i in sim.ids if i != victim]
    assert all(sim.nodes[i].core.snapshot.meta.index > 0 for i in others)
    sim.restart(victim)
    converge(sim, sim.ids)
    assert sim.nodes[victim].core.snapshot.meta.index > 0
    assert applied(sim, victim)[:40] == [f"c{k}".encode() for k in range(40)]


# ============================================================ §4


# Dissertation §4: grow 3 -> 5 and shrink back to 3, one server at a time,
# under partitions and a lossy network, with the checker on throughout.
@pytest.mark.parametrize("seed", SEEDS)
def test_grow_to_five_and_shrink_to_three_under_partitions(make_sim, seed):
    sim = make_sim(seed, LOSSY, snapshot_entries=16, trailing_entries=4)
    assert sim.wait_leader()
    for k, node in enumerate(("n4", "n5")):
        change(sim, ConfChangeOp.ADD_LEARNER, node)
        commit(sim, f"grow{k}".encode())
        promote_when_caught_up(sim, node)
        leader = sim.leader()
        sim.isolate(leader)  # the new leader must be elected in the new configuration
        commit(sim, f"after-isolate{k}".encode())
        sim.heal()
    assert set(sim.nodes[sim.leader()].core.conf.voters) == {"n1", "n2", "n3", "n4", "n5"}

    # Two of five cut off: the other three still commit (3 of 5).
    sim.partition(["n1", "n2", "n3"], ["n4", "n5"])
    commit(sim, b"three-of-five")
    sim.heal()

    for node in ("n5", "n4"):
        change(sim, ConfChangeOp.REMOVE, node)
        sim.partition([node], [i for i in sim.ids if i != node])
    assert set(sim.nodes[sim.leader()].core.conf.voters) == {"n1", "n2", "n3"}
    sim.partition(["n4", "n5"], ["n1", "n2", "n3"])  # removed servers are gone
    converge(sim, ["n1", "n2", "n3"])
    assert sim.checker.checks > 0


# Dissertation §4.2.2: the leader removes itself; once the change commits it
# steps down, and the remaining servers elect a leader among themselves.
@pytest.mark.parametrize("seed", SEEDS)
def test_leader_removes_itself(make_sim, seed):
    sim = make_sim(seed)
    old = sim.wait_leader()
    commit(sim, b"before")
    change(sim, ConfChangeOp.REMOVE, old)
    assert sim.run_until(lambda: sim.leader() not in (None, old), 5_000), sim.describe()
    assert sim.nodes[old].core.role is not Role.LEADER
    sim.run_for(3_000)
    assert sim.nodes[old].core.role is Role.FOLLOWER  # never campaigns
    rest = [i for i in sim.ids if i != old]
    converge(sim, rest)


# ============================================================ §3.10


@pytest.mark.parametrize("seed", SEEDS)
def test_transfer_hands_over_and_abandons_when_target_is_cut_off(make_sim, seed):
    sim = make_sim(seed)
    old = sim.wait_leader()
    commit(sim, b"x")
    target = next(i for i in sim.ids if i != old)
    assert sim.transfer(target) == target
    assert sim.run_until(lambda: sim.leader() == target, 2_000), sim.describe()

    # Cut the next target off: the transfer fails after an election timeout
    # and the leader takes proposals again.
    leader = target
    target = next(i for i in sim.ids if i != leader)
    sim.isolate(target)
    assert sim.transfer(target) == target
    assert sim.propose(b"refused") is None
    sim.run_for(sim.config.election_ticks * sim.config.tick_ms * 1.5)
    assert sim.leader() == leader
    assert sim.propose(b"accepted") is not None
    sim.heal()
    converge(sim, sim.ids)


# ============================================================ §6.4


# Dissertation §6.4: reads under partitions, crashes and a lossy network;
# every confirmed read index is checked by `SafetyChecker.on_read` against
# the writes that had committed before the read began.
@pytest.mark.parametrize("seed", SEEDS)
def test_reads_under_faults_are_fresh(make_sim, seed):
    sim = make_sim(seed, LOSSY)
    sim.wait_leader()
    rng = random.Random(seed)
    for r in range(30):
        fault = rng.choice(["isolate", "heal", "crash", "restart", "none"])
        if fault == "isolate":
            sim.isolate(sim.leader() or rng.choice(sim.ids))
        elif fault == "heal":
            sim.heal()
        elif fault == "crash":
            sim.crash(rng.choice(sim.ids))
        elif fault == "restart":
            for i in sim.ids:
                sim.restart(i)
        for k in range(3):
            sim.propose(f"{r}:{k}".encode())
        for node in sim.ids:
            if sim.nodes[node].up:
                sim.read(node)
        sim.run_for(rng.uniform(50, 300))
    sim.heal()
    for i in sim.ids:
        sim.restart(i)
    sim.wait_leader(10_000)
    converge(sim, sim.ids)
    assert sim.checker.reads_checked > 20


# ============================================================ forced recovery


# `force_new_cluster`: the survivor keeps what it committed, elects itself,
# commits alone; fresh managers then join as learners and are promoted.
@pytest.mark.parametrize("seed", SEEDS)
def test_force_new_cluster_then_grow_back(make_sim, seed):
    sim = make_sim(seed, snapshot_entries=10, trailing_entries=2)
    sim.wait_leader()
    for k in range(12):
        commit(sim, f"c{k}".encode())
    survivor = sim.leader()
    before = applied(sim, survivor)
    sim.force_new_cluster(survivor)
    assert sim.wait_leader() == survivor
    commit(sim, b"alone")
    assert applied(sim, survivor)[: len(before)] == before
    for node in ("m2", "m3"):
        change(sim, ConfChangeOp.ADD_LEARNER, node)
        promote_when_caught_up(sim, node)
    assert set(sim.nodes[survivor].core.conf.voters) == {survivor, "m2", "m3"}
    sim.isolate(survivor)
    commit(sim, b"without-the-survivor")
    sim.heal()
    converge(sim, [survivor, "m2", "m3"])
