"""RaftLog: positions, the §5.3 / §5.4.1 comparisons, and its invariants."""

from __future__ import annotations

import pytest

from raft.core.log import RaftLog
from raft.core.messages import ConfState, Entry, SnapshotMeta


def make(terms: list[int], snapshot: SnapshotMeta | None = None, committed: int = 0) -> RaftLog:
    snap = snapshot or SnapshotMeta()
    entries = [Entry(t, snap.index + i, b"x") for i, t in enumerate(terms, start=1)]
    return RaftLog(snap, entries, committed)


def test_positions_of_an_empty_log():
    log = make([])
    assert (log.offset, log.last_index, log.last_term) == (1, 0, 0)
    assert log.term(0) == 0 and log.term(1) is None
    assert (log.committed, log.applied, log.stable) == (0, 0, 0)


def test_positions_and_terms():
    log = make([1, 1, 2, 3], committed=9)
    assert (log.last_index, log.last_term) == (4, 3)
    assert [log.term(i) for i in range(6)] == [0, 1, 1, 2, 3, None]
    assert log.committed == 4  # clamped to what is there
    assert log.stable == 4  # loaded from storage: durable
    assert log.entry(3) == Entry(2, 3, b"x")


# §5.3 Log Matching: "If two entries in different logs have the same index and
# term, then they store the same command."
def test_match_term():
    log = make([1, 1, 2])
    assert log.match_term(0, 0)
    assert log.match_term(3, 2)
    assert not log.match_term(3, 1)
    assert not log.match_term(4, 2)


# §5.4.1: "If the logs have last entries with different terms, then the log with
# the later term is more up-to-date.  If the logs end with the same term, then
# whichever log is longer is more up-to-date."
def test_is_up_to_date():
    log = make([1, 1, 2, 2])  # ends (term 2, index 4)
    assert log.is_up_to_date(4, 2)
    assert log.is_up_to_date(5, 2)
    assert log.is_up_to_date(1, 3)  # later term wins even when shorter
    assert not log.is_up_to_date(3, 2)
    assert not log.is_up_to_date(9, 1)


# End of §5.3: the conflict hint names the first index of the conflicting term.
def test_first_and_last_index_of_term():
    log = make([1, 1, 2, 2, 2, 4, 4])
    assert log.first_index_of_term(5) == 3
    assert log.first_index_of_term(2) == 1
    assert log.first_index_of_term(7) == 6
    assert log.last_index_of_term(2) == 5
    assert log.last_index_of_term(4) == 7
    assert log.last_index_of_term(3) is None
    assert log.last_index_of_term(5) is None


def test_slice_limits_count_and_bytes():
    entries = [Entry(1, i, b"y" * 10) for i in range(1, 11)]
    log = RaftLog(SnapshotMeta(), entries, 0)
    assert [e.index for e in log.slice(3, 11, 100, 0)] == list(range(3, 11))
    assert [e.index for e in log.slice(3, 11, 2, 0)] == [3, 4]
    assert [e.index for e in log.slice(1, 11, 100, 25)] == [1, 2]
    assert [e.index for e in log.slice(1, 11, 100, 5)] == [1]  # always at least one


def test_append_must_follow_the_last_entry():
    log = make([1, 1])
    log.append([Entry(2, 3)])
    assert log.last_index == 3
    with pytest.raises(ValueError):
        log.append([Entry(2, 5)])
    log.append([])
    assert log.last_index == 3


# Figure 2: "delete the existing entry and all that follow it"; but never a
# committed entry (State Machine Safety, §5.4.3).
def test_truncate_drops_a_suffix_but_never_a_committed_entry():
    log = make([1, 1, 2, 2], committed=2)
    log.truncate_from(3)
    assert (log.last_index, log.stable) == (2, 2)
    with pytest.raises(AssertionError):
        log.truncate_from(2)


# §7: "the log is truncated up to the snapshot"; terms stay known at its edge.
def test_compact_and_positions_after_a_snapshot():
    log = make([1, 1, 2, 2, 3])
    conf = ConfState(("a", "b", "c"))
    log.compact(SnapshotMeta(3, 2, conf))
    assert (log.offset, log.last_index, log.committed) == (4, 5, 3)
    assert log.term(3) == 2 and log.term(2) is None
    assert log.match_term(3, 2)
    with pytest.raises(IndexError):
        log.slice(2, 5, 10, 0)
    # A snapshot past our log (or disagreeing with it) replaces the log.
    log.compact(SnapshotMeta(9, 4, conf))
    assert (log.entries, log.last_index, log.last_term) == ([], 9, 4)


def test_log_loaded_after_a_snapshot_must_start_right_after_it():
    snap = SnapshotMeta(5, 2)
    log = make([2, 3], snapshot=snap)
    assert (log.offset, log.last_index, log.applied) == (6, 7, 5)
    with pytest.raises(ValueError):
        RaftLog(snap, [Entry(3, 8)], 0)
