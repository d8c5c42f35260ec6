"""Paper tests for the core's part two, hand-driven through `core_net.Net`.

Each test names the section it checks: §7 log compaction and InstallSnapshot
(Figure 13), dissertation §4 membership changes with learners, §3.10
leadership transfer, §6.4 ReadIndex reads, and forced recovery of a lone
survivor (`force_new_cluster`).
"""

from __future__ import annotations

import math
import random

import pytest
from core_net import Net, all_of, appends_to, decode_entries, from_, kind, to

from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    ConfState,
    EntryKind,
    InstallSnapshot,
    InstallSnapshotResponse,
    ReadIndexRequest,
    ReadIndexResponse,
    RequestVote,
    RequestVoteResponse,
    SnapshotMeta,
    TimeoutNow,
)
from raft.core.protocol import (
    ConfChange,
    ConfChangeError,
    ConfChangeOp,
    ProposalDropped,
    ReadState,
    Role,
    force_new_cluster,
)

SNAP = kind(InstallSnapshot, InstallSnapshotResponse)
VOTES = kind(RequestVote, RequestVoteResponse)


def commands(net: Net, node: str) -> list[bytes]:
    """The client commands ``node``'s state machine holds, in order."""
    return [e.data for e in net.applied[node] if e.kind is EntryKind.NORMAL]


def cluster(n: int = 3, **config: object) -> Net:
    net = Net(n, **config)
    net.elect("n1")
    net.stabilize()
    return net


def propose_all(net: Net, node: str, count: int, prefix: str = "cmd") -> None:
    for i in range(count):
        net.propose(node, f"{prefix}-{i:03d}".encode())
    net.stabilize()


def settle(net: Net, leader: str = "n1") -> None:
    """Deliver everything, then one heartbeat round: followers learn the commit
    index from the leader's next message (`LogReplication._maybe_commit`)."""
    net.stabilize()
    if leader not in net.down:
        heartbeat(net, leader)
        net.stabilize()


def lagging_follower(chunk: int = 16, entries: int = 12) -> Net:
    """n1 leads; n3 missed ``entries`` commands that n1 has compacted away (§7)."""
    net = cluster(3, trailing_entries=0, snapshot_chunk_bytes=chunk)
    net.isolate("n3")
    propose_all(net, "n1", entries)
    net.compact("n1")
    net.heal()
    return net


def start_install(net: Net) -> None:
    """A heartbeat finds n3 behind the compaction point: its first chunk is pending."""
    heartbeat(net)
    for _ in range(10):
        if any(isinstance(m, InstallSnapshot) for m in net.pending):
            return
        net.deliver(lambda m: not isinstance(m, InstallSnapshot))
    raise AssertionError("no InstallSnapshot was sent")


def change(net: Net, op: ConfChangeOp, node: str, leader: str = "n1") -> int:
    index = net[leader].propose_conf_change(ConfChange(op, node))
    net.drain(leader)
    return index


def heartbeat(net: Net, leader: str = "n1") -> None:
    net.tick(leader, net[leader].config.heartbeat_ticks)


# ============================================================ §7 compaction


# §7: "each server takes snapshots independently, covering just the committed
# entries in its log"; the leader keeps `trailing_entries` so that a follower
# a little behind still catches up from the log.
def test_compact_drops_the_prefix_but_keeps_trailing_entries():
    net = cluster(3, trailing_entries=3)
    propose_all(net, "n1", 10)
    n1 = net["n1"]
    applied = n1.applied_index
    assert applied == 11  # the no-op and ten commands
    snap = net.compact("n1")
    assert (snap.meta.index, snap.meta.term) == (applied, n1.term)
    assert snap.meta.conf == ConfState(voters=("n1", "n2", "n3"))
    assert n1.snapshot is snap
    assert n1.log.snapshot.index == applied - 3
    assert [e.index for e in n1.log.entries] == [9, 10, 11]
    assert n1.log.offset == 9
    assert net.storage["n1"].load().snapshot is snap
    with pytest.raises(ValueError):
        n1.compact(applied, b"")  # not newer than the snapshot
    net.propose("n1", b"later")
    net.stabilize()
    with pytest.raises(ValueError):
        n1.compact(n1.applied_index + 1, b"")  # not applied yet


