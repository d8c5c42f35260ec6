"""A hand-driven network of `RaftCore`s for the paper tests.

Unlike the full simulator (`raft.sim`), nothing here happens on its own: a
test ticks a node, delivers the messages it chooses, and looks at the cores
in between.  The driver loop is the one the core's docstring asks for:

    ready() -> persist hard_state and entries -> send messages
            -> apply committed entries -> advance()

While persisting, `Net` also checks *persist before send* for every batch: a
granted vote must be on "disk" when its batch is sent, and so must the entry
an AppendEntries success acknowledges.  Broken promises are collected in
``net.violations`` rather than raised, so a test can assert on them.

Node ids are ``n1`` .. ``nN``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from raft.core import Config, RaftCore, Ready, Role, TraceEvent
from raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    Message,
    RequestVoteResponse,
)
from raft.storage import MemoryStorage, PersistentState

Filter = Callable[[Message], bool]


def ids(n: int) -> list[str]:
    return [f"n{i}" for i in range(1, n + 1)]


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
        return Config(id=node, peers=tuple(self.ids), **self.config_kw)  # type: ignore[arg-type]

    def _boot(self, node: str) -> None:
        rng = random.Random(f"{self.seed}/{node}/{self._incarnation[node]}")
        state: PersistentState = self.storage[node].load()
        self.cores[node] = RaftCore(self.config(node), rng, state)
        self.applied[node] = []

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
            if rd.hard_state is not None:
                st.set_hard_state(rd.hard_state)
            st.append(rd.entries)
            st.sync()
            self._check_persisted(node, rd)
            for m in rd.messages:
                self._send(m)
            self.applied[node].extend(rd.committed)
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
