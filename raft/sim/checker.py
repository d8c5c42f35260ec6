"""The safety checker: Raft's guarantees, verified after every simulated batch.

The simulator (`raft.sim.simulator`) tells the checker what each node's core
produced (`SafetyChecker.on_ready`), which messages actually left the node
(`on_send`: a crash between the steps of the persistence order may keep some
of a batch's messages from ever leaving), what became durable (`on_sync`),
and what a restarted node reloaded (`on_restart`).  A failed check raises
`SafetyViolation` with the simulator's description, which ends with the
command that replays the run.
"""

from __future__ import annotations

from collections.abc import Callable

from raft.core.messages import (
    AppendEntriesResponse,
    Entry,
    EntryKind,
    HardState,
    Message,
    NodeId,
    RequestVote,
    RequestVoteResponse,
)
from raft.core.protocol import RaftCore, Ready, Role
from raft.core.quorum import majority
from raft.sim.node import decode_applied

__all__ = ["SafetyChecker", "SafetyViolation"]


class SafetyViolation(AssertionError):
    """A Raft safety property failed; the message says how to replay it."""


class SafetyChecker:
    """Raft's guarantees (Figure 3, plus some about persistence), checked incrementally.

    * Election Safety: at most one leader per term.
    * Log Matching: two entries with the same index and term hold the same
      command, and the logs before them are identical.  Checked by induction:
      same (index, term) implies same command and same term at index - 1.
    * Leader Completeness: a new leader holds every entry committed in an
      earlier term than its own.
    * State Machine Safety: no two nodes apply different commands at an index.
    * Committed entries are never lost: a restarted node still holds what its
      durable commit index covers, and committed indexes never change term.
    * A node grants at most one vote per term, across restarts (Figure 2's
      votedFor), and its term never goes back: not while it runs, and not
      across a restart below a term it made durable or told anyone (§5.1).
    * A leader was elected by a majority of the voters of its own
      configuration (so one-at-a-time changes never allow two disjoint
      majorities, dissertation §4).
    * A read index covers every write completed before the read began (§6.4).
    * A follower never forgets an entry it acknowledged while it stays in the
      same term: the leader may already have counted it towards a commit.

    Votes and acknowledgements are recorded when they leave the node
    (`on_send`), not when the core produces them: what a crash kept from
    being sent promised nothing.
    """

    def __init__(self, describe: Callable[[], str]) -> None:
        self._describe = describe
        self.leaders: dict[int, NodeId] = {}
        self.entries: dict[tuple[int, int], tuple[bytes, EntryKind, int | None]] = {}
        self.committed: dict[int, int] = {}  # index -> term
        #: index -> the lowest term in which a node was seen holding it committed:
        #: the term of the leader that committed it (§5.4.2), since that leader
        #: applies it before anyone learns of the commit from it.
        self.commit_terms: dict[int, int] = {}
        self.applied: dict[int, bytes] = {}
        #: The term each running core last had (reset when it restarts).
        self.terms: dict[NodeId, int] = {}
        #: The highest term each node made durable or announced in a message.
        self.promised_terms: dict[NodeId, int] = {}
        self.votes: dict[tuple[NodeId, int], NodeId] = {}
        self.checks = 0
        self.reads_checked = 0
        self.acked: dict[NodeId, tuple[int, int, int]] = {}  # node -> (term, index, entry term)

    def fail(self, what: str) -> None:
        raise SafetyViolation(f"{what}\n{self._describe()}")

    # ------------------------------------------------------------ inputs

    def on_ready(self, core: RaftCore, rd: Ready) -> None:
        self.checks += 1
        for ev in rd.events:
            if ev.type == "role" and ev.fields["to"] == Role.LEADER.value:
                self._check_new_leader(core, ev.fields["term"])
        if rd.snapshot is not None:
            for e in decode_applied(rd.snapshot.data):
                self._check_committed(core, e)
                if self.applied.setdefault(e.index, e.data) != e.data:
                    self.fail(f"{core.id} installs a snapshot that disagrees at {e.index}")
        for e in rd.entries:
            key = (e.index, e.term)
            value = (e.data, e.kind, core.log.term(e.index - 1))
            seen = self.entries.setdefault(key, value)
            if seen != value:
                self.fail(f"Log Matching: {core.id} holds {value} at {key}, another node {seen}")
        self._check_acknowledged(core)
        for e in rd.committed:
            self._check_committed(core, e)
            seen = self.applied.setdefault(e.index, e.data)
            if seen != e.data:
                self.fail(
                    f"State Machine Safety: {core.id} applies a different command at {e.index}"
                )
        self.check_term(core)

    def on_send(self, core: RaftCore, m: Message) -> None:
        """``m`` left ``core``'s node: what it promises is now on record."""
        if not getattr(m, "pre_vote", False):
            # A pre-vote carries the term the candidate *would* have (§9.6).
            self._promise_term(m.src, m.term)
        if isinstance(m, AppendEntriesResponse) and m.success and m.match_index:
            t = core.log.term(m.match_index)
            if t is not None:
                self.acked[core.id] = (m.term, m.match_index, t)
        if isinstance(m, RequestVoteResponse) and m.granted and not m.pre_vote:
            prior = self.votes.setdefault((m.src, m.term), m.dst)
            if prior != m.dst:
                self.fail(f"{m.src} voted for {prior} and {m.dst} in term {m.term}")
        if isinstance(m, RequestVote) and not m.pre_vote:
            self.votes.setdefault((m.src, m.term), m.src)  # a candidate votes for itself

    def on_sync(self, node: NodeId, hs: HardState) -> None:
        """``hs`` is durable on ``node``."""
        self._promise_term(node, hs.term)

    def on_restart(self, core: RaftCore) -> None:
        """The durable state survived: term, commit index and the entries it covers."""
        floor = self.promised_terms.get(core.id, 0)
        if core.term < floor:
            self.fail(
                f"{core.id}'s term went back from {floor} to {core.term} across a restart "
                f"(term {floor} was durable or told to a peer)"
            )
        self.terms[core.id] = core.term
        log = core.log
        for index in range(log.snapshot.index + 1, log.committed + 1):
            if self.committed.get(index, log.term(index)) != log.term(index):
                self.fail(f"{core.id} lost committed entry {index} across a restart")
        self._check_acknowledged(core)

    def on_read(self, node: NodeId, index: int, started_after: int) -> None:
        """A read index must cover every write completed before the read began."""
        self.reads_checked += 1
        if index < started_after:
            self.fail(
                f"stale read on {node}: read index {index}, but {started_after} had "
                f"committed before the read began"
            )

    @property
    def max_committed(self) -> int:
        return max(self.committed, default=0)

    # ------------------------------------------------------------ checks

    def check_term(self, core: RaftCore) -> None:
        if core.term < self.terms.get(core.id, 0):
            self.fail(f"{core.id}'s term went back from {self.terms[core.id]} to {core.term}")
        self.terms[core.id] = core.term

    def _promise_term(self, node: NodeId, term: int) -> None:
        if term > self.promised_terms.get(node, 0):
            self.promised_terms[node] = term

    def _check_acknowledged(self, core: RaftCore) -> None:
        acked = self.acked.get(core.id)
        if acked is None or acked[0] != core.term:
            return
        _, index, term = acked
        if index > core.log.snapshot.index and core.log.term(index) != term:
            self.fail(f"{core.id} forgot entry {index} (term {term}) it acknowledged in this term")

    def _check_committed(self, core: RaftCore, e: Entry) -> None:
        self.commit_terms[e.index] = min(self.commit_terms.get(e.index, core.term), core.term)
        term = self.committed.setdefault(e.index, e.term)
        if term != e.term:
            self.fail(f"index {e.index} committed with term {term}, {core.id} commits {e.term}")

    def _check_new_leader(self, core: RaftCore, term: int) -> None:
        other = self.leaders.setdefault(term, core.id)
        if other != core.id:
            self.fail(f"Election Safety: {other} and {core.id} both lead term {term}")
        voters = core.conf.voters
        granted = {v for (v, t), c in self.votes.items() if t == term and c == core.id}
        granted.add(core.id)
        if len(granted & set(voters)) < majority(len(voters)):
            self.fail(
                f"{core.id} leads term {term} with votes {sorted(granted)}, "
                f"not a majority of its voters {list(voters)}"
            )
        # Leader Completeness binds the leaders of terms *after* the one in
        # which an entry was committed (§5.4).  A leader of an older term can
        # still be elected later in time -- votes granted before a partition,
        # delivered late -- and it need not hold the entry: its term is
        # already stale and no majority will accept its appends.
        snap = core.log.snapshot.index
        for index, t in self.committed.items():
            if self.commit_terms[index] >= term:
                continue
            if index > snap and core.log.term(index) != t:
                self.fail(
                    f"Leader Completeness: {core.id} leads term {term} without committed "
                    f"entry {index} (term {t})"
                )
