"""How trace lines become a `TraceModel`: one pass over them, then `build`.

Lines this module reads
-----------------------

From the nodes (the core's trace events plus the driver's additions)::

    role        from, to, term            a role change (follower, pre-candidate,
                                          candidate, leader; learner if traced)
    election    term, pre_vote            a campaign starts (pre-vote: the term
                                          it would take)
    vote        candidate, granted, term, pre_vote, reason (when refused)
    commit      index, term [first_index, count]     (sampled by the driver)
    apply       index [op, first_index, count]       (sampled by the driver)
    start       term, commit_index, ...   the process started (back up)
    stop                                  a clean shutdown (down until a start)
    leader      leader, term              who this node believes leads
    check_quorum, membership {voters, learners, term}, snapshot, transfer

and one optional event this module defines, for the log matrix::

    log         entries: [[index, term], ...], commit, snapshot_index (opt.)

A ``log`` line is the node's whole log (or a suffix of it: entries up to
``snapshot_index`` are compacted) at one instant.  Nodes write it at key
instants -- when they start, change role, and when a scenario asks (before a
fault, at the end) -- never per entry.  Without ``log`` lines there is no log
matrix; everything else works.

From the supervisor and the scenario runner::

    fault   kind (kill, restart, pause, unpause, partition, isolate, heal),
            targets (list of nodes; ``target`` or ``nodes`` are accepted too),
            groups (partition: list of lists of nodes)
    client  op, start, end (Unix seconds), outcome (ok, fail, timeout), index,
            error; or two lines sharing an ``id``, with ``phase`` start / end

`build` sorts the lines, names the nodes, runs `_Builder` over them (roles,
terms, elections and votes, commit and apply, logs), reads the client
operations, asks `viz.model_membership` for the configurations (the
leader's ``membership`` lines first) and for the learner and not-a-member
stretches of each lane, and `viz.model_quorum` for what needs the whole
trace at once (fault intervals, quorum).  The conventions it follows are written in
`viz.model`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from viz.model_data import (
    DOWN,
    LOCKED,
    PAUSED,
    ClientOp,
    Election,
    Fault,
    LogSnapshot,
    RoleInterval,
    Steps,
    TraceError,
    TraceModel,
    Vote,
)
from viz.model_membership import configurations, overlay
from viz.model_quorum import _fault_intervals, _quorum

__all__ = ["NODE_TYPES", "build"]

#: Line types written by a node itself (their ``node`` is a Raft node).
NODE_TYPES = frozenset(
    {
        "start",
        "stop",
        "locked",
        "role",
        "election",
        "vote",
        "commit",
        "apply",
        "log",
        "leader",
        "membership",
        "snapshot",
        "check_quorum",
        "transfer",
        "append",
        "append_reply",
    }
)

_CLIENT_OUTCOMES = {
    "ok": "ok",
    "success": "ok",
    "fail": "fail",
    "failed": "fail",
    "error": "fail",
    "timeout": "timeout",
}


def _natural(name: str) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def _targets(rec: dict[str, Any]) -> tuple[str, ...]:
    for key in ("targets", "target", "nodes"):
        v = rec.get(key)
        if isinstance(v, str):
            return (v,)
        if isinstance(v, list | tuple):
            return tuple(str(x) for x in v)
    return ()


def _int(v: Any) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def build(records: Iterable[dict[str, Any]]) -> TraceModel:
    """The model from trace lines (any order; they are sorted by ``t``, stably)."""
    recs = sorted(records, key=lambda r: float(r["t"]))
    if not recs:
        raise TraceError("no trace lines")
    t0 = float(recs[0]["t"])
    end = float(recs[-1]["t"]) - t0
    rel = [dict(r, t=float(r["t"]) - t0) for r in recs]

    # A fault on a worker (``role``: a Swarm agent, no Raft state) is no Raft event:
    # counting its target as a node would make it a voter in every figure.
    faults = [_fault(r) for r in rel if r["type"] == "fault" and r.get("role") != "worker"]
    nodes = _nodes(rel, faults)
    b = _Builder(nodes, end)
    for r in rel:
        b.feed(r)
    b.finish()

    fault_intervals = _fault_intervals(faults, rel, nodes, end)
    configs = configurations(rel, b.roles, nodes, b.first_seen)
    membership = [(c.t, c.voters) for c in configs]
    quorum = _quorum(rel, faults, nodes, membership, b.first_seen, end)
    return TraceModel(
        t0=t0,
        end=end,
        nodes=nodes,
        roles=overlay(b.roles, configs),
        terms={n: Steps(tuple(t), tuple(v)) for n, (t, v) in b.term_steps.items()},
        elections=b.elections_with_votes(),
        votes=b.votes,
        commit={n: Steps(tuple(t), tuple(v)) for n, (t, v) in b.commit_steps.items()},
        applied={n: Steps(tuple(t), tuple(v)) for n, (t, v) in b.applied_steps.items()},
        faults=faults,
        fault_intervals=fault_intervals,
        quorum=quorum,
        clients=_clients(rel, t0),
        logs=b.logs,
        membership=membership,
        warnings=b.warnings,
        configs=configs,
    )


def _fault(r: dict[str, Any]) -> Fault:
    groups = tuple(tuple(sorted((str(x) for x in g), key=_natural)) for g in r.get("groups") or ())
    kind = str(r.get("kind", "?"))
    targets = _targets(r)
    if not targets and groups:
        targets = tuple(sorted({x for g in groups for x in g}, key=_natural))
    return Fault(r["t"], kind, targets, groups)


def _nodes(rel: list[dict[str, Any]], faults: list[Fault]) -> tuple[str, ...]:
    names: set[str] = set()
    for r in rel:
        if r["type"] in NODE_TYPES and r.get("node") is not None:
            names.add(str(r["node"]))
        if r["type"] == "membership":
            names.update(str(x) for x in r.get("voters", ()) or ())
    for f in faults:
        if f.kind != "heal":
            names.update(f.targets)
            names.update(x for g in f.groups for x in g)
    return tuple(sorted(names, key=_natural))


class _Builder:
    """One pass over the lines: roles, terms, elections, votes, commit/apply, logs."""

    def __init__(self, nodes: tuple[str, ...], end: float) -> None:
        self.nodes = nodes
        self.end = end
        self.roles: dict[str, list[RoleInterval]] = {n: [] for n in nodes}
        self.term_steps: dict[str, tuple[list[float], list[int | None]]] = {
            n: ([], []) for n in nodes
        }
        self.commit_steps: dict[str, tuple[list[float], list[int | None]]] = {
            n: ([], []) for n in nodes
        }
        self.applied_steps: dict[str, tuple[list[float], list[int | None]]] = {
            n: ([], []) for n in nodes
        }
        self.logs: dict[str, list[LogSnapshot]] = {n: [] for n in nodes}
        self.votes: list[Vote] = []
        self.warnings: list[str] = []
        self.first_seen: dict[str, float] = {}
        # Per node: underlying role, term, down/paused flags, the open interval.
        self._role: dict[str, str] = {}
        self._term: dict[str, int | None] = {}
        self._down: dict[str, bool] = {}
        self._paused: dict[str, bool] = {}
        self._open: dict[str, tuple[str, int | None, float]] = {}
        # Elections: (t, node, term, pre_vote, outcome, decided); open ones by node.
        self._elections: list[list[Any]] = []
        self._campaign: dict[str, list[Any]] = {}

    # -------------------------------------------------------------- intervals

    def _touch(self, node: str, t: float) -> None:
        if node in self.first_seen:
            return
        self.first_seen[node] = t
        self._role[node] = "follower"
        self._term.setdefault(node, None)
        self._down[node] = False
        self._paused[node] = False
        self._open[node] = ("follower", self._term[node], t)

    def _shown(self, node: str) -> str:
        if self._down[node]:
            return DOWN
        if self._paused[node]:
            return PAUSED
        return self._role[node]

    def _refresh(self, node: str, t: float) -> None:
        """Close the open interval if what is shown (role or term) changed."""
        role, term, start = self._open[node]
        now = (self._shown(node), self._term[node])
        if now == (role, term):
            return
        if t > start:
            self.roles[node].append(RoleInterval(node, role, term, start, t))
        self._open[node] = (now[0], now[1], t)

    def _set_term(self, node: str, t: float, term: Any) -> None:
        term = _int(term)
        if term is None:
            return
        old = self._term.get(node)
        if old is not None and term <= old:
            return
        self._term[node] = term
        ts, vs = self.term_steps[node]
        ts.append(t)
        vs.append(term)

    def _gap_term(self, node: str, t: float, down: bool) -> None:
        """A down node has no term on the plot; back up, it has its last one."""
        ts, vs = self.term_steps[node]
        value = None if down else self._term.get(node)
        if vs and vs[-1] != value and (down or vs[-1] is None):
            ts.append(t)
            vs.append(value)

    @staticmethod
    def _step(series: tuple[list[float], list[int | None]], t: float, v: int | None) -> None:
        ts, vs = series
        if vs and vs[-1] == v:
            return
        ts.append(t)
        vs.append(v)

    # -------------------------------------------------------------- elections

    def _decide(self, node: str, outcome: str, t: float) -> None:
        e = self._campaign.pop(node, None)
        if e is not None:
            e[4], e[5] = outcome, t

    def _on_role(self, node: str, to: str, t: float) -> None:
        e = self._campaign.get(node)
        if e is None:
            return
        pre_vote = e[3]
        if to == "follower":
            self._decide(node, "lost", t)
        elif to == "leader" or (pre_vote and to == "candidate"):
            self._decide(node, "won", t)
        elif not pre_vote and to == "pre-candidate":
            self._decide(node, "timed out", t)

    def _on_election(self, node: str, r: dict[str, Any]) -> None:
        t = r["t"]
        pre_vote = bool(r.get("pre_vote", False))
        prev = self._campaign.get(node)
        if prev is not None:
            # A real election right after a pre-vote means the pre-vote was won.
            self._decide(node, "won" if prev[3] and not pre_vote else "timed out", t)
        e = [t, node, _int(r.get("term")) or 0, pre_vote, "pending", None]
        self._elections.append(e)
        self._campaign[node] = e

    def elections_with_votes(self) -> list[Election]:
        """Each vote joins the latest matching campaign that began before it."""
        keyed: dict[tuple[str, int, bool], list[int]] = {}
        for i, e in enumerate(self._elections):
            keyed.setdefault((e[1], e[2], e[3]), []).append(i)
        by_election: dict[int, list[Vote]] = {}
        for v in self.votes:
            idx = keyed.get((v.candidate, v.term, v.pre_vote))
            if not idx:
                continue
            before = [i for i in idx if self._elections[i][0] <= v.t]
            by_election.setdefault(before[-1] if before else idx[0], []).append(v)
        out = []
        for i, e in enumerate(self._elections):
            votes = by_election.get(i, [])
            # A voter answers a campaign once; keep its last answer.
            last: dict[str, Vote] = {v.voter: v for v in votes}
            out.append(Election(e[0], e[1], e[2], e[3], e[4], e[5], tuple(last.values())))
        return out

    # -------------------------------------------------------------- lines

    def feed(self, r: dict[str, Any]) -> None:
        typ = r["type"]
        t = r["t"]
        if typ == "fault":
            self._feed_fault(r)
            return
        node = r.get("node")
        if typ not in NODE_TYPES or node is None or str(node) not in self.roles:
            return
        node = str(node)
        self._touch(node, t)
        if typ == "start":
            self._down[node] = False
            self._role[node] = "follower"
            self._set_term(node, t, r.get("term"))
            self._gap_term(node, t, down=False)
            ci = _int(r.get("commit_index"))
            if ci is not None:
                self._step(self.commit_steps[node], t, ci)
        elif typ == "stop":
            self._go_down(node, t)
        elif typ == "locked":
            self._down[node] = False
            self._role[node] = LOCKED  # until its ``start`` line, after the unlock
        elif typ == "role":
            to = str(r.get("to", "follower"))
            self._role[node] = to
            self._set_term(node, t, r.get("term"))
            self._on_role(node, to, t)
        elif typ == "election":
            if not r.get("pre_vote"):
                self._set_term(node, t, r.get("term"))
            self._on_election(node, r)
        elif typ == "vote":
            granted = bool(r.get("granted"))
            pre_vote = bool(r.get("pre_vote", False))
            if granted and not pre_vote:
                self._set_term(node, t, r.get("term"))
            self.votes.append(
                Vote(
                    t,
                    node,
                    str(r.get("candidate")),
                    _int(r.get("term")) or 0,
                    pre_vote,
                    granted,
                    r.get("reason"),
                )
            )
        elif typ in ("commit", "apply"):
            idx = _int(r.get("index"))
            if idx is not None:
                series = self.commit_steps if typ == "commit" else self.applied_steps
                self._step(series[node], t, idx)
        elif typ == "log":
            entries = tuple(
                (int(e[0]), int(e[1]))
                for e in r.get("entries") or ()
                if isinstance(e, list | tuple) and len(e) >= 2
            )
            self.logs[node].append(
                LogSnapshot(
                    node,
                    t,
                    entries,
                    _int(r.get("commit")) or 0,
                    _int(r.get("snapshot_index")) or 0,
                )
            )
        elif typ in ("leader", "check_quorum", "membership", "transfer"):
            self._set_term(node, t, r.get("term"))
        self._refresh(node, t)

    def _go_down(self, node: str, t: float) -> None:
        self._gap_term(node, t, down=True)
        self._down[node] = True
        self._paused[node] = False
        self._role[node] = "follower"  # it comes back as one
        self._decide(node, "interrupted", t)
        self._step(self.commit_steps[node], t, None)
        self._step(self.applied_steps[node], t, None)

    def _feed_fault(self, r: dict[str, Any]) -> None:
        kind = r.get("kind")
        t = r["t"]
        for node in _targets(r):
            if node not in self.roles:
                continue
            self._touch(node, t)
            if kind == "kill":
                self._go_down(node, t)
            elif kind == "restart":
                self._down[node] = False
                self._paused[node] = False
                self._gap_term(node, t, down=False)
            elif kind == "pause":
                self._paused[node] = True
            elif kind == "unpause":
                self._paused[node] = False
            self._refresh(node, t)

    def finish(self) -> None:
        for node in self.nodes:
            if node not in self._open:
                continue
            role, term, start = self._open[node]
            # Kept even when empty, so the state at the very end is known.
            self.roles[node].append(RoleInterval(node, role, term, start, self.end))


# ====================================================================== clients


def _clients(rel: list[dict[str, Any]], t0: float) -> list[ClientOp]:
    """Client lines; their ``start`` / ``end`` are Unix times like ``t``."""

    def rel_time(v: Any, default: float) -> float:
        return float(v) - t0 if isinstance(v, int | float) else default

    out: list[ClientOp] = []
    pending: dict[Any, dict[str, Any]] = {}
    for r in rel:
        if r["type"] != "client":
            continue
        phase = r.get("phase") or r.get("event")
        if phase == "start" and "id" in r:
            pending[r["id"]] = r
            continue
        begin = pending.pop(r.get("id"), None) if phase == "end" else None
        end = rel_time(r.get("end"), r["t"])
        start = begin["t"] if begin is not None else rel_time(r.get("start"), end)
        outcome = _CLIENT_OUTCOMES.get(str(r.get("outcome", "")).lower(), "unknown")
        out.append(
            ClientOp(
                op=str(r.get("op", (begin or {}).get("op", "?"))),
                start=start,
                end=end,
                outcome=outcome,
                index=_int(r.get("index")),
                node=r.get("target") or r.get("via"),
                error=r.get("error"),
            )
        )
    for r in pending.values():  # started, never ended: the trace stops first
        out.append(ClientOp(str(r.get("op", "?")), r["t"], r["t"], "unknown"))
    return sorted(out, key=lambda c: c.start)
