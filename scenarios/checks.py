"""The expectations of a scenario, checked against what happened.

Each check is a function ``(run, expect) -> CheckResult``.  Most read the
trace model (`viz.model.TraceModel`) and the client operations the runner
recorded; a few ask the cluster itself and must run while it is still up
(`LIVE`), and some read the managers' data directories after they stopped
(`ON_DISK`).  Step numbers in an expectation become times through the
runner's step records (each step's start and end, in trace time).

A check that has no meaning in this mode (Swarm objects on the simulator)
passes with ``skipped`` set and says why.
"""

from __future__ import annotations

import base64
import datetime
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.actions import ClientOp, NotApplicable
from scenarios.schema import Expect, Scenario
from viz.model import LEARNER, OUTSIDE

__all__ = ["LIVE", "ON_DISK", "CheckResult", "Run", "StepRecord", "evaluate"]


@dataclass(slots=True)
class StepRecord:
    number: int
    action: str
    text: str
    start: float = 0.0
    end: float = 0.0
    #: ok | failed | skipped (not applicable) | unsupported | not run
    status: str = "not run"
    note: str = ""


@dataclass(slots=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    skipped: bool = False

    def as_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "passed": self.passed, "detail": self.detail}
        if self.skipped:
            d["skipped"] = True
        return d


@dataclass(slots=True)
class Run:
    """Everything the checks and the report may look at."""

    scenario: Scenario
    mode: str
    seed: int | None
    driver: Any
    steps: list[StepRecord]
    ops: list[ClientOp] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    model: Any = None  # viz.model.TraceModel once the traces are read
    metrics: dict[str, Any] = field(default_factory=dict)
    #: Data written by create_secret / create_config steps: name -> plaintext.
    named_data: dict[str, str] = field(default_factory=dict)
    #: (start, end, {key: visible}) of the final linearizable read through the leader.
    final_read: tuple[float, float, dict[str, bool]] | None = None
    data_dirs: dict[str, Path] = field(default_factory=dict)
    quorum_rows: list[dict[str, Any]] = field(default_factory=list)
    #: Trace time when the last step and live check ended, before the cluster stopped.
    end_t: float | None = None
    #: Task placements (task name -> node name) before the first drain and at the end.
    placements: list[dict[str, str]] = field(default_factory=list)
    #: Nodes that joined during the run: {"name", "role", "step"}.
    joined: list[dict[str, Any]] = field(default_factory=list)
    #: Every ``membership`` trace line as (model time, node, voters, learners), in time order.
    conf_lines: list[tuple[float, str, tuple[str, ...], tuple[str, ...]]] = field(
        default_factory=list
    )

    def end(self) -> float:
        """The scenario's end in model time (the shutdown that follows is not part of it)."""
        return self.rel(self.end_t) if self.end_t is not None else self.model.end

    def step(self, number: int) -> StepRecord:
        return self.steps[number - 1]

    def rel(self, t: float) -> float:
        """Trace time (Unix seconds) -> seconds from the model's first line."""
        return t - self.model.t0

    def node(self, ref: str) -> str:
        return self.aliases.get(ref, ref)

    def ops_in(self, steps: list[int]) -> list[ClientOp]:
        lo, hi = steps[0], steps[-1]
        return [op for op in self.ops if lo <= op.step <= hi]

    def acked(self) -> list[ClientOp]:
        return [op for op in self.ops if op.outcome == "ok"]


def _steps_label(steps: list[int]) -> str:
    return (
        f"step {steps[0]}"
        if len(steps) == 1 or steps[0] == steps[-1]
        else (f"steps {steps[0]}-{steps[-1]}")
    )


