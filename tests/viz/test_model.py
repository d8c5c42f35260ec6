"""`viz.model`: trace lines in, a model of what happened out (no drawing).

The fixtures are hand-written JSON lines, so each test states exactly the
trace it reads; one test at the end reads a whole simulated run.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from repo import ROOT

from viz.model import DOWN, LEARNER, LOCKED, OUTSIDE, PAUSED, TraceError, build, load, read_model

T0 = 1_700_000_000.0


def line(t: float, node: str, type_: str, **fields: Any) -> dict[str, Any]:
    return {"t": T0 + t, "node": node, "type": type_, **fields}


def fault(t: float, kind: str, *targets: str, **extra: Any) -> dict[str, Any]:
    return line(t, "supervisor", "fault", kind=kind, targets=list(targets), **extra)


def write_dir(root: Path, lines: list[dict[str, Any]]) -> Path:
    """Each node's lines to DIR/<node>/trace.jsonl, the rest to DIR/<type>s.jsonl."""
    files: dict[Path, list[str]] = {}
    for x in lines:
        if x["type"] in ("fault", "client"):
            path = root / f"{x['type']}s.jsonl"
        else:
            path = root / x["node"] / "trace.jsonl"
        files.setdefault(path, []).append(json.dumps(x))
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(text) + "\n")
    return root


def three_nodes_start() -> list[dict[str, Any]]:
    return [line(0.0, n, "start", term=0, commit_index=0) for n in ("n1", "n2", "n3")]


def election_of_n1(t: float = 1.0, term: int = 1) -> list[dict[str, Any]]:
    """n1 wins a pre-vote and an election for ``term`` starting at ``t``."""
    return [
        line(t, "n1", "role", **{"from": "follower", "to": "pre-candidate", "term": term - 1}),
        line(t, "n1", "election", term=term, pre_vote=True),
        line(t + 0.01, "n2", "vote", candidate="n1", granted=True, term=term, pre_vote=True),
        line(t + 0.02, "n1", "role", **{"from": "pre-candidate", "to": "candidate", "term": term}),
        line(t + 0.02, "n1", "election", term=term, pre_vote=False),
        line(t + 0.03, "n2", "vote", candidate="n1", granted=True, term=term, pre_vote=False),
        line(t + 0.04, "n1", "role", **{"from": "candidate", "to": "leader", "term": term}),
    ]


def roles(model, node):
    return [(iv.role, iv.term, round(iv.start, 3), round(iv.end, 3)) for iv in model.roles[node]]


# ---------------------------------------------------------------- roles


def test_role_intervals_follow_role_lines_with_their_terms():
    m = build([*three_nodes_start(), *election_of_n1(), line(3.0, "n1", "commit", index=1)])
    assert m.nodes == ("n1", "n2", "n3")
    assert m.end == pytest.approx(3.0)
    assert roles(m, "n1") == [
        ("follower", 0, 0.0, 1.0),
        ("pre-candidate", 0, 1.0, 1.02),
        ("candidate", 1, 1.02, 1.04),
        ("leader", 1, 1.04, 3.0),
    ]
    # n2's term changes when it grants the real vote: the interval splits there.
    assert roles(m, "n2") == [("follower", 0, 0.0, 1.03), ("follower", 1, 1.03, 3.0)]
    assert m.role_at("n1", 2.0) == "leader"
    assert m.terms["n1"].at(2.0) == 1


def test_intervals_cover_each_lane_without_gaps():
    m = build([*three_nodes_start(), *election_of_n1(), fault(2.0, "kill", "n1")])
    for node in m.nodes:
        ivs = m.roles[node]
        assert ivs[0].start == 0.0 and ivs[-1].end == m.end
        assert all(a.end == b.start for a, b in itertools.pairwise(ivs))


