"""Paper tests: each test checks one sentence of the Raft paper (or dissertation).

The section is named in a comment above each test.  Messages are delivered by
hand through `core_net.Net`, so every test reads as a message sequence.
"""

from __future__ import annotations

import random

import pytest
from core_net import Net, all_of, appends_to, between, from_, kind, to

from raft.core.messages import (
    AppendEntries,
    AppendEntriesResponse,
    Entry,
    HardState,
    RequestVote,
    RequestVoteResponse,
)
from raft.core.protocol import Config, NotLeader, RaftCore, Role

VOTES = kind(RequestVote, RequestVoteResponse)
# The paper's basic algorithm, without the dissertation's additions.
PLAIN = {"pre_vote": False, "check_quorum": False}


def refusals(net: Net, node: str, **match) -> list[dict]:
    return [
        e
        for e in net.trace(node, "vote")
        if not e["granted"] and all(e.get(k) == v for k, v in match.items())
    ]


# ============================================================ §5.1 terms


# §5.1: "If a server's current term is smaller than the other's, then it updates
# its current term to the larger value.  If a candidate or leader discovers that
# its term is out of date, it immediately reverts to follower state."
@pytest.mark.parametrize(
    "make",
    [
        lambda t: AppendEntries(t, "n2", "n1", 0, 0),
        lambda t: AppendEntriesResponse(t, "n2", "n1", False, 0),
        lambda t: RequestVoteResponse(t, "n2", "n1", False),
        lambda t: RequestVote(t, "n2", "n1", 0, 0),
    ],
    ids=["AppendEntries", "AppendEntriesResponse", "RequestVoteResponse", "RequestVote"],
)
def test_higher_term_in_any_message_makes_leader_a_follower(make):
    # Without check-quorum: with it, a leader ignores RequestVote within its
    # lease (dissertation §4.2.3), tested separately below.
    net = Net(3, check_quorum=False)
    net.elect("n1")
    net.stabilize()
    term = net["n1"].term
    net.inject(make(term + 3))
    assert net["n1"].role is Role.FOLLOWER
    assert net["n1"].term == term + 3
    assert net.storage["n1"].load().hard_state.term == term + 3
    assert {"from": "leader", "to": "follower", "term": term + 3} in [
        {k: e[k] for k in ("from", "to", "term")} for e in net.trace("n1", "role")
    ]


# §5.1: "If a server receives a request with a stale term number, it rejects
# the request."  Figure 2: "Reply false if term < currentTerm".
def test_stale_append_entries_is_rejected_with_the_newer_term():
    net = Net(3, terms=dict.fromkeys(["n1", "n2", "n3"], 5))
    net.elect("n1")
    net.stabilize()
    assert net["n2"].term == 6
    before = list(net["n2"].log.entries)
    net.inject(AppendEntries(4, "n3", "n2", 1, 6, (Entry(4, 2, b"stale"),), 2))
    [answer] = net.take(from_("n2"))
    assert isinstance(answer, AppendEntriesResponse)
    assert (answer.success, answer.term, answer.dst) == (False, 6, "n3")
    assert net["n2"].log.entries == before
    assert net["n2"].leader_id == "n1"


# §5.1 / Figure 2 RequestVote: "Reply false if term < currentTerm".
def test_stale_request_vote_is_refused():
    net = Net(3, terms=dict.fromkeys(["n1", "n2", "n3"], 5))
    net.elect("n1")
    net.stabilize()
    net.inject(RequestVote(4, "n3", "n2", 10, 4))
    [answer] = net.take(from_("n2"))
    assert isinstance(answer, RequestVoteResponse)
    assert (answer.granted, answer.term) == (False, 6)
    assert net["n2"].vote == "n1"
    [refusal] = refusals(net, "n2", candidate="n3")
    assert refusal["reason"] == "candidate term 4 is older than mine (6)"


# ============================================================ §5.2 leader election


# §5.2: "election timeouts are chosen randomly from a fixed interval"; here
# [T, 2T) ticks from the seeded RNG handed in.
def test_election_timeout_is_drawn_from_T_to_2T():
    T = 10
    seen = []
    for seed in range(300):
        core = RaftCore(Config("n1", ("n1", "n2", "n3"), election_ticks=T), random.Random(seed))
        ticks = 0
        while core.role is Role.FOLLOWER:
            core.tick()
            ticks += 1
            assert ticks < 2 * T
        seen.append(ticks)
    assert min(seen) >= T and max(seen) < 2 * T
    assert len(set(seen)) == T  # every value in the range occurs: they vary

    # The same seed replays the same timeout.
    a = RaftCore(Config("n1", ("n1",), election_ticks=T), random.Random(7))
    b = RaftCore(Config("n1", ("n1",), election_ticks=T), random.Random(7))
    assert a.randomized_timeout == b.randomized_timeout


