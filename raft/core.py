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

Beyond the basic protocol the core carries the parts a real cluster needs:
log compaction and InstallSnapshot (§7), one-server-at-a-time membership
changes with learners (dissertation §4), leadership transfer (§3.10),
ReadIndex reads (§6.4) and forced recovery of a lone survivor
(`force_new_cluster`).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field
from typing import Any

from raft.log import RaftLog
from raft.membership import (
    ConfChange,
    ConfChangeError,
    ConfChangeOp,
    apply_change,
    decode_conf,
    encode_conf,
)
from raft.messages import (
    AppendEntries,
    AppendEntriesResponse,
    ConfState,
    Entry,
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
from raft.progress import Progress, ProgressState
from raft.quorum import VoteResult, committed_index, majority, vote_result
from raft.readindex import ReadState, ReadTracker
from raft.storage import PersistentState

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
    """One batch of effects.  See the module docstring for the contract.

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
        self._installed: Snapshot | None = None  # from the leader, for the next Ready
        self._receiving: tuple[SnapshotMeta, bytearray] | None = None
        self._applied_bytes = 0  # since the last snapshot, for should_snapshot()
        self._pending_conf_index = 0
        self._transferee: NodeId | None = None
        self._transfer_elapsed = 0
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

    @property
    def transferee(self) -> NodeId | None:
        """The follower a leadership transfer is handing over to, if any."""
        return self._transferee

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

    def propose_conf_change(self, change: ConfChange) -> int:
        """Append a membership change; it takes effect at once (dissertation §4.1).

        One change at a time: a second one is refused until the first has
        committed, so that old and new majorities always overlap.  A learner
        is promoted only once it has caught up with the commit index, so the
        new voter does not stall commitment (§4.2.1).
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        if self._transferee is not None:
            raise ProposalDropped(f"leadership transfer to {self._transferee} in progress")
        if self._pending_conf_index > self.log.committed:
            raise ConfChangeError(
                f"the membership change at index {self._pending_conf_index} is not committed yet"
            )
        if change.op is ConfChangeOp.PROMOTE:
            pr = self.progress.get(change.node)
            if pr is not None and pr.match < self.log.committed:
                raise ConfChangeError(
                    f"{change.node} has not caught up yet "
                    f"(has {pr.match}, commit index {self.log.committed})"
                )
        conf = apply_change(self.conf, change)
        index = self._append_own(encode_conf(conf), EntryKind.CONFIG)
        self._pending_conf_index = index
        self._set_conf(conf)
        return index

    def transfer_leadership(self, target: NodeId | None = None) -> NodeId:
        """Hand leadership to ``target`` (default: the most up-to-date voter), §3.10.

        The leader stops taking proposals, brings the target's log up to
        date, then sends it TimeoutNow so it starts an election at once and
        wins it.  If that has not happened within an election timeout the
        transfer is abandoned and the leader carries on.
        """
        if self.role is not Role.LEADER:
            raise NotLeader(self.leader_id)
        candidates = [p for p in self.conf.voters if p != self.id]
        if target is None:
            if not candidates:
                raise ConfChangeError("no other voter to transfer leadership to")
            target = max(candidates, key=lambda p: (self.progress[p].match, p))
        elif target not in candidates:
            raise ConfChangeError(f"{target} is not another voter of this cluster")
        self._transferee = target
        self._transfer_elapsed = 0
        self._trace("transfer", {"from": self.id, "to": target, "term": self.term})
        if self.progress[target].match == self.log.last_index:
            self._send(TimeoutNow(self.term, self.id, target))
        else:
            self._send_append(target)
        return target

    def read_index(self, request_id: int) -> None:
        """Ask for a linearizable read (§6.4); the answer comes as a `ReadState`
        in a later `Ready` (``ok`` False if this node cannot get one now)."""
        if self.role is Role.LEADER:
            self._leader_read(request_id, None)
        elif self.leader_id is not None:
            self._send(ReadIndexRequest(self.term, self.id, self.leader_id, request_id))
        else:
            self._read_states.append(ReadState(request_id, 0, ok=False))

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
        if self._transferee is not None:
            self._transfer_elapsed += 1
            if self._transfer_elapsed >= self.config.election_ticks:
                # §3.10: give up after an election timeout and resume service.
                self._trace("transfer", {"to": self._transferee, "term": self.term, "failed": True})
                self._transferee = None
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
        """Tell followers the new commit index now, not at the next heartbeat."""
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
            if self._maybe_commit():
                self._broadcast_commit()
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

    # ================================================================ leadership transfer (§3.10)

    def _handle_timeout_now(self, m: TimeoutNow) -> None:
        if self.role is Role.LEADER or not self.is_voter:
            return
        self._trace("transfer", {"from": m.src, "to": self.id, "term": self.term})
        # Skip pre-vote: the leader asked us to run, and voters grant a
        # transfer election even while they still hear from that leader.
        self._campaign(pre_vote=False, transfer=True)

    # ================================================================ reads (§6.4)

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

    # ================================================================ membership (§4)

    def _conf_at(self, index: int) -> ConfState:
        """The configuration in force after the entry at ``index``."""
        log = self.log
        for i in range(min(index, log.last_index), log.snapshot.index, -1):
            e = log.entry(i)
            if e.kind is EntryKind.CONFIG:
                return decode_conf(e.data)
        return self._base_conf

    def _refresh_conf(self) -> None:
        """Recompute the configuration from the log (after an append or a truncation)."""
        conf = self._conf_at(self.log.last_index)
        if conf != self.conf:
            self._set_conf(conf)

    def _set_conf(self, conf: ConfState) -> None:
        self.conf = conf
        self._trace(
            "membership",
            {"voters": list(conf.voters), "learners": list(conf.learners), "term": self.term},
        )
        if self.role is Role.LEADER:
            nxt = self.log.last_index + 1
            for p in conf.members:
                if p != self.id and p not in self.progress:
                    self.progress[p] = Progress(nxt, self.config.max_inflight)
                    self.progress[p].recent_active = True  # do not count it as lost yet
            for p in list(self.progress):
                if p not in conf.members:
                    del self.progress[p]
            if self._transferee is not None and self._transferee not in conf.voters:
                self._transferee = None

    # ================================================================ plumbing

    def _send(self, m: Message) -> None:
        self._messages.append(m)

    def _trace(self, type_: str, fields: dict[str, Any]) -> None:
        self._events.append(TraceEvent(type_, fields))


def force_new_cluster(state: PersistentState, node_id: NodeId) -> tuple[PersistentState, Entry]:
    """Turn a lone survivor's durable state into a one-member cluster.

    The operation behind Swarm's ``--force-new-cluster``, for when a majority
    is lost for good.  Uncommitted entries are dropped (they may never have
    reached anyone), and a configuration entry naming only ``node_id`` is
    appended in a new term; every committed entry is kept.  The caller must
    persist the result: ``storage.append([entry])`` (which also cuts the
    uncommitted suffix) and ``storage.set_hard_state(new.hard_state)``, then
    start the node from it.  Once it elects itself and commits its no-op, the
    configuration commits too.
    """
    hs = state.hard_state
    kept = [e for e in state.entries if e.index <= hs.commit]
    last = kept[-1].index if kept else state.snapshot.meta.index
    term = max(hs.term, kept[-1].term if kept else state.snapshot.meta.term) + 1
    entry = Entry(term, last + 1, encode_conf(ConfState(voters=(node_id,))), EntryKind.CONFIG)
    new = PersistentState(HardState(term, None, hs.commit), state.snapshot, [*kept, entry])
    return new, entry


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