def test_down_from_kill_until_restart_and_back_as_follower():
    lines = [
        *three_nodes_start(),
        *election_of_n1(),
        fault(2.0, "kill", "n1"),
        fault(3.0, "restart", "n1"),
        line(3.1, "n1", "start", term=1, commit_index=1),
        line(4.0, "n2", "commit", index=2),
    ]
    m = build(lines)
    assert roles(m, "n1")[-3:] == [
        ("leader", 1, 1.04, 2.0),
        (DOWN, 1, 2.0, 3.0),
        ("follower", 1, 3.0, 4.0),
    ]
    (kill,) = m.fault_intervals
    assert (kill.kind, kill.start, kill.end, kill.nodes) == ("kill", 2.0, 3.0, ("n1",))
    # The campaign record is untouched; the leader's commit series has a gap.
    assert m.commit["n1"].at(2.5) is None
    assert m.terms["n1"].at(2.5) is None and m.terms["n1"].at(3.5) == 1


def test_a_clean_stop_is_down_until_the_next_start_line():
    lines = [
        *three_nodes_start(),
        line(1.0, "n3", "stop"),
        line(2.0, "n3", "start", term=0),
        line(3.0, "n1", "commit", index=0),
    ]
    m = build(lines)
    assert roles(m, "n3") == [
        ("follower", 0, 0.0, 1.0),
        (DOWN, 0, 1.0, 2.0),
        ("follower", 0, 2.0, 3.0),
    ]
    assert m.fault_intervals == []  # a stop is not a fault


def test_a_locked_manager_is_locked_and_out_of_the_quorum_until_its_start_line():
    # Autolock: n3 restarts locked (its Raft node not started) until unlocked.
    lines = [
        *three_nodes_start(),
        fault(1.0, "kill", "n2"),
        line(1.0, "n3", "stop"),
        fault(1.2, "restart", "n3"),
        line(1.5, "n3", "locked", reason="autolock"),
        line(2.5, "n3", "start", term=0),
        line(3.0, "n1", "commit", index=0),
    ]
    m = build(lines)
    assert roles(m, "n3")[-2:] == [(LOCKED, 0, 1.5, 2.5), ("follower", 0, 2.5, 3.0)]
    assert m.role_at("n3", 2.0) == LOCKED
    q = m.quorum
    assert q.at(2.0) == (1, 2) and q.at(2.7) == (2, 2)  # n2 dead, n3 locked: 1 of 3
    assert q.lost[-1] == (1.5, 2.5)  # (and while n3 was stopped, 1.0 to 1.2)


def test_paused_keeps_the_role_underneath():
    lines = [
        *three_nodes_start(),
        *election_of_n1(),
        fault(2.0, "pause", "n1"),
        fault(2.5, "unpause", "n1"),
        line(2.6, "n1", "role", **{"from": "leader", "to": "follower", "term": 2}),
        line(3.0, "n2", "commit", index=1),
    ]
    m = build(lines)
    assert roles(m, "n1")[-3:] == [
        (PAUSED, 1, 2.0, 2.5),
        ("leader", 1, 2.5, 2.6),
        ("follower", 2, 2.6, 3.0),
    ]
    (p,) = m.fault_intervals
    assert (p.kind, p.start, p.end, p.label) == ("pause", 2.0, 2.5, "n1 paused")


def test_a_fault_never_undone_lasts_to_the_end():
    m = build([*three_nodes_start(), fault(1.0, "kill", "n2"), line(4.0, "n1", "commit", index=0)])
    (kill,) = m.fault_intervals
    assert (kill.start, kill.end, kill.healed) == (1.0, 4.0, False)
    assert m.role_at("n2", 4.0) == DOWN


# ---------------------------------------------------------------- quorum


def test_quorum_lost_while_a_majority_is_down_or_paused():
    lines = [
        *three_nodes_start(),
        fault(1.0, "kill", "n1"),
        fault(2.0, "pause", "n2"),
        fault(3.0, "unpause", "n2"),
        fault(4.0, "restart", "n1"),
        line(5.0, "n3", "commit", index=0),
    ]
    q = build(lines).quorum
    assert q.lost == ((2.0, 3.0),)
    assert q.at(1.5) == (2, 2)
    assert q.at(2.5) == (1, 2)
    assert q.at(4.5) == (3, 2)


