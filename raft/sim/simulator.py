"""A deterministic simulator: several Raft cores, one seed, a hostile network.

Theory of operation
-------------------

The simulator owns a virtual clock (milliseconds) and one priority queue of
events: node ticks, message deliveries and scheduled restarts.  `step()`
pops the earliest event, feeds it to the core it concerns, and then drives
that core with the same persistence order as the real node driver: both
walk the steps of `raft.core.persist.plan` (write, the leader's early
AppendEntries, fsync, the other messages, apply, advance), so the schedule
the checker proves is the one real nodes run.

The network delays each message by a random amount (so messages reorder),
drops, duplicates and occasionally holds one back for a long time.  Links can
be cut one way or both (partitions of any shape).

Durability is modelled (`raft.sim.node.SimStorage`): writes sit in a cache
until the step that syncs them.  A crash throws the core away -- volatile
state is lost -- together with every write not yet synced; a restart builds
a new core from what was durable.  A crash can come between events
(`crash(node)`) or *inside* a batch, just before one of its steps
(``crash(node, before=Step.SYNC)``: after the early sends, before the
fsync), which is where a driver that sends too early would be caught.

Everything random comes from one `random.Random(seed)`, so a run replays
exactly from its seed.  After every batch the `raft.sim.checker.SafetyChecker`
verifies the properties of Raft's Figure 3; a violation raises
`SafetyViolation` with the seed and the command that replays it.  The
randomized soak and the command line (``python -m raft.sim soak|replay``)
live in `raft.sim.soak`.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from raft.core import persist
from raft.core.messages import EntryKind, Message, NodeId
from raft.core.persist import PersistPlan, Step
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
from raft.sim.checker import SafetyChecker, SafetyViolation
from raft.sim.node import SimNode, decode_applied, encode_applied

__all__ = ["NetConfig", "SafetyViolation", "SimConfig", "Simulator", "Step"]


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
    #: A commit-only hard state change is written with every Nth batch a node
    #: drives, and held back in between (`raft.core.persist`: it may be lazy).
    commit_write_every: int = 1
    net: NetConfig = field(default_factory=NetConfig)


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
        #: Crashes armed to fire inside a node's next batch: node -> (step, restart after ms).
        self._armed: dict[NodeId, tuple[Step, float | None]] = {}
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

    def crash(
        self, node: NodeId, before: Step | None = None, restart_after: float | None = None
    ) -> None:
        """Crash ``node`` now; or, with ``before``, inside its next batch that
        reaches that step with work to do (``Step.SYNC``: after the early
        sends, before the fsync).  Writes not yet synced are lost.  With
        ``restart_after`` (ms), it comes back that much later."""
        n = self.nodes[node]
        if before is not None:
            if n.core is not None:
                self._armed[node] = (before, restart_after)
                self._note(f"arm crash {node} before {before.value}")
            return
        self._armed.pop(node, None)
        if n.core is not None:
            n.core = None
            n.crashes += 1
            lost = n.storage.lose_unsynced()
            self._note(f"crash {node}" + (f", {lost} unsynced writes lost" if lost else ""))
        if restart_after is not None:
            self._schedule(restart_after, "restart", node)

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
        n.storage.sync()
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
        elif kind == "restart":
            self.restart(payload)  # type: ignore[arg-type]
        else:
            m: Message = payload  # type: ignore[assignment]
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
        n.written_hs, n.deferred_hs = state.hard_state, None
        # Volatile state is gone: the state machine restarts from the snapshot
        # and the core re-applies the committed entries after it.
        n.applied = decode_applied(state.snapshot.data)
        self.checker.on_restart(core)
        self._schedule(self.rng.uniform(0, cfg.tick_ms), "tick", (node_id, n.crashes))

    def _drive(self, n: SimNode) -> None:
        """Drain the core's batches in the persistence order (`raft.core.persist`),
        the same as the real node driver; an armed crash fires between steps."""
        core = n.core
        assert core is not None
        cfg = self.config
        while core.has_ready():
            rd = core.ready()
            self.checker.on_ready(core, rd)
            for ev in rd.events:
                if ev.type in ("role", "election"):
                    self._note(f"{core.id} {ev.type} {ev.fields}")
            n.batches += 1
            plan = persist.plan(
                rd,
                n.written_hs,
                n.deferred_hs,
                commit_due=n.batches % cfg.commit_write_every == 0,
                answers_due=bool(rd.committed or rd.reads),
            )
            for step in plan.steps:
                if self._crash_due(n, step, plan, rd):
                    return
                self._do(step, n, core, rd, plan)

    def _crash_due(self, n: SimNode, step: Step, plan: PersistPlan, rd: Ready) -> bool:
        armed = self._armed.get(n.id)
        if armed is None or armed[0] is not step or not _has_work(step, plan, rd):
            return False
        self._note(f"{n.id} crashes before {step.value}")
        self.crash(n.id, restart_after=armed[1])
        return True

    def _do(self, step: Step, n: SimNode, core: RaftCore, rd: Ready, plan: PersistPlan) -> None:
        """One step of the order for one batch; see `raft.core.persist`."""
        storage = n.storage
        if step is Step.WRITE:
            if rd.snapshot is not None:
                storage.install_snapshot(rd.snapshot)
            if plan.hard_state is not None:
                storage.set_hard_state(plan.hard_state)
                n.written_hs = plan.hard_state
            n.deferred_hs = plan.deferred
            storage.append(rd.entries)
        elif step is Step.SEND_EARLY:
            self._send_all(core, plan.early)
        elif step is Step.SYNC:
            if plan.sync:
                storage.sync()
                self.checker.on_sync(core.id, n.written_hs)
        elif step is Step.SEND:
            self._send_all(core, plan.late)
        elif step is Step.APPLY:
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
        elif step is Step.ADVANCE:
            core.advance(rd)
            if core.should_snapshot():
                snap = core.compact(core.applied_index, encode_applied(n.applied))
                storage.save_snapshot(snap)
                storage.sync()

    def _send_all(self, core: RaftCore, messages: list[Message]) -> None:
        for m in messages:
            self.checker.on_send(core, m)
            self._transmit(m)

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


def _has_work(step: Step, plan: PersistPlan, rd: Ready) -> bool:
    """Whether ``step`` does anything for this batch (an armed crash waits for one that does)."""
    if step is Step.SEND_EARLY:
        return bool(plan.early)
    if step is Step.SYNC:
        return plan.sync
    if step is Step.SEND:
        return bool(plan.late)
    if step is Step.APPLY:
        return bool(rd.committed or rd.reads or rd.snapshot is not None)
    return True
