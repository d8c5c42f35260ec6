"""The scenario file format (TOML): reading a whole file into a `Scenario`.

A scenario is a cluster shape, a list of steps and a list of expectations::

    name = "leader-kill"
    title = "Kill the leader: a new one is elected, nothing is lost"
    topic = "election"                # which study-note paragraphs apply (else
                                      # chosen from the steps and checks)

    [cluster]
    managers = 5
    election_timeout_ms = 500         # T: each node draws its timeout from [T, 2T)
    heartbeat_ms = 50                 # one tick
    request_timeout_ms = 2000         # a write without quorum gives up (503) after this
    [cluster.election_timeout_overrides]
    manager3 = 3000

    [[step]]
    action = "wait"
    for = "leader"

    [[step]]
    action = "kill"
    node = "leader"
    as = "old_leader"                 # later steps and checks may say "old_leader"

    [[expect]]
    check = "leader_within"
    seconds = 5
    after_step = 2

Steps are numbered from 1 in file order; expectations refer to them by
number.  Each ``[[step]]`` becomes an instance of its action's class
(`ACTIONS`: `scenarios.steps.actions`, `scenarios.steps.swarm`,
`scenarios.steps.tasks`), each ``[[expect]]`` one of its check's class
(`EXPECTATIONS`: `scenarios.steps.expects`, `scenarios.steps.expects_tasks`).  `parse`
checks everything it can without a cluster and raises `ScenarioError` with
one line naming the step (or expectation) number, the action and the field,
e.g. ``step 3 (kill): missing field 'node'``.

Spellings: names of actions, checks and ``wait for`` conditions may use
hyphens or underscores (``transfer-leadership`` as DESIGN.md writes it, or
``transfer_leadership``), and a few other names a reader of DESIGN.md would
reach for are accepted (`ACTION_ALIASES`, `CHECK_ALIASES`); ``[[steps]]`` and
``[[expectations]]`` are accepted for ``[[step]]`` and ``[[expect]]``.  Each
is turned into the one canonical name at parse time.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scenarios.steps import actions as a
from scenarios.steps import admin as adm
from scenarios.steps import measures as m
from scenarios.steps import rollout as r
from scenarios.steps import swarm as s
from scenarios.steps import tasks as t
from scenarios.steps.actions import Action
from scenarios.steps.expects import CHECK_ALIASES, Expectation
from scenarios.steps.expects import EXPECTATIONS as _EXPECTATIONS
from scenarios.steps.expects_tasks import TASK_EXPECTATIONS
from scenarios.steps.fields import WORDS, ParseContext, ScenarioError, canonical, fits, unknown

__all__ = [
    "ACTIONS",
    "ACTION_ALIASES",
    "BUILTIN_ORDER",
    "EXPECTATIONS",
    "TOPIC_NAMES",
    "ClusterSpec",
    "Scenario",
    "builtins",
    "load",
    "parse",
]

#: action name -> class: every action a scenario file may use.
ACTIONS: dict[str, type[Action]] = {
    c.action: c
    for c in (
        a.Write,
        a.Kill,
        a.Restart,
        a.Pause,
        a.Unpause,
        a.Isolate,
        a.Partition,
        a.Heal,
        a.Network,
        a.Wait,
        a.SetElectionTimeout,
        a.Promote,
        a.Demote,
        s.Drain,
        s.TransferLeadership,
        a.ForceNewCluster,
        s.Lock,
        s.Unlock,
        a.TraceLog,
        s.CreateService,
        s.Scale,
        s.CreateSecret,
        s.CreateConfig,
        a.QuorumTable,
        s.Join,
        t.Snapshot,
        t.WatchTasks,
        t.Manage,
        t.CreateGlobalService,
        t.ForceUpdate,
        r.UpdateService,
        r.RollbackService,
        m.ManagerCount,
        adm.NodeRm,
        adm.NodeLs,
        adm.RotateJoinToken,
        adm.JoinOldToken,
        adm.RotateUnlockKey,
        adm.ProbeApi,
        adm.UpdateSecret,
        adm.ServiceUpdate,
        adm.FilesHeld,
    )
}

#: check name -> class: `scenarios.steps.expects` and the tasks' own
#: (`scenarios.steps.expects_tasks`).
EXPECTATIONS: dict[str, type[Expectation]] = {
    **_EXPECTATIONS,
    **{c.check: c for c in TASK_EXPECTATIONS},
}

#: Other names for actions (after hyphens became underscores) -> the canonical one.
ACTION_ALIASES = {
    "transfer": "transfer_leadership",
    "resume": "unpause",
    "continue": "unpause",
    "writes": "write",
    "sleep": "wait",
    "swarm_join": "join",
}

#: The study note's "why" paragraphs (`scenarios.report.TOPICS`), by ``topic``.
TOPIC_NAMES = (
    "election",
    "quorum",
    "partition",
    "links",
    "stale",
    "split",
    "pause",
    "rolling",
    "drain",
    "secrets",
    "transfer",
    "figure8",
    "membership",
    "join",
    "recovery",
    "autolock",
    "tasks",
    "global",
    "failure",
    "availability",
    "update",
    "managers",
    "delivery",
    "removal",
    "tokens",
)

#: Schedules written in code (``directed = "..."``): scenarios/<name>.py with a ``run``.
DIRECTED = ("figure8",)

_CLUSTER_FIELDS = {
    "managers": int,
    "election_timeout_ms": int,
    "heartbeat_ms": int,
    "request_timeout_ms": int,
}


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    managers: int = 3
    election_timeout_ms: int = 500
    heartbeat_ms: int = 50
    request_timeout_ms: int = 2000
    #: name -> election timeout (ms) for that node only.
    election_timeout_overrides: dict[str, int] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [f"manager{i + 1}" for i in range(self.managers)]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    cluster: ClusterSpec
    steps: tuple[Action, ...]
    expects: tuple[Expectation, ...]
    topic: str = ""
    description: str = ""
    #: Where it came from (a path, or "builtin").
    source: str = ""
    #: Run it on the simulator even without --simulated (no real processes can show it).
    simulated_only: bool = False
    #: A schedule written in code, ``scenarios/<directed>.py``, run on the simulator.
    directed: str = ""
    #: Why it cannot run on the simulator (empty: it can): ``--simulated`` is then
    #: refused with this reason, and ``run all --simulated`` leaves it out.
    real_only: str = ""


def _cluster(raw: Any) -> ClusterSpec:
    if raw is None:
        return ClusterSpec()
    if not isinstance(raw, dict):
        raise ScenarioError("[cluster] must be a table")
    allowed = [*_CLUSTER_FIELDS, "election_timeout_overrides"]
    for key, value in raw.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed))
            raise ScenarioError(f"[cluster]: unknown field {key!r} (allowed: {names})")
        if key == "election_timeout_overrides":
            if not isinstance(value, dict):
                raise ScenarioError(f"[cluster]: field {key!r} must be a table")
        elif not fits(value, _CLUSTER_FIELDS[key]):
            raise ScenarioError(f"[cluster]: field {key!r} must be {WORDS[_CLUSTER_FIELDS[key]]}")
    spec = ClusterSpec(**{k: v for k, v in raw.items() if k != "election_timeout_overrides"})
    if not 1 <= spec.managers <= 9:
        raise ScenarioError("[cluster]: field 'managers' must be between 1 and 9")
    if spec.heartbeat_ms < 5:
        raise ScenarioError("[cluster]: field 'heartbeat_ms' must be at least 5")
    if spec.election_timeout_ms < 2 * spec.heartbeat_ms:
        raise ScenarioError(
            "[cluster]: field 'election_timeout_ms' must be at least twice heartbeat_ms"
        )
    overrides = raw.get("election_timeout_overrides", {})
    for name, ms in overrides.items():
        if name not in spec.names:
            raise ScenarioError(
                f"[cluster.election_timeout_overrides]: no node {name!r} in a cluster of "
                f"{spec.managers} managers"
            )
        if not fits(ms, int) or ms < 2 * spec.heartbeat_ms:
            raise ScenarioError(
                f"[cluster.election_timeout_overrides]: field {name!r} must be an integer "
                f"of at least {2 * spec.heartbeat_ms} (ms)"
            )
    return ClusterSpec(
        spec.managers,
        spec.election_timeout_ms,
        spec.heartbeat_ms,
        spec.request_timeout_ms,
        dict(overrides),
    )


def _table(where: str, raw: Any, key: str, kind: str) -> tuple[str, dict[str, Any]]:
    """(the name as written, the other fields) of a ``[[step]]`` or ``[[expect]]``."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be a table ([[{kind}]])")
    written = raw.get(key)
    if not isinstance(written, str):
        raise ScenarioError(f"{where}: missing field {key!r}")
    return written, {k: v for k, v in raw.items() if k != key}


