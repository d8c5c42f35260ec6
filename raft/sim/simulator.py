"""A deterministic simulator: several Raft cores, one seed, a hostile network.

Theory of operation
-------------------

The simulator owns a virtual clock (milliseconds) and one priority queue of
events: node ticks and message deliveries.  `step()` pops the earliest event,
feeds it to the core it concerns, and then drives that core exactly as the
real node driver does: ``ready()`` -> persist into the node's
`MemoryStorage` -> hand messages to the network -> apply committed entries ->
``advance()``.  Persist before send holds by construction.

The network delays each message by a random amount (so messages reorder),
drops, duplicates and occasionally holds one back for a long time.  Links can
be cut one way or both (partitions of any shape).  A crash throws the core
away -- volatile state is lost -- and keeps its `MemoryStorage`; a restart
builds a new core from that storage.

Everything random comes from one `random.Random(seed)`, so a run replays
exactly from its seed.  After every event the `SafetyChecker` verifies the
properties of Raft's Figure 3; a violation raises `SafetyViolation` with the
seed and the command that replays it.

Command line::

    python -m raft.sim soak --seeds 2000          # many seeds, all faults
    python -m raft.sim soak --seeds 100000 --start 5000
    python -m raft.sim replay --seed 1234 -v      # one seed, with its events
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from raft.core.messages import (
    AppendEntriesResponse,
    Entry,
    EntryKind,
    Message,
    NodeId,
    RequestVoteResponse,
)
from raft.core.protocol import (
    ConfChange,
    ConfChangeError,
    ConfChangeOp,
    Config,
    NotLeader,
    ProposalDropped,
    RaftCore,
    Ready,
    Role,
    force_new_cluster,
)
from raft.core.quorum import majority
from raft.core.storage import MemoryStorage


class SafetyViolation(AssertionError):
    """A Raft safety property failed; the message says how to replay it."""


@dataclass(frozen=True, slots=True)
class NetConfig:
    """How hostile the network is.  Delays are virtual milliseconds."""

    min_delay: float = 1.0
    max_delay: float = 10.0
    drop: float = 0.0
    duplicate: float = 0.0
    #: Probability that a message is held back for up to ``long_delay`` (reordering).
    long: float = 0.0
    long_delay: float = 300.0


@dataclass(frozen=True, slots=True)
class SimConfig:
    nodes: int = 3
    tick_ms: float = 10.0
    election_ticks: int = 10
    heartbeat_ticks: int = 2
    pre_vote: bool = True
    check_quorum: bool = True
    max_inflight: int = 16
    max_entries_per_message: int = 64
    #: Compaction (§7): small numbers make snapshots and InstallSnapshot frequent.
    snapshot_entries: int = 10_000
    trailing_entries: int = 500
    snapshot_chunk_bytes: int = 1024
    net: NetConfig = field(default_factory=NetConfig)


# ---------------------------------------------------------------------------
# Safety


class SafetyChecker:
    """Raft's guarantees (Figure 3, plus two about persistence), checked incrementally.

    * Election Safety: at most one leader per term.
    * Log Matching: two entries with the same index and term hold the same
      command, and the logs before them are identical.  Checked by induction:
      same (index, term) implies same command and same term at index - 1.
    * Leader Completeness: a new leader holds every entry committed before it.
    * State Machine Safety: no two nodes apply different commands at an index.
    * Committed entries are never lost: a restarted node still holds what its
      durable commit index covers, and committed indexes never change term.
    * A node's term never decreases, and it grants at most one vote per term,
      across restarts.
    * A leader was elected by a majority of the voters of its own
      configuration (so one-at-a-time changes never allow two disjoint
      majorities, dissertation §4).
    * A read index covers every write completed before the read began (§6.4).
    * A follower never forgets an entry it acknowledged while it stays in the
      same term: the leader may already have counted it towards a commit.
    """

    def __init__(self, describe: Callable[[], str]) -> None:
        self._describe = describe
        self.leaders: dict[int, NodeId] = {}
        self.entries: dict[tuple[int, int], tuple[bytes, EntryKind, int | None]] = {}
        self.committed: dict[int, int] = {}  # index -> term
        self.applied: dict[int, bytes] = {}
        self.terms: dict[NodeId, int] = {}
        self.votes: dict[tuple[NodeId, int], NodeId] = {}
        self.checks = 0
        self.reads_checked = 0
        self.acked: dict[NodeId, tuple[int, int, int]] = {}  # node -> (term, index, entry term)

    def fail(self, what: str) -> None:
        raise SafetyViolation(f"{what}\n{self._describe()}")

    def on_ready(self, core: RaftCore, rd: Ready) -> None:
        self.checks += 1
        for ev in rd.events:
            if ev.type == "role" and ev.fields["to"] == Role.LEADER.value:
                self._check_new_leader(core, ev.fields["term"])
        if rd.snapshot is not None:
            for e in decode_applied(rd.snapshot.data):
                self._check_committed(core, e)
                if self.applied.setdefault(e.index, e.data) != e.data:
                    self.fail(f"{core.id} installs a snapshot that disagrees at {e.index}")
        for e in rd.entries:
            key = (e.index, e.term)
            value = (e.data, e.kind, core.log.term(e.index - 1))
            seen = self.entries.setdefault(key, value)
            if seen != value:
                self.fail(f"Log Matching: {core.id} holds {value} at {key}, another node {seen}")
        self._check_acknowledged(core)
        for m in rd.messages:
            if isinstance(m, AppendEntriesResponse) and m.success and m.match_index:
                t = core.log.term(m.match_index)
                if t is not None:
                    self.acked[core.id] = (m.term, m.match_index, t)
            if isinstance(m, RequestVoteResponse) and m.granted and not m.pre_vote:
                prior = self.votes.setdefault((m.src, m.term), m.dst)
                if prior != m.dst:
                    self.fail(f"{m.src} voted for {prior} and {m.dst} in term {m.term}")
        for e in rd.committed:
            self._check_committed(core, e)
            seen = self.applied.setdefault(e.index, e.data)
            if seen != e.data:
                self.fail(
                    f"State Machine Safety: {core.id} applies a different command at {e.index}"
                )
        self.check_term(core)

    def _check_acknowledged(self, core: RaftCore) -> None:
        acked = self.acked.get(core.id)
        if acked is None or acked[0] != core.term:
            return
        _, index, term = acked
        if index > core.log.snapshot.index and core.log.term(index) != term:
            self.fail(f"{core.id} forgot entry {index} (term {term}) it acknowledged in this term")

    def check_term(self, core: RaftCore) -> None:
        if core.term < self.terms.get(core.id, 0):
            self.fail(f"{core.id}'s term went back from {self.terms[core.id]} to {core.term}")
        self.terms[core.id] = core.term

    def _check_committed(self, core: RaftCore, e: Entry) -> None:
        term = self.committed.setdefault(e.index, e.term)
        if term != e.term:
            self.fail(f"index {e.index} committed with term {term}, {core.id} commits {e.term}")

    def _check_new_leader(self, core: RaftCore, term: int) -> None:
        other = self.leaders.setdefault(term, core.id)
        if other != core.id:
            self.fail(f"Election Safety: {other} and {core.id} both lead term {term}")
        voters = core.conf.voters
        granted = {v for (v, t), c in self.votes.items() if t == term and c == core.id}
        granted.add(core.id)
        if len(granted & set(voters)) < majority(len(voters)):
            self.fail(
                f"{core.id} leads term {term} with votes {sorted(granted)}, "
                f"not a majority of its voters {list(voters)}"
            )
        snap = core.log.snapshot.index
        for index, t in self.committed.items():
            if index > snap and core.log.term(index) != t:
                self.fail(
                    f"Leader Completeness: {core.id} leads term {term} without committed "
                    f"entry {index} (term {t})"
                )

    @property
    def max_committed(self) -> int:
        return max(self.committed, default=0)

    def on_read(self, node: NodeId, index: int, started_after: int) -> None:
        """A read index must cover every write completed before the read began."""
        self.reads_checked += 1
        if index < started_after:
            self.fail(
                f"stale read on {node}: read index {index}, but {started_after} had "
                f"committed before the read began"
            )

    def on_restart(self, core: RaftCore) -> None:
        """The durable state survived: commit index and the entries it covers."""
        self.check_term(core)
        log = core.log
        for index in range(log.snapshot.index + 1, log.committed + 1):
            if self.committed.get(index, log.term(index)) != log.term(index):
                self.fail(f"{core.id} lost committed entry {index} across a restart")


# ---------------------------------------------------------------------------
# The simulated cluster


class SimNode:
    """One server: a core while up, its storage always."""

    def __init__(self, node_id: NodeId, peers: tuple[NodeId, ...]) -> None:
        self.id = node_id
        #: The voters it starts with when its storage is empty; () for a joiner.
        self.peers = peers
        self.storage = MemoryStorage()
        self.core: RaftCore | None = None
        self.applied: list[Entry] = []
        self.crashes = 0

    @property
    def up(self) -> bool:
        return self.core is not None


class Simulator:
    """N cores on a virtual network, driven by one seed."""

    def __init__(
        self, config: SimConfig | None = None, seed: int = 0, replay: str | None = None
    ) -> None:
        self.config = config or SimConfig()
        self.seed = seed
        #: How to run this exact case again; printed with every violation.
        self.replay = replay or f"Simulator({self.config!r}, seed={seed})"
        self.rng = random.Random(seed)
        self.net = self.config.net
        self.now = 0.0
        self.ids = [f"n{i + 1}" for i in range(self.config.nodes)]
        self.nodes = {i: SimNode(i, tuple(self.ids)) for i in self.ids}
        self.cut: set[tuple[NodeId, NodeId]] = set()
        self.log: list[str] = []  # what happened, for a failure report
        self.messages_sent = 0
        self.events = 0
        self.checker = SafetyChecker(self.describe)
        self._queue: list[tuple[float, int, str, object]] = []
        self._seq = 0
        self._reads: dict[int, tuple[NodeId, int]] = {}  # request id -> (node, committed before)
        self.reads_done = 0
        #: Called with every message a node sends, before the network decides
        #: its fate: tests use it to count or inspect traffic.
        self.on_transmit: list[Callable[[Message], None]] = []
        for i in self.ids:
            self._start(i)

    # -------------------------------------------------------------- faults

    def partition(self, *groups: Iterable[NodeId]) -> None:
        """Cut every link between different groups (both ways)."""
        groups = [set(g) for g in groups]
        self.cut = {
            (a, b) for ga in groups for gb in groups if ga is not gb for a in ga for b in gb
        }
        self._note(f"partition {' | '.join(','.join(sorted(g)) for g in groups)}")

    def isolate(self, node: NodeId) -> None:
        self.partition([node], [i for i in self.ids if i != node])

    def cut_link(self, src: NodeId, dst: NodeId) -> None:
        """Drop messages from ``src`` to ``dst`` only (asymmetric)."""
        self.cut.add((src, dst))
        self._note(f"cut {src}->{dst}")

    def heal(self) -> None:
        self.cut = set()
        self._note("heal")

    def crash(self, node: NodeId) -> None:
        n = self.nodes[node]
        if n.core is not None:
            n.core = None
            n.crashes += 1
            self._note(f"crash {node}")

    def restart(self, node: NodeId) -> None:
        if not self.nodes[node].up:
            self._start(node)
            self._note(f"restart {node}")

    # -------------------------------------------------------------- clients

    def leader(self) -> NodeId | None:
        """The leader of the highest term among live nodes, if any."""
        best: RaftCore | None = None
        for n in self.nodes.values():
            c = n.core
            if c is not None and c.role is Role.LEADER and (best is None or c.term > best.term):
                best = c
        return best.id if best else None

    def propose(self, data: bytes, node: NodeId | None = None) -> tuple[int, int] | None:
        """Propose at ``node`` (default: the leader); (index, term) or None."""
        node = node or self.leader()
        core = self.nodes[node].core if node else None
        if core is None:
            return None
        try:
            index = core.propose(data)
        except (NotLeader, ProposalDropped):
            return None
        self._drive(self.nodes[node])
        return index, core.term

    def read(self, node: NodeId | None = None) -> bool:
        """Start a linearizable read at ``node`` (default: the leader), §6.4."""
        node = node or self.leader()
        core = self.nodes[node].core if node else None
        if core is None:
            return False
        self._seq += 1
        self._reads[self._seq] = (node, self.checker.max_committed)
        core.read_index(self._seq)
        self._drive(self.nodes[node])
        return True

    def add_node(self, node: NodeId) -> int | None:
        """Start an empty server and add it as a learner (dissertation §4.2.1)."""
        if node not in self.nodes:
            self.nodes[node] = SimNode(node, ())
            self.ids.append(node)
            self._start(node)
        return self.change(ConfChangeOp.ADD_LEARNER, node)

    def change(self, op: ConfChangeOp, node: NodeId) -> int | None:
        """Propose a membership change at the leader; its index, or None if refused."""
        leader = self.leader()
        core = self.nodes[leader].core if leader else None
        if core is None:
            return None
        try:
            index = core.propose_conf_change(ConfChange(op, node))
        except (NotLeader, ProposalDropped, ConfChangeError) as e:
            self._note(f"{op.value} {node} refused: {e}")
            return None
        self._note(f"{op.value} {node} at {index}")
        self._drive(self.nodes[leader])
        return index

    def transfer(self, target: NodeId | None = None) -> NodeId | None:
        leader = self.leader()
        core = self.nodes[leader].core if leader else None
        if core is None:
            return None
        try:
            to = core.transfer_leadership(target)
        except (NotLeader, ConfChangeError):
            return None
        self._note(f"transfer {leader} -> {to}")
        self._drive(self.nodes[leader])
        return to

    def force_new_cluster(self, survivor: NodeId) -> None:
        """Every other server is gone for good; restart ``survivor`` alone.

        Entries the survivor never committed are dropped, so the checker
        forgets commitments beyond what the survivor holds: a committed entry
        that only lost servers held is lost with them, which is exactly what
        forced recovery warns about.
        """
        for i in self.ids:
            if i != survivor:
                self.crash(i)
                self.nodes[i].crashes += 1_000_000  # never restarts: ticks stop
        self.crash(survivor)
        n = self.nodes[survivor]
        state, entry = force_new_cluster(n.storage.load(), survivor)
        n.storage.append([entry])
        n.storage.set_hard_state(state.hard_state)
        keep = state.hard_state.commit
        self.checker.committed = {i: t for i, t in self.checker.committed.items() if i <= keep}
        self.checker.applied = {i: d for i, d in self.checker.applied.items() if i <= keep}
        self.ids = [survivor]
        self._note(f"force new cluster on {survivor}")
        self._start(survivor)

    def members(self) -> tuple[NodeId, ...]:
        """The configuration the current leader (or any live node) holds."""
        leader = self.leader()
        for n in ([self.nodes[leader]] if leader else []) + list(self.nodes.values()):
            if n.core is not None:
                return n.core.conf.members
        return ()

    def is_committed(self, index: int, term: int) -> bool:
        """Did the entry proposed at (index, term) commit?  (§8: same index and term)."""
        return self.checker.committed.get(index) == term

    # -------------------------------------------------------------- running

    def step(self) -> bool:
        """Process the next event; False when there is none."""
        if not self._queue:
            return False
        when, _, kind, payload = heapq.heappop(self._queue)
        self.now = when
        self.events += 1
        if kind == "tick":
            node_id, generation = payload
            n = self.nodes[node_id]
            if n.core is not None and n.crashes == generation:
                n.core.tick()
                self._drive(n)
                self._schedule(self.config.tick_ms, "tick", payload)
        else:
            m: Message = payload
            n = self.nodes[m.dst]
            if n.core is not None and (m.src, m.dst) not in self.cut:
                n.core.step(m)
                self._drive(n)
        return True

    def run_for(self, ms: float) -> None:
        end = self.now + ms
        while self._queue and self._queue[0][0] <= end:
            self.step()
        self.now = max(self.now, end)

    def run_until(self, cond: Callable[[], bool], timeout_ms: float) -> bool:
        """Run until ``cond()`` holds (checked after every event) or time runs out."""
        end = self.now + timeout_ms
        while not cond():
            if not self._queue or self._queue[0][0] > end:
                self.now = max(self.now, end)
                return cond()
            self.step()
        return True

    def wait_leader(self, timeout_ms: float = 5000) -> NodeId | None:
        self.run_until(lambda: self.leader() is not None, timeout_ms)
        return self.leader()

    def wait_committed(self, index: int, term: int, timeout_ms: float = 5000) -> bool:
        return self.run_until(lambda: self.is_committed(index, term), timeout_ms)

    def converged(self) -> bool:
        """Every live member has applied the same entries up to the same index."""
        members = set(self.members())
        live = [n for n in self.nodes.values() if n.core is not None and n.id in members]
        indexes = {n.core.applied_index for n in live}
        return len(indexes) == 1

    # -------------------------------------------------------------- internals

    def _start(self, node_id: NodeId) -> None:
        n = self.nodes[node_id]
        cfg = self.config
        core = RaftCore(
            Config(
                id=node_id,
                peers=n.peers,
                election_ticks=cfg.election_ticks,
                heartbeat_ticks=cfg.heartbeat_ticks,
                pre_vote=cfg.pre_vote,
                check_quorum=cfg.check_quorum,
                max_inflight=cfg.max_inflight,
                max_entries_per_message=cfg.max_entries_per_message,
                snapshot_entries=cfg.snapshot_entries,
                trailing_entries=cfg.trailing_entries,
                snapshot_chunk_bytes=cfg.snapshot_chunk_bytes,
            ),
            random.Random(self.rng.getrandbits(64)),
            state := n.storage.load(),
        )
        n.core = core
        # Volatile state is gone: the state machine restarts from the snapshot
        # and the core re-applies the committed entries after it.
        n.applied = decode_applied(state.snapshot.data)
        self.checker.on_restart(core)
        self._schedule(self.rng.uniform(0, cfg.tick_ms), "tick", (node_id, n.crashes))

    def _drive(self, n: SimNode) -> None:
        """Drain the core's batches exactly as the real node driver does."""
        core = n.core
        assert core is not None
        while core.has_ready():
            rd = core.ready()
            self.checker.on_ready(core, rd)
            if rd.snapshot is not None:
                n.storage.install_snapshot(rd.snapshot)
            if rd.hard_state is not None:
                n.storage.set_hard_state(rd.hard_state)
            n.storage.append(rd.entries)
            n.storage.sync()  # persist before send
            for m in rd.messages:
                self._transmit(m)
            if rd.snapshot is not None:
                n.applied = decode_applied(rd.snapshot.data)
            for e in rd.committed:
                if e.kind is EntryKind.NORMAL:
                    n.applied.append(e)
            for r in rd.reads:
                node, started_after = self._reads.pop(r.request_id, (core.id, 0))
                if r.ok:
                    self.checker.on_read(node, r.index, started_after)
                    self.reads_done += 1
            for ev in rd.events:
                if ev.type in ("role", "election"):
                    self._note(f"{core.id} {ev.type} {ev.fields}")
            core.advance(rd)
            if core.should_snapshot():
                snap = core.compact(core.applied_index, encode_applied(n.applied))
                n.storage.save_snapshot(snap)
                n.storage.sync()

    def deliver(self, m: Message) -> None:
        """Hand ``m`` to its destination now, bypassing the network (tests)."""
        n = self.nodes[m.dst]
        if n.core is not None:
            n.core.step(m)
            self._drive(n)

    def _transmit(self, m: Message) -> None:
        self.messages_sent += 1
        for hook in self.on_transmit:
            hook(m)
        net = self.net
        rng = self.rng
        if net.drop and rng.random() < net.drop:
            return
        copies = 2 if net.duplicate and rng.random() < net.duplicate else 1
        for _ in range(copies):
            delay = rng.uniform(net.min_delay, net.max_delay)
            if net.long and rng.random() < net.long:
                delay = rng.uniform(net.max_delay, net.long_delay)
            self._schedule(delay, "msg", m)

    def _schedule(self, delay: float, kind: str, payload: object) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (self.now + delay, self._seq, kind, payload))

    def _note(self, what: str) -> None:
        self.log.append(f"{self.now:9.1f} ms  {what}")

    def describe(self) -> str:
        lines = [f"seed {self.seed} at {self.now:.1f} ms; last events:"]
        lines += ["  " + x for x in self.log[-15:]]
        for n in self.nodes.values():
            lines.append(f"  {n.id}: {n.core!r}" if n.core else f"  {n.id}: down")
        lines.append(f"replay: {self.replay}")
        return "\n".join(lines)


