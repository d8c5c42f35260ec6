"""Log compaction and InstallSnapshot (§7).

The driver asks `should_snapshot`, takes an image of its state machine, and
hands it to `compact`, which cuts the log behind it (keeping
``trailing_entries`` so that a follower a little behind still catches up
from the log).  A follower that needs an entry the leader has compacted
away gets the snapshot instead, in chunks, stop-and-wait: the leader's
``Progress`` remembers which snapshot and which byte it has reached, and the
follower assembles the chunks and replaces its log with the result
(Figure 13).

Snapshots are separate from replication because they are a second,
independent way of bringing a follower up to date, with their own message
pair, their own flow control and their own receive state, and because the
leader and follower halves of the same mechanism read best side by side.
"""

from __future__ import annotations

from raft.core.log import RaftLog
from raft.core.messages import (
    InstallSnapshot,
    InstallSnapshotResponse,
    NodeId,
    Snapshot,
    SnapshotMeta,
)
from raft.core.progress import ProgressState
from raft.core.types import Role


class Compaction:
    """Snapshots, taken and sent and installed, mixed into `RaftCore`.

    Works on the state `RaftCore.__init__` sets up: ``snapshot`` (the
    latest one, sent to followers that need it), ``_applied_bytes`` (since
    it, for `should_snapshot`), ``_receiving`` (a follower's chunks so far)
    and ``_installed`` (a snapshot from the leader, for the next `ready`);
    and on the ``log`` and ``_base_conf`` that compaction moves forward.
    """

    # ================================================================ snapshots: taking them (§7)

    def should_snapshot(self) -> bool:
        """Has enough been applied since the last snapshot to take another (§7)?"""
        since = self.log.applied - self.snapshot.meta.index
        return since > 0 and (
            since >= self.config.snapshot_entries
            or self._applied_bytes >= self.config.snapshot_bytes
        )

    def compact(self, index: int, data: bytes) -> Snapshot:
        """The state machine's image at applied ``index`` replaces the log up to it (§7).

        Returns the snapshot for the driver to persist (`Storage.save_snapshot`).
        ``trailing_entries`` stay in memory so a follower that is only a little
        behind still catches up from the log.
        """
        if not self.snapshot.meta.index < index <= self.log.applied:
            raise ValueError(
                f"cannot snapshot at {index}: snapshot is at {self.snapshot.meta.index}, "
                f"applied at {self.log.applied}"
            )
        term = self.log.term(index)
        assert term is not None
        snap = Snapshot(SnapshotMeta(index, term, self._conf_at(index)), data)
        self.snapshot = snap
        self._applied_bytes = 0
        trim = index - self.config.trailing_entries
        if trim > self.log.snapshot.index:
            self._base_conf = self._conf_at(trim)
            self.log.compact(SnapshotMeta(trim, self.log.term(trim) or 0, self._base_conf))
        self._trace("snapshot", {"index": index, "term": term, "bytes": len(data)})
        return snap

    # ================================================================ snapshots: leader (§7)

    def _start_snapshot(self, p: NodeId) -> None:
        pr = self.progress[p]
        pr.become_snapshot(self.snapshot.meta.index)
        self._trace(
            "snapshot", {"send_to": p, "index": self.snapshot.meta.index, "term": self.term}
        )
        self._send_snapshot_chunk(p)

    def _send_snapshot_chunk(self, p: NodeId) -> None:
        """Send the chunk at the follower's acknowledged offset (stop and wait)."""
        pr = self.progress[p]
        snap = self.snapshot
        if pr.snapshot_index != snap.meta.index:
            pr.become_snapshot(snap.meta.index)  # a newer snapshot replaced the one in flight
        offset = pr.snapshot_offset
        chunk = snap.data[offset : offset + self.config.snapshot_chunk_bytes]
        done = offset + len(chunk) >= len(snap.data)
        self._send(InstallSnapshot(self.term, self.id, p, snap.meta, offset, chunk, done))

    def _handle_snapshot_response(self, m: InstallSnapshotResponse) -> None:
        if self.role is not Role.LEADER:
            return
        pr = self.progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if pr.state is not ProgressState.SNAPSHOT:
            if m.done:
                pr.acknowledged(m.snapshot_index)
            return
        if m.done:
            pr.acknowledged(m.snapshot_index)
            pr.become_probe(m.snapshot_index + 1)
            self._send_append(m.src)
            return
        if m.snapshot_index != pr.snapshot_index:
            return  # about a snapshot we are no longer sending
        if m.success and m.next_offset <= pr.snapshot_offset:
            return  # a duplicate acknowledgement
        pr.snapshot_offset = m.next_offset
        self._send_snapshot_chunk(m.src)

    # ================================================================ snapshots: follower (§7)

    def _handle_install_snapshot(self, m: InstallSnapshot) -> None:
        if self.role is not Role.FOLLOWER:
            self._become_follower(self.term, m.src)
        self.leader_id = m.src
        self.election_elapsed = 0
        meta = m.meta

        def reply(next_offset: int, done: bool = False, success: bool = True) -> None:
            self._send(
                InstallSnapshotResponse(
                    self.term, self.id, m.src, meta.index, next_offset, done, success
                )
            )

        if meta.index <= self.log.committed:
            # We already hold everything it covers (committed entries match the leader's).
            reply(0, done=True)
            return
        if self.log.match_term(meta.index, meta.term):
            # Figure 13, step 6: we hold the snapshot's last entry, so we hold
            # everything before it too (Log Matching).  Keep our log -- entries
            # after it may already be acknowledged to the leader, and forgetting
            # them could lose a committed entry -- and just learn the commit.
            self.log.committed = meta.index
            self._trace("commit", {"index": meta.index, "term": meta.term})
            reply(0, done=True)
            return
        if m.offset == 0:
            self._receiving = (meta, bytearray())
        buf = self._receiving
        if buf is None or buf[0] != meta or m.offset != len(buf[1]):
            # Out of order, or we restarted mid-transfer: say where we are.
            reply(len(buf[1]) if buf is not None and buf[0] == meta else 0, success=False)
            return
        buf[1].extend(m.data)
        if not m.done:
            reply(len(buf[1]))
            return
        self._receiving = None
        self._install(Snapshot(meta, bytes(buf[1])))
        reply(len(buf[1]), done=True)

    def _install(self, snap: Snapshot) -> None:
        """Replace our whole log by the leader's snapshot (Figure 13, step 7).

        Only called when our log does not hold the snapshot's last entry, so
        every entry we have past it belongs to another leader's history and
        was never committed: dropping it is safe, and `Storage.install_snapshot`
        drops it on disk too.
        """
        meta = snap.meta
        self.log = RaftLog(meta, [], meta.index)
        self.log.applied = meta.index  # the driver restores the state machine from it
        self.snapshot = snap
        self._installed = snap
        self._applied_bytes = 0
        self._unstable_from = meta.index + 1
        self._base_conf = meta.conf
        self._refresh_conf()
        self._trace(
            "snapshot", {"installed": meta.index, "term": meta.term, "from": self.leader_id}
        )