# §5.2 with pre-vote (§9.6): follower -> pre-candidate -> candidate -> leader.
def test_follower_becomes_pre_candidate_then_candidate_then_leader():
    net = Net(3)
    net.campaign("n1")
    n1 = net["n1"]
    assert (n1.role, n1.term, n1.vote) == (Role.PRE_CANDIDATE, 0, None)
    prevotes = list(net.pending)
    assert [(m.dst, m.term, m.pre_vote) for m in prevotes] == [("n2", 1, True), ("n3", 1, True)]

    net.deliver(to("n2", "n3"))  # the pre-vote requests
    assert net["n2"].term == 0 and net["n3"].term == 0
    net.deliver(to("n1"))  # both grants; one was enough
    assert (n1.role, n1.term, n1.vote) == (Role.CANDIDATE, 1, "n1")

    net.deliver(all_of(kind(RequestVote), to("n2")))
    assert (net["n2"].term, net["n2"].vote) == (1, "n1")
    net.deliver(to("n1"))
    assert n1.role is Role.LEADER
    assert [(e["from"], e["to"], e["term"]) for e in net.trace("n1", "role")] == [
        ("follower", "pre-candidate", 0),
        ("pre-candidate", "candidate", 1),
        ("candidate", "leader", 1),
    ]
    net.stabilize()
    assert [c.leader_id for c in net.cores.values()] == ["n1"] * 3


# §5.2: "If the AppendEntries RPC is from a leader whose term is at least as
# large as the candidate's current term, then the candidate recognizes the
# leader as legitimate and returns to follower state."
# §5.2: "Each server will vote for at most one candidate in a given term, on a
# first-come-first-served basis."
def test_candidate_yields_to_leader_of_its_term_and_one_vote_per_term():
    net = Net(3, **PLAIN)
    net.campaign("n1")
    net.campaign("n2")
    assert net["n1"].term == net["n2"].term == 1
    net.deliver(all_of(from_("n1"), to("n3")))  # n3 votes for n1 first
    net.deliver(all_of(from_("n2"), to("n3")))  # ... so n2 is refused
    [refusal] = refusals(net, "n3", candidate="n2")
    assert refusal["reason"] == "already voted for n1 in term 1"
    assert net["n3"].vote == "n1"

    net.deliver(all_of(from_("n3"), to("n1")))
    assert net["n1"].role is Role.LEADER
    assert net["n2"].role is Role.CANDIDATE
    net.drop(kind(RequestVote, RequestVoteResponse))
    net.deliver(appends_to("n2"))
    assert (net["n2"].role, net["n2"].term, net["n2"].leader_id) == (Role.FOLLOWER, 1, "n1")
    net.stabilize()
    assert net["n2"].log.entries == net["n1"].log.entries


# §5.2: "randomized election timeouts ensure that split votes are rare and
# that they are resolved quickly."
def test_split_vote_resolves():
    net = Net(4, seed=3, **PLAIN)
    net.campaign("n1")
    net.campaign("n2")
    net.deliver(all_of(from_("n1"), to("n3")))
    net.deliver(all_of(from_("n2"), to("n4")))
    net.stabilize()
    assert net.leaders() == []  # 2 votes each out of 4: nobody won term 1
    assert {c.role for c in net.cores.values()} == {Role.FOLLOWER}
    for _ in range(60):
        net.tick_all()
        if net.leaders():
            break
    [leader] = net.leaders()
    assert net[leader].term >= 2
    net.tick_all(2)
    assert {c.leader_id for c in net.cores.values()} == {leader}


# §5.2 with one server: its own vote is a majority; the entry it appends
# commits once storage acknowledges it (advance).
def test_single_node_elects_itself_and_commits_after_advance():
    core = RaftCore(Config("n1", ("n1",)), random.Random(1))
    while core.role is not Role.LEADER:
        core.tick()
    assert core.term == 1
    rd = core.ready()
    assert [e.index for e in rd.entries] == [1] and rd.messages == []
    assert core.commit_index == 0  # not durable yet
    core.advance(rd)
    assert core.commit_index == 1
    rd = core.ready()
    assert [e.index for e in rd.committed] == [1]
    core.advance(rd)
    index = core.propose(b"x")
    rd = core.ready()
    assert core.commit_index == 1 and rd.committed == []
    core.advance(rd)
    rd = core.ready()
    assert [(e.index, e.data) for e in rd.committed] == [(index, b"x")]
    core.advance(rd)
    assert core.applied_index == index


