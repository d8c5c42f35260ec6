"""The Raft paper's Figure 8 (§5.4.2, the commit rule), directed on the simulator.

Figure 8 needs control over single messages -- *this* entry reaches *that*
server before *that* one crashes -- which real processes cannot give
reliably, so the built-in scenario ``figure-8`` always runs on the
deterministic simulator (`raft.sim.simulator`), replayable from ``--seed``.

The schedule, on five servers S1..S5 (``manager1``..``manager5``)::

    (a) S1 leads; x goes to index k in S1's term and reaches S2 only.
    (b) S1 and S2 crash; S5 is elected by S3, S4 and itself and writes its
        own entry at index k, in a newer term, alone; then S5 crashes.
    (c) S1 and S2 come back; S1 leads a third term and copies x to S3:
        x is on a majority, but it is an entry of an *older* term, so S1
        does not count it as committed.
    (d) what could happen next (a replay of the same seed up to (c), then
        another branch): S1 crashes, S5 wins again and overwrites x on
        every server.  Legal -- x was never committed.
    (e) what does happen: S1's own entry of the third term reaches a
        majority; that commits it, and x with it (Log Matching).  S1 and S2
        crash, S5 comes back and campaigns -- and every voter refuses it
        (§5.4.1): its last term is older than theirs.

The package, in the order a run uses it:

* `schedule` -- `play`, the schedule itself, written against a bare
  `Simulator` (the lab tests replay it: `figure8`), and the planted rule;
* `traced`   -- the schedule played through a `SimTracer` that records the
  traces `viz` draws, and the facts read back from them;
* `checks`   -- what the run must show, from those facts;
* `scenario` -- `run`, what ``python -m scenarios run figure-8`` calls: both
  branches, checks, figures (drawn by `viz.figures.figure8`) and the study
  note (``viz/templates/figure8.md.j2``).

``--unsafe-commit-rule`` is a teaching demo, clearly labelled wherever it
shows: it swaps the leader's commit rule, *for that run only*, for one that
counts replicas of any entry (`planted_commit_rule`), and lets the
simulator's `SafetyChecker` report instead of stop, so the committed x is
seen being overwritten.  `raft/core/` is not touched; the default run
never does this.

May import: `scenarios.checks` (`CheckResult`), `scenarios.drivers` (the
`SimTracer`), `scenarios.runner` (`Outcome`), `raft.core`, `raft.sim`, and
`viz` for the figures and the note.
"""

from scenarios.figure8.scenario import run
from scenarios.figure8.schedule import (
    ScheduleError,
    Story,
    figure8,
    planted_commit_rule,
    play,
)

__all__ = ["ScheduleError", "Story", "figure8", "planted_commit_rule", "play", "run"]
