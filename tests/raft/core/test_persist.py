"""The persistence order (`raft.core.persist`): which messages may leave before
the fsync, which batches need one, and when clients may be answered.

Each test names the rule of the paper it pins down.  Both drivers (the
asyncio node and the simulator) walk the same `plan`, so these are the rules
of every server.
"""

from __future__ import annotations

from core_net import Net

from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    InstallSnapshotResponse,
    RequestVote,
    RequestVoteResponse,
    Snapshot,
    SnapshotMeta,
)
from raft.core.persist import Step, may_leave_during_sync, plan
from raft.core.protocol import Role
from raft.core.types import Ready

DURABLE = HardState(term=3, vote="n1", commit=5)
APPEND = AppendEntries(3, "n1", "n2", 5, 3, (Entry(3, 6, b"x"),), 5)
ACK = AppendEntriesResponse(3, "n2", "n1", True, 6)
GRANT = RequestVoteResponse(4, "n2", "n3", True)
SNAP_ANSWER = InstallSnapshotResponse(3, "n2", "n1", 9, 5, done=True)


def test_the_leaders_own_appends_leave_before_its_fsync() -> None:
    # Dissertation §10.2.1: the leader writes in parallel with its followers.
    rd = Ready(entries=[Entry(3, 6, b"x")], messages=[APPEND])
    p = plan(rd, DURABLE)
    assert p.sync and p.early == [APPEND] and p.late == []
    assert p.steps.index(Step.SEND_EARLY) < p.steps.index(Step.SYNC)


def test_an_append_acknowledgement_waits_for_the_fsync() -> None:
    # §5.3: a success promises the entries are on stable storage.
    rd = Ready(entries=[Entry(3, 6, b"x")], messages=[ACK])
    p = plan(rd, DURABLE)
    assert p.sync and p.early == [] and p.late == [ACK]
    assert p.steps.index(Step.SYNC) < p.steps.index(Step.SEND)


def test_a_vote_waits_for_the_fsync_of_term_and_vote() -> None:
    # §5.2, Figure 2: currentTerm and votedFor are durable before the answer.
    hs = HardState(4, "n3", 5)
    p = plan(Ready(hard_state=hs, messages=[GRANT]), DURABLE)
    assert p.hard_state == hs and p.sync
    assert p.early == [] and p.late == [GRANT]


def test_a_snapshots_answer_waits_for_the_fsync() -> None:
    # §7: the follower answers once the snapshot is its durable state.
    snap = Snapshot(SnapshotMeta(9, 3), b"image")
    p = plan(Ready(snapshot=snap, messages=[SNAP_ANSWER]), DURABLE)
    assert p.sync and p.late == [SNAP_ANSWER] and p.early == []


def test_a_leader_elected_in_this_batch_announces_its_term_only_after_the_fsync() -> None:
    # §5.2: a lone voter that campaigns and wins in one batch must not tell
    # anyone of a term a crash could make it forget (it could lead it twice).
    hs = HardState(4, "n1", 5)
    rd = Ready(hard_state=hs, entries=[Entry(4, 6)], messages=[APPEND])
    p = plan(rd, DURABLE)
    assert p.sync and p.early == [] and p.late == [APPEND]


def test_a_commit_only_change_needs_no_fsync_and_waits_until_due() -> None:
    # Figure 2: commitIndex is volatile; a restarted node relearns it.
    hs = HardState(3, "n1", 8)
    held = plan(Ready(hard_state=hs), DURABLE, commit_due=False)
    assert held.hard_state is None and held.deferred == hs and not held.sync
    # Offered again with the next batch (which has no hard state of its own) ...
    again = plan(Ready(), DURABLE, held.deferred, commit_due=False)
    assert again.deferred == hs
    # ... and written once it is due.
    due = plan(Ready(), DURABLE, held.deferred, commit_due=True)
    assert due.hard_state == hs and due.deferred is None and due.sync


