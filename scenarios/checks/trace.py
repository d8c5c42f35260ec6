"""Checks read from the trace model: elections, leaders, votes, writes' fate.

Each is ``(run, expectation) -> CheckResult`` and reads `Run.model` (the
traces as `viz.model.TraceModel`) and the client operations the runner
recorded; step numbers become times through the run's step records.
"""

from __future__ import annotations

from typing import Any

from scenarios.checks.run import CheckResult, Run
from scenarios.steps import expects as ex
from viz.model import LEARNER, OUTSIDE

__all__ = [
    "leader_in",
    "leader_is",
    "leader_within",
    "never_leader",
    "no_leader_while",
    "stepped_down",
    "uncommitted_overwritten",
    "votes_refused",
    "winner_most_up_to_date",
    "writes_fail_no_quorum",
    "writes_succeed",
]


def leader_within(run: Run, e: ex.LeaderWithin) -> CheckResult:
    """A leader within ``seconds`` of step ``after_step`` beginning (without
    ``after_step``: of the cluster's start, the first trace line)."""
    if e.after_step:
        step = run.step(e.after_step)
        t = run.rel(step.start)
        since = f"step {step.number} ({step.text}) began"
    else:
        t, since = 0.0, "the cluster started"
    later = [iv for iv in run.model.leaders() if iv.start > t - 1e-6]
    if not later:
        return CheckResult(e.label(), False, f"no leader was elected after {since.split(' (')[0]}")
    first = later[0]
    # Rounded once, here: the note, its figures and the index print this number.
    dt = round(first.start - t, 3)
    run.metrics.setdefault("time_to_leader_s", dt)
    ok = dt <= e.seconds
    return CheckResult(
        e.label(), ok, f"{first.node} became leader in term {first.term} {dt:.2f} s after {since}"
    )


def no_leader_while(run: Run, e: ex.NoLeaderWhile) -> CheckResult:
    steps = e.steps
    a = run.rel(run.step(steps[0]).start) + (e.grace or 0.0)
    b = run.rel(run.step(steps[-1]).end)
    seen = [iv for iv in run.model.leaders() if iv.start < b and iv.end > a]
    if seen:
        who = ", ".join(f"{iv.node} (term {iv.term}, {iv.start:.2f}-{iv.end:.2f} s)" for iv in seen)
        return CheckResult(e.label(), False, f"a leader existed in {a:.2f}-{b:.2f} s: {who}")
    # The whole leaderless stretch around the window, as the trace shows it:
    # from the last leader's end before it to the next leader's start.
    leaders = run.model.leaders()
    since = max((iv.end for iv in leaders if iv.end <= a), default=0.0)
    until = min((iv.start for iv in leaders if iv.start >= b), default=run.end())
    run.metrics.setdefault("leaderless_window_s", round(until - since, 3))
    return CheckResult(
        e.label(),
        True,
        f"no node was leader from {a:.2f} s to {b:.2f} s (no leader at all from "
        f"{since:.2f} s to {until:.2f} s: {until - since:.2f} s)",
    )


#: What a manager says when it could not forward a write to the leader it knows.
_UNREACHED = "could not be reached from"


def writes_fail_no_quorum(run: Run, e: ex.WritesFailNoQuorum) -> CheckResult:
    ops = run.ops_in(e.steps)
    if not ops:
        return CheckResult(e.label(), False, "no writes were made in that window")
    ok = [op for op in ops if op.outcome == "ok"]
    no_503 = [op for op in ops if op.outcome != "ok" and op.status != 503]
    # A follower that still believes in a dead leader answers 503 too, having
    # failed to forward the write (cluster/api/server.py): that is a connection
    # error, not the quorum refusing the write, and proves nothing about quorum.
    forwarded = [op for op in ops if op.status == 503 and _UNREACHED in (op.error or "")]
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
    if forwarded:
        detail += (
            f"; {len(forwarded)} only because a dead leader could not be reached, "
            "not a quorum refusal"
        )
    return CheckResult(e.label(), not ok and not no_503 and not forwarded, detail)


def writes_succeed(run: Run, e: ex.WritesSucceed) -> CheckResult:
    ops = run.ops_in(e.steps)
    ok = [op for op in ops if op.outcome == "ok"]
    need = e.at_least if e.at_least is not None else len(ops)
    bad = [op for op in ops if op.outcome != "ok"]
    detail = f"{len(ok)} of {len(ops)} writes acknowledged"
    if bad:
        detail += f"; first failure: {bad[0].key} {bad[0].outcome} ({bad[0].error})"
    return CheckResult(e.label(), bool(ops) and len(ok) >= need, detail)


def term_changes_at_most(run: Run, e: ex.TermChangesAtMost) -> CheckResult:
    """Pre-vote (§9.6) and check-quorum (dissertation §6.2) keep a flaky or
    one-way link from driving terms up: count how often the highest term rose."""
    a = run.rel(run.step(e.steps[0]).start)
    b = run.rel(run.step(e.steps[-1]).end)
    ivs = [iv for ivs in run.model.roles.values() for iv in ivs if iv.term is not None]
    before = max((iv.term for iv in ivs if iv.start <= a), default=0)
    during = sorted({iv.term for iv in ivs if a < iv.start <= b and iv.term > before})
    run.metrics["term_changes"] = len(during)
    terms = f" (terms {', '.join(map(str, during))})" if during else ""
    detail = f"the highest term rose {len(during)} times in {b - a:.1f} s from {before}{terms}"
    return CheckResult(e.label(), bool(ivs) and len(during) <= e.at_most, detail)