# ============================================================ pre-vote (dissertation §9.6)


# §9.6: "a candidate would first ask other servers whether its log was
# up-to-date enough to get their vote ... servers would not increment their
# terms" -- a rejoining partitioned server does not disrupt the cluster.
def test_rejoining_partitioned_node_does_not_bump_term_or_depose_leader():
    net = Net(3, seed=5)
    net.elect("n1")
    net.tick_all(3)
    term = net["n1"].term
    net.isolate("n3")
    for _ in range(100):  # many election timeouts alone
        net.tick_all()
        net.propose("n1", b"w")
    assert net["n3"].term == term  # pre-votes that nobody answered
    assert len(net.trace("n3", "election")) >= 3
    net.heal()
    net.tick_all(30)
    assert net.leaders() == ["n1"]
    assert {c.term for c in net.cores.values()} == {term}
    assert net["n3"].leader_id == "n1"
    assert net["n3"].log.entries == net["n1"].log.entries
    assert [e for e in net.trace("n1", "role") if e["term"] > term] == []


# §9.6: pre-votes change neither the voter's term nor its vote.
def test_pre_vote_does_not_change_voters_term_or_vote():
    net = Net(3, check_quorum=False)
    net.elect("n1")
    net.stabilize()
    n2 = net["n2"]
    assert (n2.term, n2.vote) == (1, "n1")
    hs_before = net.storage["n2"].load().hard_state
    n2.step(RequestVote(2, "n3", "n2", n2.log.last_index, n2.log.last_term, pre_vote=True))
    rd = n2.ready()
    [answer] = rd.messages
    assert (answer.granted, answer.pre_vote, answer.term) == (True, True, 2)
    assert rd.hard_state is None
    n2.advance(rd)
    assert (n2.term, n2.vote, n2.role) == (1, "n1", Role.FOLLOWER)
    assert net.storage["n2"].load().hard_state == hs_before


# §9.6: the pre-candidate itself keeps its term until it wins the pre-vote;
# a granted pre-vote answer (which carries term + 1) does not bump it either.
def test_pre_candidate_keeps_term_until_pre_vote_is_won():
    net = Net(5)
    net.campaign("n1")
    assert net["n1"].term == 0
    net.deliver(all_of(kind(RequestVote), to("n2")))
    net.deliver(to("n1"))  # one grant of two needed (besides itself)
    assert (net["n1"].role, net["n1"].term) == (Role.PRE_CANDIDATE, 0)
    net.deliver(all_of(kind(RequestVote), to("n3")))
    net.deliver(to("n1"))
    assert (net["n1"].role, net["n1"].term) == (Role.CANDIDATE, 1)


# ============================================================ check-quorum (dissertation §6.2)


# §6.2: "a leader steps down if an election timeout elapses without a
# successful round of heartbeats to a majority of its cluster".
def test_leader_cut_off_from_majority_steps_down():
    net = Net(3, seed=2)
    net.elect("n1")
    net.tick_all(5)
    term = net["n1"].term
    net.isolate("n1")
    T = net["n1"].config.election_ticks
    elapsed = 0
    while net["n1"].role is Role.LEADER and elapsed <= 2 * T:
        net.tick("n1")
        elapsed += 1
    assert net["n1"].role is Role.FOLLOWER
    assert T <= elapsed <= 2 * T
    assert net["n1"].term == term  # stepping down alone does not bump the term
    assert net.trace("n1", "check_quorum")
    with pytest.raises(NotLeader):
        net["n1"].propose(b"x")


# §6.2 / §4.2.3: "if a server receives a RequestVote request within the minimum
# election timeout of hearing from a current leader, it does not update its
# term or grant its vote".
def test_follower_that_hears_from_leader_ignores_vote_request():
    net = Net(3)
    net.elect("n1")
    net.tick_all(3)
    term = net["n1"].term
    n2 = net["n2"]
    net.inject(RequestVote(term + 5, "n3", "n2", 100, term + 4))
    assert (n2.term, n2.vote, n2.leader_id) == (term, "n1", "n1")
    [refusal] = refusals(net, "n2", candidate="n3")
    assert "heard from leader n1" in refusal["reason"]
    net.tick_all(3)
    assert net.leaders() == ["n1"] and net["n1"].term == term


# ============================================================ §5.3 log replication


