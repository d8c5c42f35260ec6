"""The persistence order: one decision, followed by every driver.

`RaftCore` hands its driver a `Ready` batch; this module says in what order
the driver writes it, syncs it, sends its messages, applies its committed
entries and acknowledges it.  The asyncio node (`raft.runtime.node`) and the
simulator (`raft.sim.simulator`) both call `plan` and walk its `steps`, so
the schedule the simulator's safety checker proves is the one real managers
run.  (In the spirit of etcd's ``MustSync``, but deciding the whole order.)

The order
---------

For one batch, with ``durable`` the hard state that earlier syncs made
durable:

1. ``WRITE``: hand the snapshot (§7), the hard state and the entries to
   storage.  Nothing is durable yet.
2. ``SEND_EARLY``: the leader's own AppendEntries may leave now, before the
   leader's fsync (dissertation §10.2.1), so that the followers' disk writes
   overlap the leader's.  They promise nothing about the leader's disk: the
   core counts the leader's own log towards a majority only once `advance`
   says it is durable (§5.4.2 then needs a majority of *durable* copies).
   Only when the batch keeps the durable term and vote: a leader elected in
   this very batch (a lone voter) must not announce a term a crash could
   make it forget, or it could lead that term twice (§5.2).  Nothing else is
   early: a vote (§5.2), an append acknowledgement (§5.3) or a snapshot's
   answer (§7) *promises* durable state.
3. ``SYNC``: fsync, when the batch needs one (`needs_sync`).
4. ``SEND``: every other message: votes, acknowledgements, refusals,
   heartbeats -- persist before send (Figure 2: "updated on stable storage
   before responding to RPCs").
5. ``APPLY``: install a received snapshot in the state machine, apply the
   committed entries in order (each once), answer clients and serve reads.
6. ``ADVANCE``: tell the core the batch is durable (``core.advance``).

``APPLY`` may come before ``SEND`` (`PersistPlan.answer_first`) when the
driver has clients waiting on this batch's committed entries: their answers
then go out before the batch's other messages.  Safe, because
everything in ``committed`` is already durable on a majority (the leader
counted only durable copies, its own included) and because the sync, if
any, is done by then; a message sent a moment later is one Raft must
tolerate anyway.

Which batches need an fsync (`needs_sync`): those that write entries, a
snapshot, or a hard state.  A hard state whose only change is ``commit``
need not be written at once: the commit index is volatile state in
Figure 2, and a restarted node whose durable commit index is behind simply
relearns it from the leader's next AppendEntries (``leaderCommit``) and
applies again from its snapshot.  It is never ahead of the log either: a
node commits only entries it holds, and a reload clamps it to the log.  So
a commit-only change is *deferred* (`PersistPlan.deferred`): the driver
keeps it and offers it again with the next batch, until the driver says a
write is due (``commit_due``; on a real disk, replacing the hard state file
costs two fsyncs, so the node writes it at most every
``commit_sync_interval``).  Whatever is written is synced in the same
batch, so "written" and "durable" stay one and the same hard state.

While the fsync runs.  A slow disk must not silence a leader: if the
heartbeats its core makes during a 200 ms fsync waited for the next batch,
its followers would hear it once per fsync, and a disk whose fsync neared
the election timeout would depose a healthy leader.  So a driver whose
``SYNC`` runs off its event loop may send, meanwhile, the messages
`may_leave_during_sync` allows, taken from the core with
``RaftCore.take_messages``: the leader's AppendEntries -- heartbeats, and
the appends its followers' answers call for -- of a term that is already
durable.  Why that is safe (dissertation §10.2.1: a leader may send
AppendEntries in parallel with its own disk write):

* an AppendEntries promises nothing about the leader's disk, whatever it
  carries.  Its ``leaderCommit`` was counted on durable copies only (§5.4.2:
  the core counts its own log once `advance` says it is durable), and the
  entries it carries count for the leader only once a later batch made
  them durable.  If followers alone make an entry durable on a majority, it
  is committed, and safely so: every future leader holds it (§5.4.1).  A
  heartbeat reveals even less: it carries no entry at all.
* its term is one the leader has on disk, so a crash cannot make it lead
  that term twice (§5.2) -- the reason ``SEND_EARLY`` holds a batch that
  changes the term or vote, and the reason the durable term is asked for.
* nothing else goes.  A vote (§5.2), an append acknowledgement (§5.3) or a
  snapshot's answer (§7) promises durable state and waits for the fsync it
  depends on, and so does a candidate's vote request, whose term is in the
  batch being synced.
* messages to one peer keep their order (``take_messages`` stops at the
  first one that must wait): a heartbeat that overtook the append before it
  would be refused and send the follower back to probing.

The simulator does not mirror this: its fsyncs take no time of their own,
so there is no "meanwhile" in which to send.

Crashes.  A crash may fall between any two steps.  Before ``SYNC`` it loses
the batch's writes; what may already have left (step 2) is safe to lose its
backing, as argued above.  After ``SYNC`` everything sent is backed.  The
simulator crashes nodes at exactly these points (``Simulator.crash(node,
before=Step.SYNC)``) and drops writes that were not synced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from raft.core.messages import AppendEntries, HardState, Message
from raft.core.types import Ready

__all__ = [
    "PersistPlan",
    "Step",
    "may_leave_during_sync",
    "may_precede_sync",
    "needs_sync",
    "plan",
]


class Step(enum.Enum):
    """The steps of one batch, in the module docstring's terms."""

    WRITE = "write"
    SEND_EARLY = "send-early"
    SYNC = "sync"
    SEND = "send"
    APPLY = "apply"
    ADVANCE = "advance"