def votes_refused(run: Run, e: ex.VotesRefused) -> CheckResult:
    node = run.node(e.node)
    needle = e.reason or "behind"
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
        return CheckResult(e.label(), False, f"no vote for {node} was refused with {needle!r}{why}")
    wanted = [run.node(x) for x in (e.by or [])]
    missing = [x for x in wanted if x not in voters]
    first = refused[0]
    detail = (
        f"{len(refused)} requests from {node} refused by {', '.join(voters)}; first at "
        f"{first.t:.2f} s by {first.voter}: {first.reason!r}"
    )
    if missing:
        detail += f"; never refused by {', '.join(missing)}"
    return CheckResult(e.label(), not missing, detail)


def never_leader(run: Run, e: ex.NeverLeader) -> CheckResult:
    node = run.node(e.node)
    led = [iv for iv in run.model.leaders() if iv.node == node]
    if led:
        return CheckResult(
            e.label(), False, f"{node} led in term {led[0].term} at {led[0].start:.2f} s"
        )
    return CheckResult(e.label(), True, f"{node} never became leader")


def _final_leader(run: Run) -> Any:
    end = run.end() - 1e-3
    ivs = [iv for iv in run.model.leaders() if iv.start <= end < iv.end or iv.end >= run.model.end]
    return max(ivs, key=lambda iv: iv.term or 0) if ivs else None


def leader_in(run: Run, e: ex.LeaderIn) -> CheckResult:
    nodes = [run.node(x) for x in e.nodes]
    iv = _final_leader(run)
    if iv is None:
        return CheckResult(e.label(), False, "no leader at the end")
    return CheckResult(
        e.label(), iv.node in nodes, f"the leader at the end is {iv.node} (term {iv.term})"
    )


def leader_is(run: Run, e: ex.LeaderIs) -> CheckResult:
    node = run.node(e.node)
    if e.after_step:
        # The leader when the step ended (a step that already found its
        # leader in place, or waited for a transfer); else the first one
        # elected after the step began.
        step = run.step(e.after_step)
        t, t_end = run.rel(step.start), run.rel(step.end)
        leaders = run.model.leaders()
        then = [iv for iv in leaders if iv.start <= t_end < iv.end]
        later = [iv for iv in leaders if iv.start > t - 1e-6]
        iv = max(then, key=lambda x: x.term or 0) if then else (later[0] if later else None)
    else:
        iv = _final_leader(run)
    if iv is None:
        return CheckResult(e.label(), False, "no leader was elected then")
    return CheckResult(
        e.label(), iv.node == node, f"{iv.node} led in term {iv.term} from {iv.start:.2f} s"
    )


def stepped_down(run: Run, e: ex.SteppedDown) -> CheckResult:
    node = run.node(e.node)
    step = run.step(e.after_step)
    t0, limit = run.rel(step.start), run.rel(step.end) + (e.seconds or 5.0)
    ivs = [iv for iv in run.model.roles.get(node, []) if iv.end > t0 - 1e-6]
    leading = [iv for iv in ivs if iv.role == "leader"]
    if not leading:
        return CheckResult(e.label(), True, f"{node} was not leader after step {step.number}")
    last = leading[-1]
    if last.end >= run.end():
        return CheckResult(e.label(), False, f"{node} still leads (term {last.term}) at the end")
    after = next((iv for iv in ivs if iv.start >= last.end - 1e-6), None)
    newer = f" and became {after.role} in term {after.term}" if after else ""
    return CheckResult(
        e.label(),
        last.end <= limit,
        f"{node} stopped leading term {last.term} at {last.end:.2f} s{newer}",
    )


def uncommitted_overwritten(run: Run, e: ex.UncommittedOverwritten) -> CheckResult:
    node = run.node(e.node)
    snaps = run.model.logs.get(node, [])
    if len(snaps) < 2:
        return CheckResult(e.label(), False, f"{node} traced its log fewer than twice")
    final = dict(snaps[-1].entries)
    for s in snaps[:-1]:
        for index, term in s.entries:
            if index > s.commit and index in final and final[index] != term:
                run.metrics["overwritten_index"] = index
                return CheckResult(
                    e.label(),
                    True,
                    f"{node} held index {index} from term {term} uncommitted at {s.t:.2f} s; "
                    f"at the end index {index} is from term {final[index]}",
                )
    return CheckResult(e.label(), False, f"no uncommitted entry of {node} was replaced")


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


def winner_most_up_to_date(run: Run, e: ex.WinnerMostUpToDate) -> CheckResult:
    """§5.4.1: every leader elected (after step ``after_step``) had, when it
    campaigned, a log at least as up to date -- last term, then length -- as
    every other manager that was up and could reach it.

    The logs come from the ``log`` trace lines (a node writes one on every role
    change, so a candidate's log is known as it campaigns; the runner asks every
    node for one after each step of a scenario with this check).  Raft itself
    promises only "at least as up to date as a majority": a node that holds an
    extra uncommitted entry no majority has can lose to one without it."""
    m = run.model
    since = run.rel(run.step(e.after_step).start) if e.after_step else -1.0
    wins = [w for w in m.won() if w.t >= since - 1e-6]
    if not wins:
        where = f" after step {e.after_step}" if e.after_step else ""
        return CheckResult(e.label(), False, f"no leader was elected{where}")
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
    return CheckResult(e.label(), not bad, detail)