# §7: snapshot when enough has been applied, by entry count or by bytes.
def test_should_snapshot_thresholds_by_entries_and_bytes():
    net = cluster(3, snapshot_entries=5, snapshot_bytes=1 << 20)
    n1 = net["n1"]
    propose_all(net, "n1", 3)  # no-op + 3 = 4 applied
    assert not n1.should_snapshot()
    propose_all(net, "n1", 1)
    assert n1.should_snapshot()
    net.compact("n1")
    assert not n1.should_snapshot()

    net = cluster(3, snapshot_entries=10_000, snapshot_bytes=100)
    n1 = net["n1"]
    net.propose("n1", b"x" * 60)
    net.stabilize()
    assert not n1.should_snapshot()
    net.propose("n1", b"y" * 40)
    net.stabilize()
    assert n1.should_snapshot()
    net.compact("n1")
    assert not n1.should_snapshot()


# §7: "the leader must occasionally send snapshots to followers that lag
# behind" -- in chunks (Figure 13: offset, data, done), and here one chunk at
# a time: the next goes only once the previous one is acknowledged.
def test_lagging_follower_gets_snapshot_in_chunks_one_in_flight():
    net = lagging_follower(chunk=16)
    snap = net["n1"].snapshot
    heartbeat(net)
    chunks: list[InstallSnapshot] = []
    for _ in range(1000):
        in_flight = [m for m in net.pending if isinstance(m, InstallSnapshot)]
        assert len(in_flight) <= 1, in_flight
        if not net.pending:
            break
        chunks += in_flight
        net.deliver()
    assert len(chunks) == math.ceil(len(snap.data) / 16)
    assert [c.offset for c in chunks] == list(range(0, len(snap.data), 16))
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert b"".join(c.data for c in chunks) == snap.data
    n3 = net["n3"]
    assert n3.snapshot.meta == snap.meta
    assert net.storage["n3"].load().snapshot == snap
    assert commands(net, "n3") == commands(net, "n1")


# §7 over an unreliable network: chunks and answers lost, duplicated and
# reordered; heartbeats resend from the last acknowledged byte.  The install
# still completes, with exactly the leader's bytes.
@pytest.mark.parametrize("seed", range(6))
def test_snapshot_completes_despite_lost_duplicated_reordered_chunks(seed):
    rng = random.Random(seed)
    net = lagging_follower(chunk=8)
    snap = net["n1"].snapshot
    for _ in range(5000):
        if net["n3"].snapshot.meta == snap.meta:
            break
        if not net.pending or rng.random() < 0.1:
            heartbeat(net)
            continue
        i = rng.randrange(len(net.pending))
        m = net.pending[i]
        r = rng.random()
        if r < 0.2:
            net.pending.pop(i)  # lost
        elif r < 0.35:
            net.inject(m)  # duplicated: delivered now and stays pending
        else:
            net.pending.pop(i)  # delivered out of order
            net.inject(m)
    assert net["n3"].snapshot == snap
    assert net.storage["n3"].load().snapshot == snap
    net.stabilize()
    propose_all(net, "n1", 1, "after")
    heartbeat(net)  # carries the commit index to n3, which was probing when it committed
    net.stabilize()
    assert commands(net, "n3") == commands(net, "n1")
    assert net.violations == []


# §7: a follower that restarts in the middle of an install lost the chunks it
# had (volatile); it says so and the leader starts again from byte 0.
def test_follower_restart_in_the_middle_of_an_install_restarts_it():
    net = lagging_follower(chunk=16)
    snap = net["n1"].snapshot
    start_install(net)
    net.stabilize(kind(AppendEntries, AppendEntriesResponse))
    for _ in range(6):  # three chunks and their acknowledgements
        net.deliver(SNAP)
    net.crash("n3")
    net.restart("n3")
    assert net["n3"].snapshot.meta.index == 0
    heartbeat(net)  # the leader resends from the offset it had reached
    [resent] = net.take(to("n3"))
    assert resent.offset == 48
    net.inject(resent)
    [answer] = net.take(to("n1"))
    assert isinstance(answer, InstallSnapshotResponse)
    assert (answer.success, answer.next_offset) == (False, 0)
    net.inject(answer)
    restarted = [m for m in net.pending if isinstance(m, InstallSnapshot)]
    assert [m.offset for m in restarted] == [0]
    net.stabilize()
    assert net["n3"].snapshot == snap
    assert commands(net, "n3") == commands(net, "n1")