def label(e: Expect) -> str:
    """A readable name for the check: ``leader_within 5 s after step 4``."""
    a = e.args
    c = e.check
    if c == "leader_within":
        since = f"step {a['after_step']}" if "after_step" in a else "the start"
        return f"leader_within {a['seconds']:g} s after {since}"
    if c == "voter_within":
        return f"voter_within {a['node']} {a['seconds']:g} s after step {a['after_step']}"
    if c == "quorum_size":
        when = f"at step {a['at_step']}" if "at_step" in a else "at the end"
        return f"quorum_size {a['voters'] // 2 + 1} of {a['voters']} {when}"
    if c == "winner_most_up_to_date" and "after_step" in a:
        return f"{c} (after step {a['after_step']})"
    if "steps" in a:
        return f"{c} ({_steps_label(a['steps'])})"
    if "node" in a and "after_step" in a:
        return f"{c} {a['node']} (after step {a['after_step']})"
    if "node" in a:
        return f"{c} {a['node']}"
    if "nodes" in a:
        return f"{c} {', '.join(a['nodes'])}"
    if "secret" in a:
        return f"{c} {a['secret']}"
    return c


# ============================================================ trace-model checks


def leader_within(run: Run, e: Expect) -> CheckResult:
    """A leader within ``seconds`` of step ``after_step`` beginning (without
    ``after_step``: of the cluster's start, the first trace line)."""
    if e.get("after_step"):
        step = run.step(e.get("after_step"))
        t = run.rel(step.start)
        since = f"step {step.number} ({step.text}) began"
    else:
        t, since = 0.0, "the cluster started"
    later = [iv for iv in run.model.leaders() if iv.start > t - 1e-6]
    if not later:
        return CheckResult(label(e), False, f"no leader was elected after {since.split(' (')[0]}")
    first = later[0]
    dt = first.start - t
    run.metrics.setdefault("time_to_leader_s", round(dt, 3))
    ok = dt <= e.get("seconds")
    return CheckResult(
        label(e), ok, f"{first.node} became leader in term {first.term} {dt:.2f} s after {since}"
    )


def no_leader_while(run: Run, e: Expect) -> CheckResult:
    steps = e.get("steps")
    a = run.rel(run.step(steps[0]).start) + e.get("grace", 0.0)
    b = run.rel(run.step(steps[-1]).end)
    seen = [iv for iv in run.model.leaders() if iv.start < b and iv.end > a]
    if seen:
        who = ", ".join(f"{iv.node} (term {iv.term}, {iv.start:.2f}-{iv.end:.2f} s)" for iv in seen)
        return CheckResult(label(e), False, f"a leader existed in {a:.2f}-{b:.2f} s: {who}")
    run.metrics.setdefault("leaderless_window_s", round(b - a, 3))
    return CheckResult(label(e), True, f"no node was leader from {a:.2f} s to {b:.2f} s")


def writes_fail_no_quorum(run: Run, e: Expect) -> CheckResult:
    ops = run.ops_in(e.get("steps"))
    if not ops:
        return CheckResult(label(e), False, "no writes were made in that window")
    ok = [op for op in ops if op.outcome == "ok"]
    no_503 = [op for op in ops if op.outcome != "ok" and op.status != 503]
    messages = sorted({op.error or op.outcome for op in ops if op.outcome != "ok"})
    waits = [op.end - op.start for op in ops if op.outcome != "ok"]
    if waits:
        run.metrics.setdefault("refused_write_wait_s", round(max(waits), 3))
    detail = (
        f"{len(ops) - len(ok)} of {len(ops)} writes refused"
        + (f" (503 within {max(waits):.2f} s)" if waits else "")
        + (f": {messages[0]!r}" if messages else "")
    )
    if ok:
        detail += f"; but {len(ok)} succeeded: {', '.join(op.key for op in ok)}"
    if no_503:
        detail += f"; {len(no_503)} did not get a 503 ({no_503[0].outcome}: {no_503[0].error})"
    return CheckResult(label(e), not ok and not no_503, detail)