def encode_applied(applied: list[Entry]) -> bytes:
    """The simulated state machine's snapshot: every command it applied."""
    return json.dumps([[e.index, e.term, e.data.hex()] for e in applied]).encode()


def decode_applied(data: bytes) -> list[Entry]:
    if not data:
        return []
    return [Entry(t, i, bytes.fromhex(d)) for i, t, d in json.loads(data)]


def replay_command(seed: int, nodes: int = 5) -> str:
    """The shell command that runs soak seed ``seed`` again."""
    return f"python -m raft.sim replay --seed {seed} --nodes {nodes}"


# ---------------------------------------------------------------------------
# The randomized soak


FAULTS = (
    "partition",
    "cut",
    "isolate",
    "crash",
    "crash-leader",
    "bounce",
    "restart",
    "restart",
    "heal",
    "member",
    "transfer",
    "none",
)
SOAK_NET = NetConfig(min_delay=1, max_delay=15, drop=0.05, duplicate=0.03, long=0.02)
SPARES = ("n6", "n7")


@dataclass(slots=True)
class SoakResult:
    seed: int
    proposed: int
    committed: int
    reads: int
    events: int
    messages: int
    virtual_ms: float
    #: What happened (elections, faults, membership), for ``replay -v``.
    log: list[str] = field(default_factory=list)