def test_the_quorum_headline_counts_the_fewest_reachable_during_a_loss_not_at_start_up():
    nodes = ("n1", "n2", "n3", "n4", "n5")
    lines = [line(0.1 * i, n, "start", term=0) for i, n in enumerate(nodes)]  # a ramp: 1..5
    lines += [fault(2.0 + 0.1 * i, "kill", n) for i, n in enumerate(nodes[:3])]
    lines.append(line(4.0, "n5", "commit", index=0))
    m = build(lines)
    assert m.quorum.lost and m.quorum.at(0.05)[0] == 1  # the ramp went down to 1 ...
    assert "as few as 2 of 5 managers reachable, 3 needed" in m.quorum_headline()  # ... not counted


def test_quorum_counts_only_the_largest_live_side_of_a_partition():
    nodes = ("n1", "n2", "n3", "n4", "n5")
    lines = [line(0.0, n, "start", term=0) for n in nodes]
    lines += [
        fault(1.0, "partition", groups=[["n1", "n2"], ["n3", "n4", "n5"]]),
        fault(2.0, "kill", "n3"),  # 2 | 2 live: nobody has 3
        fault(3.0, "heal"),
        fault(3.5, "isolate", "n1"),  # n1 alone; n2, n4, n5 live together: 3
        line(4.0, "n2", "commit", index=0),
    ]
    m = build(lines)
    assert m.quorum.at(1.5) == (3, 3)
    assert m.quorum.at(2.5) == (2, 3)
    assert m.quorum.at(3.2) == (4, 3)
    assert m.quorum.at(3.7) == (3, 3)
    assert m.quorum.lost == ((2.0, 3.0),)
    part, iso = [iv for iv in m.fault_intervals if iv.kind == "partition"]
    assert part.groups == (("n1", "n2"), ("n3", "n4", "n5")) and part.end == 3.0
    assert iso.label == "n1 isolated" and not iso.healed


def test_quorum_follows_membership_lines():
    lines = [
        *three_nodes_start(),
        line(1.0, "n1", "membership", voters=["n1", "n2", "n3", "n4", "n5"], learners=[], term=1),
        fault(2.0, "kill", "n2"),
        line(3.0, "n1", "commit", index=0),
    ]
    m = build(lines)
    # n4 and n5 never ran: 3 of 5 voters live, then 2 once n2 is killed.
    assert m.quorum.at(1.5) == (3, 3)
    assert m.quorum.lost == ((2.0, 3.0),)
    assert m.voters_at(1.5) == ("n1", "n2", "n3", "n4", "n5")


# ---------------------------------------------------------------- membership and learners

VOTERS3 = ["n1", "n2", "n3"]
VOTERS4 = ["n1", "n2", "n3", "n4"]


def conf(t: float, node: str, voters: list[str], learners: list[str] = ()) -> dict[str, Any]:
    return line(t, node, "membership", voters=voters, learners=list(learners), term=1)


def join_of_n4(start: float = 2.0) -> list[dict[str, Any]]:
    """n1 leads term 1; n4 (empty log) starts at ``start``, is added as a
    learner at 2.0 and promoted at 3.0; followers trace each change later."""
    return [
        *three_nodes_start(),
        *election_of_n1(),
        line(start, "n4", "start", term=0, commit_index=0, last_log_index=0),
        conf(2.0, "n1", VOTERS3, ["n4"]),
        conf(2.01, "n2", VOTERS3, ["n4"]),
        conf(2.1, "n4", VOTERS3, ["n4"]),
        conf(3.0, "n1", VOTERS4),
        conf(3.01, "n4", VOTERS4),
        line(4.0, "n1", "commit", index=9),
    ]


def test_a_joining_node_is_a_learner_until_promoted():
    # §4.2.1: a new server joins without a vote until it has caught up.
    m = build(join_of_n4())
    assert [(r, a, b) for r, _term, a, b in roles(m, "n4")] == [
        (LEARNER, 2.0, 2.1),  # the term changes at 2.1: split there
        (LEARNER, 2.1, 3.0),
        ("follower", 3.0, 4.0),
    ]
    assert m.learners_at(2.5) == ("n4",) and m.learners_at(3.5) == ()
    # The learner does not count: 3 voters, 2 needed, then 4 and 3.
    assert m.quorum.at(2.5) == (3, 2) and m.quorum.at(3.5) == (4, 3)
    assert [(c.t, c.source) for c in m.configs] == [
        (0.0, "founding"),
        (2.0, "leader"),
        (3.0, "leader"),
    ]
    # The founding voters never became learners or outsiders.
    assert {iv.role for iv in m.roles["n2"]} <= {"follower"}