# Figure 13, steps 7-8: after installing, the follower's log (in memory and in
# storage) starts right after the snapshot; its state machine is the
# snapshot, then the entries that follow it, applied in order.
def test_after_install_log_starts_after_snapshot_and_later_entries_apply():
    net = lagging_follower()
    snap = net["n1"].snapshot
    net.stabilize()
    propose_all(net, "n1", 3, "later")
    n3 = net["n3"]
    assert n3.log.snapshot.index == snap.meta.index
    assert n3.log.offset == snap.meta.index + 1
    stored = net.storage["n3"].load()
    assert stored.snapshot == snap
    assert [e.index for e in stored.entries] == [e.index for e in n3.log.entries]
    assert stored.entries[0].index == snap.meta.index + 1
    assert [i.meta.index for i in net.installed["n3"]] == [snap.meta.index]
    assert net.applied["n3"] == decode_entries(snap.data) + [
        e for e in net.applied["n1"] if e.index > snap.meta.index
    ]
    assert commands(net, "n3")[-3:] == [b"later-000", b"later-001", b"later-002"]
    assert n3.applied_index == net["n1"].applied_index


# Figure 13, step 6: "If existing log entry has same index and term as
# snapshot's last included entry, retain log entries following it and reply."
def test_follower_holding_the_snapshots_last_entry_keeps_its_log():
    net = Net(3, logs={"n2": [1, 1, 1, 1, 1]}, terms=dict.fromkeys(["n1", "n2", "n3"], 1))
    n2 = net["n2"]
    meta = SnapshotMeta(3, 1, ConfState(voters=("n1", "n2", "n3")))
    net.inject(InstallSnapshot(1, "n1", "n2", meta, 0, b"image", True))
    assert [e.index for e in n2.log.entries] == [1, 2, 3, 4, 5]
    assert n2.commit_index == 3
    assert n2.snapshot.meta.index == 0  # nothing installed: the log has it all
    [answer] = net.take(from_("n2"))
    assert isinstance(answer, InstallSnapshotResponse) and answer.done
    assert len(net.storage["n2"].load().entries) == 5


# Figure 13, step 7: otherwise "discard the entire log" -- the suffix
# belongs to another leader's history.
def test_follower_with_a_conflicting_entry_discards_its_log():
    net = Net(3, logs={"n2": [1, 1, 1, 1, 1]}, terms=dict.fromkeys(["n1", "n2", "n3"], 2))
    meta = SnapshotMeta(3, 2, ConfState(voters=("n1", "n2", "n3")))
    net.inject(InstallSnapshot(2, "n1", "n2", meta, 0, b"[]", True))
    n2 = net["n2"]
    assert n2.log.entries == []
    assert (n2.log.last_index, n2.log.last_term) == (3, 2)
    assert (n2.commit_index, n2.applied_index) == (3, 3)
    stored = net.storage["n2"].load()
    assert stored.entries == [] and stored.snapshot.meta == meta


# §7: a restarted server loads its snapshot and the log after it; it applies
# only the committed entries after the snapshot.
def test_restart_from_snapshot_plus_remaining_log():
    net = cluster(3, trailing_entries=0)
    propose_all(net, "n1", 5)
    snap = net.compact("n2")
    propose_all(net, "n1", 4, "tail")
    settle(net)
    before = commands(net, "n2")
    net.crash("n2")
    net.restart("n2")
    n2 = net["n2"]
    assert n2.log.snapshot.index == snap.meta.index
    assert n2.log.offset == snap.meta.index + 1
    assert n2.commit_index == net["n1"].commit_index
    assert commands(net, "n2") == before  # snapshot restored, tail re-applied
    assert n2.applied_index == n2.commit_index
    assert n2.conf == snap.meta.conf
    # And it rejoins as usual.
    net.tick_all(3)
    propose_all(net, "n1", 1, "rejoined")
    settle(net)
    assert commands(net, "n2") == commands(net, "n1")


# ============================================================ §4 membership


# Dissertation §4.1: "a leader must not begin a new configuration change until
# the previous one has been committed" -- and a new leader not until its log
# (which may hold an uncommitted change) has committed.
def test_one_membership_change_at_a_time():
    net = cluster(3, check_quorum=False)  # no leader lease: n2 may win at once
    net.add_node("n4")
    net.add_node("n5")
    change(net, ConfChangeOp.ADD_LEARNER, "n4")
    with pytest.raises(ConfChangeError, match="not committed yet"):
        net["n1"].propose_conf_change(ConfChange(ConfChangeOp.ADD_LEARNER, "n5"))
    net.stabilize()
    change(net, ConfChangeOp.ADD_LEARNER, "n5")
    net.stabilize()
    assert net["n1"].conf.learners == ("n4", "n5")


