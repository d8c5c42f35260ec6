"""What needs the whole trace at once: fault intervals and quorum over time.

`_fault_intervals` pairs each fault with what undid it (kill..restart or
the node's next start line, pause..unpause, partition..heal) so a figure can
shade the time it was in force.  `_quorum` replays the faults, start and
stop lines and membership changes to count, at every instant where it can
change, the most voters that can reach each other against the majority
they need (the rule is written in `viz.model`, "Conventions of the model").
Both are pure functions of the lines `viz.model_build` has read; they are
kept apart because they reason about the cluster, not about one node.
"""

from __future__ import annotations

from typing import Any

from viz.model_data import Fault, FaultInterval, Quorum, _voters_from


def _fault_intervals(
    faults: list[Fault], rel: list[dict[str, Any]], nodes: tuple[str, ...], end: float
) -> list[FaultInterval]:
    """kill..restart (or the node's next start line), pause..unpause, partition..heal."""
    starts = {
        n: sorted(r["t"] for r in rel if r["type"] == "start" and r.get("node") == n) for n in nodes
    }
    out: list[FaultInterval] = []
    open_kill: dict[str, float] = {}
    open_pause: dict[str, float] = {}
    part: tuple[float, Fault] | None = None

    def close_part(t: float, healed: bool) -> None:
        nonlocal part
        if part is not None:
            t0, f = part
            groups = _groups(f, nodes)
            who = f.targets if f.kind == "isolate" else tuple(x for g in groups for x in g)
            out.append(FaultInterval("partition", t0, t, who, groups, f.kind, healed))
            part = None

    for f in faults:
        if f.kind == "kill":
            for n in f.targets:
                open_kill.setdefault(n, f.t)
        elif f.kind == "restart":
            for n in f.targets:
                if n in open_kill:
                    out.append(FaultInterval("kill", open_kill.pop(n), f.t, (n,), cause="kill"))
        elif f.kind == "pause":
            for n in f.targets:
                open_pause.setdefault(n, f.t)
        elif f.kind == "unpause":
            for n in f.targets:
                if n in open_pause:
                    out.append(FaultInterval("pause", open_pause.pop(n), f.t, (n,), cause="pause"))
        elif f.kind in ("partition", "isolate"):
            close_part(f.t, True)  # a new partition replaces the old one
            part = (f.t, f)
        elif f.kind == "heal":
            close_part(f.t, True)
    for n, t0 in open_kill.items():
        # No restart fault: the node's own start line, if any, ends it.
        later = [s for s in starts.get(n, ()) if s > t0]
        t1, healed = (later[0], True) if later else (end, False)
        out.append(FaultInterval("kill", t0, t1, (n,), cause="kill", healed=healed))
    for n, t0 in open_pause.items():
        out.append(FaultInterval("pause", t0, end, (n,), cause="pause", healed=False))
    close_part(end, False)
    return sorted(out, key=lambda iv: (iv.start, iv.kind))


def _groups(f: Fault, nodes: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    if f.kind == "isolate":
        rest = tuple(n for n in nodes if n not in f.targets)
        return (tuple(f.targets), rest) if rest else (tuple(f.targets),)
    groups = [tuple(g) for g in f.groups]
    if not groups:
        return ()
    listed = {x for g in groups for x in g}
    # A node no group names is cut off alone (the conservative reading).
    groups += [(n,) for n in nodes if n not in listed]
    return tuple(groups)


def _quorum(
    rel: list[dict[str, Any]],
    faults: list[Fault],
    nodes: tuple[str, ...],
    membership: list[tuple[float, tuple[str, ...]]],
    first_seen: dict[str, float],
    end: float,
) -> Quorum:
    # Instants where reachability can change.
    down: dict[str, bool] = {}
    paused: dict[str, bool] = {}
    groups: tuple[tuple[str, ...], ...] = ()
    changes: list[tuple[float, str, Any]] = []
    for n, t in first_seen.items():
        changes.append((t, "seen", n))
    for r in rel:
        if r["type"] == "start" and r.get("node") in first_seen:
            changes.append((r["t"], "up", r["node"]))
        elif r["type"] in ("stop", "locked") and r.get("node") in first_seen:
            changes.append((r["t"], "down", r["node"]))
    for f in faults:
        changes.append((f.t, "fault", f))
    for t, _ in membership:
        changes.append((t, "membership", None))
    changes.sort(key=lambda c: c[0])

    def reachable(t: float) -> tuple[int, int, int]:
        voters = _voters_from(membership, nodes, t)
        live = {
            n
            for n in voters
            if n in first_seen and first_seen[n] <= t and not down.get(n) and not paused.get(n)
        }
        best = max(len(live & set(g)) for g in groups) if groups else len(live)
        return best, len(voters), len(voters) // 2 + 1

    times: list[float] = []
    reach: list[int] = []
    voters_n: list[int] = []
    needed: list[int] = []
    for t, what, arg in changes:
        if what == "up":
            down[arg] = False
        elif what == "down":
            down[arg] = True
        elif what == "fault":
            f: Fault = arg
            for n in f.targets:
                if f.kind == "kill":
                    down[n] = True
                elif f.kind == "restart":
                    down[n] = False
                    paused[n] = False
                elif f.kind == "pause":
                    paused[n] = True
                elif f.kind == "unpause":
                    paused[n] = False
            if f.kind in ("partition", "isolate"):
                groups = _groups(f, nodes)
            elif f.kind == "heal":
                groups = ()
        r, v, need = reachable(t)
        if times and times[-1] == t:
            reach[-1], voters_n[-1], needed[-1] = r, v, need
        elif not reach or (r, v, need) != (reach[-1], voters_n[-1], needed[-1]):
            times.append(t)
            reach.append(r)
            voters_n.append(v)
            needed.append(need)
    lost: list[tuple[float, float]] = []
    for i, t in enumerate(times):
        if reach[i] < needed[i]:
            t1 = times[i + 1] if i + 1 < len(times) else end
            if lost and lost[-1][1] == t:
                lost[-1] = (lost[-1][0], t1)
            else:
                lost.append((t, t1))
    # A cluster that is still starting up has not *lost* its quorum.
    all_started = max(first_seen.values(), default=0.0)
    if lost and times and lost[0][0] == times[0] and lost[0][1] <= all_started + 1e-9:
        lost.pop(0)
    return Quorum(tuple(times), tuple(reach), tuple(voters_n), tuple(needed), tuple(lost))