def test_a_node_running_before_it_joined_is_not_a_member():
    m = build(join_of_n4(start=1.5))
    assert [r for r, *_ in roles(m, "n4")] == [OUTSIDE, LEARNER, LEARNER, "follower"]
    assert roles(m, "n4")[0][2:] == (1.5, 2.0)
    # Not a voter before it joined either.
    assert m.voters_at(1.7) == ("n1", "n2", "n3")
    assert m.role_at("n4", 1.7) == OUTSIDE and m.role_at("n4", 2.5) == LEARNER


def test_start_lines_name_the_founding_configuration_instead_of_a_guess():
    # n4 starts before any leader (so the guess would make it a founder), but
    # its start line says it has no configuration yet, and n1's names the voters.
    lines = [
        line(0.0, "n1", "start", term=0, last_log_index=0, voters=VOTERS3, learners=[]),
        line(0.0, "n2", "start", term=0, last_log_index=0, voters=VOTERS3, learners=[]),
        line(0.0, "n3", "start", term=0, last_log_index=0, voters=VOTERS3, learners=[]),
        line(0.2, "n4", "start", term=0, last_log_index=0, voters=[], learners=[]),
        *election_of_n1(),
        conf(2.0, "n1", VOTERS3, ["n4"]),
        conf(3.0, "n1", VOTERS4),
        line(4.0, "n1", "commit", index=9),
    ]
    m = build(lines)
    assert m.configs[0].voters == tuple(VOTERS3) and m.configs[0].source == "founding"
    assert m.role_at("n4", 1.0) == OUTSIDE and m.role_at("n4", 2.5) == LEARNER


def test_a_removed_node_is_not_a_member_and_a_learner_role_line_is_a_learner():
    lines = [
        *three_nodes_start(),
        *election_of_n1(),
        conf(2.0, "n1", ["n1", "n2"]),
        line(2.5, "n3", "role", **{"from": "follower", "to": "learner", "term": 1}),
        line(3.0, "n1", "commit", index=4),
    ]
    m = build(lines)
    # Listed nowhere from 2.0; a traced learner role is drawn as one.
    assert [(r, a, b) for r, _t, a, b in roles(m, "n3")][-2:] == [
        (OUTSIDE, 2.0, 2.5),
        (LEARNER, 2.5, 3.0),
    ]
    # Before the first configuration, every node that ran was a voter.
    assert m.voters_at(1.0) == ("n1", "n2", "n3")


def test_a_demoted_founding_voter_was_a_voter_before_the_first_membership_line():
    lines = [
        *three_nodes_start(),
        *election_of_n1(),
        conf(2.0, "n1", ["n1", "n2"], ["n3"]),
        line(3.0, "n1", "commit", index=4),
    ]
    m = build(lines)
    assert m.voters_at(1.5) == ("n1", "n2", "n3") and m.quorum.at(1.5) == (3, 2)
    assert m.role_at("n3", 1.5) == "follower" and m.role_at("n3", 2.5) == LEARNER
    assert m.quorum.at(2.5) == (2, 2)


def test_voters_follow_the_leaders_line_not_a_follower_that_traced_it_first():
    lines = join_of_n4()
    # n2's clock runs ahead: it traces the promotion 5 ms before the leader.
    lines.append(conf(2.995, "n2", VOTERS4))
    m = build(lines)
    assert m.voters_at(2.997) == ("n1", "n2", "n3")
    assert m.quorum.at(2.997) == (3, 2)
    assert m.quorum.at(3.0) == (4, 3)
    assert m.role_at("n4", 2.997) == LEARNER
    assert (m.config_at(3.0).node, m.config_at(3.0).source) == ("n1", "leader")


def test_a_change_no_leader_traced_comes_from_a_follower():
    lines = [x for x in join_of_n4() if not (x["type"] == "membership" and x["node"] == "n1")]
    lines += [conf(3.02, "n2", VOTERS4)]
    m = build(lines)
    # Without leader lines, the earliest follower line of each change counts.
    assert [(round(c.t, 3), c.node, c.source) for c in m.configs] == [
        (0.0, None, "founding"),
        (2.01, "n2", "follower"),
        (3.01, "n4", "follower"),
    ]
    assert m.quorum.at(3.5) == (4, 3)


