"""Linearizable reads without writing to the log (dissertation §6.4).

A leader may answer a read from its state machine only if it is *still*
the leader when the read arrives; a deposed leader that has not noticed
would return stale data.  ReadIndex proves leadership cheaply:

1. record the current commit index as the read's *read index* (the leader
   must already have committed an entry of its own term, or its commit index
   may lag what earlier leaders committed);
2. send a *new* round of heartbeats, numbered with a sequence number ``seq``
   higher than any sent before the read arrived;
3. once a majority has answered a heartbeat numbered ``seq`` or later, no
   other leader can have been elected before the read began, so
4. the read may be served once the state machine has applied the read index.

A follower serves a linearizable read by asking the leader for a read index
and then waiting until it has applied that index itself.

`ReadTracker` holds step 2 and 3's bookkeeping for the leader.
"""

from __future__ import annotations

from dataclasses import dataclass

from raft.core.messages import NodeId


@dataclass(frozen=True, slots=True)
class ReadState:
    """A read index obtained for ``request_id``, or a refusal (``ok`` False).

    The driver serves the read once ``applied_index >= index``.
    """

    request_id: int
    index: int
    ok: bool = True


@dataclass(frozen=True, slots=True)
class PendingRead:
    request_id: int
    index: int
    seq: int
    #: The follower that asked, or None for a read made on the leader itself.
    requester: NodeId | None


class ReadTracker:
    """Reads waiting for a majority to confirm the leader's heartbeat round."""

    __slots__ = ("acked", "pending", "seq", "waiting_for_commit")

    def __init__(self) -> None:
        self.seq = 0
        self.acked: dict[NodeId, int] = {}
        self.pending: list[PendingRead] = []
        #: Reads that arrived before the leader committed an entry of its term.
        self.waiting_for_commit: list[tuple[int, NodeId | None]] = []

    def start_round(self) -> int:
        """A new heartbeat round; reads registered from now on wait for it."""
        self.seq += 1
        return self.seq

    def add(self, request_id: int, index: int, requester: NodeId | None) -> None:
        """Register a read; only the *next* round (``seq + 1``) can confirm it.

        An answer to a heartbeat sent before the read arrived proves only that
        we led *then*; a newer leader may have committed writes since.
        """
        self.pending.append(PendingRead(request_id, index, self.seq + 1, requester))

    def ack(self, peer: NodeId, seq: int) -> None:
        if seq > self.acked.get(peer, 0):
            self.acked[peer] = seq

    def confirmed(self, confirmed_seq: int) -> list[PendingRead]:
        """Remove and return the reads whose round a majority has answered."""
        done = [r for r in self.pending if r.seq <= confirmed_seq]
        if done:
            self.pending = [r for r in self.pending if r.seq > confirmed_seq]
        return done

    def drain(self) -> list[PendingRead]:
        """Every read still waiting (the leader is stepping down: they fail)."""
        out = self.pending + [PendingRead(rid, 0, 0, who) for rid, who in self.waiting_for_commit]
        self.pending = []
        self.waiting_for_commit = []
        return out