# §5.3 consistency check: "If the follower does not find an entry in its log
# with the same index and term, then it refuses the new entries."
def test_consistency_check_and_conflict_hint():
    net = Net(3, logs={"n2": [1, 1]}, terms=dict.fromkeys(["n1", "n2", "n3"], 1))
    n2 = net["n2"]
    # Too far ahead: hint is our last index + 1.
    net.inject(AppendEntries(2, "n1", "n2", 3, 1, (Entry(2, 4),)))
    [r] = net.take(from_("n2"))
    assert (r.success, r.match_index, r.conflict_index, r.conflict_term) == (False, 3, 3, 0)
    # Same index, other term: hint is the first index of our term there.
    net.inject(AppendEntries(2, "n1", "n2", 2, 2, (Entry(2, 3),)))
    [r] = net.take(from_("n2"))
    assert (r.success, r.conflict_index, r.conflict_term) == (False, 1, 1)
    assert [e.term for e in n2.log.entries] == [1, 1]
    # Matching (index, term): accepted.
    net.inject(AppendEntries(2, "n1", "n2", 2, 1, (Entry(2, 3, b"c"),)))
    [r] = net.take(from_("n2"))
    assert (r.success, r.match_index) == (True, 3)
    assert [e.term for e in n2.log.entries] == [1, 1, 2]


# §5.3: "the leader handles inconsistencies by forcing the followers' logs to
# duplicate its own ... conflicting entries in follower logs will be
# overwritten with entries from the leader's log."
def test_conflicting_suffix_is_overwritten():
    logs = {"n1": [1, 1, 3, 3], "n2": [1, 1, 3, 3], "n3": [1, 1, 2, 2, 2, 2]}
    net = Net(3, logs=logs, terms=dict.fromkeys(logs, 3))
    net.elect("n1")
    net.stabilize()
    assert net.log_terms("n3") == [1, 1, 3, 3, 4]
    assert [e.term for e in net.storage["n3"].load().entries] == [1, 1, 3, 3, 4]
    assert net.violations == []


# End of §5.3: "the follower can include the term of the conflicting entry and
# the first index it stores for that term.  With this information, the leader
# can decrement nextIndex to bypass all of the conflicting entries in that
# term; one AppendEntries RPC will be required for each term with conflicting
# entries, rather than one RPC per entry."
@pytest.mark.parametrize(
    ("leader_log", "follower_log", "conflicting_terms"),
    [
        ([1] + [4] * 10, [1] + [2] * 50, 1),
        ([1] + [2] * 10 + [4] * 9, [1] + [2] * 25 + [3] * 25, 2),
        ([1] * 3 + [5] * 5, [1] * 3 + [2] * 10 + [3] * 20 + [4] * 20, 3),
    ],
)
def test_fast_backup_skips_a_term_per_round_trip(leader_log, follower_log, conflicting_terms):
    logs = {"n1": leader_log, "n2": leader_log, "n3": follower_log}
    top = max(leader_log + follower_log)
    net = Net(3, logs=logs, terms=dict.fromkeys(logs, top))
    net.elect("n1")
    net.stabilize()
    rejected = [
        m
        for m in net.sent
        if isinstance(m, AppendEntriesResponse) and m.src == "n3" and not m.success
    ]
    assert len(rejected) <= 3 * conflicting_terms
    assert net["n3"].log.entries == net["n1"].log.entries


# §5.3 / Figure 2: "If an existing entry conflicts with a new one ... delete the
# existing entry and all that follow it" -- only on a conflict, so a delayed
# duplicate of an old AppendEntries must not truncate what came after it.
def test_redelivered_old_append_entries_does_not_truncate():
    net = Net(3)
    net.elect("n1")
    net.stabilize()
    net.propose("n1", b"a")
    [old] = [m for m in net.pending if m.dst == "n2"]
    assert [e.data for e in old.entries] == [b"a"]
    net.stabilize()
    net.propose("n1", b"b")
    net.propose("n1", b"c")
    net.stabilize()
    before = list(net["n2"].log.entries)
    match = net["n1"].progress["n2"].match
    net.inject(old)
    assert net["n2"].log.entries == before
    [answer] = net.take(from_("n2"))
    assert answer.success and answer.match_index == old.entries[-1].index
    net.inject(answer)  # the leader takes the stale success for what it is
    assert net["n1"].progress["n2"].match == match


# §5.3: "The leader keeps track of the highest index it knows to be committed,
# and it includes that index in future AppendEntries RPCs ... Once a follower
# learns that a log entry is committed, it applies the entry to its local
# state machine (in log order)."
def test_commit_index_propagates_to_followers():
    net = Net(5)
    net.elect("n1")
    for i in range(5):
        net.propose("n1", f"w{i}".encode())
    net.stabilize()
    net.tick_all()
    commit = net["n1"].commit_index
    assert commit == 6
    for node in net.ids:
        assert net[node].commit_index == commit
        assert [e.data for e in net.applied[node] if e.data] == [b"w0", b"w1", b"w2", b"w3", b"w4"]
        assert [e.index for e in net.applied[node]] == list(range(1, commit + 1))


