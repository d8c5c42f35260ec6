"""Log replication (§5.3): AppendEntries from both ends, and the commit rule.

The leader's half sends each follower the entries it lacks, within that
follower's flow control (`raft.core.progress`: one probe at a time until the two
logs agree, then up to ``max_inflight`` messages in flight), learns from
the answers where the logs match, and commits an entry once a majority
holds it -- only an entry of its own term, as Figure 8 (§5.4.2) demands.
Heartbeats (§5.2) are empty AppendEntries, so they are sent from here too.
The follower's half runs the consistency check, deletes a conflicting
suffix, appends, and learns the commit index.

Replication is the part of the protocol that moves data and the largest
one, so it has its own module; `raft.core.protocol` keeps the roles, timers and
elections that decide *who* replicates.  When a follower needs entries
that compaction has already dropped, replication hands over to
`raft.core.compaction` (InstallSnapshot, §7).
"""

from __future__ import annotations

from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    EntryKind,
    NodeId,
    TimeoutNow,
)
from raft.core.progress import ProgressState
from raft.core.quorum import committed_index
from raft.core.types import Role


class LogReplication:
    """AppendEntries and the commit rule, mixed into `RaftCore`.

    Works on the state `RaftCore.__init__` sets up: the ``log``, the
    leader's ``progress`` of each follower, ``_unstable_from`` (the first
    entry not yet handed to storage) and ``_append_wanted`` (new entries to
    send with the next `ready`).  It calls into the other parts where the
    protocol meets them: ``_start_snapshot`` (`raft.core.compaction`) for a
    follower whose next entry is compacted, ``_ack_read_round`` and
    ``_release_reads_waiting_for_commit`` (`raft.core.reads`), ``_refresh_conf``
    (`raft.core.reconfig`) after the log changes, and `RaftCore`'s own
    ``_become_follower``, ``_send`` and ``_trace``.
    """

    # ================================================================ log replication: leader

    def _append_own(self, data: bytes, kind: EntryKind) -> int:
        index = self.log.last_index + 1
        self.log.append([Entry(self.term, index, data, kind)])
        self._append_wanted = True
        return index

    def _self_progress_acknowledged(self) -> None:
        """Our own durable log counts towards a majority only once it is durable.

        A commit this causes is not announced by a message of its own: see
        `_maybe_commit`.
        """
        self._maybe_commit()

    def _match_of(self, p: NodeId) -> int:
        if p == self.id:
            return self.log.stable
        pr = self.progress.get(p)
        return pr.match if pr is not None else 0

    def _maybe_commit(self) -> bool:
        """Advance the commit index by counting replicas (§5.3).

        Figure 8 / §5.4.2: only an entry of the current term is committed this
        way; earlier entries become committed with it, by Log Matching.

        Followers are not told at once.  Every AppendEntries carries the
        leader's commit index (Figure 2's ``leaderCommit``), so they learn it
        from the next append or heartbeat (at most ``heartbeat_ticks`` later),
        as in etcd's raft.  A message of its own per commit (and its answer)
        would double the Raft traffic of a lone client for nothing the
        protocol needs: clients are answered by the leader, and a follower's
        linearizable read (§6.4) is confirmed by a heartbeat round that
        carries the commit index it waits for.
        """
        voters = self.conf.voters
        index = committed_index(voters, {p: self._match_of(p) for p in voters})
        if index <= self.log.committed or self.log.term(index) != self.term:
            return False
        first_of_term = self.log.term(self.log.committed) != self.term
        self.log.committed = index
        self._trace("commit", {"index": index, "term": self.term})
        if first_of_term:
            self._release_reads_waiting_for_commit()
        if not self.is_voter and self._pending_conf_index <= index:
            # Dissertation §4.2.2: a leader removed from the configuration
            # steps down once that configuration is committed.
            self._broadcast_commit()
            self._become_follower(self.term, None)
            return False
        return True

    def _broadcast_append(self) -> None:
        self._append_wanted = False
        for p in self.progress:
            self._send_append(p)

    def _send_append(self, p: NodeId, heartbeat: bool = False) -> None:
        """Send entries the follower lacks, within its flow control."""
        pr = self.progress[p]
        last = self.log.last_index
        while not pr.paused and (pr.next <= last or heartbeat):
            prev = pr.next - 1
            prev_term = self.log.term(prev)
            if prev_term is None:
                self._start_snapshot(p)  # the entries it needs are compacted (§7)
                return
            entries = self.log.slice(
                pr.next,
                last + 1,
                self.config.max_entries_per_message,
                self.config.max_bytes_per_message,
            )
            self._send(
                AppendEntries(
                    self.term,
                    self.id,
                    p,
                    prev,
                    prev_term,
                    tuple(entries),
                    self.log.committed,
                    self._reads.seq,
                )
            )
            pr.sent(entries[-1].index if entries else prev)
            heartbeat = False
            if not entries:
                return

    def _broadcast_heartbeat(self) -> None:
        """§5.2: heartbeats keep followers from starting elections.

        A heartbeat to a replicating follower checks the entry just before
        ``next``: if an AppendEntries was lost, the follower rejects it and we
        fall back to probing, instead of waiting for a timeout.  Each round
        carries a new ``seq``, which confirms leadership for pending reads.
        """
        seq = self._reads.start_round()
        for p, pr in self.progress.items():
            if pr.state is ProgressState.REPLICATE:
                prev = pr.next - 1
                prev_term = self.log.term(prev)
                if prev_term is None:
                    pr.become_probe(pr.next)
                    self._send_append(p, heartbeat=True)
                    continue
                commit = min(self.log.committed, prev)
                self._send(AppendEntries(self.term, self.id, p, prev, prev_term, (), commit, seq))
            elif pr.state is ProgressState.SNAPSHOT:
                self._send_snapshot_chunk(p)  # resend from the last acknowledged byte
            else:
                pr.probe_sent = False
                self._send_append(p, heartbeat=True)

    def _broadcast_commit(self) -> None:
        """Tell followers the new commit index now, not at the next heartbeat.

        Only for a leader about to step down (dissertation §4.2.2): it sends no
        heartbeat after, and its followers should not wait for an election to
        learn that its last entries committed.
        """
        for p, pr in self.progress.items():
            if pr.state is ProgressState.REPLICATE and pr.match > 0:
                if pr.next <= self.log.last_index and not pr.paused:
                    self._send_append(p)  # entries pending: they carry the commit index
                elif (match_term := self.log.term(pr.match)) is not None:
                    self._send(
                        AppendEntries(
                            self.term,
                            self.id,
                            p,
                            pr.match,
                            match_term,
                            (),
                            self.log.committed,
                            self._reads.seq,
                        )
                    )

    def _handle_append_response(self, m: AppendEntriesResponse) -> None:
        if self.role is not Role.LEADER:
            return
        pr = self.progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        self._ack_read_round(m.src, m.seq)
        if not m.success:
            rejected = m.match_index
            if rejected <= pr.match or pr.state is ProgressState.SNAPSHOT:
                return  # an answer to an old request; we know better already
            if pr.state is ProgressState.PROBE and rejected != pr.next - 1:
                return
            pr.become_probe(self._next_after_rejection(m))
            self._send_append(m.src)
            return
        if pr.acknowledged(m.match_index):
            if pr.state is ProgressState.PROBE:
                pr.become_replicate()
            self._maybe_commit()  # followers learn it with their next append or heartbeat
            if self.role is not Role.LEADER:
                return
            if m.src == self._transferee and pr.match == self.log.last_index:
                self._send(TimeoutNow(self.term, self.id, m.src))  # §3.10: caught up, go
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = False
        if pr.next <= self.log.last_index:
            self._send_append(m.src)

    def _next_after_rejection(self, m: AppendEntriesResponse) -> int:
        """Where to probe next, from the follower's conflict hint (§5.3)."""
        if m.conflict_term:
            last = self.log.last_index_of_term(m.conflict_term)
            if last is not None:
                return min(last + 1, m.match_index)
        return min(m.conflict_index, m.match_index)

    # ================================================================ log replication: follower

    def _handle_append(self, m: AppendEntries) -> None:
        # Same term as ours here.  §5.2: a candidate that hears from the
        # leader of its term returns to follower.
        if self.role is not Role.FOLLOWER:
            self._become_follower(self.term, m.src)
        self.leader_id = m.src
        self.election_elapsed = 0

        if m.prev_log_index < self.log.snapshot.index:
            # Our snapshot covers committed entries only, and those match the
            # leader's (Leader Completeness, §5.4); say how far we already are.
            self._reply_append(m, True, self.log.committed)
            return
        if not self.log.match_term(m.prev_log_index, m.prev_log_term):
            # §5.3 consistency check failed: reply with a hint.
            if m.prev_log_index > self.log.last_index:
                hint_index, hint_term = self.log.last_index + 1, 0
            else:
                hint_term = self.log.term(m.prev_log_index) or 0
                hint_index = self.log.first_index_of_term(m.prev_log_index)
            self._send(
                AppendEntriesResponse(
                    self.term,
                    self.id,
                    m.src,
                    False,
                    match_index=m.prev_log_index,
                    conflict_index=max(hint_index, self.log.committed + 1),
                    conflict_term=hint_term,
                    seq=m.seq,
                )
            )
            return
        # Figure 2: delete a conflicting suffix, append what is new.  Never
        # truncate on a mere re-delivery: only where terms differ.
        entries = m.entries
        changed_conf = False
        for i, e in enumerate(entries):
            t = self.log.term(e.index)
            if t is None:
                self.log.append(entries[i:])
                changed_conf = any(x.kind is EntryKind.CONFIG for x in entries[i:])
                break
            if t != e.term:
                self._truncate(e.index)
                self.log.append(entries[i:])
                changed_conf = True
                break
        if changed_conf:
            self._refresh_conf()  # §4.1: a configuration applies once appended
        last_new = m.prev_log_index + len(entries)
        commit = min(m.leader_commit, last_new)
        if commit > self.log.committed:
            self.log.committed = commit
            self._trace("commit", {"index": commit, "term": self.log.term(commit)})
        self._reply_append(m, True, last_new)

    def _truncate(self, index: int) -> None:
        self.log.truncate_from(index)
        self._unstable_from = min(self._unstable_from, index)

    def _reply_append(self, m: AppendEntries, success: bool, match: int) -> None:
        self._send(AppendEntriesResponse(self.term, self.id, m.src, success, match, seq=m.seq))
