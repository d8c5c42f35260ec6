"""Scenarios: break a cluster on purpose, check what Raft promised, explain it.

``python -m scenarios list|run NAME|FILE.toml [--out DIR] [--seed N]``: a
scenario file (``builtin/*.toml``) names a cluster, steps and expectations;
the runner starts a cluster, plays the steps, checks, and writes the figures
and the study note.

Sub-packages, and what each may import (checked by ``tests/test_architecture.py``):

* `scenarios.steps`            -- the file format as typed values: one frozen
  class per action (with its validation and what it does through a
  `Driver`), one per expectation, parsing; the `Driver` protocol itself.
  Imports nothing of the project.
* `scenarios.drivers`          -- the clusters a step acts on: `RealDriver`
  (real processes) and `SimDriver` (the simulator), both `Driver`s.  Imports
  `scenarios.steps`, `cluster.local`, `cluster.client`, `raft.sim`, `raft.core`.
* `scenarios.checks`           -- each expectation checked against a finished
  run, its traces and (for a few) the live cluster through the run's driver.
  Imports `scenarios.steps`, `scenarios.linearizability`, `viz`.
* `scenarios.linearizability`  -- a pure linearizability checker.  Imports
  nothing of the project.
* `scenarios.figure8`          -- the directed Figure 8 schedule on the
  simulator, its checks, figures and note.  Imports `scenarios.checks`,
  `scenarios.drivers`, `scenarios.runner`, `raft.core`, `raft.sim`, `viz`.
* `scenarios.jepsen`           -- the Jepsen test on real processes.  Imports
  `scenarios.steps`, `scenarios.drivers`, `scenarios.checks`,
  `scenarios.linearizability`, `raft.core`, `viz`.

Modules: `scenarios.runner` plays a scenario (imports the packages above,
`scenarios.report`, `viz`, and `cluster.client`/`cluster.local` for their
errors); `scenarios.report` writes ``result.json`` and computes the note
(imports `scenarios.steps`, `scenarios.checks`, `raft.core`, `viz`: the
figures and the note's wording are `viz`'s), with `scenarios.report_ops`
for the measurements steps record in ``run.records`` -- a rolling update's
samples, the manager-count rows (imports `scenarios.steps`,
`scenarios.checks`, `viz`); `scenarios.torture` a long randomised run on
real processes.
"""