# ============================================================ §5.4.1 election restriction


# §5.4.1: "the voter denies its vote if its own log is more up-to-date than
# that of the candidate ... If the logs have last entries with different
# terms, then the log with the later term is more up-to-date."
@pytest.mark.parametrize("pre_vote", [True, False])
def test_vote_refused_for_less_up_to_date_log(pre_vote):
    voter = [1] * 10 + [2] * 4 + [3] * 3  # ends (term 3, index 17)
    candidate = [1] * 10 + [2] * 4  # ends (term 2, index 14)
    logs = {"n1": voter, "n2": candidate, "n3": candidate}
    net = Net(3, logs=logs, terms=dict.fromkeys(logs, 3), pre_vote=pre_vote)
    net.campaign("n2")
    net.stabilize(to("n1"))
    [refusal] = refusals(net, "n1", candidate="n2", pre_vote=pre_vote)
    assert refusal["reason"] == "candidate log (term 2, index 14) is behind mine (term 3, index 17)"
    assert refusal["term"] == 4
    assert net["n1"].vote is None


# §5.4.1: "If the logs end with the same term, then whichever log is longer is
# more up-to-date."
def test_vote_refused_for_shorter_log_of_same_term():
    logs = {"n1": [1, 2, 2, 2], "n2": [1, 2, 2], "n3": [1]}
    net = Net(3, logs=logs, terms=dict.fromkeys(logs, 2), **PLAIN)
    net.campaign("n2")
    net.stabilize(kind(RequestVote, RequestVoteResponse))
    [refusal] = refusals(net, "n1", candidate="n2")
    assert refusal["reason"] == "candidate log (term 2, index 3) is behind mine (term 2, index 4)"
    assert net["n3"].vote == "n2"  # n3's log is behind n2's, so it votes


# ============================================================ §5.4.2 Figure 8


def figure8_c() -> Net:
    """Figure 8 up to (c), message by message.

    Every server starts with entry 1 (term 1) committed.  Elections here are
    the paper's (no pre-vote, no check-quorum), and a leader sends one entry
    per AppendEntries so that we can hand out index 2 without index 3.  Our
    leaders append a no-op on election: that no-op *is* the figure's new
    entry of each term.
    """
    five = ["n1", "n2", "n3", "n4", "n5"]
    net = Net(
        5,
        seed=8,
        logs={node: [1] for node in five},
        terms=dict.fromkeys(five, 1),
        commit=dict.fromkeys(five, 1),
        max_entries_per_message=1,
        **PLAIN,
    )
    # (a) S1 is leader of term 2 and replicates index 2 to S2 only.
    net.campaign("n1")
    net.stabilize(VOTES)
    assert (net["n1"].role, net["n1"].term) == (Role.LEADER, 2)
    net.stabilize(between("n1", "n2"))
    net.drop()
    assert [net.log_terms(n) for n in five] == [[1, 2], [1, 2], [1], [1], [1]]

    # (b) S1 crashes; S5 wins term 3 with votes from S3, S4 and itself, and
    # accepts a different entry at index 2.  Then it crashes too.
    net.crash("n1")
    net.campaign("n5")
    net.stabilize(VOTES)
    assert (net["n5"].role, net["n5"].term) == (Role.LEADER, 3)
    assert refusals(net, "n2", candidate="n5")  # S2's log is more up-to-date
    net.crash("n5")
    assert net.log_terms("n5") == [1, 3]

    # (c) S1 restarts and is elected for term 4 (its first try, in term 3,
    # fails: S3 and S4 already voted for S5 in term 3).
    net.restart("n1")
    net.tick_until("n1", lambda c: c.term == 3)
    net.stabilize(VOTES)
    assert net["n1"].role is Role.CANDIDATE
    assert refusals(net, "n3", candidate="n1", term=3)[0]["reason"] == (
        "already voted for n5 in term 3"
    )
    net.tick_until("n1", lambda c: c.term == 4)
    net.stabilize(VOTES)
    assert (net["n1"].role, net["n1"].term) == (Role.LEADER, 4)
    assert net.log_terms("n1") == [1, 2, 4]
    # S1 continues replicating index 2 (term 2) to S3 and S4, holding back
    # index 3; S2's AppendEntries is lost.
    net.drop(appends_to("n2"))
    net.deliver(to("n3", "n4"))  # probe after index 2: refused, they lack it
    net.deliver(to("n1"))
    [a, b] = net.pending
    assert [(a.prev_log_index, a.entries), (b.prev_log_index, b.entries)] == [
        (1, (net["n1"].log.entry(2),)),
    ] * 2
    net.deliver(to("n3", "n4"))  # index 2, term 2: accepted
    net.deliver(to("n1"))  # now S1 sends index 3 to S3 and S4: held back
    assert [net.log_terms(n) for n in five] == [[1, 2, 4], [1, 2], [1, 2], [1, 2], [1, 3]]
    return net