def soak_one(seed: int, nodes: int = 5, rounds: int = 20) -> SoakResult:
    """One randomized run with every fault; raises SafetyViolation on a bug.

    Each round picks a fault (partition, asymmetric cut, isolation, crash,
    restart, heal, a membership change, a leadership transfer), proposes a
    few commands, starts a few reads and runs a while; snapshots are taken
    and installed as the seed's thresholds dictate.  At the end everything
    heals and restarts, and the cluster must elect a leader, commit a final
    command and converge: safety *and* liveness once the faults are gone.
    """
    rng = random.Random(seed ^ 0x5EED)
    # Small messages and windows on some seeds, so that entries of different
    # terms travel separately: that is where Figure 8's trap lies.  Frequent
    # snapshots on others, so that InstallSnapshot runs under every fault.
    config = SimConfig(
        nodes=nodes,
        net=SOAK_NET,
        max_entries_per_message=rng.choice((1, 2, 64)),
        max_inflight=rng.choice((1, 4, 16)),
        snapshot_entries=rng.choice((4, 16, 10_000)),
        trailing_entries=rng.choice((0, 2, 50)),
        snapshot_chunk_bytes=rng.choice((16, 256, 1 << 20)),
    )
    sim = Simulator(config, seed, replay_command(seed, nodes))
    proposals: list[tuple[int, int]] = []
    for r in range(rounds):
        fault = rng.choice(FAULTS)
        leader = sim.leader()
        ids = sim.ids
        if fault == "partition":
            shuffled = rng.sample(ids, len(ids))
            k = rng.randrange(1, len(ids))
            sim.partition(shuffled[:k], shuffled[k:])
        elif fault == "cut":
            a, b = rng.sample(ids, 2)
            sim.cut_link(a, b)
        elif fault == "isolate":
            sim.isolate(leader or rng.choice(ids))
        elif fault == "crash":
            sim.crash(rng.choice(ids))
        elif fault == "crash-leader" and leader:
            sim.crash(leader)
        elif fault == "bounce":
            # Crash and come straight back, still in the same term: the case
            # where a vote that was not persisted would be cast twice.
            victim = rng.choice(ids)
            sim.crash(victim)
            sim.run_for(rng.uniform(0, 30))
            sim.restart(victim)
        elif fault == "restart":
            sim.restart(rng.choice(ids))
        elif fault == "heal":
            sim.heal()
        elif fault == "member" and leader:
            _change_membership(sim, rng)
        elif fault == "transfer":
            sim.transfer()
        for k in range(rng.randrange(0, 6)):
            p = sim.propose(f"{seed}:{r}:{k}".encode())
            if p:
                proposals.append(p)
        for _ in range(rng.randrange(0, 3)):
            sim.read(rng.choice([i for i in sim.ids if sim.nodes[i].up] or [None]))
        sim.run_for(rng.uniform(20, 300))
    sim.heal()
    for i in sim.ids:
        sim.restart(i)
    if sim.wait_leader(10_000) is None:
        raise SafetyViolation(f"no leader 10 s after healing\n{sim.describe()}")
    # A client retries until its command commits (§8): a proposal made to a
    # leader that is deposed right after may be overwritten, and that is fine.
    deadline = sim.now + 10_000
    done = False
    while not done and sim.now < deadline:
        final = sim.propose(b"final")
        if final is None:
            sim.run_for(50)
        else:
            done = sim.wait_committed(*final, timeout_ms=1000)
    if not done:
        raise SafetyViolation(f"nothing commits after healing\n{sim.describe()}")
    if not sim.run_until(sim.converged, 10_000):
        raise SafetyViolation(f"live nodes did not converge\n{sim.describe()}")
    committed = sum(1 for p in proposals if sim.is_committed(*p))
    return SoakResult(
        seed,
        len(proposals),
        committed,
        sim.reads_done,
        sim.events,
        sim.messages_sent,
        sim.now,
        sim.log,
    )


