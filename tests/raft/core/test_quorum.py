"""Quorum arithmetic (§5.2 votes, §5.3 commit index) as pure functions."""

from __future__ import annotations

import pytest

from raft.core.quorum import VoteResult, committed_index, majority, vote_result


# §5.2: "A candidate wins an election if it receives votes from a majority of
# the servers in the full cluster".
@pytest.mark.parametrize(("n", "need"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (7, 4)])
def test_majority(n, need):
    assert majority(n) == need


# §5.3: an entry is committed once "the leader ... has replicated it on a
# majority of the servers"; the quorum-th highest match index is on a majority.
@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"a": 5}, 5),
        ({"a": 5, "b": 3, "c": 1}, 3),
        ({"a": 5, "b": 5, "c": 1}, 5),
        ({"a": 9, "b": 7, "c": 7, "d": 2, "e": 0}, 7),
        ({"a": 9, "b": 8, "c": 3, "d": 2}, 3),  # 4 voters need 3
        ({"a": 4, "b": 4, "c": 4, "d": 4, "e": 4}, 4),
    ],
)
def test_committed_index_is_the_quorum_th_highest_match(match, expected):
    assert committed_index(list(match), match) == expected


def test_committed_index_counts_only_voters_and_missing_voters_as_zero():
    voters = ["a", "b", "c"]
    assert committed_index(voters, {"a": 10, "x": 10, "y": 10}) == 0
    assert committed_index(voters, {"a": 10, "b": 6}) == 6
    assert committed_index([], {}) == 0


def test_vote_result_won_lost_pending():
    voters = ["a", "b", "c", "d", "e"]
    assert vote_result(voters, {"a": True}) is VoteResult.PENDING
    assert vote_result(voters, {"a": True, "b": True, "c": True}) is VoteResult.WON
    assert vote_result(voters, {"a": True, "b": False, "c": False}) is VoteResult.PENDING
    assert vote_result(voters, {"a": True, "b": False, "c": False, "d": False}) is (VoteResult.LOST)
    # Split vote in an even cluster: 2 of 4 granted and 2 refused is a loss.
    assert vote_result(["a", "b", "c", "d"], dict(a=True, b=True, c=False, d=False)) is (
        VoteResult.LOST
    )
    # Votes from non-voters do not count.
    assert vote_result(["a", "b", "c"], {"a": True, "x": True, "y": True}) is (VoteResult.PENDING)
    assert vote_result(["a"], {"a": True}) is VoteResult.WON
