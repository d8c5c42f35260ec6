"""A hand-driven network of `RaftCore`s for the paper tests.

Unlike the full simulator (`raft.sim.simulator`), nothing here happens on its own: a
test ticks a node, delivers the messages it chooses, and looks at the cores
in between.  The driver loop is the one the core's docstring asks for:

    ready() -> persist hard_state and entries -> send messages
            -> apply committed entries -> advance()

While persisting, `Net` also checks *persist before send* for every batch: a
granted vote must be on "disk" when its batch is sent, and so must the entry
an AppendEntries success acknowledges.  Broken promises are collected in
``net.violations`` rather than raised, so a test can assert on them.

Node ids are ``n1`` .. ``nN``; `Net.add_node` starts an empty server with
any other id (a joiner, dissertation §4.2.1).

Each node's "state machine" is the list of committed entries it applied
(``net.applied[node]``).  `Net.compact` snapshots that list (§7); a snapshot
installed from the leader (``Ready.snapshot``) goes to storage first and
replaces the list, as the core's contract asks.  Linearizable reads that
completed (``Ready.reads``, §6.4) are collected in ``net.reads[node]``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    Message,
    RequestVoteResponse,
    Snapshot,
)
from raft.core.protocol import Config, RaftCore, ReadState, Ready, Role, TraceEvent
from raft.core.storage import MemoryStorage, PersistentState

Filter = Callable[[Message], bool]


def ids(n: int) -> list[str]:
    return [f"n{i}" for i in range(1, n + 1)]


def encode_entries(entries: Iterable[Entry]) -> bytes:
    """A snapshot image of the test state machine: the entries it applied."""
    return json.dumps([[e.term, e.index, e.data.hex(), int(e.kind)] for e in entries]).encode()


def decode_entries(data: bytes) -> list[Entry]:
    if not data:
        return []
    return [Entry(t, i, bytes.fromhex(d), EntryKind(k)) for t, i, d, k in json.loads(data)]


def log_of_terms(terms: Iterable[int]) -> list[Entry]:
    """Entries 1..len(terms) with the given terms: ``[1, 1, 2]`` -> 1:t1 2:t1 3:t2."""
    return [Entry(t, i, f"{t}.{i}".encode()) for i, t in enumerate(terms, start=1)]


@dataclass
class Sent:
    """One message as it left its node, with the batch number it left in."""

    msg: Message
    batch: int


class Net:
    """N cores, their storages, and a list of messages waiting to be delivered."""

    def __init__(
        self,
        n: int = 3,
        seed: int = 0,
        logs: dict[str, list[int]] | None = None,
        terms: dict[str, int] | None = None,
        commit: dict[str, int] | None = None,
        **config: object,
    ) -> None:
        self.ids = ids(n)
        self.seed = seed
        self.config_kw = config
        self.storage: dict[str, MemoryStorage] = {}
        self.cores: dict[str, RaftCore] = {}
        self.applied: dict[str, list[Entry]] = {}
        self.events: list[tuple[str, TraceEvent]] = []
        self.pending: list[Message] = []
        self.sent: list[Message] = []  # everything any node ever sent, in order
        self.violations: list[str] = []
        self.down: set[str] = set()
        self.cut: set[frozenset[str]] = set()  # links that drop messages
        self.reads: dict[str, list[ReadState]] = {}
        self.installed: dict[str, list[Snapshot]] = {}  # snapshots received from a leader
        self._joiners: set[str] = set()
        self._incarnation = dict.fromkeys(self.ids, 0)
        for node in self.ids:
            st = MemoryStorage()
            entries = log_of_terms((logs or {}).get(node, []))
            term = (terms or {}).get(node, max((e.term for e in entries), default=0))
            st.append(entries)
            st.set_hard_state(HardState(term, None, (commit or {}).get(node, 0)))
            self.storage[node] = st
            self._boot(node)

    # ------------------------------------------------------------ nodes

    def config(self, node: str) -> Config:
        peers = (
            () if node in self._joiners else tuple(i for i in self.ids if i not in self._joiners)
        )
        return Config(id=node, peers=peers, **self.config_kw)  # type: ignore[arg-type]

    def _boot(self, node: str) -> None:
        rng = random.Random(f"{self.seed}/{node}/{self._incarnation[node]}")
        state: PersistentState = self.storage[node].load()
        self.cores[node] = RaftCore(self.config(node), rng, state)
        # Volatile: the state machine restarts from the snapshot (empty if none).
        self.applied[node] = decode_entries(state.snapshot.data)
        self.reads.setdefault(node, [])
        self.installed.setdefault(node, [])

    def add_node(self, node: str) -> RaftCore:
        """Start an empty server that knows no peers: it waits for a leader to
        add it (as a learner) and contact it (dissertation §4.2.1)."""
        assert node not in self.ids, f"{node} exists"
        self.ids.append(node)
        self._joiners.add(node)
        self._incarnation[node] = 0
        self.storage[node] = MemoryStorage()
        self._boot(node)
        return self.cores[node]

    def compact(self, node: str, index: int | None = None) -> Snapshot:
        """Snapshot ``node``'s state machine at ``index`` (default: applied), §7."""
        core = self.cores[node]
        index = core.applied_index if index is None else index
        image = encode_entries(e for e in self.applied[node] if e.index <= index)
        snap = core.compact(index, image)
        self.storage[node].save_snapshot(snap)
        self.storage[node].sync()
        return snap

    def __getitem__(self, node: str) -> RaftCore:
        return self.cores[node]

    def crash(self, node: str) -> None:
        """Lose everything volatile; what `storage` holds survives."""
        self.down.add(node)
        self.pending = [m for m in self.pending if node not in (m.src, m.dst)]

    def restart(self, node: str) -> None:
        self.down.discard(node)
        self._incarnation[node] += 1
        self._boot(node)
        self.drain(node)

    def isolate(self, node: str) -> None:
        for other in self.ids:
            if other != node:
                self.cut.add(frozenset((node, other)))
        self.pending = [m for m in self.pending if node not in (m.src, m.dst)]

    def heal(self) -> None:
        self.cut.clear()

    def live(self) -> list[str]:
        return [n for n in self.ids if n not in self.down]

    def leaders(self) -> list[str]:
        return [n for n in self.live() if self.cores[n].role is Role.LEADER]

    def log_terms(self, node: str) -> list[int]:
        return [e.term for e in self.cores[node].log.entries]

    # ------------------------------------------------------------ driving

    def tick(self, node: str, n: int = 1) -> None:
        for _ in range(n):
            self.cores[node].tick()
            self.drain(node)

    def tick_all(self, n: int = 1) -> None:
        """n rounds of: every live node ticks, then the network settles."""
        for _ in range(n):
            for node in self.live():
                self.tick(node)
            self.stabilize()

    def campaign(self, node: str) -> None:
        """Tick ``node`` until its election timeout fires (it stops being a follower)."""
        core = self.cores[node]
        for _ in range(2 * core.config.election_ticks):
            if core.role is not Role.FOLLOWER:
                return
            self.tick(node)
        assert core.role is not Role.FOLLOWER, f"{node} never timed out"

    def tick_until(self, node: str, done: Callable[[RaftCore], bool], limit: int = 100) -> None:
        core = self.cores[node]
        for _ in range(limit):
            if done(core):
                return
            self.tick(node)
        assert done(core), f"{node} did not get there in {limit} ticks: {core!r}"

    def elect(self, node: str) -> None:
        """``node`` times out and the network settles; it must end up leader."""
        self.campaign(node)
        self.stabilize()
        assert self.cores[node].role is Role.LEADER, f"{node} lost: {self.cores[node]!r}"

    def propose(self, node: str, data: bytes) -> int:
        index = self.cores[node].propose(data)
        self.drain(node)
        return index

    def drain(self, node: str) -> list[Ready]:
        """Run the driver loop until the core has nothing more to say."""
        core = self.cores[node]
        batches = []
        while core.has_ready():
            rd = core.ready()
            st = self.storage[node]
            if rd.snapshot is not None:
                st.install_snapshot(rd.snapshot)
            if rd.hard_state is not None:
                st.set_hard_state(rd.hard_state)
            st.append(rd.entries)
            st.sync()
            self._check_persisted(node, rd)
            for m in rd.messages:
                self._send(m)
            if rd.snapshot is not None:
                self.installed[node].append(rd.snapshot)
                self.applied[node] = decode_entries(rd.snapshot.data)
            self.applied[node].extend(rd.committed)
            self.reads[node].extend(rd.reads)
            self.events.extend((node, e) for e in rd.events)
            core.advance(rd)
            batches.append(rd)
        return batches

    def _send(self, m: Message) -> None:
        self.sent.append(m)
        if m.src in self.down or m.dst in self.down:
            return
        if frozenset((m.src, m.dst)) in self.cut:
            return
        self.pending.append(m)

    def inject(self, m: Message) -> None:
        """Hand ``m`` to its destination as if it had arrived from ``m.src``."""
        self.cores[m.dst].step(m)
        self.drain(m.dst)

    def take(self, where: Filter | None = None) -> list[Message]:
        """Remove and return the pending messages matching ``where``."""
        where = where or (lambda m: True)
        out = [m for m in self.pending if where(m)]
        self.pending = [m for m in self.pending if not where(m)]
        return out

    def drop(self, where: Filter | None = None) -> int:
        return len(self.take(where))

    def deliver(self, where: Filter | None = None) -> int:
        """Deliver (in order) the pending messages matching ``where``, once each.

        Messages sent in reaction stay pending for a later call.
        """
        taken = self.take(where)
        for m in taken:
            if m.dst not in self.down:
                self.inject(m)
        return len(taken)

    def stabilize(self, where: Filter | None = None, limit: int = 10_000) -> int:
        """Deliver matching messages, and their answers, until none is pending."""
        total = 0
        while True:
            n = self.deliver(where)
            if n == 0:
                return total
            total += n
            assert total < limit, "network did not settle"

    # ------------------------------------------------------------ checks

    def _check_persisted(self, node: str, rd: Ready) -> None:
        """Persist before send: what each outgoing answer promises is in storage."""
        durable = self.storage[node].load()
        by_index = {e.index: e for e in durable.entries}
        log = self.cores[node].log
        for m in rd.messages:
            if isinstance(m, RequestVoteResponse) and m.granted and not m.pre_vote:
                hs = durable.hard_state
                if (hs.term, hs.vote) != (m.term, m.dst):
                    self.violations.append(
                        f"{node} granted its vote to {m.dst} in term {m.term} with "
                        f"(term {hs.term}, vote {hs.vote}) on disk"
                    )
            if isinstance(m, AppendEntriesResponse) and m.success and m.match_index:
                stored = by_index.get(m.match_index)
                if m.match_index > durable.snapshot.meta.index and (
                    stored is None or stored.term != log.term(m.match_index)
                ):
                    self.violations.append(
                        f"{node} acknowledged index {m.match_index} to {m.dst} but "
                        f"storage holds {stored}"
                    )

    def trace(self, node: str | None = None, type_: str | None = None) -> list[dict]:
        return [
            {"node": n, "type": e.type, **e.fields}
            for n, e in self.events
            if (node is None or n == node) and (type_ is None or e.type == type_)
        ]


# ---------------------------------------------------------------- filters


def to(*nodes: str) -> Filter:
    return lambda m: m.dst in nodes


def from_(*nodes: str) -> Filter:
    return lambda m: m.src in nodes


def between(a: str, b: str) -> Filter:
    return lambda m: {m.src, m.dst} == {a, b}


def kind(*types: type) -> Filter:
    return lambda m: isinstance(m, types)


def all_of(*filters: Filter) -> Filter:
    return lambda m: all(f(m) for f in filters)


def appends_to(node: str) -> Filter:
    return lambda m: isinstance(m, AppendEntries) and m.dst == node