# §5.4.2: "a leader cannot immediately conclude that an entry from a previous
# term is committed once it is stored on a majority of servers ... Raft never
# commits log entries from previous terms by counting replicas."
def test_figure8_old_term_entry_on_majority_is_not_committed():
    net = figure8_c()
    n1 = net["n1"]
    # The leader knows that S1, S3 and S4 (3 of 5) hold index 2 ...
    assert n1.progress["n3"].match == 2 and n1.progress["n4"].match == 2
    # ... and still does not commit it: it is from term 2.
    assert n1.commit_index == 1
    assert [e for e in net.trace("n1", "commit") if e["index"] >= 2] == []
    assert all(e.index < 2 for node in net.ids for e in net.applied[node])
    # What is still pending is index 3 (term 4) on its way to S3 and S4.
    assert sorted((m.dst, m.entries[0].index) for m in net.pending) == [("n3", 3), ("n4", 3)]


# Figure 8 (d): "If S1 crashes ..., S5 could be elected leader (with votes
# from S2, S3, and S4) and overwrite the entry with its own entry from term 3."
def test_figure8_d_s5_overwrites_the_uncommitted_entry():
    net = figure8_c()
    net.crash("n1")
    net.restart("n5")
    net.tick_until("n5", lambda c: c.term == 4)  # S2-S4 voted for S1 in term 4
    net.stabilize(VOTES)
    assert net["n5"].role is Role.FOLLOWER
    net.tick_until("n5", lambda c: c.term == 5)
    net.stabilize(VOTES)
    assert net["n5"].role is Role.LEADER
    granted = {
        e["node"] for e in net.trace(type_="vote") if e["candidate"] == "n5" and e["granted"]
    }
    assert granted >= {"n2", "n3", "n4"}
    net.stabilize()
    for node in ["n2", "n3", "n4", "n5"]:
        assert net.log_terms(node) == [1, 3, 5]
    # Safe: the overwritten (term 2, index 2) entry was never applied anywhere.
    assert net.violations == []
    assert all(not (e.index == 2 and e.term == 2) for n in net.ids for e in net.applied[n])


# Figure 8 (e): "if S1 replicates an entry from its current term on a majority
# of the servers before crashing ... then this entry is committed (S5 cannot
# win an election).  At this point all preceding entries in the log are
# committed as well."
def test_figure8_e_current_term_entry_commits_the_earlier_one():
    net = figure8_c()
    net.stabilize(lambda m: m.dst in ("n1", "n3", "n4") and m.src in ("n1", "n3", "n4"))
    n1 = net["n1"]
    assert n1.commit_index == 3
    assert [(e.index, e.term) for e in net.applied["n1"]] == [(1, 1), (2, 2), (3, 4)]
    commits = [(e["index"], e["term"]) for e in net.trace("n1", "commit")]
    assert commits == [(3, 4)]  # index 2 committed with it, never on its own

    net.crash("n1")
    net.drop()
    net.restart("n5")
    for term in (4, 5, 6):
        net.tick_until("n5", lambda c, t=term: c.term == t)
        net.stabilize(VOTES)
        assert net["n5"].role is not Role.LEADER
    reasons = {e["reason"] for e in refusals(net, "n3", candidate="n5")}
    assert "candidate log (term 3, index 2) is behind mine (term 4, index 3)" in reasons


# ============================================================ persist before send


# Figure 2 "Persistent state on all servers: (Updated on stable storage before
# responding to RPCs)": the batch that carries a granted vote also carries the
# hard state recording that vote.
def test_vote_grant_travels_with_the_hard_state_that_records_it():
    net = Net(3, **PLAIN)
    net.campaign("n1")
    [request, _] = net.take(to("n2", "n3"))
    n2 = net["n2"]
    n2.step(request)
    rd = n2.ready()
    [answer] = rd.messages
    assert answer.granted
    assert rd.hard_state == HardState(1, "n1", 0)
    n2.advance(rd)