def writes_succeed(run: Run, e: Expect) -> CheckResult:
    ops = run.ops_in(e.get("steps"))
    ok = [op for op in ops if op.outcome == "ok"]
    need = e.get("min", len(ops))
    bad = [op for op in ops if op.outcome != "ok"]
    detail = f"{len(ok)} of {len(ops)} writes acknowledged"
    if bad:
        detail += f"; first failure: {bad[0].key} {bad[0].outcome} ({bad[0].error})"
    return CheckResult(label(e), bool(ops) and len(ok) >= need, detail)


def votes_refused(run: Run, e: Expect) -> CheckResult:
    node = run.node(e.get("node"))
    needle = e.get("reason", "behind")
    refused = [
        v
        for v in run.model.votes
        if v.candidate == node and not v.granted and needle in (v.reason or "")
    ]
    voters = sorted({v.voter for v in refused})
    run.metrics["votes_refused"] = len(refused)
    if not refused:
        other = [v for v in run.model.votes if v.candidate == node and not v.granted]
        why = f"; other refusals: {other[0].reason!r}" if other else ""
        return CheckResult(label(e), False, f"no vote for {node} was refused with {needle!r}{why}")
    wanted = [run.node(x) for x in e.get("by", [])]
    missing = [x for x in wanted if x not in voters]
    first = refused[0]
    detail = (
        f"{len(refused)} requests from {node} refused by {', '.join(voters)}; first at "
        f"{first.t:.2f} s by {first.voter}: {first.reason!r}"
    )
    if missing:
        detail += f"; never refused by {', '.join(missing)}"
    return CheckResult(label(e), not missing, detail)


def never_leader(run: Run, e: Expect) -> CheckResult:
    node = run.node(e.get("node"))
    led = [iv for iv in run.model.leaders() if iv.node == node]
    if led:
        return CheckResult(
            label(e), False, f"{node} led in term {led[0].term} at {led[0].start:.2f} s"
        )
    return CheckResult(label(e), True, f"{node} never became leader")


def _final_leader(run: Run) -> Any:
    end = run.end() - 1e-3
    ivs = [iv for iv in run.model.leaders() if iv.start <= end < iv.end or iv.end >= run.model.end]
    return max(ivs, key=lambda iv: iv.term or 0) if ivs else None


def leader_in(run: Run, e: Expect) -> CheckResult:
    nodes = [run.node(x) for x in e.get("nodes")]
    iv = _final_leader(run)
    if iv is None:
        return CheckResult(label(e), False, "no leader at the end")
    return CheckResult(
        label(e), iv.node in nodes, f"the leader at the end is {iv.node} (term {iv.term})"
    )


def leader_is(run: Run, e: Expect) -> CheckResult:
    node = run.node(e.get("node"))
    if e.get("after_step"):
        # The leader when the step ended (a step that already found its
        # leader in place, or waited for a transfer); else the first one
        # elected after the step began.
        step = run.step(e.get("after_step"))
        t, t_end = run.rel(step.start), run.rel(step.end)
        leaders = run.model.leaders()
        then = [iv for iv in leaders if iv.start <= t_end < iv.end]
        later = [iv for iv in leaders if iv.start > t - 1e-6]
        iv = max(then, key=lambda x: x.term or 0) if then else (later[0] if later else None)
    else:
        iv = _final_leader(run)
    if iv is None:
        return CheckResult(label(e), False, "no leader was elected then")
    return CheckResult(
        label(e), iv.node == node, f"{iv.node} led in term {iv.term} from {iv.start:.2f} s"
    )


def stepped_down(run: Run, e: Expect) -> CheckResult:
    node = run.node(e.get("node"))
    step = run.step(e.get("after_step"))
    t0, limit = run.rel(step.start), run.rel(step.end) + e.get("seconds", 5.0)
    ivs = [iv for iv in run.model.roles.get(node, []) if iv.end > t0 - 1e-6]
    leading = [iv for iv in ivs if iv.role == "leader"]
    if not leading:
        return CheckResult(label(e), True, f"{node} was not leader after step {step.number}")
    last = leading[-1]
    if last.end >= run.end():
        return CheckResult(label(e), False, f"{node} still leads (term {last.term}) at the end")
    after = next((iv for iv in ivs if iv.start >= last.end - 1e-6), None)
    newer = f" and became {after.role} in term {after.term}" if after else ""
    return CheckResult(
        label(e),
        last.end <= limit,
        f"{node} stopped leading term {last.term} at {last.end:.2f} s{newer}",
    )


