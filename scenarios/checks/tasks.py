"""Checks about tasks and management, from what the steps recorded.

``snapshot`` and ``watch_tasks`` steps left task samples in
``run.records["tasks"]`` (`scenarios.steps.tasks`); ``manage`` steps left
their answers in ``run.records["manage"]``.  Every check here compares
those records, so it judges what the run saw at the moment it mattered (a
task still running *while* there was no quorum), not the cluster at the end.
Each can fail: a missing snapshot, no task at all, no attempt at all, are
failures, never passes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from scenarios.checks.run import CheckResult, Run
from scenarios.steps import NotApplicable
from scenarios.steps import expects_tasks as et
from scenarios.steps.tasks import is_quorum_refusal, live_running

__all__ = ["TASK_CHECKS", "samples", "snapshot"]


class Missing(Exception):
    """A record the check needs was never made (the check fails, saying which)."""


def samples(run: Run) -> list[dict[str, Any]]:
    """Every task sample of the run, in time order (snapshots and watches)."""
    if run.mode != "real":
        raise NotApplicable("tasks are not simulated")
    return run.records.get("tasks", [])


def snapshot(run: Run, name: str) -> dict[str, Any]:
    for s in samples(run):
        if s.get("name") == name:
            return s
    raise Missing(f"no snapshot named {name!r} was taken (a step failed before it?)")


def _attempts(run: Run, steps: list[int]) -> list[dict[str, Any]]:
    if run.mode != "real":
        raise NotApplicable("Swarm management is not simulated")
    lo, hi = steps[0], steps[-1]
    return [a for a in run.records.get("manage", []) if lo <= a["step"] <= hi]


def _held(sample: dict[str, Any], node: str) -> set[str]:
    """Tasks ``node``'s own agent says it runs."""
    agent = sample["agents"].get(node)
    if agent is None:
        return set()
    return {tid for tid, state in agent["tasks"].items() if state == "running"}


def _eligible(sample: dict[str, Any]) -> list[str]:
    """Nodes that can take a task: ready and active."""
    return sorted(
        n
        for n, v in sample["nodes"].items()
        if v["state"] == "ready" and v["availability"] == "active"
    )


def _per_node(sample: dict[str, Any], service: str) -> Counter[str]:
    return Counter(t["node"] for t in live_running(sample) if t["service"] == service)


# ---------------------------------------------------------------- checks


def tasks_kept_running(run: Run, e: et.TasksKeptRunning) -> CheckResult:
    a, b = snapshot(run, e.since), snapshot(run, e.at)
    nodes = [run.node(n) for n in e.nodes] if e.nodes else sorted(a["agents"])
    kept, lost, extra, parts = 0, [], [], []
    for node in nodes:
        before, after = _held(a, node), _held(b, node)
        gone = before - after
        lost += [f"{tid[:8]}@{node}" for tid in sorted(gone)]
        kept += len(before & after)
        if e.exactly:
            extra += [f"{tid[:8]}@{node}" for tid in sorted(after - before)]
        heard = b["agents"].get(node, {}).get("last_contact")
        since = f", last heard from a manager {b['t'] - heard:.2f} s earlier" if heard else ""
        parts.append(f"{node} {len(before & after)} of {len(before)}{since}")
    detail = (
        f"tasks the agents ran at '{e.since}' still running at '{e.at}' "
        f"({b['t'] - a['t']:.2f} s later): {'; '.join(parts)}"
    )
    if lost:
        detail += f"; stopped: {', '.join(lost[:6])}"
    if extra:
        detail += f"; new there: {', '.join(extra[:6])}"
    elif e.exactly:
        detail += "; no new task there"
    detail += (
        f" (tasks running in the swarm: {len(live_running(a))} at '{e.since}', "
        f"{len(live_running(b))} at '{e.at}')"
    )
    total = sum(len(_held(a, n)) for n in nodes)
    run.metrics.setdefault(
        "tasks_fact",
        f"{kept} of {total} tasks still running at '{e.at}', {b['t'] - a['t']:.2f} s after "
        f"'{e.since}'",
    )
    return CheckResult(e.label(), kept > 0 and not lost and not extra, detail)


