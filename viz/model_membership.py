"""Who voted and who only learned, over time: the cluster's configurations.

Every node traces a ``membership`` line (voters, learners, term) whenever
its configuration changes: the leader as it appends a change, followers as
they receive it, a restarted node as it reloads its log.  Those lines do not
agree on *when*: a follower's clock may run a few ms ahead of the leader's,
so it can trace a change before the leader does, and a node restarted after
missing a change traces the configuration it had.  The leader's lines say
when a change happened, so `configurations` reads the cluster's
configurations from them:

* a line traced by the node that was leader at that instant is the change;
* another node's line counts only when no leader line says the same: it is
  dropped when its configuration is one a leader traced before it (already
  in force, or stale) or traces within `EARLY` seconds after it (the same
  change, seen early);
* before the first configuration, the *founding* one: what the earliest
  ``start`` line says the node started with (``voters``, ``learners``), or
  in older traces a guess: the first one's voters, plus every node seen
  before it that did not join later (a node is a newcomer when it started
  with an empty log after a leader was elected).
  No learners: a node the first configuration lists as a learner was outside
  before, unless it ran from the start (then it was a voter, demoted).

`overlay` then tells apart, in each node's lane, the follower stretches
where the node was a *learner* (receives the log, does not vote, does not
count in a quorum; dissertation §4.2.1) or not a member at all (before it
joined, after it was removed).  A ``role`` line whose ``to`` is ``learner``
is drawn as one too.  Roles other than follower are left as traced.
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

from viz.model_data import LEARNER, OUTSIDE, Config, RoleInterval

__all__ = ["EARLY", "configurations", "membership_lines", "overlay"]

#: How much earlier than the leader a follower may trace the same change.
EARLY = 0.5


def membership_lines(rel: list[dict[str, Any]]) -> list[Config]:
    """Every ``membership`` line naming voters, as a `Config` (source unset)."""
    return [
        Config(
            r["t"],
            tuple(str(x) for x in r.get("voters") or ()),
            tuple(str(x) for x in r.get("learners") or ()),
            str(r.get("node")),
            "follower",
        )
        for r in rel
        if r["type"] == "membership" and r.get("voters")
    ]


def _same(a: Config, b: Config) -> bool:
    return set(a.voters) == set(b.voters) and set(a.learners) == set(b.learners)


def _leading(roles: dict[str, list[RoleInterval]], node: str | None, t: float) -> bool:
    ivs = roles.get(node or "", ())
    for i, iv in enumerate(ivs):
        last = i == len(ivs) - 1
        if iv.start <= t < iv.end or (last and iv.start <= t <= iv.end):
            return iv.role == "leader"
    return False


def configurations(
    rel: list[dict[str, Any]],
    roles: dict[str, list[RoleInterval]],
    nodes: tuple[str, ...],
    first_seen: dict[str, float],
) -> list[Config]:
    """The configurations in force, in time order (rules in the module doc);
    empty without ``membership`` lines."""
    lines = membership_lines(rel)
    if not lines:
        return []
    lead = [
        Config(c.t, c.voters, c.learners, c.node, "leader")
        for c in lines
        if _leading(roles, c.node, c.t)
    ]
    times = [c.t for c in lead]
    chosen = list(lead)
    for c in lines:
        if _leading(roles, c.node, c.t):
            continue
        i = bisect.bisect_right(times, c.t)
        if any(_same(c, x) for x in lead[:i]):
            continue  # already in force, or a stale one reloaded
        if any(_same(c, x) for x in lead[i:] if x.t - c.t <= EARLY):
            continue  # the leader's line of the same change, a little later
        chosen.append(c)
    chosen.sort(key=lambda c: c.t)
    out: list[Config] = []
    for c in chosen:
        if not out or not _same(out[-1], c):
            out.append(c)
    first = out[0]
    started = [r for r in rel if r["type"] == "start" and r.get("voters") and r["t"] < first.t]
    if first.t > 0 and started:
        # Nodes trace the configuration they start with (traces since it
        # was added): the earliest such line is the founding configuration.
        r = started[0]
        voters = tuple(str(x) for x in r["voters"])
        learners = tuple(str(x) for x in r.get("learners") or ())
        out.insert(0, Config(0.0, voters, learners, None, "founding"))
    elif first.t > 0:
        newcomers = _newcomers(rel, roles)
        before = {n for n, t in first_seen.items() if t < first.t and n not in newcomers}
        founders = set(first.voters) | before
        order = [n for n in nodes if n in founders]
        order += sorted(founders - set(order))
        out.insert(0, Config(0.0, tuple(order), (), None, "founding"))
    return out


def _newcomers(rel: list[dict[str, Any]], roles: dict[str, list[RoleInterval]]) -> set[str]:
    """Nodes whose first start line shows an empty log after a leader was elected."""
    led = min(
        (iv.start for ivs in roles.values() for iv in ivs if iv.role == "leader"), default=None
    )
    out: set[str] = set()
    started: set[str] = set()
    for r in rel:
        if r["type"] != "start" or r.get("node") is None:
            continue
        node = str(r["node"])
        if node in started:
            continue
        started.add(node)
        last = r.get("last_log_index", r.get("commit_index"))
        if led is not None and led < r["t"] and last == 0:
            out.add(node)
    return out


def overlay(
    roles: dict[str, list[RoleInterval]], configs: list[Config]
) -> dict[str, list[RoleInterval]]:
    """Each lane with its follower stretches split where the configuration
    changes and named `LEARNER` or `OUTSIDE` where the node was one."""
    if not configs:
        return roles
    times = [c.t for c in configs]

    def config_at(t: float) -> Config:
        return configs[max(bisect.bisect_right(times, t) - 1, 0)]

    shown = {"voter": "follower", "learner": LEARNER, "outside": OUTSIDE}
    out: dict[str, list[RoleInterval]] = {}
    for node, ivs in roles.items():
        lane: list[RoleInterval] = []
        for iv in ivs:
            if iv.role != "follower":
                _append(lane, iv)
                continue
            cuts = [iv.start, *(t for t in times if iv.start < t < iv.end), iv.end]
            for a, b in itertools.pairwise(cuts):
                role = shown[config_at(a).status(node)]
                _append(lane, RoleInterval(node, role, iv.term, a, b))
        out[node] = lane
    return out


def _append(lane: list[RoleInterval], iv: RoleInterval) -> None:
    """Add ``iv``, merged into the previous interval when it continues it."""
    if lane:
        p = lane[-1]
        if (p.role, p.term) == (iv.role, iv.term) and abs(p.end - iv.start) < 1e-12:
            lane[-1] = RoleInterval(p.node, p.role, p.term, p.start, iv.end)
            return
    lane.append(iv)
