"""From trace lines to a model of what happened: pure data, no drawing.

`viz` reads only traces, never live nodes (DESIGN.md, "Traces").  A trace
directory holds JSON lines (``*.jsonl``, searched recursively): each node's
``DIR/<node>/trace.jsonl`` and the supervisor's and scenario runner's own
files (``faults.jsonl``, ``client.jsonl``, ...).  Every line has ``t`` (Unix
seconds), ``node`` and ``type``.  `load` merges them all in time order and
`build` turns them into a `TraceModel`; `read_model(dir)` does both.

Lines this module reads
-----------------------

From the nodes (the core's trace events plus the driver's additions)::

    role        from, to, term            a role change (follower, pre-candidate,
                                          candidate, leader)
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

Conventions of the model
------------------------

* Times are seconds from the first line of the whole directory.
* A node is *down* from a ``kill`` fault (or a ``stop`` line) until the next
  ``restart`` fault or ``start`` line; it comes back as a follower.  It is
  *paused* between ``pause`` and ``unpause``; it keeps its role underneath.
* Role intervals are split where the node's term changes, so every interval
  has one term.  A node's term is the highest term its own lines showed
  (role, real election, granted real vote, leader, start, check_quorum,
  membership, commit): terms never go back.
* Reachable managers at an instant: the most voters that are up, not paused
  and all on the same side of the partition.  Quorum is lost while that is
  below a majority of the voters (nodes a partition names in no group count
  as alone).  Voters come from ``membership`` lines, else every node seen.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DOWN",
    "PAUSED",
    "ROLES",
    "ClientOp",
    "Election",
    "Fault",
    "FaultInterval",
    "LogMatrix",
    "LogRow",
    "LogSnapshot",
    "Quorum",
    "RoleInterval",
    "Steps",
    "TraceError",
    "TraceModel",
    "Vote",
    "build",
    "load",
    "read_model",
]

ROLES = ("follower", "pre-candidate", "candidate", "leader")
DOWN = "down"
PAUSED = "paused"

#: Line types written by a node itself (their ``node`` is a Raft node).
NODE_TYPES = frozenset(
    {
        "start",
        "stop",
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


class TraceError(Exception):
    """The directory cannot be read as traces (missing, or no trace lines)."""


# ====================================================================== data


@dataclass(frozen=True, slots=True)
class RoleInterval:
    """``node`` held ``role`` (one of `ROLES`, `DOWN`, `PAUSED`) in ``term``."""

    node: str
    role: str
    term: int | None
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Vote:
    """``voter`` answered ``candidate``'s request for ``term``."""

    t: float
    voter: str
    candidate: str
    term: int
    pre_vote: bool
    granted: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class Election:
    """A campaign by ``node`` for ``term``.

    ``outcome``: ``won`` (a pre-vote that led to a real election, or a real
    election that made a leader), ``lost`` (back to follower), ``timed out``
    (the node campaigned again), ``interrupted`` (killed or stopped) or
    ``pending`` (the trace ends first).  ``decided`` is when that became known.
    """

    t: float
    node: str
    term: int
    pre_vote: bool
    outcome: str
    decided: float | None
    votes: tuple[Vote, ...] = ()

    @property
    def kind(self) -> str:
        return "pre-vote" if self.pre_vote else "election"

    @property
    def granted(self) -> tuple[str, ...]:
        """Voters that said yes (the candidate's own vote not included)."""
        return tuple(v.voter for v in self.votes if v.granted)

    @property
    def refused(self) -> tuple[Vote, ...]:
        return tuple(v for v in self.votes if not v.granted)


