"""The vocabulary of Raft: log entries, hard state, snapshots and the RPCs.

Everything here is a small frozen dataclass with slots: values, not objects
with behaviour.  The core (`raft.core.protocol`) consumes and produces them; the codec
(`raft.runtime.codec`) turns them into msgpack frames for the wire and the storage
(`raft.core.storage`) writes entries and hard state to disk.

Node ids are strings (``"manager1"`` in a cluster, ``"n1"`` in the simulator)
so that traces and test failures read like the paper's figures.

Every message carries the sender's ``term``, its ``src`` and its ``dst``.
The paper's RPC "responses" are ordinary messages here: the transport is
one-way and a response may never arrive, which is exactly what Raft assumes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NodeId = str


class EntryKind(enum.IntEnum):
    """What an entry carries.  Only NORMAL entries reach the state machine."""

    NORMAL = 0
    #: The no-op a new leader appends to commit entries of earlier terms (§5.4.2, §8).
    NOOP = 1
    #: A membership change; ``data`` is an encoded `ConfState` (dissertation §4).
    CONFIG = 2


@dataclass(frozen=True, slots=True)
class Entry:
    """One log entry: the command ``data`` proposed in ``term`` at ``index``."""

    term: int
    index: int
    data: bytes = b""
    kind: EntryKind = EntryKind.NORMAL

    def __post_init__(self) -> None:
        if self.term < 0 or self.index < 1:
            raise ValueError(f"bad entry position: term {self.term}, index {self.index}")


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on stable storage before a node answers anyone (Figure 2).

    ``commit`` is not required for safety but lets a restarted node apply
    committed entries without waiting for a leader.
    """

    term: int = 0
    vote: NodeId | None = None
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ConfState:
    """The cluster configuration: who votes and who only learns (dissertation §4)."""

    voters: tuple[NodeId, ...] = ()
    learners: tuple[NodeId, ...] = ()

    def __post_init__(self) -> None:
        if set(self.voters) & set(self.learners):
            raise ValueError("a node cannot be both voter and learner")

    @property
    def members(self) -> tuple[NodeId, ...]:
        return self.voters + self.learners


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    """Where a snapshot stands in the log and the configuration at that point (§7)."""

    index: int = 0
    term: int = 0
    conf: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A state machine image that replaces the log prefix up to ``meta.index`` (§7)."""

    meta: SnapshotMeta = field(default_factory=SnapshotMeta)
    data: bytes = b""


# --------------------------------------------------------------------------
# Messages


@dataclass(frozen=True, slots=True)
class RequestVote:
    """RequestVote RPC (§5.2), also used for pre-vote (dissertation §9.6).

    A pre-vote carries the term the candidate *would* use (its term + 1)
    without having incremented its own.  ``transfer`` marks an election
    started by TimeoutNow (§3.10), which voters grant even while they still
    hear from a leader.
    """

    term: int
    src: NodeId
    dst: NodeId
    last_log_index: int
    last_log_term: int
    pre_vote: bool = False
    transfer: bool = False


@dataclass(frozen=True, slots=True)
class RequestVoteResponse:
    """The answer to a (pre-)vote; ``reason`` explains a refusal for the trace."""

    term: int
    src: NodeId
    dst: NodeId
    granted: bool
    pre_vote: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class AppendEntries:
    """AppendEntries RPC (§5.3); with no entries it is a heartbeat (§5.2).

    ``seq`` numbers the leader's sends so that a response can confirm
    leadership for the reads that were waiting when it went out (§6.4).
    """

    term: int
    src: NodeId
    dst: NodeId
    prev_log_index: int
    prev_log_term: int
    entries: tuple[Entry, ...] = ()
    leader_commit: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True)
class AppendEntriesResponse:
    """The follower's answer.

    On success ``match_index`` is the last index known to match the leader.
    On rejection ``conflict_index``/``conflict_term`` let the leader skip a
    whole term of mismatching entries in one round trip (the optimisation at
    the end of §5.3): ``conflict_term`` is the follower's term at
    ``prev_log_index`` (0 if its log is shorter) and ``conflict_index`` the
    first index it holds for that term (or its last index + 1).  A rejection
    also carries the rejected ``prev_log_index`` in ``match_index`` so that the
    leader can recognise and ignore an answer to an old request.
    """

    term: int
    src: NodeId
    dst: NodeId
    success: bool
    match_index: int = 0
    conflict_index: int = 0
    conflict_term: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True)
class InstallSnapshot:
    """InstallSnapshot RPC (§7), one chunk of ``data`` at byte ``offset``."""

    term: int
    src: NodeId
    dst: NodeId
    meta: SnapshotMeta
    offset: int
    data: bytes
    done: bool


@dataclass(frozen=True, slots=True)
class InstallSnapshotResponse:
    """Acknowledges snapshot bytes up to ``next_offset``; ``done`` once installed."""

    term: int
    src: NodeId
    dst: NodeId
    snapshot_index: int
    next_offset: int
    done: bool = False
    success: bool = True


@dataclass(frozen=True, slots=True)
class TimeoutNow:
    """Leadership transfer (dissertation §3.10): start an election at once."""

    term: int
    src: NodeId
    dst: NodeId


@dataclass(frozen=True, slots=True)
class ReadIndexRequest:
    """A follower asks the leader for a read index (dissertation §6.4)."""

    term: int
    src: NodeId
    dst: NodeId
    request_id: int


@dataclass(frozen=True, slots=True)
class ReadIndexResponse:
    """The leader's confirmed commit index for a follower's read, or a refusal."""

    term: int
    src: NodeId
    dst: NodeId
    request_id: int
    read_index: int
    ok: bool


Message = (
    RequestVote
    | RequestVoteResponse
    | AppendEntries
    | AppendEntriesResponse
    | InstallSnapshot
    | InstallSnapshotResponse
    | TimeoutNow
    | ReadIndexRequest
    | ReadIndexResponse
)

#: Every message type, in a fixed order: the codec numbers them by position.
MESSAGE_TYPES: tuple[type, ...] = (
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    TimeoutNow,
    ReadIndexRequest,
    ReadIndexResponse,
)
