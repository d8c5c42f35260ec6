"""One simulated server: its disk, with what a crash keeps and what it loses.

`SimStorage` models a disk with a write cache.  Writes (`append`,
`set_hard_state`, snapshots) only queue up; `sync` -- the fsync -- makes them
durable, in the order they were made; a crash (`lose_unsynced`) drops every
write since the last sync, as a power loss drops what the page cache had not
written.  So a driver that sends a vote before its fsync, and crashes in
between, comes back without the vote: exactly the bug Raft's "persist before
send" rule exists to prevent, made visible.

`SimNode` is a server between crashes: a core while it is up, its storage
always, and the driver state that a crash throws away with the core.
"""

from __future__ import annotations

import json

from raft.core.messages import Entry, HardState, NodeId, Snapshot
from raft.core.protocol import RaftCore
from raft.core.storage import MemoryStorage, PersistentState

__all__ = ["SimNode", "SimStorage", "decode_applied", "encode_applied"]


class SimStorage:
    """`raft.core.storage.Storage` with a volatile write cache in front of the durable part."""

    def __init__(self) -> None:
        #: What survives a crash.
        self.durable = MemoryStorage()
        self._unsynced: list[tuple[str, object]] = []

    @property
    def unsynced(self) -> int:
        """Writes made since the last `sync`: what a crash now would lose."""
        return len(self._unsynced)

    def load(self) -> PersistentState:
        """What a restart sees: the durable state only."""
        return self.durable.load()

    def append(self, entries: list[Entry]) -> None:
        if entries:
            self._unsynced.append(("append", list(entries)))

    def set_hard_state(self, hs: HardState) -> None:
        self._unsynced.append(("set_hard_state", hs))

    def save_snapshot(self, snapshot: Snapshot) -> None:
        self._unsynced.append(("save_snapshot", snapshot))

    def install_snapshot(self, snapshot: Snapshot) -> None:
        self._unsynced.append(("install_snapshot", snapshot))

    def sync(self) -> None:
        """The fsync: every queued write reaches the durable state, in order."""
        writes, self._unsynced = self._unsynced, []
        for method, arg in writes:
            getattr(self.durable, method)(arg)

    def lose_unsynced(self) -> int:
        """A crash: drop what was not synced; returns how many writes were lost."""
        lost = len(self._unsynced)
        self._unsynced = []
        return lost


class SimNode:
    """One server: a core while up, its storage always."""

    def __init__(self, node_id: NodeId, peers: tuple[NodeId, ...]) -> None:
        self.id = node_id
        #: The voters it starts with when its storage is empty; () for a joiner.
        self.peers = peers
        self.storage = SimStorage()
        self.core: RaftCore | None = None
        self.applied: list[Entry] = []
        self.crashes = 0
        #: Driver state, lost with the core: the hard state last written (and
        #: synced), a commit-only change held back (`raft.core.persist`), and
        #: batches driven (for ``SimConfig.commit_write_every``).
        self.written_hs = HardState()
        self.deferred_hs: HardState | None = None
        self.batches = 0

    @property
    def up(self) -> bool:
        return self.core is not None


def encode_applied(applied: list[Entry]) -> bytes:
    """The simulated state machine's snapshot: every command it applied."""
    return json.dumps([[e.index, e.term, e.data.hex()] for e in applied]).encode()


def decode_applied(data: bytes) -> list[Entry]:
    if not data:
        return []
    return [Entry(t, i, bytes.fromhex(d)) for i, t, d in json.loads(data)]