@dataclass(frozen=True, slots=True)
class PersistPlan:
    """What a driver does with one batch, and in which order (`steps`)."""

    #: Hand this to ``Storage.set_hard_state`` at ``WRITE`` (None: nothing).
    hard_state: HardState | None
    #: A commit-only change held back: offer it again with the next batch.
    deferred: HardState | None
    #: Whether ``SYNC`` fsyncs (False: nothing this batch wrote needs it).
    sync: bool
    #: Sent at ``SEND_EARLY``, before the fsync: only a leader's AppendEntries.
    early: list[Message] = field(default_factory=list)
    #: Sent at ``SEND``, once the batch is durable.
    late: list[Message] = field(default_factory=list)
    #: ``APPLY`` before ``SEND``: clients wait on this batch's committed entries.
    answer_first: bool = False

    @property
    def steps(self) -> tuple[Step, ...]:
        if self.answer_first:
            return (Step.WRITE, Step.SEND_EARLY, Step.SYNC, Step.APPLY, Step.SEND, Step.ADVANCE)
        return (Step.WRITE, Step.SEND_EARLY, Step.SYNC, Step.SEND, Step.APPLY, Step.ADVANCE)


def may_precede_sync(m: Message) -> bool:
    """A message that promises nothing about its sender's disk (§10.2.1).

    Only AppendEntries, which only a leader sends; votes, acknowledgements
    and snapshots' answers all promise durable state and wait for the fsync.
    """
    return isinstance(m, AppendEntries)


def may_leave_during_sync(m: Message, durable_term: int) -> bool:
    """A message a driver may send while a batch's fsync still runs ("While the fsync runs").

    A leader's AppendEntries (a heartbeat or not) whose term is
    ``durable_term``, the term of the hard state the driver last synced.
    """
    return may_precede_sync(m) and m.term == durable_term


def needs_sync(rd: Ready, hard_state: HardState | None) -> bool:
    """Whether the batch writes anything, hence must fsync before it promises anything."""
    return bool(rd.entries) or rd.snapshot is not None or hard_state is not None


def plan(
    rd: Ready,
    durable: HardState,
    deferred: HardState | None = None,
    *,
    commit_due: bool = True,
    answers_due: bool = False,
) -> PersistPlan:
    """Decide the order for ``rd`` (see the module docstring).

    ``durable`` is the hard state last written (and synced with its batch);
    ``deferred`` a commit-only change an earlier plan held back;
    ``commit_due`` whether such a change should be written now;
    ``answers_due`` whether clients wait on entries in ``rd.committed``.
    """
    newest = rd.hard_state or deferred
    hard_state: HardState | None = None
    held: HardState | None = None
    if newest is not None and newest != durable:
        term_or_vote = (newest.term, newest.vote) != (durable.term, durable.vote)
        if term_or_vote or commit_due:
            hard_state = newest
        else:
            held = newest
    sync = needs_sync(rd, hard_state)
    same_term = hard_state is None or (hard_state.term, hard_state.vote) == (
        durable.term,
        durable.vote,
    )
    early: list[Message] = []
    late: list[Message] = rd.messages
    if sync and rd.snapshot is None and same_term:
        early = [m for m in rd.messages if may_precede_sync(m)]
        if early:
            late = [m for m in rd.messages if not may_precede_sync(m)]
    return PersistPlan(
        hard_state=hard_state,
        deferred=held,
        sync=sync,
        early=early,
        late=late,
        answer_first=answers_due,
    )