def uncommitted_overwritten(run: Run, e: Expect) -> CheckResult:
    node = run.node(e.get("node"))
    snaps = run.model.logs.get(node, [])
    if len(snaps) < 2:
        return CheckResult(label(e), False, f"{node} traced its log fewer than twice")
    final = dict(snaps[-1].entries)
    for s in snaps[:-1]:
        for index, term in s.entries:
            if index > s.commit and index in final and final[index] != term:
                run.metrics["overwritten_index"] = index
                return CheckResult(
                    label(e),
                    True,
                    f"{node} held index {index} from term {term} uncommitted at {s.t:.2f} s; "
                    f"at the end index {index} is from term {final[index]}",
                )
    return CheckResult(label(e), False, f"no uncommitted entry of {node} was replaced")


def _last_entry(model: Any, node: str, t: float) -> tuple[int, int] | None:
    """(term, index) of ``node``'s last log entry as last traced at or before ``t``."""
    snaps = [s for s in model.logs.get(node, ()) if s.t <= t]
    if not snaps:
        return None
    s = snaps[-1]
    if not s.entries:
        return (0, 0) if s.snapshot_index == 0 else None  # compacted away: term unknown
    index, term = max(s.entries)
    return term, index


def _cut_off(model: Any, a: str, b: str, t: float) -> bool:
    """Were ``a`` and ``b`` separated by a partition (or an isolation) at ``t``?"""
    for f in model.fault_intervals:
        if f.kind != "partition" or not f.start <= t < f.end:
            continue
        if f.cause == "isolate":
            if a in f.nodes or b in f.nodes:
                return True
            continue
        side = {n: i for i, g in enumerate(f.groups) for n in g}
        if side.get(a) != side.get(b):
            return True
    return False


def winner_most_up_to_date(run: Run, e: Expect) -> CheckResult:
    """§5.4.1: every leader elected (after step ``after_step``) had, when it
    campaigned, a log at least as up to date -- last term, then length -- as
    every other manager that was up and could reach it.

    The logs come from the ``log`` trace lines (a node writes one on every role
    change, so a candidate's log is known as it campaigns; the runner asks every
    node for one after each step of a scenario with this check).  Raft itself
    promises only "at least as up to date as a majority": a node that holds an
    extra uncommitted entry no majority has can lose to one without it."""
    m = run.model
    since = run.rel(run.step(e.get("after_step")).start) if e.get("after_step") else -1.0
    wins = [w for w in m.won() if w.t >= since - 1e-6]
    if not wins:
        where = f" after step {e.get('after_step')}" if e.get("after_step") else ""
        return CheckResult(label(e), False, f"no leader was elected{where}")
    parts: list[str] = []
    bad: list[str] = []
    compared = 0
    for w in wins:
        mine = _last_entry(m, w.node, w.t)
        if mine is None:
            bad.append(f"{w.node}'s log is not in the traces when it campaigned for term {w.term}")
            continue
        others = []
        for n in m.nodes:
            # Only voters elect: a learner or a node outside the configuration
            # has no vote, so its log is not one the winner had to match.
            if n == w.node or m.role_at(n, w.t) in (None, "down", "paused", LEARNER, OUTSIDE):
                continue
            if _cut_off(m, w.node, n, w.t):
                continue
            theirs = _last_entry(m, n, w.t)
            if theirs is None:
                continue
            compared += 1
            mark = " BEHIND it" if theirs < mine else (" AHEAD of it" if theirs > mine else "")
            others.append(f"{n} ({theirs[0]}, {theirs[1]}){mark}")
            if theirs > mine:
                bad.append(
                    f"{w.node} won term {w.term} with (term {mine[0]}, index {mine[1]}) but "
                    f"{n} held (term {theirs[0]}, index {theirs[1]})"
                )
        parts.append(
            f"{w.node} won term {w.term} at {w.t:.2f} s with its last entry at (term "
            f"{mine[0]}, index {mine[1]}); others (term, index): {', '.join(others) or 'none'}"
        )
    if not compared and not bad:
        bad.append("no other manager's log was traced before the elections")
    detail = "; ".join(bad[:1] + parts[-2:]) if bad else "; ".join(parts[-2:])
    if len(wins) > 2:
        detail = f"{len(wins)} elections checked; " + detail
    return CheckResult(label(e), not bad, detail)