# ... so a driver that persists first cannot vote twice in a term, even
# across a crash.
def test_restarted_node_remembers_its_vote():
    net = Net(3, **PLAIN)
    net.campaign("n1")
    net.deliver(all_of(kind(RequestVote), to("n2")))
    net.crash("n2")
    net.restart("n2")
    assert (net["n2"].term, net["n2"].vote) == (1, "n1")
    net.inject(RequestVote(1, "n3", "n2", 5, 1))
    [refusal] = refusals(net, "n2", candidate="n3")
    assert refusal["reason"] == "already voted for n1 in term 1"


# Figure 2 / §5.3: an AppendEntries success acknowledges entries the
# follower holds durably, so it leaves in the batch that persists them.
def test_append_success_travels_with_the_entries_it_acknowledges():
    net = Net(3)
    net.elect("n1")
    net.stabilize()
    net["n1"].propose(b"x")
    net["n1"].propose(b"y")
    net.drain("n1")
    [ae] = net.take(appends_to("n2"))
    n2 = net["n2"]
    n2.step(ae)
    rd = n2.ready()
    [answer] = [m for m in rd.messages if isinstance(m, AppendEntriesResponse)]
    assert answer.success and answer.match_index == 3
    assert [e.index for e in rd.entries] == [2, 3]
    n2.advance(rd)


# The same when a message arrives between ready() and advance(): its answer
# waits for the next batch, which carries what it depends on.
def test_message_between_ready_and_advance_is_answered_in_the_next_batch():
    net = Net(3)
    net.elect("n1")
    net.stabilize()
    net["n1"].propose(b"x")
    net.drain("n1")
    [ae] = net.take(appends_to("n2"))
    n2 = net["n2"]
    net["n2"].tick()
    rd1 = n2.ready()
    n2.step(ae)
    n2.advance(rd1)
    rd2 = n2.ready()
    assert [m for m in rd1.messages if isinstance(m, AppendEntriesResponse)] == []
    [answer] = [m for m in rd2.messages if isinstance(m, AppendEntriesResponse)]
    assert answer.match_index == 2 and [e.index for e in rd2.entries] == [2]
    n2.advance(rd2)


# Both promises checked on every batch of a long run with lost, delayed,
# duplicated and reordered messages, crashes and restarts.  Also checked:
# Figure 3's "Election Safety: at most one leader can be elected in a given
# term", "Leader Completeness" (§5.4) for the newest leader, and "State
# Machine Safety" (§5.4.3): no two servers apply different entries at an index.
@pytest.mark.parametrize("seed", range(4))
def test_persist_before_send_and_safety_under_faults(seed):
    rng = random.Random(seed)
    net = Net(5, seed=seed)
    leaders_by_term: dict[int, set[str]] = {}
    applied_at: dict[int, Entry] = {}
    late: list = []  # delayed (and sometimes duplicated) messages
    for step in range(300):
        for node in net.live():
            net.tick(node)
        if rng.random() < 0.03 and len(net.down) < 2:
            net.crash(rng.choice(net.live()))
        if rng.random() < 0.05 and net.down:
            net.restart(rng.choice(sorted(net.down)))
        if step == 150 and net.leaders():
            # Half-way, the leader crashes whatever the seed drew, so that every
            # seed runs at least one election under these faults.
            while len(net.down) >= 2:
                net.restart(sorted(net.down)[0])
            net.crash(net.leaders()[0])
        for leader in net.leaders():
            if rng.random() < 0.5:
                net.propose(leader, f"{seed}.{step}".encode())
        while net.pending or (late and rng.random() < 0.3):
            if late and rng.random() < 0.1:
                m = late.pop(rng.randrange(len(late)))
            elif net.pending:
                m = net.pending.pop(rng.randrange(len(net.pending)))
                fate = rng.random()
                if fate < 0.1:
                    continue  # lost
                if fate < 0.25:
                    late.append(m)  # delayed; duplicated if also delivered now
                    if fate < 0.2:
                        continue
            else:
                continue
            if m.dst not in net.down:
                net.inject(m)
            for leader in net.leaders():
                leaders_by_term.setdefault(net[leader].term, set()).add(leader)
        for node in net.live():
            for e in net.applied[node]:
                assert applied_at.setdefault(e.index, e) == e, (node, e)
        newest = max(net.leaders(), key=lambda n: net[n].term, default=None)
        if newest is not None and net[newest].term == max(leaders_by_term):
            for index, e in applied_at.items():
                assert net[newest].log.term(index) == e.term, (newest, index)
    assert net.violations == []
    assert all(len(nodes) == 1 for nodes in leaders_by_term.values()), leaders_by_term
    assert len(leaders_by_term) >= 2 and len(applied_at) > 10