def test_a_restarted_node_reloading_an_old_configuration_changes_nothing():
    lines = [
        *join_of_n4(),
        fault(3.5, "kill", "n2"),
        line(3.8, "n2", "start", term=1, commit_index=3, last_log_index=5),
        # It missed the promotion: its log still says n4 is a learner.
        conf(3.8, "n2", VOTERS3, ["n4"]),
        line(4.5, "n1", "commit", index=10),
    ]
    m = build(lines)
    assert m.voters_at(4.0) == tuple(VOTERS4)
    assert m.role_at("n4", 4.0) == "follower"


def test_without_membership_lines_nobody_is_a_learner_or_outside():
    m = build([*three_nodes_start(), *election_of_n1(), line(3.0, "n1", "commit", index=1)])
    assert m.configs == [] and m.learners_at(1.0) == ()
    assert not {iv.role for ivs in m.roles.values() for iv in ivs} & {LEARNER, OUTSIDE}


# ---------------------------------------------------------------- elections and votes


def test_votes_join_their_election_with_reasons():
    lines = [
        *three_nodes_start(),
        line(1.0, "n3", "role", **{"from": "follower", "to": "pre-candidate", "term": 1}),
        line(1.0, "n3", "election", term=2, pre_vote=True),
        line(1.01, "n1", "vote", candidate="n3", granted=False, term=2, pre_vote=True,
             reason="candidate log (term 1, index 4) is behind mine (term 1, index 6)"),
        line(1.02, "n2", "vote", candidate="n3", granted=True, term=2, pre_vote=True),
        line(1.03, "n3", "role", **{"from": "pre-candidate", "to": "candidate", "term": 2}),
        line(1.03, "n3", "election", term=2, pre_vote=False),
        line(1.04, "n1", "vote", candidate="n3", granted=False, term=2, pre_vote=False,
             reason="already voted for n1 in term 2"),
        line(1.05, "n2", "vote", candidate="n3", granted=False, term=2, pre_vote=False,
             reason="already voted for n1 in term 2"),
        line(1.06, "n3", "role", **{"from": "candidate", "to": "follower", "term": 2}),
    ]  # fmt: skip
    m = build(lines)
    pre, real = m.elections
    assert (pre.node, pre.term, pre.kind, pre.outcome) == ("n3", 2, "pre-vote", "won")
    assert pre.granted == ("n2",)
    assert [(v.voter, v.reason) for v in pre.refused] == [
        ("n1", "candidate log (term 1, index 4) is behind mine (term 1, index 6)")
    ]
    assert (real.kind, real.outcome) == ("election", "lost")
    assert real.decided == pytest.approx(1.06)
    assert {v.voter for v in real.refused} == {"n1", "n2"}
    assert all(v.reason == "already voted for n1 in term 2" for v in real.refused)
    assert "refused by n1, n2" in m.election_headline(real)


def test_election_outcomes_timed_out_interrupted_and_pending():
    lines = [
        *three_nodes_start(),
        line(1.0, "n1", "role", **{"from": "follower", "to": "candidate", "term": 1}),
        line(1.0, "n1", "election", term=1, pre_vote=False),
        line(1.5, "n1", "election", term=2, pre_vote=False),  # split vote: again
        fault(1.7, "kill", "n1"),
        line(2.0, "n2", "role", **{"from": "follower", "to": "pre-candidate", "term": 0}),
        line(2.0, "n2", "election", term=1, pre_vote=True),
    ]
    outcomes = [(e.node, e.term, e.outcome) for e in build(lines).elections]
    assert outcomes == [("n1", 1, "timed out"), ("n1", 2, "interrupted"), ("n2", 1, "pending")]