def parse_step(number: int, raw: Any, names: list[str], aliases: set[str]) -> Action:
    """One ``[[step]]`` as its action's class.  ``names`` and ``aliases`` grow with
    the nodes it brings (a join) and the name it gives (``as``)."""
    written, fields = _table(f"step {number}", raw, "action", "step")
    action = canonical(written, ACTION_ALIASES)
    if action not in ACTIONS:
        raise ScenarioError(
            f"step {number}: field 'action': {unknown('action', written, sorted(ACTIONS))}"
        )
    ctx = ParseContext(f"step {number} ({action})", names, aliases)
    return ACTIONS[action].from_toml(number, fields, ctx)


def parse_expect(
    number: int, raw: Any, steps: int, names: list[str], aliases: set[str]
) -> Expectation:
    """One ``[[expect]]`` as its check's class."""
    written, fields = _table(f"expect {number}", raw, "check", "expect")
    check = canonical(written, CHECK_ALIASES)
    if check not in EXPECTATIONS:
        known = sorted(EXPECTATIONS)
        raise ScenarioError(f"expect {number}: field 'check': {unknown('check', written, known)}")
    ctx = ParseContext(f"expect {number} ({check})", names, aliases, steps)
    return EXPECTATIONS[check].from_toml(number, fields, ctx)