# ============================================================ client interface and flow control


# §8: "If the client's first choice is not the leader, that server will reject
# the client's request and supply information about the most recent leader it
# has heard from."
def test_propose_on_follower_raises_not_leader_with_hint():
    net = Net(3)
    net.elect("n1")
    net.stabilize()
    with pytest.raises(NotLeader) as info:
        net["n2"].propose(b"x")
    assert info.value.leader == "n1"
    with pytest.raises(NotLeader) as info:
        Net(3)["n2"].propose(b"x")
    assert info.value.leader is None


# core.py contract: "Proposals and messages that arrive between two ready()
# calls are batched" (§5.3 AppendEntries carries "may send more than one for
# efficiency").
def test_proposals_between_two_ready_calls_go_out_in_one_append_per_follower():
    net = Net(3)
    net.elect("n1")
    net.stabilize()
    for data in (b"a", b"b", b"c"):
        net["n1"].propose(data)
    net.drain("n1")
    for follower in ("n2", "n3"):
        [ae] = [m for m in net.pending if m.dst == follower]
        assert [e.data for e in ae.entries] == [b"a", b"b", b"c"]


# progress.py PROBE: "Send one AppendEntries, then wait for its answer" (the
# §5.3 nextIndex search, one probe at a time).
def test_follower_in_probe_gets_one_append_until_it_answers():
    net = Net(3)
    net.campaign("n1")
    net.stabilize(VOTES)
    assert net["n1"].role is Role.LEADER  # a new leader probes every follower
    for i in range(5):
        net.propose("n1", f"p{i}".encode())
    probes = [m for m in net.pending if m.dst == "n2"]
    assert len(probes) == 1 and [e.index for e in probes[0].entries] == [1]
    net.deliver(appends_to("n2"))
    net.deliver(all_of(from_("n2"), to("n1")))  # the answer: now replicating
    [rest] = [m for m in net.pending if m.dst == "n2"]
    assert [e.index for e in rest.entries] == [2, 3, 4, 5, 6]


# progress.py REPLICATE: "at most max_inflight messages unacknowledged".
def test_replicating_follower_gets_at_most_max_inflight_appends():
    net = Net(3, max_inflight=4)
    net.elect("n1")
    net.stabilize()
    for i in range(10):
        net.propose("n1", f"p{i}".encode())
    assert len([m for m in net.pending if m.dst == "n2"]) == 4
    # One answer opens one slot; the rest then goes out in one message.
    [first, *_] = net.take(appends_to("n2"))
    net.inject(first)
    net.deliver(all_of(from_("n2"), to("n1")))
    [more] = [m for m in net.pending if m.dst == "n2"]
    assert [e.index for e in more.entries] == list(range(6, 12))


# progress.py REPLICATE again, when heartbeats go out while the follower is silent.
def test_heartbeats_do_not_widen_the_inflight_window_of_a_silent_follower():
    net = Net(3, max_inflight=4)
    net.elect("n1")
    net.stabilize()
    net.isolate("n3")  # still REPLICATE in the leader's eyes; answers nothing
    start = len(net.sent)
    for i in range(20):
        net.propose("n1", f"p{i}".encode())
        net.tick("n1")
        net.stabilize(between("n1", "n2"))
    unanswered = [m for m in net.sent[start:] if m.dst == "n3" and getattr(m, "entries", ())]
    assert len(unanswered) <= 4


# ============================================================ message counts


# §5.2: an election is one round of RequestVote (two with pre-vote, §9.6) and
# one of AppendEntries to establish authority.
def test_electing_a_leader_among_three_takes_few_messages():
    net = Net(3)
    net.elect("n1")
    net.stabilize()
    assert len(net.sent) <= 24
    assert {c.leader_id for c in net.cores.values()} == {"n1"}


# §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log
# entries) to all followers in order to maintain their authority."
@pytest.mark.parametrize("n", [3, 5])
def test_idle_cluster_sends_only_heartbeats_and_answers(n):
    net = Net(n)
    net.elect("n1")
    net.tick_all(3)
    start = len(net.sent)
    ticks = 50
    net.tick_all(ticks)
    idle = net.sent[start:]
    assert len(idle) == ticks * 2 * (n - 1)
    for m in idle:
        if isinstance(m, AppendEntries):
            assert m.src == "n1" and m.entries == ()
        else:
            assert isinstance(m, AppendEntriesResponse) and m.success and m.dst == "n1"