@dataclass(frozen=True, slots=True)
class Steps:
    """A step function: ``values[i]`` holds from ``times[i]`` on.  None = unknown."""

    times: tuple[float, ...] = ()
    values: tuple[int | None, ...] = ()

    def at(self, t: float) -> int | None:
        i = bisect.bisect_right(self.times, t) - 1
        return self.values[i] if i >= 0 else None

    def last(self) -> int | None:
        known = [v for v in self.values if v is not None]
        return known[-1] if known else None

    def __len__(self) -> int:
        return len(self.times)


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault line, as recorded."""

    t: float
    kind: str
    targets: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...] = ()

    @property
    def label(self) -> str:
        if self.kind == "partition" and self.groups:
            return "partition " + " | ".join(",".join(g) for g in self.groups)
        return f"{self.kind} {','.join(self.targets)}".strip()


@dataclass(frozen=True, slots=True)
class FaultInterval:
    """A fault in force: ``kind`` is ``kill``, ``pause`` or ``partition``.

    ``end`` is the trace's end when the fault was never undone (``healed``
    False).  ``cause`` is the line kind that began it (``isolate`` is a
    partition)."""

    kind: str
    start: float
    end: float
    nodes: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...] = ()
    cause: str = ""
    healed: bool = True

    @property
    def label(self) -> str:
        if self.kind == "partition":
            if self.cause == "isolate":
                return f"{','.join(self.nodes)} isolated"
            return " | ".join(",".join(g) for g in self.groups)
        verb = {"kill": "killed", "pause": "paused"}.get(self.kind, self.kind)
        return f"{','.join(self.nodes)} {verb}"


@dataclass(frozen=True, slots=True)
class Quorum:
    """Reachable voters over time against the majority they need."""

    times: tuple[float, ...]
    reachable: tuple[int, ...]
    voters: tuple[int, ...]
    needed: tuple[int, ...]
    #: (start, end) of every stretch with fewer reachable voters than needed.
    lost: tuple[tuple[float, float], ...]

    def at(self, t: float) -> tuple[int, int] | None:
        """(reachable, needed) at ``t``."""
        i = bisect.bisect_right(self.times, t) - 1
        return (self.reachable[i], self.needed[i]) if i >= 0 else None


@dataclass(frozen=True, slots=True)
class ClientOp:
    op: str
    start: float
    end: float
    outcome: str  # ok, fail, timeout or unknown
    index: int | None = None
    node: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class LogSnapshot:
    """A node's log as one ``log`` line reported it."""

    node: str
    t: float
    entries: tuple[tuple[int, int], ...]
    commit: int
    snapshot_index: int = 0


@dataclass(frozen=True, slots=True)
class LogRow:
    node: str
    #: index -> term, for the entries the node held.
    entries: dict[int, int]
    commit: int
    snapshot_index: int
    #: The node's state at the matrix's instant: a role, `DOWN` or `PAUSED`.
    state: str
    #: When the node reported this log (None: it never did before the instant).
    reported: float | None


@dataclass(frozen=True, slots=True)
class LogMatrix:
    t: float
    rows: tuple[LogRow, ...]

    @property
    def last_index(self) -> int:
        return max((max(r.entries, default=0) for r in self.rows), default=0)

    @property
    def commit(self) -> int:
        """The highest commit index any row reports."""
        return max((r.commit for r in self.rows), default=0)