# Dissertation §4.1 (and the 2015 correction to single-server changes on
# raft-dev): a new leader may not append a configuration entry until it has
# committed an entry of its own term -- even when every entry it holds is
# already known to be committed.
def test_new_leader_refuses_a_change_until_an_entry_of_its_term_commits():
    net = cluster(3, check_quorum=False)  # no leader lease: n2 may win at once
    net.add_node("n4")
    heartbeat(net)
    net.stabilize()  # n2 knows everything in its log is committed
    net.isolate("n1")
    net.campaign("n2")
    net.stabilize(VOTES)
    n2 = net["n2"]
    assert n2.role is Role.LEADER and n2.log.term(n2.commit_index) != n2.term
    with pytest.raises(ConfChangeError):
        n2.propose_conf_change(ConfChange(ConfChangeOp.ADD_LEARNER, "n4"))


# The counter-example to single-server changes without that rule, step by
# step: without it, n2 would remove n1 (E) before its no-op committed, commit
# E and the no-op with n3 alone (2 of {n2, n3, n4}), while n1 commits D with
# n4 and n5 (3 of 5): two entries committed at one index.  With the rule, E
# is refused, n2 commits nothing without n4, and n1's commits stand alone.
def test_change_before_the_no_op_commits_is_refused_so_no_entry_is_lost():
    net = cluster(4, pre_vote=False, check_quorum=False)
    net.add_node("n5")
    change(net, ConfChangeOp.ADD_LEARNER, "n5")
    net.stabilize()
    heartbeat(net)
    net.stabilize()
    heartbeat(net)
    net.stabilize()  # everyone holds and knows committed everything up to L
    base = net["n1"].commit_index
    assert all(net[x].commit_index == base for x in net.ids)
    # D: n1 promotes n5; only n5 gets the entry.
    change(net, ConfChangeOp.PROMOTE, "n5")
    net.deliver(appends_to("n5"))
    net.pending.clear()
    net.isolate("n1")
    net.isolate("n5")
    # n2 wins in the old configuration with n3 and n4 ...
    net.campaign("n2")
    net.stabilize(VOTES)
    n2 = net["n2"]
    assert n2.role is Role.LEADER
    net.drop(appends_to("n4"))  # ... and n4 never hears from it again
    # E: n2 may not remove n1 before its no-op committed.
    with pytest.raises(ConfChangeError):
        change(net, ConfChangeOp.REMOVE, "n1", leader="n2")
    net.drop(appends_to("n4"))
    net.stabilize(lambda m: {m.src, m.dst} == {"n2", "n3"})
    committed_by_n2 = n2.commit_index
    assert committed_by_n2 == base  # n2 and n3 are 2 of {n1, n2, n3, n4}: not a quorum
    # n1 restarts and comes back with n4 and n5; in D it needs 3 of 5 and gets them.
    net.crash("n1")
    net.restart("n1")
    net.heal()
    net.isolate("n2")
    net.isolate("n3")
    n1 = net["n1"]
    for term in (2, 3, 4):  # n4 voted for n2 in term 2; term 3 is free
        net.tick_until("n1", lambda c, term=term: c.term >= term)
        net.stabilize()
        if n1.role is Role.LEADER:
            break
    assert n1.role is Role.LEADER  # n4 and n5 voted for it: 3 of the 5 of D
    net.propose("n1", b"x")
    net.stabilize()
    assert n1.commit_index > base + 1  # D and x, under D
    # n2's no-op was never committed: once healed, every server holds n1's log.
    net.heal()
    heartbeat(net)
    net.stabilize()
    for x in net.ids:
        assert net[x].commit_index == n1.commit_index, x
        for i in range(base + 1, n1.commit_index + 1):
            assert net[x].log.term(i) == n1.log.term(i), f"{x}: index {i} committed twice"