def test_a_new_vote_is_never_deferred() -> None:
    hs = HardState(4, "n2", 5)
    p = plan(Ready(hard_state=hs, messages=[GRANT]), DURABLE, commit_due=False)
    assert p.hard_state == hs and p.deferred is None and p.sync


def test_a_batch_with_nothing_to_write_syncs_nothing() -> None:
    heartbeat = AppendEntries(3, "n1", "n2", 5, 3, (), 5)
    p = plan(Ready(messages=[heartbeat]), DURABLE)
    assert not p.sync and p.hard_state is None and p.late == [heartbeat]


def test_clients_may_be_answered_before_the_commit_notices() -> None:
    # §8: what is committed is durable on a majority; answering first is safe,
    # and the fsync (if any) still comes before both.
    rd = Ready(entries=[Entry(3, 6)], messages=[APPEND], committed=[Entry(3, 5)])
    first = plan(rd, DURABLE, answers_due=True)
    steps = first.steps
    assert steps.index(Step.SYNC) < steps.index(Step.APPLY) < steps.index(Step.SEND)
    later = plan(rd, DURABLE, answers_due=False).steps
    assert later.index(Step.SEND) < later.index(Step.APPLY)


def test_a_vote_request_is_not_early_either() -> None:
    # A candidate's RequestVote announces a term and a self-vote (§5.2).
    ask = RequestVote(4, "n1", "n2", 5, 3)
    p = plan(Ready(hard_state=HardState(4, "n1", 5), messages=[ask]), DURABLE)
    assert p.early == [] and p.late == [ask]


# ---------------------------------------------------------------- while the fsync runs


HEARTBEAT = AppendEntries(3, "n1", "n2", 6, 3, (), 5)


def test_a_leaders_appends_of_a_durable_term_may_leave_during_an_fsync() -> None:
    # Dissertation §10.2.1: AppendEntries promise nothing about the leader's disk.
    assert may_leave_during_sync(HEARTBEAT, durable_term=3)
    assert may_leave_during_sync(APPEND, durable_term=3)


def test_nothing_of_a_term_not_yet_durable_leaves_during_an_fsync() -> None:
    # §5.2: a term announced before it is on disk could be led twice after a crash.
    assert not may_leave_during_sync(HEARTBEAT, durable_term=2)


def test_votes_requests_and_acknowledgements_wait_for_the_fsync() -> None:
    # §5.2, §5.3, §7: each promises durable state; a candidate's term is in the batch.
    request = RequestVote(4, "n1", "n2", 6, 3)
    for m in (GRANT, ACK, SNAP_ANSWER, request):
        assert not may_leave_during_sync(m, durable_term=m.term)


def test_take_messages_takes_the_heartbeats_made_during_a_sync_and_keeps_order() -> None:
    net = Net(3)
    net.elect("n1")
    net.stabilize()
    leader = net["n1"]
    net.propose("n1", b"x")  # the driver of `net` syncs at once; now one batch stays open
    leader.propose(b"y")
    rd = leader.ready()  # carries "y": its fsync "runs" until advance below
    assert rd.entries and leader.role is Role.LEADER
    durable = leader.hard_state.term
    for _ in range(leader.config.heartbeat_ticks):
        leader.tick()
    # A message to n3 that must wait, made before its heartbeat: it holds
    # the heartbeat back too (order per peer); n2's heartbeat may go.
    leader._messages.insert(0, RequestVote(durable, "n1", "n3", 0, 0))
    taken = leader.take_messages(lambda m: may_leave_during_sync(m, durable))
    assert [(m.dst, m.entries) for m in taken] == [("n2", ())]
    left = leader.ready  # the rest waits for the next batch, in its order
    leader.advance(rd)
    rest = left().messages
    assert [type(m).__name__ for m in rest if m.dst == "n3"] == ["RequestVote", "AppendEntries"]
    assert not [m for m in rest if m.dst == "n2" and not m.entries]