def management_refused_no_quorum(run: Run, e: et.ManagementRefusedNoQuorum) -> CheckResult:
    tries = _attempts(run, e.steps)
    if not tries:
        return CheckResult(e.label(), False, "no manage step ran in these steps")
    parts, ok, refused = [], True, 0
    for a in tries:
        quorum = a["outcome"] == "refused" and is_quorum_refusal(a["status"], a["error"])
        ok = ok and quorum
        refused += quorum
        answer = f"{a['status']} from {a['node']}" if a["status"] else f"no answer ({a['node']})"
        parts.append(f"{a['command'].replace('_', ' ')}: {answer}: {a['error'] or 'accepted'}")
    names = ", ".join(a["command"].replace("_", " ") for a in tries)
    run.metrics.setdefault(
        "refused_fact", f"{refused} of {len(tries)} commands ({names}) refused: 503, no quorum"
    )
    return CheckResult(e.label(), ok, "; ".join(parts))


def management_accepted(run: Run, e: et.ManagementAccepted) -> CheckResult:
    tries = _attempts(run, e.steps)
    if not tries:
        return CheckResult(e.label(), False, "no manage step ran in these steps")
    bad = [a for a in tries if a["outcome"] != "ok"]
    parts = [
        f"{a['command'].replace('_', ' ')}: "
        + (f"accepted by {a['node']}" if a["outcome"] == "ok" else f"{a['status']} {a['error']}")
        for a in tries
    ]
    return CheckResult(e.label(), not bad, "; ".join(parts))


def one_task_per_node(run: Run, e: et.OneTaskPerNode) -> CheckResult:
    s = snapshot(run, e.at)
    per = _per_node(s, e.service)
    eligible = _eligible(s)
    twice = sorted(n for n, k in per.items() if k > 1)
    missing = [n for n in eligible if per[n] == 0]
    outside = sorted(n for n in per if n not in eligible)
    detail = (
        f"{sum(per.values())} tasks of {e.service} on {len(per)} nodes "
        f"({', '.join(sorted(per))}); nodes that can take one: {', '.join(eligible)}"
    )
    ineligible = sorted(n for n in s["nodes"] if n not in eligible)
    if ineligible:
        states = ", ".join(
            f"{n} {s['nodes'][n]['availability']}/{s['nodes'][n]['state']}" for n in ineligible
        )
        detail += f"; none on {states}" if not outside else f"; yet some on {', '.join(outside)}"
    ok = bool(per) and not twice and not missing and not outside
    # One phrase for every snapshot this check looked at, in the run's order.
    part = f"{len(per)} nodes at '{e.at}'"
    fact = run.metrics.get("tasks_fact")
    if fact is None:
        run.metrics["tasks_fact"] = f"one task on each of {part}"
    elif fact.startswith("one task on each of "):
        run.metrics["tasks_fact"] = f"{fact}, {part}"
    if twice:
        detail += f"; more than one on {', '.join(twice)}"
    if missing:
        detail += f"; none on {', '.join(missing)}"
    if e.nodes is not None:
        want = sorted(run.node(n) for n in e.nodes)
        if sorted(per) != want:
            ok = False
            detail += f"; expected exactly {', '.join(want)}"
    return CheckResult(e.label(), ok, detail)


def _placement(sample: dict[str, Any]) -> dict[str, str]:
    return {t["id"]: t["node"] for t in live_running(sample)}


def placement_unchanged(run: Run, e: et.PlacementUnchanged) -> CheckResult:
    a, b = _placement(snapshot(run, e.since)), _placement(snapshot(run, e.at))
    moved = sorted(t for t in a if t in b and a[t] != b[t])
    gone = sorted(set(a) - set(b))
    new = sorted(set(b) - set(a))
    counts = Counter(b.values())
    detail = (
        f"{len(a)} tasks at '{e.since}', {len(b)} at '{e.at}': {len(moved)} moved, "
        f"{len(gone)} stopped, {len(new)} new; at '{e.at}': "
        + ", ".join(f"{n} {k}" for n, k in sorted(counts.items()))
    )
    return CheckResult(e.label(), bool(a) and not moved and not gone and not new, detail)


def tasks_spread(run: Run, e: et.TasksSpread) -> CheckResult:
    s = snapshot(run, e.at)
    per = _per_node(s, e.service)
    eligible = _eligible(s)
    counts = [per[n] for n in eligible]
    detail = f"{e.service} at '{e.at}': " + ", ".join(f"{n} {per[n]}" for n in eligible)
    ok = bool(counts) and min(counts) > 0 and max(counts) - min(counts) <= 1
    return CheckResult(e.label(), ok, detail)