# Dissertation §4.1: "a server always uses the latest configuration in its
# log, regardless of whether the entry is committed".  So when the entry is
# removed from the log by a new leader, the configuration reverts.
def test_configuration_takes_effect_when_appended_and_reverts_when_truncated():
    net = cluster(5, check_quorum=False)  # no leader lease: n3 may win at once
    net.add_node("n6")
    index = change(net, ConfChangeOp.ADD_LEARNER, "n6")
    assert net["n1"].conf.learners == ("n6",)  # the leader: at once
    net.deliver(appends_to("n2"))
    n2 = net["n2"]
    assert n2.log.last_index == index and n2.commit_index < index
    assert n2.conf.learners == ("n6",)  # the follower: on append, before commit
    assert net.trace("n2", "membership")[-1]["learners"] == ["n6"]

    # n1 is cut off before anyone else got the entry; n3 wins with n4, n5.
    net.isolate("n1")
    net.pending.clear()
    net.isolate("n2")
    net.elect("n3")
    net.heal()
    net.isolate("n1")
    propose_all(net, "n3", 1, "new-leader")
    heartbeat(net, "n3")  # n2's probe was lost while it was cut off
    net.stabilize()
    assert n2.log.term(index) == net["n3"].term  # the config entry was overwritten
    assert n2.conf == ConfState(voters=("n1", "n2", "n3", "n4", "n5"))
    assert net.trace("n2", "membership")[-1]["learners"] == []


# Dissertation §4.2.1: a learner receives the log but does not vote and does
# not count towards a commit majority; it never starts an election.
def test_learner_receives_log_but_neither_votes_nor_counts():
    net = cluster(3)
    net.add_node("n4")
    change(net, ConfChangeOp.ADD_LEARNER, "n4")
    net.stabilize()
    propose_all(net, "n1", 2)
    heartbeat(net)
    net.stabilize()
    n4 = net["n4"]
    assert n4.log.entries == net["n1"].log.entries
    assert commands(net, "n4") == commands(net, "n1")
    assert not n4.is_voter

    # Only the learner answers: nothing commits.
    net.isolate("n2")
    net.isolate("n3")
    commit = net["n1"].commit_index
    net.propose("n1", b"learner-only")
    net.stabilize()
    assert n4.log.last_index == commit + 1
    assert net["n1"].commit_index == commit

    # It never campaigns, however long it hears nothing.
    net.isolate("n4")
    sent = len(net.sent)
    net.tick("n4", 100)
    assert n4.role is Role.FOLLOWER
    assert not [m for m in net.sent[sent:] if isinstance(m, RequestVote)]

    # A (pre-)candidate asks only voters, and does not count a learner's grant.
    net.isolate("n2")
    sent = len(net.sent)
    net.campaign("n2")
    n2 = net["n2"]
    assert n2.role is Role.PRE_CANDIDATE
    assert {m.dst for m in net.sent[sent:] if isinstance(m, RequestVote)} == {"n1", "n3"}
    net.inject(RequestVoteResponse(n2.term + 1, "n4", "n2", True, pre_vote=True))
    assert n2.role is Role.PRE_CANDIDATE


# Dissertation §4.2.1: promote a learner only once it has caught up, so a new
# voter does not stall commitment.
def test_promote_refused_until_the_learner_has_caught_up():
    net = cluster(3)
    propose_all(net, "n1", 5)
    net.add_node("n4")
    change(net, ConfChangeOp.ADD_LEARNER, "n4")
    net.stabilize(lambda m: "n4" not in (m.src, m.dst))  # n4 hears nothing yet
    net.drop(lambda m: "n4" in (m.src, m.dst))
    with pytest.raises(ConfChangeError, match="has not caught up"):
        net["n1"].propose_conf_change(ConfChange(ConfChangeOp.PROMOTE, "n4"))
    heartbeat(net)
    net.stabilize()
    change(net, ConfChangeOp.PROMOTE, "n4")
    net.stabilize()
    assert net["n1"].conf.voters == ("n1", "n2", "n3", "n4")
    assert net["n4"].conf.voters == ("n1", "n2", "n3", "n4")


def grow_to_five(net: Net) -> None:
    for node in ("n4", "n5"):
        net.add_node(node)
        change(net, ConfChangeOp.ADD_LEARNER, node)
        net.stabilize()
        heartbeat(net)  # the leader first contacts a new member with a heartbeat probe
        net.stabilize()
        change(net, ConfChangeOp.PROMOTE, node)
        net.stabilize()


