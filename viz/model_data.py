"""What the trace model is: frozen records and `TraceModel`, no parsing.

Every time is in seconds from the trace's first line (see `viz.model` for
the conventions).  These are the types `viz.figures` and the scenario reports
read; they are built by `viz.model_build`, and they know nothing about the
lines they came from, so a reader can learn the model here without the
parsing.  `TraceModel` adds the queries the drawings need (the role at an
instant, the leaders, the log matrix) and the one-line summaries the
figures use as titles.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

__all__ = [
    "DOWN",
    "LEARNER",
    "LOCKED",
    "OUTSIDE",
    "PAUSED",
    "ROLES",
    "ClientOp",
    "Config",
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
]

ROLES = ("follower", "pre-candidate", "candidate", "leader")
DOWN = "down"
PAUSED = "paused"
#: A manager that restarted under autolock: alive, but out of Raft until unlocked.
LOCKED = "locked"
#: A follower the configuration lists as a learner: it receives the log but
#: does not vote and is not counted in a quorum (dissertation §4.2.1).
LEARNER = "learner"
#: Running, but in neither the voters nor the learners of the configuration
#: (before it joined, or after it was removed).
OUTSIDE = "not a member"


class TraceError(Exception):
    """The directory cannot be read as traces (missing, or no trace lines)."""


# ====================================================================== data


@dataclass(frozen=True, slots=True)
class RoleInterval:
    """``node`` held ``role`` (one of `ROLES`, `LEARNER`, `OUTSIDE`, `DOWN`,
    `PAUSED`) in ``term``."""

    node: str
    role: str
    term: int | None
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Config:
    """The cluster's configuration from ``t`` on: who votes, who only learns.

    ``node`` is the node whose ``membership`` line said so (None for the
    founding configuration, inferred from the first line), and ``source``
    how it was chosen: ``leader`` (traced by the leader of the moment, as it
    appended the change), ``follower`` (no leader line for that change) or
    ``founding``."""

    t: float
    voters: tuple[str, ...]
    learners: tuple[str, ...] = ()
    node: str | None = None
    source: str = "leader"

    def status(self, node: str) -> str:
        """``voter``, ``learner`` or ``outside``."""
        if node in self.voters:
            return "voter"
        return "learner" if node in self.learners else "outside"


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
    """Everything `viz.figures` needs, in seconds from ``t0``."""

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
    #: (time, voters) of every configuration in `configs`, in time order.
    membership: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: The configurations in force over time (see `viz.model_membership`);
    #: empty when the trace has no ``membership`` lines.
    configs: list[Config] = field(default_factory=list)

    # -------------------------------------------------------------- queries

    def voters_at(self, t: float) -> tuple[str, ...]:
        """The voters at ``t``: the configuration in force, else every node."""
        return _voters_from(self.membership, self.nodes, t)

    def config_at(self, t: float) -> Config | None:
        """The configuration in force at ``t`` (the first one before it);
        None without ``membership`` lines."""
        if not self.configs:
            return None
        i = bisect.bisect_right([c.t for c in self.configs], t) - 1
        return self.configs[max(i, 0)]

    def learners_at(self, t: float) -> tuple[str, ...]:
        c = self.config_at(t)
        return c.learners if c is not None else ()

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
        for t, victims in self._kill_groups():
            verb = "was" if len(victims) == 1 else "were"
            found.append((t, f"just before {', '.join(victims)} {verb} killed"))
        for _, b in self.quorum.lost:
            found.append((b, "just before quorum came back"))
        found.append((self.end, "at the end"))
        # A panel of logs captured long before its instant teaches the wrong
        # thing (empty logs "committed up to 0" after writes were acknowledged):
        # keep an instant only if every running node's log is current there.
        found = [(t, c) for t, c in sorted(found) if self._logs_current(t)]
        # A panel a moment after the previous one, showing the same logs, only
        # repeats it (quorum lost by a kill and back 20 ms later, say).
        kept: list[tuple[float, str]] = []
        for t, c in found:
            if kept and t - kept[-1][0] < 0.25 and self._same_logs(kept[-1][0], t):
                if c != "at the end":
                    continue
                kept.pop()
            kept.append((t, c))
        return [*kept[: limit - 1], *kept[limit - 1 :][-1:]]

    def _kill_groups(self) -> list[tuple[float, list[str]]]:
        """Kills, those in a row merged: a kill whose panel would show the same
        logs as the previous kill's (one more node down, nothing else) joins
        the earlier one's caption instead of drawing it again."""
        groups: list[tuple[float, list[str]]] = []
        for f in self.faults:
            if f.kind != "kill" or f.t <= 0:
                continue
            if groups and self._same_logs(groups[-1][0], f.t):
                groups[-1][1].extend(f.targets)
            else:
                groups.append((f.t, list(f.targets)))
        return groups

    def _same_logs(self, a: float, b: float) -> bool:
        """Do the log matrices at ``a`` and ``b`` hold the same entries and commit
        indexes, row by row (the nodes' states aside)?"""
        ma, mb = self.log_matrix(a), self.log_matrix(b)
        if ma is None or mb is None:
            return ma is mb
        return [(r.entries, r.commit) for r in ma.rows] == [(r.entries, r.commit) for r in mb.rows]

    def _logs_current(self, t: float) -> bool:
        """At ``t``, every node that is up and reported a log at all reported
        it since its commit index last moved (by its ``commit`` lines): the
        matrix shows the logs as they were at ``t``, not some commits earlier."""
        matrix = self.log_matrix(t)
        if matrix is None:
            return False
        for row in matrix.rows:
            if row.state in (DOWN, PAUSED) or row.reported is None:
                continue  # a down node's last log is its log; "no log reported" says so
            series = self.commit.get(row.node)
            now = series.at(t) if series is not None else None
            if now is not None and now > row.commit:
                return False
        return True

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
        q = self.quorum
        # The fewest reachable *while quorum was lost*: the start-up ramp
        # (managers still coming up) is not a loss and must not count.
        during = [
            q.reachable[i] for i, t in enumerate(q.times) if any(a <= t < b for a, b in q.lost)
        ]
        low = min(during, default=min(q.reachable))
        n = len(self.quorum.lost)
        times = "once" if n == 1 else f"{n} times"
        return (
            f"Quorum lost {times} for {total:.2f} s in all "
            f"(as few as {low} of {voters} managers reachable, {needed} needed)"
        )

    def top_commit(self) -> int:
        """The highest commit index the run shows: any node's traced commit index,
        or the index of an acknowledged write, whichever is higher (a write is
        acknowledged only once committed, and commit lines are sampled, so the
        last traced one may trail the last acknowledgement).  Text and figures
        print this one number."""
        traced = max((s.last() or 0 for s in self.commit.values()), default=0)
        acked = max((c.index or 0 for c in self.clients if c.outcome == "ok"), default=0)
        return max(traced, acked)

    def client_headline(self) -> str:
        counts = {k: 0 for k in ("ok", "fail", "timeout", "unknown")}
        for c in self.clients:
            counts[c.outcome] += 1
        parts = [f"Commit index reached {self.top_commit()}"]
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


# ====================================================================== voters


# Shared by `TraceModel.voters_at` and the quorum count in `viz.model_quorum`.
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