# ============================================================ membership


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


def voter_within(run: Run, e: Expect) -> CheckResult:
    """A node that joined becomes a voter within ``seconds`` of step ``after_step``
    beginning: first a learner (it gets the log, does not vote), then promoted
    once caught up (dissertation §4.2.1).  Records the phases as metrics."""
    node = run.node(e.get("node"))
    step = run.step(e.get("after_step"))
    t0 = run.rel(step.start)
    learner, voter = join_phases(run, node, t0)
    if voter is None:
        where = f"; a learner from {learner - t0:.2f} s after step {step.number}" if learner else ""
        return CheckResult(label(e), False, f"{node} never became a voter{where}")
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
    return CheckResult(label(e), dt <= e.get("seconds"), detail)


def quorum_size(run: Run, e: Expect) -> CheckResult:
    """The configuration at the start of step ``at_step`` (default: at the end) has
    ``voters`` voters, hence a quorum of (N/2)+1; learners do not count."""
    t = run.rel(run.step(e.get("at_step")).start) if e.get("at_step") else run.end()
    voters, learners = _conf_at(run, t)
    n = len(voters)
    want = e.get("voters")
    when = f"at step {e.get('at_step')}" if e.get("at_step") else "at the end"
    detail = (
        f"{n} voters {when} ({', '.join(voters)}): quorum {n // 2 + 1} of {n}, "
        f"tolerates {(n - 1) // 2} failure{'s' if (n - 1) // 2 != 1 else ''}"
    )
    if learners:
        detail += f"; learners (no vote, not counted): {', '.join(learners)}"
    return CheckResult(label(e), n == want, detail)


def fault_tolerance_matches(run: Run, e: Expect) -> CheckResult:
    rows = run.quorum_rows
    if not rows:
        return CheckResult(label(e), False, "no quorum_table step ran")
    bad = [r for r in rows if r["measured_tolerance"] != r["expected_tolerance"]]
    sizes = ", ".join(f"{r['managers']}:{r['measured_tolerance']}" for r in rows)
    detail = f"measured tolerance by size (N:f) {sizes}"
    if bad:
        detail += f"; mismatch at N={bad[0]['managers']}"
    return CheckResult(label(e), not bad, detail)


# ============================================================ live checks


def new_leader_has_all_committed(run: Run, e: Expect) -> CheckResult:
    acked = run.acked()
    if not acked:
        return CheckResult(label(e), False, "no write was acknowledged: there is nothing to check")
    leader, present = run.driver.present_via_leader(acked)
    if leader is None or present is None:
        return CheckResult(label(e), False, f"could not read through the leader ({leader})")
    missing = [k for k, ok in present.items() if not ok]
    detail = (
        f"{len(acked) - len(missing)} of {len(acked)} acknowledged writes readable via {leader}"
    )
    if missing:
        detail += f"; missing {', '.join(missing[:5])}"
    return CheckResult(label(e), not missing and bool(acked), detail)


