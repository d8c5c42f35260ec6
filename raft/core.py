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
real processes, `raft.sim` in tests) must honour the batch's contract:

1. **Persist before send.**  Write ``hard_state`` and ``entries`` and fsync
   them *before* sending any of ``messages``.  A vote (§5.2) or an
   acknowledgement of entries (§5.3) that left the node before the state it
   promises was durable could be forgotten by a crash, and the node could
   then vote twice in a term or lose a committed entry.
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
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Any

from raft.log import RaftLog
from raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    NodeId,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
)
from raft.progress import Progress, ProgressState
from raft.quorum import VoteResult, committed_index, majority, vote_result
from raft.storage import PersistentState


class Role(enum.Enum):
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
    """One batch of effects.  See the module docstring for the contract."""

    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    messages: list[Message] = field(default_factory=list)
    committed: list[Entry] = field(default_factory=list)
    events: list[TraceEvent] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(
            self.hard_state is not None
            or self.entries
            or self.snapshot is not None
            or self.messages
            or self.committed
            or self.events
        )


class RaftCore:
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
        self.conf = self._initial_conf(state)
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

    def _initial_conf(self, state: PersistentState) -> ConfState:
        conf = state.snapshot.meta.conf if state.snapshot.meta.index else None
        for e in state.entries:
            if e.kind is EntryKind.CONFIG:
                conf = _decode_conf(e.data)
        return conf or ConfState(voters=tuple(self.config.peers))

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
                leader = m.src if isinstance(m, AppendEntries) else None
                self._become_follower(m.term, leader)
        elif m.term < self.term:
            # Figure 2: reply false if term < currentTerm, so a stale leader or
            # candidate learns the newer term and steps down.
            if isinstance(m, AppendEntries):
                self._send(
                    AppendEntriesResponse(
                        self.term, self.id, m.src, False, m.prev_log_index, seq=m.seq
                    )
                )
            elif isinstance(m, RequestVote):
                self._refuse_vote(m, f"candidate term {m.term} is older than mine ({self.term})")
            return

        handler = _HANDLERS.get(type(m))
        if handler is None:
            return
        handler(self, m)

    # ================================================================ output

    def has_ready(self) -> bool:
        if self._append_wanted and self.role is Role.LEADER:
            return True
        return bool(
            self._messages
            or self._events
            or self.log.last_index >= self._unstable_from
            or self.hard_state != self._persisted_hs
            or self.log.committed > self.log.applied
        )

    def ready(self) -> Ready:
        """Collect the effects of every input since the last `advance`."""
        if self._pending is not None:
            raise RuntimeError("ready() called twice without advance()")
        if self.role is Role.LEADER and self._append_wanted:
            self._broadcast_append()
        hs = self.hard_state
        rd = Ready(
            hard_state=hs if hs != self._persisted_hs else None,
            entries=self.log.entries[self._unstable_from - self.log.offset :],
            messages=self._messages,
            committed=self.log.entries[
                self.log.applied - self.log.offset + 1 : self.log.committed - self.log.offset + 1
            ],
            events=self._events,
        )
        self._messages = []
        self._events = []
        self._unstable_from = self.log.last_index + 1
        self._pending = rd
        return rd

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
        self._role_event(old)
        # §5.4.2 and §8: a leader cannot count replicas of earlier terms' entries,
        # so it commits a no-op of its own term; that commits everything before it.
        self._append_own(b"", EntryKind.NOOP)

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

    def _campaign(self, pre_vote: bool) -> None:
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
                        term, self.id, p, self.log.last_index, self.log.last_term, pre_vote=pre_vote
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

    # ================================================================ log replication: leader

    def _append_own(self, data: bytes, kind: EntryKind) -> int:
        index = self.log.last_index + 1
        self.log.append([Entry(self.term, index, data, kind)])
        self._append_wanted = True
        return index

    def _self_progress_acknowledged(self) -> None:
        """Our own durable log counts towards a majority only once it is durable."""
        if self._maybe_commit():
            self._broadcast_commit()

    def _match_of(self, p: NodeId) -> int:
        if p == self.id:
            return self.log.stable
        pr = self.progress.get(p)
        return pr.match if pr is not None else 0

    def _maybe_commit(self) -> bool:
        """Advance the commit index by counting replicas (§5.3).

        Figure 8 / §5.4.2: only an entry of the current term is committed this
        way; earlier entries become committed with it, by Log Matching.
        """
        voters = self.conf.voters
        index = committed_index(voters, {p: self._match_of(p) for p in voters})
        if index <= self.log.committed or self.log.term(index) != self.term:
            return False
        self.log.committed = index
        self._trace("commit", {"index": index, "term": self.term})
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
                return  # compacted: needs a snapshot (§7); not in this build yet
            entries = self.log.slice(
                pr.next,
                last + 1,
                self.config.max_entries_per_message,
                self.config.max_bytes_per_message,
            )
            self._send(
                AppendEntries(
                    self.term, self.id, p, prev, prev_term, tuple(entries), self.log.committed
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
        fall back to probing, instead of waiting for a timeout.
        """
        for p, pr in self.progress.items():
            if pr.state is ProgressState.REPLICATE:
                prev = pr.next - 1
                self._send(
                    AppendEntries(
                        self.term,
                        self.id,
                        p,
                        prev,
                        self.log.term(prev) or 0,
                        (),
                        min(self.log.committed, prev),
                    )
                )
                if pr.inflight and len(pr.inflight) >= pr.max_inflight:
                    pr.inflight.popleft()  # let one more through: the window may be lost
            else:
                pr.probe_sent = False
                self._send_append(p, heartbeat=True)

    def _broadcast_commit(self) -> None:
        """Tell followers the new commit index now, not at the next heartbeat."""
        for p, pr in self.progress.items():
            if pr.state is ProgressState.REPLICATE and pr.match > 0:
                if pr.next <= self.log.last_index and not pr.paused:
                    self._send_append(p)  # entries pending: they carry the commit index
                else:
                    self._send(
                        AppendEntries(
                            self.term,
                            self.id,
                            p,
                            pr.match,
                            self.log.term(pr.match) or 0,
                            (),
                            self.log.committed,
                        )
                    )

    def _handle_append_response(self, m: AppendEntriesResponse) -> None:
        if self.role is not Role.LEADER:
            return
        pr = self.progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if not m.success:
            rejected = m.match_index
            if rejected <= pr.match:
                return  # an answer to an old request; we know better already
            if pr.state is ProgressState.PROBE and rejected != pr.next - 1:
                return
            pr.become_probe(self._next_after_rejection(m))
            self._send_append(m.src)
            return
        if pr.acknowledged(m.match_index):
            if pr.state is ProgressState.PROBE:
                pr.become_replicate()
            if self._maybe_commit():
                self._broadcast_commit()
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
        for i, e in enumerate(entries):
            t = self.log.term(e.index)
            if t is None:
                self.log.append(entries[i:])
                break
            if t != e.term:
                self._truncate(e.index)
                self.log.append(entries[i:])
                break
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

    # ================================================================ plumbing

    def _send(self, m: Message) -> None:
        self._messages.append(m)

    def _trace(self, type_: str, fields: dict[str, Any]) -> None:
        self._events.append(TraceEvent(type_, fields))


def _decode_conf(data: bytes) -> ConfState:
    """Membership entries are not written by this build yet."""
    raise NotImplementedError("membership changes are not implemented yet")


_HANDLERS = {
    RequestVote: RaftCore._handle_request_vote,
    RequestVoteResponse: RaftCore._handle_vote_response,
    AppendEntries: RaftCore._handle_append,
    AppendEntriesResponse: RaftCore._handle_append_response,
}
