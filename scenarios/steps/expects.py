"""The expectations a scenario may state: one frozen class each.

Like the actions, a class's fields are its schema.  What an expectation
*means* -- how it is checked against the traces or the cluster -- lives in
`scenarios.checks`, which maps each class to its check; this page only says
what a file may write, and how a check is named in the report (`label`).
Step numbers are checked against the scenario's steps at parse time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from scenarios.steps.fields import ParseContext, Record, toml_name

__all__ = ["CHECK_ALIASES", "EXPECTATIONS", "Expectation"]


def _steps_label(steps: list[int]) -> str:
    if len(steps) == 1 or steps[0] == steps[-1]:
        return f"step {steps[0]}"
    return f"steps {steps[0]}-{steps[-1]}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Expectation(Record):
    """One ``[[expect]]`` of a scenario."""

    #: The check's canonical name, as files write it.
    check: ClassVar[str]

    def validate(self, ctx: ParseContext) -> Self:
        """The fields several checks share: step numbers, node names, durations."""
        a = self.written
        for key in ("after_step", "at_step"):
            if key in a and not 1 <= a[key] <= ctx.steps:
                ctx.fail(f"field {key!r}: there is no step {a[key]}")
        self.validate_own(ctx)
        if "steps" in a:
            rng = a["steps"]
            in_range = len(rng) in (1, 2) and all(1 <= s <= ctx.steps for s in rng)
            if not in_range or rng != sorted(rng):
                ctx.fail(
                    f"field 'steps' must be [first, last] step numbers between 1 and {ctx.steps}"
                )
        if "node" in a:
            ctx.node_ref("node", a["node"])
        for key in ("nodes", "by"):
            for ref in a.get(key, []):
                ctx.node_ref(key, ref)
        if "seconds" in a and a["seconds"] <= 0:
            ctx.fail("field 'seconds' must be positive")
        return self

    def validate_own(self, ctx: ParseContext) -> None:
        """What only this check knows (none by default)."""

    def label(self) -> str:
        """A readable name for the check: ``leader_within 5 s after step 4``."""
        a, c = self.written, self.check
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


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderWithin(Expectation):
    """A leader within ``seconds`` of step ``after_step`` beginning."""

    check: ClassVar[str] = "leader_within"
    seconds: float
    after_step: int | None = None

    def label(self) -> str:
        since = f"step {self.after_step}" if self.after_step is not None else "the start"
        return f"leader_within {self.seconds:g} s after {since}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NoLeaderWhile(Expectation):
    """No leader during the steps (after ``grace`` seconds for the old one to notice)."""

    check: ClassVar[str] = "no_leader_while"
    steps: list[int]
    grace: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WritesFailNoQuorum(Expectation):
    """Every write of the steps failed: no quorum, no commit."""

    check: ClassVar[str] = "writes_fail_no_quorum"
    steps: list[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class WritesSucceed(Expectation):
    """The steps' writes were acknowledged (at least ``min`` of them, else all)."""

    check: ClassVar[str] = "writes_succeed"
    steps: list[int]
    at_least: int | None = toml_name("min")


