"""Scenario files as typed values: the actions, the expectations, parsing.

* `scenarios.steps.fields`   -- a TOML table into a frozen dataclass whose
  fields are its schema; `ScenarioError`, one line naming where.
* `scenarios.steps.driver`   -- what a step needs of a cluster (`Driver`, one
  method per action) and of the run (`Stage`); `ClientOp`.
* `scenarios.steps.actions`  -- faults, network, writes, waits: one class per
  action, each with its own validation and `apply`.
* `scenarios.steps.swarm`    -- the operator's actions (drain, services,
  secrets, join, transfer, autolock).
* `scenarios.steps.tasks`    -- where tasks run (snapshots, watching them
  settle), management attempts, global services, forced updates.
* `scenarios.steps.rollout`  -- a service's rolling update and rollback,
  watched until they end (``update_service``, ``rollback_service``).
* `scenarios.steps.measures` -- what each manager costs (``manager_count``).
* `scenarios.steps.expects`  -- one class per expectation;
  `scenarios.steps.expects_tasks`: those about tasks and management.
* `scenarios.steps.scenario` -- `ClusterSpec`, `Scenario`, `parse`, `load`, the
  built-ins.

May import: nothing of the project (only the standard library).  The drivers
implement `Driver` and import this package, never the reverse.
"""

from scenarios.steps.actions import WAIT_ALIASES, WAIT_FOR, Action
from scenarios.steps.driver import (
    ClientOp,
    Driver,
    NotApplicable,
    Stage,
    StepFailed,
    Unsupported,
)
from scenarios.steps.expects import CHECK_ALIASES, Expectation
from scenarios.steps.fields import ScenarioError, canonical
from scenarios.steps.scenario import (
    ACTION_ALIASES,
    ACTIONS,
    BUILTIN_ORDER,
    DIRECTED,
    EXPECTATIONS,
    TOPIC_NAMES,
    ClusterSpec,
    Scenario,
    builtin_dir,
    builtins,
    load,
    parse,
)

__all__ = [
    "ACTIONS",
    "ACTION_ALIASES",
    "BUILTIN_ORDER",
    "CHECK_ALIASES",
    "DIRECTED",
    "EXPECTATIONS",
    "TOPIC_NAMES",
    "WAIT_ALIASES",
    "WAIT_FOR",
    "Action",
    "ClientOp",
    "ClusterSpec",
    "Driver",
    "Expectation",
    "NotApplicable",
    "Scenario",
    "ScenarioError",
    "Stage",
    "StepFailed",
    "Unsupported",
    "builtin_dir",
    "builtins",
    "canonical",
    "load",
    "parse",
]
