"""The core's vocabulary: its settings, roles, errors and output batch.

These are the small types the world exchanges with `RaftCore`: the `Config`
it is built from, the `Role` it reports, the exceptions a caller of
`propose` can catch, and the `Ready` batch (with its `TraceEvent`s) it hands
back.  They hold no protocol logic.  They live apart from `raft.core.protocol` so
that the protocol's own parts (`raft.core.replication`, `raft.core.compaction`, ...)
can name them without importing the class they are mixed into, and so that
a reader can see the core's interface without reading the protocol.
`raft.core.protocol` re-exports every one of them; import them from there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from raft.core.messages import Entry, HardState, Message, NodeId, Snapshot
from raft.core.readindex import ReadState


class Role(enum.Enum):
    """A server's role; `raft.core.protocol`'s theory of operation tables the transitions."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre-candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class NotLeader(Exception):
    """`propose` was called on a node that is not the leader.

    ``leader`` is the node this one believes leads its term, if any, so that
    a client can retry there (§8).
    """

    def __init__(self, leader: NodeId | None) -> None:
        super().__init__(f"not the leader (leader: {leader or 'unknown'})")
        self.leader = leader


class ProposalDropped(Exception):
    """The leader cannot take proposals right now (a leadership transfer is
    under way, §3.10); retry shortly, at whichever node then leads."""


@dataclass(frozen=True, slots=True)
class Config:
    """Settings of one core.  Times are in ticks."""

    id: NodeId
    #: The voters of a brand-new cluster (ignored once storage holds a configuration).
    peers: tuple[NodeId, ...]
    #: T: the election timeout is drawn from [T, 2T) (§5.2, §9.3).
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    #: Pre-vote (dissertation §9.6): a node that cannot win does not bump terms.
    pre_vote: bool = True
    #: A leader that has not heard from a majority for T steps down (§6.2).
    check_quorum: bool = True
    #: AppendEntries in flight per follower once it is replicating.
    max_inflight: int = 64
    max_entries_per_message: int = 1024
    max_bytes_per_message: int = 1 << 20
    #: Take a snapshot after this many applied entries / bytes since the last (§7).
    snapshot_entries: int = 10_000
    snapshot_bytes: int = 64 << 20
    #: Entries kept behind a snapshot so a slow follower can catch up from the
    #: log instead of a whole snapshot (Swarm keeps 500).
    trailing_entries: int = 500
    snapshot_chunk_bytes: int = 256 << 10

    def __post_init__(self) -> None:
        if self.heartbeat_ticks < 1 or self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("need 1 <= heartbeat_ticks < election_ticks")


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """Something worth a line in the node's trace; the driver adds time and node."""

    type: str
    fields: dict[str, Any]


@dataclass(slots=True)
class Ready:
    """One batch of effects.  See `raft.core.protocol`'s docstring for the contract.

    ``snapshot`` is a snapshot received from the leader (§7): persist it
    first (`Storage.install_snapshot`, which also empties the log after it)
    and restore the state machine from it before applying ``committed``.
    ``reads`` are linearizable reads whose read index is now known (§6.4).
    """

    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    messages: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)
    reads: list[ReadState] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.hard_state is not None
            or self.entries
            or self.snapshot is not None
            or self.messages
            or self.committed
            or self.events
            or self.reads
        )