def test_headline_names_the_winner_after_the_fault():
    lines = [
        *three_nodes_start(),
        *election_of_n1(1.0, 1),
        fault(2.0, "kill", "n1"),
        line(2.5, "n2", "role", **{"from": "follower", "to": "pre-candidate", "term": 1}),
        line(2.5, "n2", "election", term=2, pre_vote=True),
        line(2.6, "n2", "role", **{"from": "pre-candidate", "to": "candidate", "term": 2}),
        line(2.6, "n2", "election", term=2, pre_vote=False),
        line(2.75, "n2", "role", **{"from": "candidate", "to": "leader", "term": 2}),
    ]
    assert build(lines).headline() == "n2 elected leader in term 2 0.75 s after n1 was killed"


# ---------------------------------------------------------------- commit, clients, logs


def test_commit_and_applied_are_step_series_from_sampled_lines():
    lines = [
        *three_nodes_start(),
        line(1.0, "n1", "commit", index=3, term=1),
        line(1.2, "n1", "commit", index=9, term=1, first_index=4, count=6),
        line(1.3, "n1", "apply", index=9, op="mixed", first_index=1, count=9),
    ]
    m = build(lines)
    assert m.commit["n1"].times == pytest.approx((0.0, 1.0, 1.2))
    assert m.commit["n1"].values == (0, 3, 9)
    assert m.applied["n1"].at(1.25) is None and m.applied["n1"].at(1.3) == 9


def test_client_operations_in_seconds_from_the_start():
    lines = [
        *three_nodes_start(),
        line(1.5, "client", "client", op="write", start=T0 + 1.0, end=T0 + 1.5,
             outcome="ok", index=4),
        line(2.5, "client", "client", op="write", start=T0 + 2.0, end=T0 + 2.5,
             outcome="timeout", index=None),
        line(3.0, "client", "client", op="read", phase="start", id=7),
        line(3.2, "client", "client", phase="end", id=7, outcome="failed"),
        line(3.3, "client", "client", op="write", phase="start", id=8),
    ]  # fmt: skip
    ops = build(lines).clients
    assert [(c.op, round(c.start, 3), round(c.end, 3), c.outcome, c.index) for c in ops] == [
        ("write", 1.0, 1.5, "ok", 4),
        ("write", 2.0, 2.5, "timeout", None),
        ("read", 3.0, 3.2, "fail", None),
        ("write", 3.3, 3.3, "unknown", None),
    ]


def test_log_matrix_from_log_lines_and_none_without_them():
    base = [*three_nodes_start(), line(5.0, "n1", "commit", index=0)]
    assert build(base).log_matrix() is None
    lines = [
        *base,
        line(1.0, "n1", "log", entries=[[1, 1], [2, 1], [3, 2]], commit=2),
        line(1.0, "n2", "log", entries=[[1, 1], [2, 1]], commit=2),
        line(4.0, "n1", "log", entries=[[1, 1], [2, 1], [3, 2], [4, 2]], commit=4),
    ]
    m = build(lines)
    mx = m.log_matrix(2.0)
    assert [(r.node, r.entries, r.commit, r.reported) for r in mx.rows] == [
        ("n1", {1: 1, 2: 1, 3: 2}, 2, 1.0),
        ("n2", {1: 1, 2: 1}, 2, 1.0),
        ("n3", {}, 0, None),
    ]
    assert (mx.commit, mx.last_index) == (2, 3)
    assert m.log_matrix().rows[0].entries[4] == 2
    assert m.log_instants()[-1][1] == "at the end"


# ---------------------------------------------------------------- loading


def test_torn_last_line_is_skipped_with_a_warning(tmp_path):
    write_dir(tmp_path, [*three_nodes_start(), *election_of_n1()])
    path = tmp_path / "n1" / "trace.jsonl"
    with path.open("a") as f:
        f.write('{"t": 1700000005.0, "node": "n1", "type": "ro')  # killed mid-write
    records, warnings = load(tmp_path)
    assert len(records) == 3 + 7
    assert warnings == ["n1/trace.jsonl: torn last line skipped"]
    m = read_model(tmp_path)
    assert m.warnings == warnings
    assert m.role_at("n1", m.end) == "leader"


def test_lines_without_node_take_it_from_their_directory(tmp_path):
    (tmp_path / "n7").mkdir()
    (tmp_path / "n7" / "trace.jsonl").write_text(
        json.dumps({"t": T0, "type": "start", "term": 3}) + "\n"
    )
    m = read_model(tmp_path)
    assert m.nodes == ("n7",) and m.terms["n7"].at(0.0) == 3


