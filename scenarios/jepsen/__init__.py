"""``python -m scenarios run jepsen``: a Jepsen-style linearizability test on real processes.

    python -m scenarios run jepsen [--duration S] [--seed N] [--clients K] [--out DIR]

Theory of operation
-------------------
Five managers run as real processes.  A few registers (configs
``jepsen-k0``..) are created and read back before anything else, which
gives each key its initial (version, value).  Then, for ``duration``
seconds, two things happen at once:

* K client threads each loop: pick a key and an operation -- read, write
  or compare-and-set, see `scenarios.jepsen.history` for how each maps to
  the HTTP API and to `VersionedModel` -- send it to a random manager
  (picked again after every error), and record the invocation and the
  answer with their times.  Every answer is classified conservatively: a
  write whose fate is unknown (a timeout, a 503 after its proposal) is
  recorded as unknown, never as failed;
* the nemesis (`scenarios.jepsen.nemesis`) plays a schedule drawn from the
  seed: random minority/majority partitions, the leader isolated, managers
  killed and restarted, paused and resumed.

At the end the nemesis undoes what is still in force, every manager runs
again, the clients finish their operations in flight (bounded by their
request timeout; one still stuck is recorded as unknown), a leader is
awaited, and every client reads every key one last time.  The cluster
is then stopped (always, in a ``finally``), and the history is checked
key by key with `scenarios.linearizability.check`.

Outputs in ``OUT/jepsen``: ``history.jsonl`` (one operation a line,
readable by `loads_history`), ``faults.jsonl``, ``result.json``,
``report.md``, ``history.png``/``.svg`` (operations and latency over time)
and, from the managers' traces, ``timeline.png``/``.svg``.

The package: `settings` (what a run is asked to do), `history` (operations,
their records and how HTTP answers map to ok / fail / unknown), `nemesis`
(the fault schedule and its windows), `run` (`run_jepsen`), `report` (the
history figure's data for `viz.figures.jepsen`, and ``report.md`` from
``viz/templates/jepsen.md.j2``).

May import: `scenarios.steps`, `scenarios.drivers` (`RealDriver`),
`scenarios.checks` (`CheckResult`), `scenarios.linearizability`, `raft.core`,
`cluster.client` (its clients' HTTP), and `viz` for the figures and the note.
"""

from scenarios.jepsen.run import TITLE, JepsenOutcome, run_jepsen
from scenarios.jepsen.settings import Settings

__all__ = ["TITLE", "JepsenOutcome", "Settings", "run_jepsen"]