#: Top-level fields: name -> a field type of `scenarios.steps.fields`, or "table"/"list".
_TOP: dict[str, Any] = {
    "name": str,
    "title": str,
    "topic": str,
    "description": str,
    "simulated_only": bool,
    "real_only": str,
    "directed": str,
    "cluster": "table",
    "step": "list",
    "expect": "list",
    "steps": "list",
    "expectations": "list",
    "expects": "list",
}

#: A scenario's name: the directory OUT/NAME, so no path separators and no "..".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

#: Plural table names (DESIGN.md's "steps" and "expectations") -> the canonical one.
_TOP_ALIASES = {"steps": "step", "expectations": "expect", "expects": "expect"}


def parse(text: str, source: str = "<scenario>", default_name: str = "") -> Scenario:
    """A `Scenario` from TOML text; `ScenarioError` (one line) if anything is wrong."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: not valid TOML: {e}") from None
    for key, value in raw.items():
        if key not in _TOP:
            raise ScenarioError(
                f"{source}: unknown top-level field {key!r} "
                f"(allowed: {', '.join(k for k in _TOP if k not in _TOP_ALIASES)})"
            )
        kind = _TOP[key]
        if kind == "list":
            if not isinstance(value, list):
                raise ScenarioError(f"{source}: {key!r} must be an array of tables ([[{key}]])")
        elif kind == "table":
            if not isinstance(value, dict):
                raise ScenarioError(f"{source}: field {key!r} must be a table")
        elif not fits(value, kind):
            raise ScenarioError(f"{source}: field {key!r} must be {WORDS[kind]}")
    for alias, key in _TOP_ALIASES.items():
        if alias in raw:
            if key in raw:
                raise ScenarioError(f"{source}: give [[{key}]] or [[{alias}]], not both")
            raw[key] = raw.pop(alias)
    name = raw.get("name") or default_name
    if not name:
        raise ScenarioError(f"{source}: missing field 'name'")
    if not _NAME.fullmatch(name):
        # It names the output directory, OUT/NAME, which a run replaces.
        raise ScenarioError(
            f"{source}: field 'name': {name!r} must be up to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (it names the output directory)"
        )
    if "topic" in raw and raw["topic"] not in TOPIC_NAMES:
        raise ScenarioError(
            f"{source}: field 'topic': {unknown('topic', raw['topic'], list(TOPIC_NAMES))}"
        )
    try:
        cluster = _cluster(raw.get("cluster"))
    except ScenarioError as e:
        raise ScenarioError(f"{source}: {e}") from None
    raw_steps = raw.get("step", [])
    directed = raw.get("directed", "")
    if directed and directed not in DIRECTED:
        raise ScenarioError(
            f"{source}: field 'directed': unknown schedule {directed!r} "
            f"(known: {', '.join(DIRECTED)})"
        )
    if raw.get("real_only") and (raw.get("simulated_only") or directed):
        raise ScenarioError(f"{source}: a scenario cannot be both real_only and simulated")
    if not raw_steps and not directed:
        raise ScenarioError(f"{source}: no [[step]] at all")
    aliases: set[str] = set()
    names = list(cluster.names)
    try:
        steps = tuple(parse_step(i, s, names, aliases) for i, s in enumerate(raw_steps, 1))
        expects = tuple(
            parse_expect(i, e, len(steps), names, aliases)
            for i, e in enumerate(raw.get("expect", []), 1)
        )
    except ScenarioError as e:
        raise ScenarioError(f"{source}: {e}") from None
    return Scenario(
        name=name,
        title=raw.get("title", name),
        cluster=cluster,
        steps=steps,
        expects=expects,
        topic=raw.get("topic", ""),
        description=raw.get("description", "").strip(),
        source=source,
        simulated_only=raw.get("simulated_only", False) or bool(directed),
        directed=directed,
        real_only=" ".join(raw.get("real_only", "").split()),  # one line, for one-line errors
    )


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"cannot read {path}: {e.strerror or e}") from None
    return parse(text, source=path.name, default_name=path.stem)


def builtin_dir() -> Path:
    return Path(__file__).parent.parent / "builtin"


#: The built-in scenarios in the order `list` shows and `run all` runs them.
BUILTIN_ORDER = (
    "leader-kill",
    "quorum-loss",
    "minority-leader",
    "stale-log-loses",
    "split-vote",
    "asymmetric-partition",
    "lossy-network",
    "leader-pause",
    "rolling-restart",
    "drain",
    "secrets-at-rest",
    "transfer-leadership",
    "quorum-table",
    "figure-8",
    "membership",
    "disaster-recovery",
    "join",
    "autolock",
    "tasks-survive-quorum-loss",
    "global-service",
    "node-failure",
    "availability",
    "secret-delivery",
    "demote-and-remove",
    "join-token-rotation",
)


def builtins() -> dict[str, Path]:
    """Built-in scenario name -> file, in `BUILTIN_ORDER` (then any others by name)."""
    files = {p.stem: p for p in builtin_dir().glob("*.toml")}
    names = [n for n in BUILTIN_ORDER if n in files] + sorted(
        n for n in files if n not in BUILTIN_ORDER
    )
    return {n: files[n] for n in names}
