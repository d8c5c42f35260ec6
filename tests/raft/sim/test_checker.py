"""The safety checker's Leader Completeness rule, on hand-made cores.

The rule binds leaders of terms *after* the one an entry was committed in
(§5.4).  A leader of an older term may still be elected later in time (votes
granted before a partition, delivered late); it lacks the entry and that is
no violation -- the soak found such a run (seed 14617 of 5 nodes, before the
commit-notice change) and the checker called it one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from raft.core.messages import Entry
from raft.sim.checker import SafetyChecker
from raft.sim.simulator import SafetyViolation


@dataclass
class _Log:
    terms: dict[int, int] = field(default_factory=dict)  # index -> term

    @dataclass
    class _Snap:
        index: int = 0

    snapshot: _Snap = field(default_factory=_Snap)

    def term(self, index: int) -> int:
        return self.terms.get(index, 0)


@dataclass
class _Conf:
    voters: tuple[str, ...] = ("n1", "n2", "n3", "n4", "n5")


@dataclass
class _Core:
    id: str
    term: int
    log: _Log = field(default_factory=_Log)
    conf: _Conf = field(default_factory=_Conf)


def _checker_with_entry_committed_in_term_2() -> SafetyChecker:
    checker = SafetyChecker(describe=lambda: "(hand-made cores)")
    committer = _Core("n3", term=2, log=_Log({1: 2}))
    checker._check_committed(committer, Entry(2, 1, b"x"))  # type: ignore[arg-type]
    return checker


def _elect(checker: SafetyChecker, core: _Core, voters: tuple[str, ...]) -> None:
    for v in voters:
        checker.votes[(v, core.term)] = core.id
    checker._check_new_leader(core, core.term)  # type: ignore[arg-type]


def test_a_late_leader_of_an_older_term_need_not_hold_the_entry() -> None:
    checker = _checker_with_entry_committed_in_term_2()
    _elect(checker, _Core("n2", term=1), ("n3", "n4"))  # no entry 1: fine, term 1 < 2


def test_a_leader_of_a_later_term_must_hold_it() -> None:
    checker = _checker_with_entry_committed_in_term_2()
    with pytest.raises(SafetyViolation, match="Leader Completeness"):
        _elect(checker, _Core("n1", term=3), ("n4", "n5"))
    checker = _checker_with_entry_committed_in_term_2()
    _elect(checker, _Core("n4", term=3, log=_Log({1: 2})), ("n1", "n5"))  # holds it: fine
