"""Membership changes in the running core (dissertation §4), and forced recovery.

`raft.core.membership` holds the arithmetic of configurations (which change is
allowed, how a configuration is written into a CONFIG entry).  This module
is the protocol around it: the leader proposes one change at a time, every
server switches to a configuration as soon as its entry is in the log
(§4.1) and switches back if that entry is truncated, and the leader keeps a
``Progress`` for exactly the members of the configuration in force.

`force_new_cluster` is the other way a configuration changes: not through
the log of a live cluster but by rewriting a lone survivor's durable state
when a majority is lost for good.  It is a pure function of that state.

Membership is separate from `raft.core.protocol` because it is an extension of the
basic protocol with rules of its own (one change at a time, learners
promoted only once caught up, a removed leader stepping down), which read
best together.
"""

from __future__ import annotations

from raft.core.membership import (
    ConfChange,
    ConfChangeError,
    ConfChangeOp,
    apply_change,
    decode_conf,
    encode_conf,
)
from raft.core.messages import ConfState, Entry, EntryKind, HardState, NodeId
from raft.core.progress import Progress
from raft.core.storage import PersistentState
from raft.core.types import NotLeader, ProposalDropped, Role


class MembershipChanges:
    """One-server-at-a-time membership changes, mixed into `RaftCore`.

    Works on the state `RaftCore.__init__` sets up: ``conf`` (the
    configuration in force), ``_base_conf`` (the one in force at the
    compaction point, before any CONFIG entry still in the log) and
    ``_pending_conf_index`` (the latest change, which must commit before
    the next may be proposed).
    """

    # ================================================================ membership (§4)

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