# Dissertation §4: the majority is always counted in the current
# configuration: 3 of 5 after growing to five, 2 of 3 after shrinking back.
def test_quorum_follows_the_current_configuration():
    net = cluster(3)
    grow_to_five(net)
    n1 = net["n1"]
    assert n1.conf.voters == ("n1", "n2", "n3", "n4", "n5")

    net.isolate("n3")
    net.isolate("n4")
    net.isolate("n5")
    commit = n1.commit_index
    net.propose("n1", b"two-of-five")
    net.stabilize()
    assert n1.commit_index == commit  # 2 of 5: not a majority any more

    net.heal()
    net.isolate("n4")
    net.isolate("n5")
    heartbeat(net)
    net.stabilize()
    assert n1.commit_index == n1.log.last_index  # 3 of 5 commit it
    assert commands(net, "n1")[-1] == b"two-of-five"

    net.heal()
    heartbeat(net)
    net.stabilize()
    for node in ("n5", "n4"):
        change(net, ConfChangeOp.REMOVE, node)
        net.stabilize()
    assert n1.conf.voters == ("n1", "n2", "n3")
    net.isolate("n3")
    net.isolate("n4")
    net.isolate("n5")
    net.propose("n1", b"two-of-three")
    settle(net)
    assert n1.commit_index == n1.log.last_index
    assert commands(net, "n2")[-1] == b"two-of-three"


# Dissertation §4.2.2: a leader removed from the configuration keeps managing
# the cluster until the change commits (it does not count itself), then steps
# down -- and, no longer a voter, never campaigns.
def test_removed_leader_leads_until_the_change_commits_then_steps_down():
    net = cluster(3)
    propose_all(net, "n1", 2)
    n1 = net["n1"]
    index = change(net, ConfChangeOp.REMOVE, "n1")
    assert n1.role is Role.LEADER
    assert n1.conf.voters == ("n2", "n3")
    net.deliver(appends_to("n2"))
    net.deliver(to("n1"))  # n2's acknowledgement: 1 of the 2 new voters
    assert n1.role is Role.LEADER and n1.commit_index < index
    net.deliver(appends_to("n3"))
    net.deliver(to("n1"))  # both: committed in the new configuration
    assert n1.commit_index >= index
    assert n1.role is Role.FOLLOWER
    net.stabilize()
    assert net["n2"].commit_index >= index and net["n3"].commit_index >= index

    sent = len(net.sent)
    net.tick("n1", 100)
    assert not [m for m in net.sent[sent:] if m.src == "n1" and isinstance(m, RequestVote)]
    for _ in range(60):
        net.tick_all()
        if net.leaders():
            break
    [leader] = net.leaders()
    assert leader in ("n2", "n3")


# ============================================================ §3.10 transfer


# Dissertation §3.10: the leader sends TimeoutNow to the target, which starts
# an election at once; voters grant it even though they just heard from the
# leader (the transfer flag lifts the lease of §4.2.3).
def test_transfer_to_a_named_follower_wins_despite_the_leader_lease():
    net = cluster(3)  # check_quorum on: voters honour the leader lease
    term = net["n1"].term
    assert net["n1"].transfer_leadership("n3") == "n3"
    net.drain("n1")
    [tn] = net.take(kind(TimeoutNow))
    assert tn.dst == "n3"
    assert net["n2"].election_elapsed < net["n2"].config.election_ticks  # in the lease
    net.inject(tn)
    net.stabilize()
    assert net["n3"].role is Role.LEADER and net["n3"].term == term + 1
    assert net["n1"].role is Role.FOLLOWER and net["n1"].leader_id == "n3"
    assert next(e for e in net.trace("n2", "vote") if e["candidate"] == "n3")["granted"]

    # The same election without the transfer flag is refused in the lease.
    net.inject(RequestVote(term + 5, "n1", "n2", 100, term + 5))
    assert net.trace("n2", "vote")[-1]["granted"] is False


def test_transfer_without_target_picks_the_most_up_to_date_follower():
    net = cluster(3)
    net.propose("n1", b"only-n3")
    net.deliver(appends_to("n3"))
    net.deliver(to("n1"))
    net.drop(appends_to("n2"))
    assert net["n1"].transfer_leadership() == "n3"
    net.drain("n1")
    net.stabilize()
    assert net["n3"].role is Role.LEADER