@dataclass(slots=True)
class TraceModel:
    """Everything `viz.draw` needs, in seconds from ``t0``."""

    t0: float
    end: float
    nodes: tuple[str, ...]
    roles: dict[str, list[RoleInterval]]
    terms: dict[str, Steps]
    elections: list[Election]
    votes: list[Vote]
    commit: dict[str, Steps]
    applied: dict[str, Steps]
    faults: list[Fault]
    fault_intervals: list[FaultInterval]
    quorum: Quorum
    clients: list[ClientOp]
    logs: dict[str, list[LogSnapshot]]
    #: (time, voters) of every membership line, in time order.
    membership: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    # -------------------------------------------------------------- queries

    def voters_at(self, t: float) -> tuple[str, ...]:
        """The voters at ``t``: the latest membership line, else every node."""
        return _voters_from(self.membership, self.nodes, t)

    def role_at(self, node: str, t: float) -> str | None:
        ivs = self.roles.get(node, ())
        for iv in ivs:
            if iv.start <= t < iv.end:
                return iv.role
        if ivs and ivs[-1].start <= t <= self.end:
            return ivs[-1].role  # the very end: the last state, however short
        return None

    def leaders(self) -> list[RoleInterval]:
        """Every leader interval, in time order."""
        out = [iv for ivs in self.roles.values() for iv in ivs if iv.role == "leader"]
        return sorted(out, key=lambda iv: iv.start)

    def won(self) -> list[Election]:
        """Real elections that made a leader."""
        return [e for e in self.elections if not e.pre_vote and e.outcome == "won"]

    def log_matrix(self, t: float | None = None) -> LogMatrix | None:
        """Every node's log as last reported at or before ``t`` (default: the end),
        with each node's state just before ``t`` (so a node killed at ``t``
        still shows the role it died in).

        None when no node reported its log by then (no ``log`` lines)."""
        t = self.end if t is None else t
        before = max(t - 1e-6, 0.0)
        rows = []
        for node in self.nodes:
            snaps = [s for s in self.logs.get(node, ()) if s.t <= t]
            state = self.role_at(node, before) or DOWN
            if snaps:
                s = snaps[-1]
                rows.append(LogRow(node, dict(s.entries), s.commit, s.snapshot_index, state, s.t))
            else:
                rows.append(LogRow(node, {}, 0, 0, state, None))
        if all(r.reported is None for r in rows):
            return None
        return LogMatrix(t, tuple(rows))

    def log_instants(self, limit: int = 4) -> list[tuple[float, str]]:
        """Instants worth a log matrix, with a caption: just before each kill
        (what the dying node held), at the end of each loss of quorum (what
        the cut-off side appended but could not commit), and the end."""
        if not any(self.logs.values()):
            return []
        found: list[tuple[float, str]] = []
        for f in self.faults:
            if f.kind == "kill" and f.t > 0:
                found.append((f.t, f"just before {','.join(f.targets)} was killed"))
        for _, b in self.quorum.lost:
            found.append((b, "as quorum came back"))
        found = [(t, c) for t, c in sorted(found) if self.log_matrix(t) is not None]
        return [*found[: limit - 1], (self.end, "at the end")]

    # ------------------------------------------------------------ sentences

    def headline(self) -> str:
        """One sentence saying what happened, for a figure title."""
        first_fault = next(
            (f for f in self.faults if f.kind in ("kill", "pause", "partition", "isolate")), None
        )
        wins = self.won()
        if first_fault is None:
            if not wins:
                return "No leader was elected"
            w = wins[0]
            more = f"; {len(wins) - 1} later elections" if len(wins) > 1 else ""
            return f"{w.node} elected leader in term {w.term} at {w.decided or w.t:.2f} s{more}"
        what = _fault_phrase(first_fault)
        after = [w for w in wins if w.t >= first_fault.t]
        if not after:
            if self.quorum.lost:
                lost = sum(b - a for a, b in self.quorum.lost)
                return f"No new leader after {what}: quorum lost for {lost:.2f} s"
            return f"No new leader after {what}"
        w = after[0]
        dt = (w.decided or w.t) - first_fault.t
        return f"{w.node} elected leader in term {w.term} {dt:.2f} s after {what}"

    def quorum_headline(self) -> str:
        voters = max(self.quorum.voters, default=0)
        needed = max(self.quorum.needed, default=0)
        if not self.quorum.lost:
            return f"Quorum held throughout ({voters} managers, {needed} needed)"
        total = sum(b - a for a, b in self.quorum.lost)
        low = min(self.quorum.reachable)
        n = len(self.quorum.lost)
        times = "once" if n == 1 else f"{n} times"
        return (
            f"Quorum lost {times} for {total:.2f} s in all "
            f"(as few as {low} of {voters} managers reachable, {needed} needed)"
        )

    def client_headline(self) -> str:
        counts = {k: 0 for k in ("ok", "fail", "timeout", "unknown")}
        for c in self.clients:
            counts[c.outcome] += 1
        top = max((s.last() or 0 for s in self.commit.values()), default=0)
        parts = [f"Commit index reached {top}"]
        if self.clients:
            parts.append(f"{counts['ok']} writes ok")
            for k, word in (("fail", "failed"), ("timeout", "timed out"), ("unknown", "unknown")):
                if counts[k]:
                    parts.append(f"{counts[k]} {word}")
        return "; ".join(parts)

    def election_headline(self, e: Election) -> str:
        voters = self.voters_at(e.t)
        yes = len(e.granted) + 1  # the candidate votes for itself
        what = "Pre-vote" if e.pre_vote else "Election"
        head = f"{what} by {e.node} for term {e.term}: {e.outcome}, {yes} of {len(voters)} yes"
        refused = e.refused
        if refused:
            head += f"; refused by {', '.join(v.voter for v in refused)}"
        return head