@dataclass(frozen=True, slots=True, kw_only=True)
class TermChangesAtMost(Expectation):
    """From the start of the first step to the end of the last, the cluster's
    highest term rose at most ``max`` times: no endless elections."""

    check: ClassVar[str] = "term_changes_at_most"
    steps: list[int]
    at_most: int = toml_name("max")

    def validate_own(self, ctx: ParseContext) -> None:
        if self.at_most < 0:
            ctx.fail(f"field 'max' must be >= 0, got {self.at_most}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NewLeaderHasAllCommitted(Expectation):
    """Leader completeness (§5.4): the new leader holds every acknowledged write."""

    check: ClassVar[str] = "new_leader_has_all_committed"


@dataclass(frozen=True, slots=True, kw_only=True)
class VotesRefused(Expectation):
    """The node's vote requests were refused (by ``by``, for ``reason``)."""

    check: ClassVar[str] = "votes_refused"
    node: str
    reason: str | None = None
    by: list[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NeverLeader(Expectation):
    check: ClassVar[str] = "never_leader"
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderIn(Expectation):
    """The final leader is one of ``nodes``."""

    check: ClassVar[str] = "leader_in"
    nodes: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class SteppedDown(Expectation):
    """The node stopped leading after the step (within ``seconds``)."""

    check: ClassVar[str] = "stepped_down"
    node: str
    after_step: int
    seconds: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UncommittedOverwritten(Expectation):
    """The node's uncommitted entries were replaced by the new leader's (§5.3)."""

    check: ClassVar[str] = "uncommitted_overwritten"
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoAcknowledgedWriteLost(Expectation):
    check: ClassVar[str] = "no_acknowledged_write_lost"


@dataclass(frozen=True, slots=True, kw_only=True)
class TasksPlacedExactlyOnce(Expectation):
    check: ClassVar[str] = "tasks_placed_exactly_once"


@dataclass(frozen=True, slots=True, kw_only=True)
class TasksOffNode(Expectation):
    check: ClassVar[str] = "tasks_off_node"
    node: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NoNewTasksOn(Expectation):
    check: ClassVar[str] = "no_new_tasks_on"
    node: str
    after_step: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretPlaintextAbsent(Expectation):
    """No byte of the secret's (or config's) plaintext in any data directory."""

    check: ClassVar[str] = "secret_plaintext_absent"
    secret: str
    config: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderIs(Expectation):
    check: ClassVar[str] = "leader_is"
    node: str
    after_step: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultToleranceMatches(Expectation):
    """The quorum table's measured tolerance is (N-1)/2 for every N."""

    check: ClassVar[str] = "fault_tolerance_matches"


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryLinearizable(Expectation):
    check: ClassVar[str] = "history_linearizable"


@dataclass(frozen=True, slots=True, kw_only=True)
class WinnerMostUpToDate(Expectation):
    """§5.4.1: every leader elected had a log at least as up-to-date as a majority's."""

    check: ClassVar[str] = "winner_most_up_to_date"
    after_step: int | None = None

    def label(self) -> str:
        if self.after_step is None:
            return self.check
        return f"{self.check} (after step {self.after_step})"


@dataclass(frozen=True, slots=True, kw_only=True)
class VoterWithin(Expectation):
    """A node that joined becomes a voter within ``seconds`` of step ``after_step``."""

    check: ClassVar[str] = "voter_within"
    node: str
    seconds: float
    after_step: int

    def label(self) -> str:
        return f"voter_within {self.node} {self.seconds:g} s after step {self.after_step}"


@dataclass(frozen=True, slots=True, kw_only=True)
class QuorumSize(Expectation):
    """The configuration (at step ``at_step``, else at the end) has ``voters``
    voters, so a quorum of (N/2)+1."""

    check: ClassVar[str] = "quorum_size"
    voters: int
    quorum: int | None = None
    at_step: int | None = None

    def validate_own(self, ctx: ParseContext) -> None:
        if self.voters < 1:
            ctx.fail("field 'voters' must be at least 1")
        majority = self.voters // 2 + 1
        if self.quorum is not None and self.quorum != majority:
            ctx.fail(
                f"field 'quorum': {self.voters} voters need a quorum of "
                f"{majority} (⌊N/2⌋+1), not {self.quorum}"
            )

    def label(self) -> str:
        when = f"at step {self.at_step}" if self.at_step is not None else "at the end"
        return f"quorum_size {self.voters // 2 + 1} of {self.voters} {when}"


@dataclass(frozen=True, slots=True, kw_only=True)
class WritesReadable(Expectation):
    """The acknowledged writes of the steps are readable through the leader at
    the end -- or, with ``readable = false``, none of them is (a forced
    recovery kept a log that never had them)."""

    check: ClassVar[str] = "writes_readable"
    steps: list[int]
    readable: bool = True

    def label(self) -> str:
        what = "readable" if self.readable else "lost"
        return f"writes {what} ({_steps_label(self.steps)})"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdatedInBatches(Expectation):
    """The ``update_service`` step ``after_step`` replaced the tasks ``parallelism``
    at a time, ``delay`` apart, and ended with every task on the new image."""

    check: ClassVar[str] = "updated_in_batches"
    after_step: int

    def label(self) -> str:
        return f"{self.check} (step {self.after_step})"


@dataclass(frozen=True, slots=True, kw_only=True)
class RolledBack(Expectation):
    """After the ``rollback_service`` step ``after_step``, new tasks run the image
    the service had before its update, as many as its replicas."""

    check: ClassVar[str] = "rolled_back"
    after_step: int

    def label(self) -> str:
        return f"{self.check} (step {self.after_step})"


@dataclass(frozen=True, slots=True, kw_only=True)
class EverySizeMeasured(Expectation):
    """``manager_count``: every size acknowledged every write, and (from 2 managers)
    elected a new leader after each leader kill."""

    check: ClassVar[str] = "every_size_measured"


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuPerWriteGrows(Expectation):
    """``manager_count``: the CPU time all managers spent per write at the largest
    size is more than ``ratio`` times the one at the smallest."""

    check: ClassVar[str] = "cpu_per_write_grows"
    ratio: float = 1.0

    def validate_own(self, ctx: ParseContext) -> None:
        if self.ratio < 1:
            ctx.fail("field 'ratio' must be at least 1")


# ---------------------------------------------------------------- the operator's answers
# (`scenarios.steps.admin` records them; `scenarios.checks.admin` checks them)


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused(Expectation):
    """The swarm refused step ``step`` (with HTTP ``status``, saying ``contains``)."""

    check: ClassVar[str] = "refused"
    step: int
    status: int | None = None
    contains: str | None = None

    def validate_own(self, ctx: ParseContext) -> None:
        if not 1 <= self.step <= ctx.steps:
            ctx.fail(f"field 'step': there is no step {self.step}")

    def label(self) -> str:
        return f"refused (step {self.step})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted(Expectation):
    """The swarm did what step ``step`` asked."""

    check: ClassVar[str] = "accepted"
    step: int

    def validate_own(self, ctx: ParseContext) -> None:
        if not 1 <= self.step <= ctx.steps:
            ctx.fail(f"field 'step': there is no step {self.step}")

    def label(self) -> str:
        return f"accepted (step {self.step})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerStatus(Expectation):
    """In the ``node ls`` of step ``at_step``, ``node`` shows MANAGER STATUS ``status``
    (Leader, Reachable, Unreachable; ``none`` for a worker, ``absent`` for a node
    no longer listed) and, if given, ROLE ``role``."""

    check: ClassVar[str] = "manager_status"
    node: str
    at_step: int
    status: str
    role: str | None = None

    def validate_own(self, ctx: ParseContext) -> None:
        if self.status not in ("Leader", "Reachable", "Unreachable", "none", "absent"):
            ctx.fail("field 'status' must be Leader, Reachable, Unreachable, none or absent")

    def label(self) -> str:
        return f"manager_status {self.node} {self.status} at step {self.at_step}"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodesReady(Expectation):
    """Each of ``nodes`` is listed as ready at the end (e.g. after a token rotation)."""

    check: ClassVar[str] = "nodes_ready"
    nodes: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesOnlyWhereUsed(Expectation):
    """In the ``files_held`` snapshot of step ``at_step``: each of ``secrets`` and
    ``configs`` is held by exactly the nodes running a task that references it."""

    check: ClassVar[str] = "files_only_where_used"
    at_step: int
    secrets: list[str] | None = None
    configs: list[str] | None = None

    def label(self) -> str:
        names = [*(self.secrets or []), *(self.configs or [])]
        return f"files_only_where_used {', '.join(names)} at step {self.at_step}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretAbsentFromApi(Expectation):
    """No answer of any manager's or worker's API holds the secrets' plaintext."""

    check: ClassVar[str] = "secret_absent_from_api"
    secrets: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretAbsentEverywhere(Expectation):
    """No file of the run -- every node's data, keys, logs, traces -- holds the plaintext."""

    check: ClassVar[str] = "secret_absent_everywhere"
    secrets: list[str]


#: check name -> class, in the order DESIGN.md lists them.
EXPECTATIONS: dict[str, type[Expectation]] = {
    c.check: c
    for c in (
        LeaderWithin,
        NoLeaderWhile,
        WritesFailNoQuorum,
        WritesSucceed,
        TermChangesAtMost,
        NewLeaderHasAllCommitted,
        VotesRefused,
        NeverLeader,
        LeaderIn,
        SteppedDown,
        UncommittedOverwritten,
        NoAcknowledgedWriteLost,
        TasksPlacedExactlyOnce,
        TasksOffNode,
        NoNewTasksOn,
        SecretPlaintextAbsent,
        LeaderIs,
        FaultToleranceMatches,
        HistoryLinearizable,
        WinnerMostUpToDate,
        VoterWithin,
        QuorumSize,
        WritesReadable,
        UpdatedInBatches,
        RolledBack,
        EverySizeMeasured,
        CpuPerWriteGrows,
        Refused,
        Accepted,
        ManagerStatus,
        NodesReady,
        FilesOnlyWhereUsed,
        SecretAbsentFromApi,
        SecretAbsentEverywhere,
    )
}

#: Other names for checks (after hyphens became underscores) -> the canonical one,
#: mostly DESIGN.md's wording of the expectations.
CHECK_ALIASES = {
    "leader_elected_within": "leader_within",
    "no_leader": "no_leader_while",
    "writes_fail": "writes_fail_no_quorum",
    "writes_fail_without_quorum": "writes_fail_no_quorum",
    "writes_fail_with_no_quorum": "writes_fail_no_quorum",
    "writes_ok": "writes_succeed",
    "winner_has_most_up_to_date_log": "winner_most_up_to_date",
    "winner_has_the_most_up_to_date_log": "winner_most_up_to_date",
    "most_up_to_date_wins": "winner_most_up_to_date",
    "stale_votes_refused": "votes_refused",
    "no_committed_write_lost": "no_acknowledged_write_lost",
    "no_committed_writes_lost": "no_acknowledged_write_lost",
    "no_acknowledged_writes_lost": "no_acknowledged_write_lost",
    "linearizable": "history_linearizable",
    "history_is_linearizable": "history_linearizable",
    "becomes_voter_within": "voter_within",
    "quorum": "quorum_size",
}
