"""The Raft protocol as a deterministic state machine with no I/O.

Theory of operation
-------------------

`RaftCore` is one server of the paper.  It has no sockets, files, clocks,
threads or randomness of its own.  The world talks to it through four inputs:

* ``tick()``           -- one unit of logical time has passed;
* ``step(message)``    -- a message from a peer arrived;
* ``propose(data)``    -- a client wants ``data`` in the log (leader only);
* ``advance(ready)``   -- storage has made a batch durable (the acknowledgement).

After any input, ``ready()`` returns a `Ready` batch of effects: hard state
and entries to persist, messages to send, committed entries to apply and
trace events to record.  Whoever drives the core (the asyncio node driver in
real processes, `raft.sim.simulator` in tests) must honour the batch's contract:

1. **Persist before send.**  Write ``hard_state`` and ``entries`` and fsync
   them *before* sending the messages that promise them.  A vote (§5.2) or
   an acknowledgement of entries (§5.3) that left the node before the state
   it promises was durable could be forgotten by a crash, and the node could
   then vote twice in a term or lose a committed entry.  The exact order --
   a leader's own AppendEntries may go before its fsync (dissertation
   §10.2.1), a commit-only hard state may be written lazily -- is decided
   once, in `raft.core.persist`, and both drivers follow it.
2. **Apply only committed entries**, in order: ``committed`` holds exactly
   the entries that became committed, each once.
3. Call ``advance(ready)`` once the batch is durable.  That acknowledgement
   is how the leader learns that its own log counts towards a majority.

Inputs may arrive between ``ready()`` and ``advance()``; ``ready()`` must not
be called again before ``advance()``.  Proposals and messages that arrive
between two ``ready()`` calls are batched: a leader sends all new entries to
a follower in as few AppendEntries as its flow control allows.

Roles and transitions (the table `viz` draws the role diagram from):

    follower      --election timeout-->      pre-candidate  (pre-vote, §9.6)
    pre-candidate --majority of pre-votes--> candidate      (term + 1, §5.2)
    candidate     --majority of votes-->     leader         (§5.2)
    any role      --higher term seen-->      follower       (§5.1)
    leader        --no quorum heard-->       follower       (check-quorum, §6.2)
    (pre-)candidate --AppendEntries of its term--> follower (§5.2)

Time is counted in ticks.  A follower's election timeout is drawn from
[T, 2T) ticks with the caller's seeded `random.Random`, so a run replays
exactly from its seed.

Beyond the basic protocol the core carries the parts a real cluster needs:
log compaction and InstallSnapshot (§7), one-server-at-a-time membership
changes with learners (dissertation §4), leadership transfer (§3.10),
ReadIndex reads (§6.4) and forced recovery of a lone survivor
(`force_new_cluster`).

Where the parts live
--------------------

This module is the state machine proper, as ``raft.go`` is in etcd's raft:
the inputs and the output batch, the roles and their transitions, the
timers with check-quorum (§6.2), elections with pre-vote (§9.6), and the
term check that every message goes through before `step` hands it to its
handler.  `RaftCore` is still the one class of the protocol, but the rest
of its methods are written in one module per part, each a mixin that this
class inherits:

* `raft.core.replication` -- AppendEntries, flow control, heartbeats and the
  commit rule (§5.3, §5.4.2);
* `raft.core.compaction` -- taking snapshots, and InstallSnapshot (§7);
* `raft.core.reconfig` -- membership changes (dissertation §4) and
  `force_new_cluster`;
* `raft.core.transfer` -- leadership transfer (§3.10);
* `raft.core.reads` -- ReadIndex reads (§6.4).

They are mixins rather than objects of their own because each part reads
and changes the same state -- the log, the term, the role, each peer's
progress -- and calls into the others; as parts of one class, ``self.log``
means the same thing everywhere.  All of that state is set up in
`RaftCore.__init__`, and each mixin's docstring names the part it owns.
The pieces with no protocol of their own are plain modules: `raft.core.log`,
`raft.core.progress`, `raft.core.quorum`, `raft.core.membership`, `raft.core.readindex`, and
`raft.core.types` (`Config`, `Role`, `Ready`, ... -- re-exported here, with
the exceptions and `force_new_cluster`, so callers import them from
`raft.core.protocol`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from raft.core.compaction import Compaction
from raft.core.log import RaftLog
from raft.core.membership import ConfChange, ConfChangeError, ConfChangeOp
from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    ConfState,
    EntryKind,
    HardState,
    InstallSnapshot,
    InstallSnapshotResponse,
    Message,
    NodeId,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
    TimeoutNow,
)
from raft.core.progress import Progress
from raft.core.quorum import VoteResult, majority, vote_result
from raft.core.readindex import ReadState, ReadTracker
from raft.core.reads import LinearizableReads
from raft.core.reconfig import MembershipChanges, force_new_cluster
from raft.core.replication import LogReplication
from raft.core.storage import PersistentState
from raft.core.transfer import LeadershipTransfer
from raft.core.types import Config, NotLeader, ProposalDropped, Ready, Role, TraceEvent

# Used by `raft.core.replication` and `raft.core.reads`, not here; still importable as
# `raft.core.protocol.committed_index`, which the planted-bug tests build on.
from raft.core.quorum import committed_index  # noqa: F401  isort: skip

__all__ = [
    "ConfChange",
    "ConfChangeError",
    "ConfChangeOp",
    "Config",
    "NotLeader",
    "ProposalDropped",
    "RaftCore",
    "ReadState",
    "Ready",
    "Role",
    "TraceEvent",
    "force_new_cluster",
]

#: How many of the newest entries `RaftCore.status` lists (``log_tail``).
LOG_TAIL = 16


class RaftCore(
    LogReplication, Compaction, MembershipChanges, LeadershipTransfer, LinearizableReads
):
    """One Raft server, sans I/O.  See the module docstring."""

    def __init__(
        self, config: Config, rng: random.Random, state: PersistentState | None = None
    ) -> None:
        state = state or PersistentState()
        self.config = config
        self.id = config.id
        self._rng = rng
        self.log = RaftLog(state.snapshot.meta, state.entries, state.hard_state.commit)
        self.term = state.hard_state.term
        self.vote: NodeId | None = state.hard_state.vote
        #: The latest snapshot: sent to followers whose next entry is compacted.
        self.snapshot = state.snapshot
        #: Configuration in force at the log's first index - 1 (the compaction point).
        self._base_conf = (
            state.snapshot.meta.conf
            if state.snapshot.meta.index
            else ConfState(voters=tuple(config.peers))
        )
        self.conf = self._base_conf
        self.role = Role.FOLLOWER
        self.leader_id: NodeId | None = None
        self.progress: dict[NodeId, Progress] = {}
        self.votes: dict[NodeId, bool] = {}
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = 0
        self._reset_election_timer()

        self._messages: list[Message] = []
        self._events: list[TraceEvent] = []
        self._persisted_hs = state.hard_state
        self._unstable_from = self.log.last_index + 1  # first entry not yet handed to storage
        self._pending: Ready | None = None
        self._append_wanted = False
        # Compaction (raft.core.compaction)
        self._installed: Snapshot | None = None  # from the leader, for the next Ready
        self._receiving: tuple[SnapshotMeta, bytearray] | None = None
        self._applied_bytes = 0  # since the last snapshot, for should_snapshot()
        # Membership changes (raft.core.reconfig), leadership transfer (raft.core.transfer)
        self._pending_conf_index = 0
        self._transferee: NodeId | None = None
        self._transfer_elapsed = 0
        # ReadIndex reads (raft.core.reads)
        self._reads = ReadTracker()
        self._read_round_wanted = False
        self._read_states: list[ReadState] = []
        self._refresh_conf()  # the latest configuration entry in the log rules (§4.1)

    # ================================================================ views

    @property
    def commit_index(self) -> int:
        return self.log.committed

    @property
    def applied_index(self) -> int:
        return self.log.applied

    @property
    def hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    @property
    def is_voter(self) -> bool:
        return self.id in self.conf.voters

    def status(self) -> dict[str, Any]:
        """A snapshot of this server's Raft state, for humans and the API."""
        st: dict[str, Any] = {
            "id": self.id,
            "role": self.role.value,
            "term": self.term,
            "leader": self.leader_id,
            "voted_for": self.vote,
            "commit_index": self.log.committed,
            "applied_index": self.log.applied,
            "last_log_index": self.log.last_index,
            "last_log_term": self.log.last_term,
            "snapshot_index": self.snapshot.meta.index,
            "first_log_index": self.log.offset,
            "voters": list(self.conf.voters),
            "learners": list(self.conf.learners),
            # The election timer in ticks (§5.2): a follower or candidate starts
            # an election when ``election_elapsed`` reaches ``election_timeout``;
            # a leader counts the same ticks for check-quorum (§6.2).
            "election_elapsed": self.election_elapsed,
            "election_timeout": (
                self.config.election_ticks if self.role is Role.LEADER else self.randomized_timeout
            ),
            # The newest entries as (index, term), for views that draw the log.
            "log_tail": [
                [i, self.log.term(i)]
                for i in range(
                    max(self.log.offset + 1, self.log.last_index - LOG_TAIL + 1),
                    self.log.last_index + 1,
                )
            ],
        }
        if self.role is Role.LEADER:
            st["peers"] = {
                p: {"match": pr.match, "next": pr.next, "state": pr.state.value}
                for p, pr in self.progress.items()
            }
        return st

    def __repr__(self) -> str:
        return (
            f"RaftCore({self.id}, {self.role.value}, term={self.term}, "
            f"last={self.log.last_index}, commit={self.log.committed})"
        )

    # ================================================================ inputs

    def tick(self) -> None:
        """One unit of logical time."""
        if self.role is Role.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def propose(self, data: bytes) -> int:
        """Append a client command to the leader's log; returns its index.

        The entry is sent with the next batch.  A client learns the outcome
        when the entry at that index commits with this term (§8): if another
        leader's entry takes the index instead, the proposal was lost.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if self._transferee is not None:
            raise ProposalDropped(f"leadership transfer to {self._transferee} in progress")
        return self._append_own(data, EntryKind.NORMAL)

    def step(self, m: Message) -> None:
        """Handle one message from a peer."""
        # §5.1: terms are the logical clock.  Deal with the message's term first.
        if m.term > self.term:
            if isinstance(m, RequestVote) and not m.transfer and self._in_leader_lease():
                # §4.2.3 (dissertation): a server that heard from a live leader
                # within the minimum election timeout ignores vote requests, so a
                # node that was cut off cannot depose a healthy leader.
                self._refuse_vote(m, f"heard from leader {self.leader_id} within the timeout")
                return
            if isinstance(m, RequestVote) and m.pre_vote:
                pass  # a pre-vote never changes our term (§9.6)
            elif isinstance(m, RequestVoteResponse) and m.pre_vote and m.granted:
                pass  # granted pre-votes carry the term we *would* have
            else:
                leader = m.src if isinstance(m, AppendEntries | InstallSnapshot) else None
                self._become_follower(m.term, leader)
        elif m.term < self.term:
            # Figure 2: reply false if term < currentTerm, so a stale leader or
            # candidate learns the newer term and steps down.
            if isinstance(m, AppendEntries | InstallSnapshot):
                self._send(AppendEntriesResponse(self.term, self.id, m.src, False))
            elif isinstance(m, RequestVote):
                self._refuse_vote(m, f"candidate term {m.term} is older than mine ({self.term})")
            return

        handler = _HANDLERS.get(type(m))
        if handler is not None:
            getattr(self, handler)(m)

    # ================================================================ output

    def has_ready(self) -> bool:
        if self._append_wanted and self.role is Role.LEADER:
            return True
        if self._read_round_wanted and self.role is Role.LEADER:
            return True
        return bool(
            self._messages
            or self._events
            or self._read_states
            or self._installed is not None
            or self.log.last_index >= self._unstable_from
            or self.hard_state != self._persisted_hs
            or self.log.committed > self.log.applied
        )

    def ready(self) -> Ready:
        """Collect the effects of every input since the last `advance`."""
        if self._pending is not None:
            raise RuntimeError("ready() called twice without advance()")
        if self.role is Role.LEADER:
            if self._append_wanted:
                self._broadcast_append()
            if self._read_round_wanted:
                self._read_round_wanted = False
                self._broadcast_heartbeat()
        hs = self.hard_state
        rd = Ready(
            hard_state=hs if hs != self._persisted_hs else None,
            entries=self.log.entries[self._unstable_from - self.log.offset :],
            snapshot=self._installed,
            messages=self._messages,
            committed=self.log.entries[
                self.log.applied - self.log.offset + 1 : self.log.committed - self.log.offset + 1
            ],
            events=self._events,
            reads=self._read_states,
        )
        self._installed = None
        self._messages = []
        self._events = []
        self._read_states = []
        self._unstable_from = self.log.last_index + 1
        self._pending = rd
        return rd

    def take_messages(self, may_leave: Callable[[Message], bool]) -> list[Message]:
        """Take the messages made since the last `ready` that ``may_leave`` allows.

        For a driver whose batch is still being synced (`raft.core.persist`,
        "While the fsync runs": heartbeats, §10.2.1).  They are removed from
        the next batch.  Order per destination holds: a message is taken only
        if nothing made earlier for the same peer stays behind.
        """
        taken: list[Message] = []
        kept: list[Message] = []
        held: set[NodeId] = set()
        for m in self._messages:
            if m.dst not in held and may_leave(m):
                taken.append(m)
            else:
                kept.append(m)
                held.add(m.dst)
        self._messages = kept
        return taken

    def advance(self, rd: Ready) -> None:
        """Storage has made ``rd`` durable and its committed entries were applied."""
        if rd is not self._pending:
            raise RuntimeError("advance() with a batch that ready() did not return")
        self._pending = None
        if rd.hard_state is not None:
            self._persisted_hs = rd.hard_state
        if rd.entries:
            last = rd.entries[-1]
            # A suffix may have been replaced meanwhile; only entries still in
            # our log (same index and term: the same entry, §5.3) count.
            if self.log.match_term(last.index, last.term):
                self.log.stable = max(self.log.stable, min(last.index, self._unstable_from - 1))
            if self.role is Role.LEADER:
                self._self_progress_acknowledged()
        if rd.committed:
            self.log.applied = max(self.log.applied, rd.committed[-1].index)
            self._applied_bytes += sum(len(e.data) for e in rd.committed)

    # ================================================================ roles

    def _become_follower(self, term: int, leader: NodeId | None) -> None:
        old = self.role
        if term != self.term:
            self.term = term
            self.vote = None
        self.role = Role.FOLLOWER
        self.leader_id = leader
        self.progress = {}
        self.votes = {}
        self._append_wanted = False
        self._transferee = None
        self._fail_reads()
        self._reset_election_timer()
        self._role_event(old)

    def _become_pre_candidate(self) -> None:
        # §9.6: no term change and no vote; we only ask whether we could win.
        old = self.role
        self.role = Role.PRE_CANDIDATE
        self.leader_id = None
        self.votes = {}
        self._reset_election_timer()
        self._role_event(old)

    def _become_candidate(self) -> None:
        old = self.role
        self.role = Role.CANDIDATE
        self.term += 1  # §5.2: increment currentTerm and vote for self
        self.vote = self.id
        self.leader_id = None
        self.votes = {}
        self._reset_election_timer()
        self._role_event(old)

    def _become_leader(self) -> None:
        old = self.role
        self.role = Role.LEADER
        self.leader_id = self.id
        self.votes = {}
        self.heartbeat_elapsed = 0
        self.election_elapsed = 0
        nxt = self.log.last_index + 1
        self.progress = {
            p: Progress(nxt, self.config.max_inflight) for p in self.conf.members if p != self.id
        }
        self._reads = ReadTracker()
        self._role_event(old)
        # §5.4.2 and §8: a leader cannot count replicas of earlier terms' entries,
        # so it commits a no-op of its own term; that commits everything before it.
        noop = self._append_own(b"", EntryKind.NOOP)
        # No membership change until that no-op commits: any configuration entry
        # in our log may still be uncommitted, and a change proposed before an
        # entry of our own term commits could let two disjoint majorities decide
        # (the single-server-change bug, fixed as in the dissertation's errata).
        self._pending_conf_index = noop

    def _role_event(self, old: Role) -> None:
        if old is not self.role:
            self._trace("role", {"from": old.value, "to": self.role.value, "term": self.term})

    # ================================================================ timers

    def _reset_election_timer(self) -> None:
        self.election_elapsed = 0
        t = self.config.election_ticks
        self.randomized_timeout = t + self._rng.randrange(t)  # [T, 2T), §5.2

    def _in_leader_lease(self) -> bool:
        return (
            self.config.check_quorum
            and self.leader_id is not None
            and self.election_elapsed < self.config.election_ticks
        )

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_timeout and self.is_voter:
            self._campaign(pre_vote=self.config.pre_vote)

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        self._tick_transfer()
        if self.election_elapsed >= self.config.election_ticks:
            self.election_elapsed = 0
            if self.config.check_quorum and not self._quorum_active():
                # §6.2: a leader cut off from a majority steps down, so clients
                # stop waiting on it and the loss of quorum becomes visible.
                self._trace("check_quorum", {"term": self.term, "active": self._active_count()})
                self._become_follower(self.term, None)
                return
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _active_count(self) -> int:
        n = 1 if self.is_voter else 0
        for p in self.conf.voters:
            pr = self.progress.get(p)
            if pr is not None and pr.recent_active:
                n += 1
        return n

    def _quorum_active(self) -> bool:
        ok = self._active_count() >= majority(len(self.conf.voters))
        for pr in self.progress.values():
            pr.recent_active = False
        return ok

    # ================================================================ elections

    def _campaign(self, pre_vote: bool, transfer: bool = False) -> None:
        if pre_vote:
            self._become_pre_candidate()
            term = self.term + 1
        else:
            self._become_candidate()
            term = self.term
        self._trace("election", {"term": term, "pre_vote": pre_vote})
        self.votes[self.id] = True
        if self._tally() is not VoteResult.PENDING:
            return
        for p in self.conf.voters:
            if p != self.id:
                self._send(
                    RequestVote(
                        term,
                        self.id,
                        p,
                        self.log.last_index,
                        self.log.last_term,
                        pre_vote=pre_vote,
                        transfer=transfer,
                    )
                )

    def _tally(self) -> VoteResult:
        """Act on the votes so far: promote on a majority, give up when out of reach."""
        result = vote_result(self.conf.voters, self.votes)
        if result is VoteResult.WON:
            if self.role is Role.PRE_CANDIDATE:
                self._campaign(pre_vote=False)
            else:
                self._become_leader()
        elif result is VoteResult.LOST:
            self._become_follower(self.term, None)
        return result

    def _handle_request_vote(self, m: RequestVote) -> None:
        # Here m.term >= self.term (pre-votes may be ahead; real votes are equal).
        can_vote = (
            self.vote == m.src
            or (self.vote is None and self.leader_id is None)
            or (m.pre_vote and m.term > self.term)
        )
        if not can_vote:
            if self.vote is not None and self.vote != m.src:
                reason = f"already voted for {self.vote} in term {self.term}"
            else:
                reason = f"following leader {self.leader_id} in term {self.term}"
            self._refuse_vote(m, reason)
            return
        if not self.log.is_up_to_date(m.last_log_index, m.last_log_term):
            # §5.4.1, the election restriction: never vote for a log that is
            # missing entries we hold, since they may be committed.
            self._refuse_vote(
                m,
                f"candidate log (term {m.last_log_term}, index {m.last_log_index}) is behind "
                f"mine (term {self.log.last_term}, index {self.log.last_index})",
            )
            return
        if not m.pre_vote:
            self.vote = m.src  # persisted (Ready.hard_state) before the grant is sent
            self._reset_election_timer()
        self._trace(
            "vote",
            {"candidate": m.src, "granted": True, "term": m.term, "pre_vote": m.pre_vote},
        )
        self._send(RequestVoteResponse(m.term, self.id, m.src, True, pre_vote=m.pre_vote))

    def _refuse_vote(self, m: RequestVote, reason: str) -> None:
        self._trace(
            "vote",
            {
                "candidate": m.src,
                "granted": False,
                "term": m.term,
                "pre_vote": m.pre_vote,
                "reason": reason,
            },
        )
        self._send(
            RequestVoteResponse(
                self.term, self.id, m.src, False, pre_vote=m.pre_vote, reason=reason
            )
        )

    def _handle_vote_response(self, m: RequestVoteResponse) -> None:
        expected = Role.PRE_CANDIDATE if m.pre_vote else Role.CANDIDATE
        if self.role is not expected or m.src not in self.conf.voters:
            return  # a late answer to an election we are no longer running
        self.votes[m.src] = m.granted
        self._tally()

    # ================================================================ plumbing

    def _send(self, m: Message) -> None:
        self._messages.append(m)

    def _trace(self, type_: str, fields: dict[str, Any]) -> None:
        self._events.append(TraceEvent(type_, fields))


#: Which method handles each message type (by name, so tests can patch one).
_HANDLERS = {
    RequestVote: "_handle_request_vote",
    RequestVoteResponse: "_handle_vote_response",
    AppendEntries: "_handle_append",
    AppendEntriesResponse: "_handle_append_response",
    InstallSnapshot: "_handle_install_snapshot",
    InstallSnapshotResponse: "_handle_snapshot_response",
    TimeoutNow: "_handle_timeout_now",
    ReadIndexRequest: "_handle_read_request",
    ReadIndexResponse: "_handle_read_response",
}