def _fault_phrase(f: Fault) -> str:
    who = ",".join(f.targets)
    if f.kind == "kill":
        return f"{who} was killed"
    if f.kind == "pause":
        return f"{who} was paused"
    if f.kind == "isolate":
        return f"{who} was isolated"
    return "the network was partitioned"


# ====================================================================== loading


def load(directory: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """All trace lines under ``directory`` in time order, and warnings.

    A torn last line (a process killed mid-write) is skipped with a warning,
    as is any other line that is not a JSON object with ``t`` and ``type``.
    Lines with equal ``t`` keep their order within their file."""
    root = Path(directory)
    if not root.is_dir():
        raise TraceError(f"no trace directory at {root}")
    records: list[tuple[float, int, int, dict[str, Any]]] = []
    warnings: list[str] = []
    files = sorted(root.rglob("*.jsonl"))
    for fi, path in enumerate(files):
        default_node = path.parent.name if path.name == "trace.jsonl" else None
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        for li, raw in enumerate(lines):
            if not raw.strip():
                continue
            rec = _parse(raw)
            if rec is None:
                where = "torn last line" if li == len(lines) - 1 else f"bad line {li + 1}"
                warnings.append(f"{path.relative_to(root)}: {where} skipped")
                continue
            if "node" not in rec and default_node is not None:
                rec["node"] = default_node
            records.append((float(rec["t"]), fi, li, rec))
    if not files:
        raise TraceError(f"no *.jsonl traces under {root}")
    records.sort(key=lambda r: r[:3])
    return [r[3] for r in records], warnings


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(rec, dict) or "type" not in rec:
        return None
    try:
        rec["t"] = float(rec["t"])
    except (KeyError, TypeError, ValueError):
        return None
    return rec


def read_model(directory: str | Path, until: float | None = None) -> TraceModel:
    """`load` then `build`; the load warnings end up in ``model.warnings``.

    ``until`` (Unix seconds) leaves out later lines: a scenario's story ends
    when its last step does, not when its cluster is shut down afterwards.
    """
    records, warnings = load(directory)
    if until is not None:
        records = [r for r in records if float(r["t"]) <= until]
    if not records:
        raise TraceError(f"no trace lines under {directory}")
    model = build(records)
    model.warnings[:0] = warnings
    return model


# ====================================================================== building


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

    faults = [_fault(r) for r in rel if r["type"] == "fault"]
    nodes = _nodes(rel, faults)
    b = _Builder(nodes, end)
    for r in rel:
        b.feed(r)
    b.finish()

    fault_intervals = _fault_intervals(faults, rel, nodes, end)
    membership = [
        (r["t"], tuple(str(x) for x in r.get("voters") or ()))
        for r in rel
        if r["type"] == "membership" and r.get("voters")
    ]
    quorum = _quorum(rel, faults, nodes, membership, b.first_seen, end)
    return TraceModel(
        t0=t0,
        end=end,
        nodes=nodes,
        roles=b.roles,
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


# ====================================================================== faults


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


# ====================================================================== quorum


def _voters_from(
    changes: list[tuple[float, tuple[str, ...]]], nodes: tuple[str, ...], t: float
) -> tuple[str, ...]:
    if not changes:
        return nodes
    current = changes[0][1]
    for ct, v in changes:
        if ct <= t:
            current = v
    return current


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
        elif r["type"] == "stop" and r.get("node") in first_seen:
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