# Dissertation §3.10: "the prior leader sends its log entries to the target
# server" first; TimeoutNow only once the target's log matches.
def test_transfer_catches_the_target_up_first():
    net = cluster(3)
    net.isolate("n3")
    propose_all(net, "n1", 3)
    net.heal()
    net.pending.clear()
    mark = len(net.sent)
    net["n1"].transfer_leadership("n3")
    net.drain("n1")
    assert not net.take(kind(TimeoutNow))
    heartbeat(net)  # n1 does not know where n3's log ends: the heartbeat finds out
    net.stabilize()
    sent = [m for m in net.sent[mark:] if m.src == "n1" and m.dst == "n3"]
    first_timeout = next(i for i, m in enumerate(sent) if isinstance(m, TimeoutNow))
    assert any(isinstance(m, AppendEntries) and m.entries for m in sent[:first_timeout])
    n3 = net["n3"]
    assert n3.role is Role.LEADER
    assert commands(net, "n3")[-3:] == [b"cmd-000", b"cmd-001", b"cmd-002"]


# Dissertation §3.10: the leader stops accepting client requests during a
# transfer; if the transfer does not complete within an election timeout it
# is abandoned and the leader takes requests again.
def test_transfer_refuses_proposals_and_is_abandoned_after_a_timeout():
    net = cluster(3)
    n1 = net["n1"]
    net.isolate("n3")
    n1.transfer_leadership("n3")
    net.drain("n1")
    with pytest.raises(ProposalDropped):
        n1.propose(b"during")
    with pytest.raises(ProposalDropped):
        n1.propose_conf_change(ConfChange(ConfChangeOp.REMOVE, "n2"))
    for _ in range(n1.config.election_ticks):
        net.tick("n1")
        net.stabilize()
    assert n1.role is Role.LEADER and n1.transferee is None
    assert net.trace("n1", "transfer")[-1] == {
        "node": "n1",
        "type": "transfer",
        "to": "n3",
        "term": n1.term,
        "failed": True,
    }
    net.propose("n1", b"after")
    settle(net)
    assert commands(net, "n2")[-1] == b"after"


# ============================================================ §6.4 reads


def read_states(net: Net, node: str) -> list[ReadState]:
    return net.reads[node]


# Dissertation §6.4 steps 1-3: the leader records its commit index, then
# answers only once a heartbeat round sent after the read has been
# acknowledged by a majority (itself and one follower of three).
def test_leader_read_waits_for_a_majority_heartbeat_round():
    net = cluster(3)
    propose_all(net, "n1", 2)
    net["n1"].read_index(7)
    net.drain("n1")
    assert read_states(net, "n1") == []
    round_ = net.take(kind(AppendEntries))
    assert {m.dst for m in round_} == {"n2", "n3"}
    net.inject(next(m for m in round_ if m.dst == "n2"))
    assert read_states(net, "n1") == []  # sent, not yet acknowledged
    net.deliver(all_of(from_("n2"), to("n1")))
    assert read_states(net, "n1") == [ReadState(7, net["n1"].commit_index)]


# Dissertation §6.4 step 2: "the leader needs to make sure it hasn't been
# superseded by a newer leader of which it is unaware.  It issues a new round
# of heartbeats" -- acknowledgements of heartbeats sent *before* the read
# arrived prove nothing about leadership at the time of the read.
def test_acks_of_a_round_sent_before_the_read_do_not_confirm_it():
    net = cluster(3, check_quorum=False)
    propose_all(net, "n1", 2)
    heartbeat(net)  # round 1, acknowledged by both followers ...
    net.deliver(kind(AppendEntries))
    held = net.take(kind(AppendEntriesResponse))  # ... but the answers are slow
    net.isolate("n1")
    net.elect("n2")  # n1 is deposed without knowing it
    w = net.propose("n2", b"W")
    net.stabilize()
    assert net["n2"].commit_index >= w  # W completed before the read below begins
    net.heal()
    net["n1"].read_index(7)
    net.drain("n1")
    net.drop(from_("n1"))  # the read's own heartbeat round is lost
    for m in held:
        net.inject(m)  # the late answers to round 1 arrive
    confirmed = [r for r in read_states(net, "n1") if r.ok]
    assert all(r.index >= w for r in confirmed), f"stale read: {confirmed}, W at {w}"


# Dissertation §6.4 step 1: a new leader serves reads only after it has
# committed an entry of its own term (its no-op).
def test_read_on_a_new_leader_waits_for_an_entry_of_its_term():
    net = cluster(3, check_quorum=False)  # no leader lease: n2 may win at once
    propose_all(net, "n1", 2)
    net.isolate("n1")
    net.campaign("n2")
    net.stabilize(VOTES)
    n2 = net["n2"]
    assert n2.role is Role.LEADER
    if n2.log.term(n2.commit_index) == n2.term:
        pytest.fail("set-up: the no-op committed already")
    n2.read_index(1)
    net.drain("n2")
    net.tick("n2", 3)
    net.drop(to("n2"))  # no acknowledgement can arrive
    assert read_states(net, "n2") == []
    heartbeat(net, "n2")
    net.stabilize()
    [rs] = read_states(net, "n2")
    assert rs.ok and rs.index >= n2.log.last_index and n2.log.term(rs.index) == n2.term