def tasks_rescheduled(run: Run, e: et.TasksRescheduled) -> CheckResult:
    node = run.node(e.node)
    a, b = snapshot(run, e.since), snapshot(run, e.at)
    were = [t for t in live_running(a) if t["service"] == e.service and t["node"] == node]
    now = [t for t in live_running(b) if t["service"] == e.service]
    still = [t for t in now if t["node"] == node]
    want = b["services"].get(e.service, {}).get("replicas")
    where = Counter(t["node"] for t in now)
    detail = (
        f"{len(were)} tasks of {e.service} on {node} at '{e.since}'; at '{e.at}': "
        f"{len(now)} of {want} running ("
        + ", ".join(f"{n} {k}" for n, k in sorted(where.items()))
        + ")"
    )
    # Times from the kill of the node, if a step between the snapshots killed it.
    kill = next(
        (
            s
            for s in run.steps
            if s.action == "kill"
            and s.status == "ok"
            and a["t"] <= s.start <= b["t"]
            and node in (s.text.split()[-1], *s.resolved.values())
        ),
        None,
    )
    origin, since = (
        (kill.start, f"the kill (step {kill.number})") if kill else (a["t"], f"'{e.since}'")
    )
    down, off = _failure_times(run, node, origin, b["t"])
    if down is not None:
        detail += f"; {node} seen down {down:.1f} s after {since}"
    if off is not None:
        detail += f", its tasks written off {off:.1f} s after {since}"
    ok = bool(were) and not still and want is not None and len(now) == want
    fact = f"{len(were)} tasks of {node} replaced elsewhere, {len(now)} of {want} running"
    if down is not None and off is not None:
        fact += f"; seen down {down:.1f} s, tasks replaced {off:.1f} s after {since}"
    run.metrics.setdefault("tasks_fact", fact)
    return CheckResult(e.label(), ok, detail)


def _failure_times(run: Run, node: str, t0: float, t1: float) -> tuple[float | None, float | None]:
    """Seconds after ``t0`` when a sample first showed ``node`` down, and first
    showed none of its tasks desired running (to the sampling period)."""
    down = off = None
    for s in samples(run):
        if not t0 <= s["t"] <= t1:
            continue
        if down is None and s["nodes"].get(node, {}).get("state") == "down":
            down = s["t"] - t0
        gone = not any(t["node"] == node and t["desired"] == "running" for t in s["tasks"])
        if off is None and gone:
            off = s["t"] - t0
    return down, off


def drained_manager_votes(run: Run, e: et.DrainedManagerVotes) -> CheckResult:
    node = run.node(e.node)
    ops = [op for op in run.ops_in(e.steps)]
    if run.mode != "real":
        raise NotApplicable("node availability is not simulated")
    if not ops:
        return CheckResult(e.label(), False, "no write in these steps")
    start = min(op.start for op in ops)
    before = [s for s in samples(run) if s["t"] <= start]
    if not before:
        return CheckResult(e.label(), False, f"no snapshot before the writes shows {node}")
    avail = before[-1]["nodes"].get(node, {}).get("availability")
    m = run.model
    t = run.rel(start)
    voters = m.voters_at(t)
    up = [n for n in voters if m.role_at(n, t) not in (None, "down", "paused")]
    acked = sum(op.outcome == "ok" for op in ops)
    majority = len(voters) // 2 + 1
    detail = (
        f"{node} availability {avail} at the last snapshot before the writes; voters "
        f"{', '.join(voters)}; up: {', '.join(up)} ({len(up)} of {len(voters)}, "
        f"{majority} needed); {acked} of {len(ops)} writes acknowledged"
    )
    ok = (
        avail == "drain"
        and node in voters
        and node in up
        and len(up) == majority
        and acked == len(ops)
    )
    if ok:
        detail += f": no majority without {node}'s vote"
    return CheckResult(e.label(), ok, detail)


def _guarded(check: Callable[[Run, Any], CheckResult]) -> Callable[[Run, Any], CheckResult]:
    def run_it(run: Run, e: Any) -> CheckResult:
        try:
            return check(run, e)
        except Missing as exc:
            return CheckResult(e.label(), False, str(exc))

    run_it.__doc__ = check.__doc__
    return run_it


#: expectation class -> its check.
TASK_CHECKS: dict[type, Callable[[Run, Any], CheckResult]] = {
    et.TasksKeptRunning: _guarded(tasks_kept_running),
    et.ManagementRefusedNoQuorum: management_refused_no_quorum,
    et.ManagementAccepted: management_accepted,
    et.OneTaskPerNode: _guarded(one_task_per_node),
    et.PlacementUnchanged: _guarded(placement_unchanged),
    et.TasksSpread: _guarded(tasks_spread),
    et.TasksRescheduled: _guarded(tasks_rescheduled),
    et.DrainedManagerVotes: drained_manager_votes,
}
