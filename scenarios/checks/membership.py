"""Checks on the cluster's configuration: joins, voters, quorum sizes (§4 of
the dissertation: one server at a time, a learner first)."""

from __future__ import annotations

from scenarios.checks.run import CheckResult, Run
from scenarios.steps import expects as ex

__all__ = ["conf_changes", "fault_tolerance_matches", "join_phases", "quorum_size", "voter_within"]


def conf_changes(run: Run) -> list[tuple[float, tuple[str, ...], tuple[str, ...]]]:
    """(time, voters, learners) of every configuration a leader traced.

    A leader traces a change as it appends it, so its lines tell when a
    change happened; followers trace it on receipt and a restarted node
    traces what it reloads, at times that say nothing about the change (and
    processes' clocks differ by a few ms)."""
    return [
        (ct, voters, learners)
        for ct, node, voters, learners in run.conf_lines
        if run.model.role_at(node, ct) == "leader"
    ]


def _conf_at(run: Run, t: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(voters, learners) in force just before ``t``: the last configuration a
    leader traced, else the founding managers."""
    found: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    for ct, voters, learners in conf_changes(run):
        if ct >= t:
            break
        found = (voters, learners)
    return found or (tuple(run.scenario.cluster.names), ())


def join_phases(run: Run, node: str, t0: float) -> tuple[float | None, float | None]:
    """When, after ``t0``, a leader made ``node`` a learner, and when a voter."""
    changes = [c for c in conf_changes(run) if c[0] >= t0 - 1e-6]
    learner = next((ct for ct, v, ls in changes if node in ls and node not in v), None)
    voter = next((ct for ct, v, _ls in changes if node in v), None)
    return learner, voter


def voter_within(run: Run, e: ex.VoterWithin) -> CheckResult:
    """A node that joined becomes a voter within ``seconds`` of step ``after_step``
    beginning: first a learner (it gets the log, does not vote), then promoted
    once caught up (dissertation §4.2.1).  Records the phases as metrics."""
    node = run.node(e.node)
    step = run.step(e.after_step)
    t0 = run.rel(step.start)
    learner, voter = join_phases(run, node, t0)
    if voter is None:
        where = f"; a learner from {learner - t0:.2f} s after step {step.number}" if learner else ""
        return CheckResult(e.label(), False, f"{node} never became a voter{where}")
    dt = voter - t0
    met = run.metrics
    met["voter_after_s"] = round(dt, 3)
    detail = f"{node} became a voter {dt:.2f} s after step {step.number} ({step.text}) began"
    if learner is not None and learner <= voter:
        met["learner_after_s"] = round(learner - t0, 3)
        met["learner_phase_s"] = round(voter - learner, 3)
        acked = [
            op
            for op in run.ops
            if op.outcome == "ok" and learner <= run.rel(op.end) and run.rel(op.start) < voter
        ]
        met["writes_while_learner"] = len(acked)
        detail += (
            f", after {voter - learner:.2f} s as a learner (added at {learner - t0:.2f} s); "
            f"{len(acked)} writes were acknowledged meanwhile"
        )
    return CheckResult(e.label(), dt <= e.seconds, detail)


def quorum_size(run: Run, e: ex.QuorumSize) -> CheckResult:
    """The configuration at the start of step ``at_step`` (default: at the end) has
    ``voters`` voters, hence a quorum of (N/2)+1; learners do not count."""
    t = run.rel(run.step(e.at_step).start) if e.at_step else run.end()
    voters, learners = _conf_at(run, t)
    n = len(voters)
    want = e.voters
    when = f"at step {e.at_step}" if e.at_step else "at the end"
    detail = (
        f"{n} voters {when} ({', '.join(voters)}): quorum {n // 2 + 1} of {n}, "
        f"tolerates {(n - 1) // 2} failure{'s' if (n - 1) // 2 != 1 else ''}"
    )
    if learners:
        detail += f"; learners (no vote, not counted): {', '.join(learners)}"
    return CheckResult(e.label(), n == want, detail)


def fault_tolerance_matches(run: Run, e: ex.FaultToleranceMatches) -> CheckResult:
    rows = run.quorum_rows
    if not rows:
        return CheckResult(e.label(), False, "no quorum_table step ran")
    bad = [r for r in rows if r["measured_tolerance"] != r["expected_tolerance"]]
    sizes = ", ".join(f"{r['managers']}:{r['measured_tolerance']}" for r in rows)
    detail = f"measured tolerance by size (N:f) {sizes}"
    if bad:
        detail += f"; mismatch at N={bad[0]['managers']}"
    return CheckResult(e.label(), not bad, detail)