# Dissertation §6.4: a follower asks the leader for a read index and serves
# the read once it has applied that far.
def test_follower_read_gets_the_leaders_read_index():
    net = cluster(3)
    propose_all(net, "n1", 3)
    net["n2"].read_index(5)
    net.drain("n2")
    [req] = net.take(kind(ReadIndexRequest))
    assert (req.src, req.dst, req.request_id) == ("n2", "n1", 5)
    net.inject(req)
    net.stabilize()
    assert read_states(net, "n2") == [ReadState(5, net["n1"].commit_index)]
    assert net["n2"].applied_index >= read_states(net, "n2")[0].index


# Dissertation §6.4: a leader that has been deposed without knowing it must
# never confirm a read -- the rest of the cluster may have committed writes.
# It fails the read when it steps down (check-quorum, §6.2) ...
def test_partitioned_leader_never_confirms_a_read():
    net = cluster(3)
    propose_all(net, "n1", 1)
    net.isolate("n1")
    n1 = net["n1"]
    n1.read_index(9)
    net.drain("n1")
    for _ in range(100):
        net.tick_all()
        if [x for x in net.leaders() if x != "n1"]:
            break
    [new] = [x for x in net.leaders() if x != "n1"]
    propose_all(net, new, 2, "newer")
    net.tick("n1", 2 * n1.config.election_ticks)
    assert n1.role is Role.FOLLOWER
    assert read_states(net, "n1") == [ReadState(9, 0, ok=False)]


# ... or when it learns of the newer term from a message.
def test_deposed_leader_fails_its_reads_on_a_higher_term():
    net = cluster(3, check_quorum=False)
    net.isolate("n1")
    net["n1"].read_index(3)
    net.drain("n1")
    net.elect("n2")
    net.heal()
    heartbeat(net, "n2")
    net.stabilize()
    assert net["n1"].role is Role.FOLLOWER
    assert read_states(net, "n1") == [ReadState(3, 0, ok=False)]


def test_read_at_a_node_without_a_leader_fails_at_once():
    net = Net(3)
    net["n2"].read_index(4)
    net.drain("n2")
    assert read_states(net, "n2") == [ReadState(4, 0, ok=False)]
    # A follower's request that reaches a non-leader is refused.
    net.inject(ReadIndexRequest(0, "n3", "n2", 6))
    [answer] = net.take(kind(ReadIndexResponse))
    assert answer.ok is False


# ============================================================ forced recovery


# `force_new_cluster` (Swarm's --force-new-cluster): the survivor keeps every
# committed entry, drops the uncommitted ones, elects itself and commits alone.
def test_force_new_cluster_keeps_committed_drops_uncommitted_and_commits_alone():
    net = cluster(3)
    propose_all(net, "n1", 3)
    settle(net)  # n2 applies them: compared below
    committed = net["n1"].commit_index
    net.isolate("n1")
    net.propose("n1", b"uncommitted-1")
    net.propose("n1", b"uncommitted-2")
    assert net["n1"].log.last_index == committed + 2
    for node in ("n1", "n2", "n3"):
        net.crash(node)

    st = net.storage["n1"]
    new, entry = force_new_cluster(st.load(), "n1")
    assert entry.kind is EntryKind.CONFIG and entry.index == committed + 1
    assert entry.term > net["n1"].term
    st.append([entry])
    st.set_hard_state(new.hard_state)
    net.heal()
    net.restart("n1")
    n1 = net["n1"]
    assert n1.conf == ConfState(voters=("n1",))
    assert [e.data for e in n1.log.entries[:committed]] == [
        e.data for e in net.applied["n2"][:committed]
    ]
    assert b"uncommitted-1" not in [e.data for e in n1.log.entries]
    net.tick_until("n1", lambda c: c.role is Role.LEADER)
    net.stabilize()
    index = net.propose("n1", b"alone")
    assert n1.commit_index == index
    assert commands(net, "n1") == [b"cmd-000", b"cmd-001", b"cmd-002", b"alone"]
    assert [m for m in net.sent if m.src == "n1" and isinstance(m, RequestVoteResponse)] == []