def no_acknowledged_write_lost(run: Run, e: Expect) -> CheckResult:
    acked = run.acked()
    converged = run.driver.converge(15.0)
    lost: list[str] = []
    silent: list[str] = []
    checked = 0
    for node in run.driver.running():
        present = run.driver.present_on(node, acked)
        if present is None:
            silent.append(node)
            continue
        checked += 1
        lost += [f"{k}@{node}" for k, ok in present.items() if not ok]
    if not acked:
        return CheckResult(label(e), False, "no write was acknowledged: there is nothing to check")
    detail = f"{len(acked)} acknowledged writes checked on {checked} managers (local reads)"
    if not converged:
        detail += "; applied indexes did not converge within 15 s"
    if silent:
        detail += f"; no answer from {', '.join(silent)}"
    if lost:
        detail += f"; missing: {', '.join(lost[:6])}"
    return CheckResult(label(e), not lost and not silent and checked > 0 and bool(acked), detail)


def _node_ids(run: Run) -> dict[str, str]:
    return {n["Description"]["Hostname"]: n["ID"] for n in run.driver.nodes()}


def _running_tasks(run: Run) -> list[dict[str, Any]]:
    return [t for t in run.driver.tasks() if t.get("DesiredState") == "running"]


def tasks_placed_exactly_once(run: Run, e: Expect) -> CheckResult:
    tasks = _running_tasks(run)
    slots: dict[tuple[str, Any], int] = {}
    for t in tasks:
        key = (t["ServiceID"], t.get("Slot") or t.get("NodeID"))
        slots[key] = slots.get(key, 0) + 1
    twice = [k for k, n in slots.items() if n > 1]
    unplaced = [t["ID"] for t in tasks if not t.get("NodeID")]
    detail = f"{len(tasks)} tasks desired running in {len(slots)} slots"
    if twice:
        detail += f"; slot {twice[0][1]} has {slots[twice[0]]} tasks"
    if unplaced:
        detail += f"; {len(unplaced)} not placed on a node"
    return CheckResult(label(e), bool(tasks) and not twice and not unplaced, detail)


def tasks_off_node(run: Run, e: Expect) -> CheckResult:
    node = run.node(e.get("node"))
    node_id = _node_ids(run).get(node)
    tasks = _running_tasks(run)
    on = [t for t in tasks if t.get("NodeID") == node_id]
    elsewhere = {}
    for t in tasks:
        elsewhere[t.get("NodeID")] = elsewhere.get(t.get("NodeID"), 0) + 1
    return CheckResult(
        label(e),
        not on and bool(tasks),
        f"{len(on)} of {len(tasks)} running tasks on {node}",
    )


def _created(task: dict[str, Any]) -> float:
    raw = task.get("CreatedAt", "")
    head, _, frac = raw.rstrip("Z").partition(".")
    dt = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def no_new_tasks_on(run: Run, e: Expect) -> CheckResult:
    node = run.node(e.get("node"))
    node_id = _node_ids(run).get(node)
    since = run.step(e.get("after_step")).end
    new = [t for t in run.driver.tasks() if _created(t) > since]
    on = [t for t in new if t.get("NodeID") == node_id]
    return CheckResult(
        label(e),
        bool(new) and not on,
        f"{len(new)} tasks created after step {e.get('after_step')}, {len(on)} of them on {node}",
    )


# ============================================================ on-disk checks


def _count_hits(dirs: dict[str, Path], needles: list[bytes]) -> tuple[int, int, list[str]]:
    files = hits = 0
    where: list[str] = []
    for name, d in dirs.items():
        for path in d.rglob("*"):
            if not path.is_file():
                continue
            files += 1
            data = path.read_bytes()
            for needle in needles:
                if needle in data:
                    hits += 1
                    where.append(f"{name}/{path.relative_to(d)}")
    return files, hits, where


