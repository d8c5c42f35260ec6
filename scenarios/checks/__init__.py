"""The expectations of a scenario, checked against what happened.

Each expectation class of `scenarios.steps.expects` has one check here, a
function ``(run, expectation) -> CheckResult`` (`CHECKS`, keyed by class).
Most read the trace model (`viz.model.TraceModel`) and the client operations
the runner recorded; a few ask the cluster itself and must run while it is
still up (`LIVE`), and one reads the managers' data directories after they
stopped (`ON_DISK`).  A check that has no meaning in this mode (Swarm objects
on the simulator) passes with ``skipped`` set and says why.

* `scenarios.checks.run`        -- `Run`, `StepRecord`, `CheckResult`.
* `scenarios.checks.trace`      -- elections, leaders, votes, writes' fate.
* `scenarios.checks.membership` -- joins, voters, quorum sizes.
* `scenarios.checks.tasks`      -- where tasks ran at the snapshots the steps
  took, and how management attempts were answered.
* `scenarios.checks.cluster`    -- asking the live cluster, the data
  directories, and the history's linearizability.
* `scenarios.checks.rollout`    -- rolling updates and rollbacks, from the
  tasks their steps recorded.
* `scenarios.checks.costs`      -- what each manager costs (``manager_count``).
* `scenarios.checks.admin`      -- the operator's answers (refused, accepted,
  ``node ls``), which files each node holds, a secret's plaintext anywhere.

May import: `scenarios.steps`, `scenarios.linearizability`, `viz`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scenarios.checks import admin, cluster, costs, membership, rollout, tasks, trace
from scenarios.checks.membership import _conf_at, conf_changes, join_phases
from scenarios.checks.run import CheckResult, Run, StepRecord
from scenarios.steps import NotApplicable
from scenarios.steps import expects as ex

__all__ = [
    "CHECKS",
    "LIVE",
    "ON_DISK",
    "CheckResult",
    "Run",
    "StepRecord",
    "_conf_at",
    "conf_changes",
    "evaluate",
    "join_phases",
]

Check = Callable[[Run, Any], CheckResult]

#: expectation class -> its check.
CHECKS: dict[type[ex.Expectation], Check] = {
    ex.LeaderWithin: trace.leader_within,
    ex.NoLeaderWhile: trace.no_leader_while,
    ex.WritesFailNoQuorum: trace.writes_fail_no_quorum,
    ex.WritesSucceed: trace.writes_succeed,
    ex.TermChangesAtMost: trace.term_changes_at_most,
    ex.NewLeaderHasAllCommitted: cluster.new_leader_has_all_committed,
    ex.VotesRefused: trace.votes_refused,
    ex.NeverLeader: trace.never_leader,
    ex.LeaderIn: trace.leader_in,
    ex.LeaderIs: trace.leader_is,
    ex.SteppedDown: trace.stepped_down,
    ex.UncommittedOverwritten: trace.uncommitted_overwritten,
    ex.NoAcknowledgedWriteLost: cluster.no_acknowledged_write_lost,
    ex.TasksPlacedExactlyOnce: cluster.tasks_placed_exactly_once,
    ex.TasksOffNode: cluster.tasks_off_node,
    ex.NoNewTasksOn: cluster.no_new_tasks_on,
    ex.SecretPlaintextAbsent: cluster.secret_plaintext_absent,
    ex.FaultToleranceMatches: membership.fault_tolerance_matches,
    ex.HistoryLinearizable: cluster.history_linearizable,
    ex.WinnerMostUpToDate: trace.winner_most_up_to_date,
    ex.VoterWithin: membership.voter_within,
    ex.QuorumSize: membership.quorum_size,
    **tasks.TASK_CHECKS,
    ex.WritesReadable: cluster.writes_readable,
    ex.UpdatedInBatches: rollout.updated_in_batches,
    ex.RolledBack: rollout.rolled_back,
    ex.EverySizeMeasured: costs.every_size_measured,
    ex.CpuPerWriteGrows: costs.cpu_per_write_grows,
    ex.Refused: admin.refused,
    ex.Accepted: admin.accepted,
    ex.ManagerStatus: admin.manager_status,
    ex.NodesReady: admin.nodes_ready,
    ex.FilesOnlyWhereUsed: admin.files_only_where_used,
    ex.SecretAbsentFromApi: admin.secret_absent_from_api,
    ex.SecretAbsentEverywhere: admin.secret_absent_everywhere,
}

#: Checks that ask the running cluster (evaluated before it stops).
LIVE: frozenset[type[ex.Expectation]] = frozenset(
    {
        ex.NewLeaderHasAllCommitted,
        ex.NoAcknowledgedWriteLost,
        ex.TasksPlacedExactlyOnce,
        ex.TasksOffNode,
        ex.NoNewTasksOn,
        ex.WritesReadable,
        ex.NodesReady,
        ex.SecretAbsentFromApi,
    }
)
#: Checks that read the data directories after the managers stopped.
ON_DISK: frozenset[type[ex.Expectation]] = frozenset(
    {ex.SecretPlaintextAbsent, ex.SecretAbsentEverywhere}
)


def evaluate(run: Run, e: ex.Expectation) -> CheckResult:
    """Run one check; a mode where it means nothing gives a skipped pass."""
    try:
        return CHECKS[type(e)](run, e)
    except NotApplicable as exc:
        return CheckResult(e.label(), True, f"not applicable in {run.mode} mode: {exc}", True)
    except Exception as exc:  # a check must report, never crash the run
        return CheckResult(e.label(), False, f"could not check: {type(exc).__name__}: {exc}")
