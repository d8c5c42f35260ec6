"""The clusters a scenario acts on.

* `scenarios.drivers.real`      -- `RealDriver`: real manager processes
  (`cluster.local`), spoken to over their HTTP API (`cluster.client`).
* `scenarios.drivers.operator`  -- `RealDriver`'s operator half: nodes'
  role and availability, services, secrets, join, autolock, over the API.
* `scenarios.drivers.sim`       -- `SimDriver`: the same actions on the
  deterministic simulator (`raft.sim`), in virtual time.
* `scenarios.drivers.simtrace`  -- the simulator with traces shaped like a real
  cluster's (node names, the same trace lines), so figures and checks apply.
* `scenarios.drivers.tolerance` -- the ``quorum_table`` measurement, one
  algorithm for both drivers.

Both implement `scenarios.steps.driver.Driver` (re-exported here): one method
per action.  The protocol lives with the steps that call it, so this package
imports the steps and never the reverse.

May import: `scenarios.steps`, `cluster.local`, `cluster.client`, `raft.sim`,
`raft.core`.
"""

from scenarios.steps.driver import Driver

__all__ = ["Driver"]
