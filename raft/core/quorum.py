"""Quorum arithmetic as pure functions.

Raft decides two things by majority: whether a candidate won (§5.2) and
which log index is stored on enough servers to be committed (§5.3, §5.4.2).
Both live here, apart from the state machine, so they can be read and tested
on their own.  With a single configuration at a time (dissertation §4.1,
one-server changes) a majority of the current voters is all there is.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping


class VoteResult(enum.Enum):
    PENDING = "pending"
    WON = "won"
    LOST = "lost"


def majority(n_voters: int) -> int:
    """Smallest number of voters that forms a quorum: ⌊n/2⌋ + 1."""
    return n_voters // 2 + 1


def committed_index(voters: Iterable[str], match: Mapping[str, int]) -> int:
    """The highest index that a majority of ``voters`` has stored.

    Sort the voters' match indexes from high to low; the quorum-th of them is
    on a majority.  Whether that index may be *committed* is the caller's
    business: only an entry of the leader's current term may be committed by
    counting replicas (§5.4.2).
    """
    indexes = sorted((match.get(v, 0) for v in voters), reverse=True)
    if not indexes:
        return 0
    return indexes[majority(len(indexes)) - 1]


def vote_result(voters: Iterable[str], votes: Mapping[str, bool]) -> VoteResult:
    """WON once a majority granted, LOST once a majority is out of reach."""
    voters = list(voters)
    need = majority(len(voters))
    granted = sum(1 for v in voters if votes.get(v) is True)
    refused = sum(1 for v in voters if votes.get(v) is False)
    if granted >= need:
        return VoteResult.WON
    if len(voters) - refused < need:
        return VoteResult.LOST
    return VoteResult.PENDING