def _change_membership(sim: Simulator, rng: random.Random) -> None:
    """Grow or shrink the cluster by one server, never below three voters."""
    leader = sim.leader()
    assert leader is not None
    conf = sim.nodes[leader].core.conf  # type: ignore[union-attr]
    if conf.learners:
        sim.change(ConfChangeOp.PROMOTE, rng.choice(conf.learners))
    elif len(conf.voters) > 3 and rng.random() < 0.6:
        op = rng.choice((ConfChangeOp.REMOVE, ConfChangeOp.DEMOTE))
        sim.change(op, rng.choice(conf.voters))
    else:
        outside = [i for i in (*sim.ids, *SPARES) if i not in conf.members]
        if outside:
            sim.add_node(rng.choice(outside))


def main(argv: list[str] | None = None) -> int:
    import time  # the command line only; the simulator itself has no clock

    ap = argparse.ArgumentParser(prog="python -m raft.sim", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("soak", help="run many seeds with every fault")
    s.add_argument("--seeds", type=int, default=2000)
    s.add_argument("--start", type=int, default=0)
    s.add_argument("--nodes", type=int, default=5)
    r = sub.add_parser("replay", help="run one seed again")
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--nodes", type=int, default=5)
    r.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    if args.cmd == "replay":
        try:
            res = soak_one(args.seed, args.nodes)
        except SafetyViolation as e:
            print(f"FAILED: {e}", file=sys.stderr)
            return 1
        if args.verbose:
            print("\n".join(res.log))
        print(
            f"seed {res.seed}: ok, {res.committed}/{res.proposed} proposals committed, "
            f"{res.reads} reads checked, {res.events} events, {res.messages} messages, "
            f"{res.virtual_ms / 1000:.1f} s virtual"
        )
        return 0

    t0 = time.perf_counter()
    events = 0
    failed: list[int] = []
    tty = sys.stdout.isatty()
    for k, seed in enumerate(range(args.start, args.start + args.seeds), 1):
        try:
            events += soak_one(seed, args.nodes).events
        except SafetyViolation as e:
            failed.append(seed)
            print(f"\nseed {seed} FAILED: {e}", file=sys.stderr)
        if k % (100 if tty else 1000) == 0 or k == args.seeds:
            elapsed = time.perf_counter() - t0
            line = (
                f"{k}/{args.seeds} seeds, {len(failed)} failed, "
                f"{events / elapsed:,.0f} events/s, {elapsed:.0f} s"
            )
            print(f"\r{line}" if tty else line, end="" if tty else "\n", flush=True)
    if tty:
        print()
    for seed in failed:
        print(f"replay: {replay_command(seed, args.nodes)} -v")
    return 1 if failed else 0
