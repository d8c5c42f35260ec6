"""ReadIndex: linearizable reads without writing to the log (dissertation §6.4).

`raft.core.readindex` explains the method and holds the leader's bookkeeping
(`ReadTracker`); this module is the core's side of it: a read asked of the
leader waits for an entry of its term to commit, then for a majority to
answer a heartbeat round sent after it arrived (a lone voter answers at
once); a read asked of a follower is forwarded to the leader as a
ReadIndexRequest.  Every answer reaches the driver as a `ReadState` in
`Ready.reads`; the reads still waiting fail when the leader steps down.

Reads are separate from replication although they ride on its heartbeats:
they change no log and no term, and what they need from the rest of the
core is only the commit index and the heartbeat acknowledgements.
"""

from __future__ import annotations

from raft.core.messages import NodeId, ReadIndexRequest, ReadIndexResponse
from raft.core.quorum import committed_index
from raft.core.readindex import ReadState
from raft.core.types import Role


class LinearizableReads:
    """ReadIndex reads, mixed into `RaftCore`.

    Works on the state `RaftCore.__init__` sets up: ``_reads`` (the
    leader's `ReadTracker`, new for each term it leads), ``_read_round_wanted``
    (a heartbeat round to send with the next `ready`) and ``_read_states``
    (answers for the next `ready`).
    """

    # ================================================================ reads (§6.4)

    def read_index(self, request_id: int) -> None:
        """Ask for a linearizable read (§6.4); the answer comes as a `ReadState`
        in a later `Ready` (``ok`` False if this node cannot get one now)."""
        if self.role is Role.LEADER:
            self._leader_read(request_id, None)
        elif self.leader_id is not None:
            self._send(ReadIndexRequest(self.term, self.id, self.leader_id, request_id))
        else:
            self._read_states.append(ReadState(request_id, 0, ok=False))

    def _leader_read(self, request_id: int, requester: NodeId | None) -> None:
        if len(self.conf.voters) == 1 and self.is_voter:
            self._answer_read(request_id, self.log.committed, requester)
        elif self.log.term(self.log.committed) != self.term:
            # Until an entry of our term commits, our commit index may be
            # behind what earlier leaders committed (§6.4 step 1).
            self._reads.waiting_for_commit.append((request_id, requester))
        else:
            self._reads.add(request_id, self.log.committed, requester)
            self._read_round_wanted = True

    def _release_reads_waiting_for_commit(self) -> None:
        waiting, self._reads.waiting_for_commit = self._reads.waiting_for_commit, []
        for request_id, requester in waiting:
            self._leader_read(request_id, requester)

    def _ack_read_round(self, peer: NodeId, seq: int) -> None:
        reads = self._reads
        if not reads.pending or peer not in self.conf.voters:
            reads.ack(peer, seq)
            return
        reads.ack(peer, seq)
        acked = {p: reads.acked.get(p, 0) for p in self.conf.voters}
        if self.is_voter:
            acked[self.id] = reads.seq
        for r in reads.confirmed(committed_index(self.conf.voters, acked)):
            self._answer_read(r.request_id, r.index, r.requester)

    def _answer_read(self, request_id: int, index: int, requester: NodeId | None) -> None:
        if requester is None:
            self._read_states.append(ReadState(request_id, index))
        else:
            self._send(ReadIndexResponse(self.term, self.id, requester, request_id, index, True))

    def _fail_reads(self) -> None:
        for r in self._reads.drain():
            if r.requester is None:
                self._read_states.append(ReadState(r.request_id, 0, ok=False))
            else:
                self._send(
                    ReadIndexResponse(self.term, self.id, r.requester, r.request_id, 0, False)
                )

    def _handle_read_request(self, m: ReadIndexRequest) -> None:
        if self.role is Role.LEADER:
            self._leader_read(m.request_id, m.src)
        else:
            self._send(ReadIndexResponse(self.term, self.id, m.src, m.request_id, 0, False))

    def _handle_read_response(self, m: ReadIndexResponse) -> None:
        self._read_states.append(ReadState(m.request_id, m.read_index, m.ok))