def secret_plaintext_absent(run: Run, e: Expect) -> CheckResult:
    if run.mode != "real":
        raise NotApplicable("the simulator keeps no data directories")
    secret = e.get("secret")
    plain = run.named_data.get(secret)
    if plain is None:
        return CheckResult(label(e), False, f"no create_secret step made {secret!r}")
    needles = [plain.encode(), base64.b64encode(plain.encode())]
    files, hits, where = _count_hits(run.data_dirs, needles)
    detail = f"secret {secret!r}: {hits} hits (plaintext or base64) in {files} files"
    ok = hits == 0 and files > 0
    if where:
        detail += f", e.g. {where[0]}"
    config = e.get("config")
    if config:
        cplain = run.named_data.get(config, "")
        _, chits, _cwhere = _count_hits(
            run.data_dirs, [cplain.encode(), base64.b64encode(cplain.encode())]
        )
        run.metrics["config_hits"] = chits
        detail += f"; config {config!r} found {chits} times (configs are stored in the clear)"
        ok = ok and chits > 0
    run.metrics["secret_hits"] = hits
    run.metrics["files_searched"] = files
    return CheckResult(label(e), ok, detail)


# ============================================================ linearizability


def history_linearizable(run: Run, e: Expect) -> CheckResult:
    try:
        lin = importlib.import_module("scenarios.linearizability")
    except ImportError:
        return CheckResult(
            label(e), True, "skipped: scenarios/linearizability.py is not there yet", True
        )
    if not run.ops:
        return CheckResult(label(e), False, "no write was made: there is no history to check")
    if run.final_read is None:
        return CheckResult(label(e), False, "no final read through the leader was possible")
    ops = []
    for i, op in enumerate(run.ops):
        status = "ok" if op.outcome == "ok" else "info"  # a 503 may still commit later
        ops.append(lin.Operation(i, f"s{op.step}", "write", op.key, op.value, None,
                                 op.start, op.end, status))  # fmt: skip
    start, end, seen = run.final_read
    values = {op.key: op.value for op in run.ops}
    for j, (key, visible) in enumerate(seen.items(), len(ops)):
        ops.append(lin.Operation(j, "reader", "read", key, None,
                                 values[key] if visible else None, start, end, "ok"))  # fmt: skip
    verdict = lin.check(ops, lin.RegisterModel())
    return CheckResult(label(e), verdict.ok is True, verdict.explain().splitlines()[0][:300])


# ============================================================ dispatch

Check = Callable[[Run, Expect], CheckResult]

CHECKS: dict[str, Check] = {
    "leader_within": leader_within,
    "no_leader_while": no_leader_while,
    "writes_fail_no_quorum": writes_fail_no_quorum,
    "writes_succeed": writes_succeed,
    "new_leader_has_all_committed": new_leader_has_all_committed,
    "votes_refused": votes_refused,
    "never_leader": never_leader,
    "leader_in": leader_in,
    "leader_is": leader_is,
    "stepped_down": stepped_down,
    "uncommitted_overwritten": uncommitted_overwritten,
    "no_acknowledged_write_lost": no_acknowledged_write_lost,
    "tasks_placed_exactly_once": tasks_placed_exactly_once,
    "tasks_off_node": tasks_off_node,
    "no_new_tasks_on": no_new_tasks_on,
    "secret_plaintext_absent": secret_plaintext_absent,
    "fault_tolerance_matches": fault_tolerance_matches,
    "history_linearizable": history_linearizable,
    "winner_most_up_to_date": winner_most_up_to_date,
    "voter_within": voter_within,
    "quorum_size": quorum_size,
}

#: Checks that ask the running cluster (evaluated before it stops).
LIVE = frozenset(
    {
        "new_leader_has_all_committed",
        "no_acknowledged_write_lost",
        "tasks_placed_exactly_once",
        "tasks_off_node",
        "no_new_tasks_on",
    }
)
#: Checks that read the data directories after the managers stopped.
ON_DISK = frozenset({"secret_plaintext_absent"})


def evaluate(run: Run, e: Expect) -> CheckResult:
    """Run one check; a mode where it means nothing gives a skipped pass."""
    try:
        return CHECKS[e.check](run, e)
    except NotApplicable as exc:
        return CheckResult(label(e), True, f"not applicable in {run.mode} mode: {exc}", True)
    except Exception as exc:  # a check must report, never crash the run
        return CheckResult(label(e), False, f"could not check: {type(exc).__name__}: {exc}")