def test_nodes_sort_naturally():
    lines = [line(0.0, f"manager{i}", "start", term=0) for i in (10, 2, 1)]
    assert build(lines).nodes == ("manager1", "manager2", "manager10")


def test_missing_or_empty_directory_is_a_trace_error(tmp_path):
    with pytest.raises(TraceError, match="no trace directory"):
        read_model(tmp_path / "nope")
    with pytest.raises(TraceError, match=r"no \*\.jsonl"):
        read_model(tmp_path)


def test_the_model_does_not_import_matplotlib():
    code = "import sys, viz, viz.model; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------- a simulated run


def test_a_simulated_failover_reads_as_it_happened(tmp_path):
    from viz_sim_trace import leader_failover_trace

    m = read_model(leader_failover_trace(tmp_path))
    assert m.warnings == []
    assert m.nodes == ("n1", "n2", "n3", "n4", "n5")
    kill = next(f for f in m.faults if f.kind == "kill")
    (victim,) = kill.targets
    # The victim led, then was down; someone else won an election after the kill.
    assert m.role_at(victim, kill.t - 1e-3) == "leader"
    assert m.role_at(victim, kill.t + 1e-3) == DOWN
    assert any(e.node != victim and e.t > kill.t for e in m.won())
    # The partition with a paused node loses quorum, and a write times out then.
    assert len(m.quorum.lost) == 1
    a, b = m.quorum.lost[0]
    assert any(a <= c.end <= b and c.outcome != "ok" for c in m.clients)
    # At most one leader per term, as Raft promises.
    leaders = {}
    for iv in m.leaders():
        assert leaders.setdefault(iv.term, iv.node) == iv.node
    assert m.log_matrix() is not None
    assert victim in m.headline()


def test_a_log_panel_is_never_older_than_its_instant():
    """Logs reported at 0.5 s, then three commits: a panel "just before n3 was
    killed" at 2.0 s would show the 0.5 s logs as if current.  It is dropped;
    the end, after fresh log lines, stays."""
    lines = [
        *three_nodes_start(),
        *election_of_n1(),
        line(0.5, "n1", "log", entries=[], commit=0),
        line(0.5, "n2", "log", entries=[], commit=0),
        line(0.5, "n3", "log", entries=[], commit=0),
        line(1.5, "n1", "commit", index=3, term=1),
        line(1.6, "n2", "commit", index=3, term=1),
        fault(2.0, "kill", "n3"),
        line(3.0, "n1", "log", entries=[[1, 1], [2, 1], [3, 1]], commit=3),
        line(3.0, "n2", "log", entries=[[1, 1], [2, 1], [3, 1]], commit=3),
    ]
    m = build(lines)
    assert [c for _, c in m.log_instants()] == ["at the end"]
    assert m.log_matrix(m.log_instants()[0][0]).commit == 3


def test_the_leaders_commit_line_goes_through_every_write_it_acknowledged():
    """The commit lines are sampled (one per 100 ms window), so the traced line
    can trail an acknowledgement; an acknowledgement proves the commit."""
    from viz.figures.commit import committed_when

    lines = [
        *three_nodes_start(),
        *election_of_n1(),
        line(1.10, "n1", "commit", index=1, term=1),
        line(1.20, "client", "client", op="write", start=T0 + 1.15, end=T0 + 1.20,
             outcome="ok", index=2),
        line(1.25, "client", "client", op="write", start=T0 + 1.21, end=T0 + 1.25,
             outcome="ok", index=3),
        line(1.30, "n1", "commit", index=3, term=1, first_index=2, count=2),
        line(1.31, "n2", "commit", index=3, term=1),
    ]  # fmt: skip
    m = build(lines)
    times, values = committed_when(m, "n1")
    drawn = dict(zip([round(t, 2) for t in times], values, strict=True))
    assert drawn[1.2] == 2 and drawn[1.25] == 3 and drawn[1.3] == 3
    # No write acknowledged by n2: its line is its trace.
    assert committed_when(m, "n2") == (list(m.commit["n2"].times), list(m.commit["n2"].values))
