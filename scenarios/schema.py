"""The scenario file format (TOML) and its validation.

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
number.  `parse` checks everything it can without a cluster and raises
`ScenarioError` with one line naming the step (or expectation) number and
the field, e.g. ``step 3 (kill): missing field 'node'``.

Spellings: names of actions, checks and ``wait for`` conditions may use
hyphens or underscores (``transfer-leadership`` as docs/scenarios.md writes it, or
``transfer_leadership``), and a few other names a reader of docs/scenarios.md would
reach for are accepted (`ACTION_ALIASES`, `CHECK_ALIASES`); ``[[steps]]`` and
``[[expectations]]`` are accepted for ``[[step]]`` and ``[[expect]]``.  Each
is turned into the one canonical name at parse time.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ACTIONS",
    "ACTION_ALIASES",
    "CHECKS",
    "CHECK_ALIASES",
    "ClusterSpec",
    "Expect",
    "Scenario",
    "ScenarioError",
    "Step",
    "canonical",
    "load",
    "parse",
]


class ScenarioError(Exception):
    """A mistake in a scenario file: one line, naming where it is."""


# Field types: "str", "int", "num" (int or float), "bool", "strs" (list of
# str), "groups" (list of lists of str), "ints" (list of int).
_NODE = {"node": "str", "as": "str"}

#: action -> (required fields, optional fields)
ACTIONS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "write": ({}, {"count": "int", "via": "str", "kind": "str", "timeout": "num"}),
    "kill": ({"node": "str"}, {"as": "str"}),
    "restart": ({"node": "str"}, {"as": "str"}),
    "pause": ({"node": "str"}, {"as": "str"}),
    "unpause": ({"node": "str"}, {"as": "str"}),
    "isolate": ({"node": "str"}, {"as": "str"}),
    "partition": ({"groups": "groups"}, {}),
    "heal": ({}, {}),
    "wait": (
        {},
        {"seconds": "num", "for": "str", "nodes": "strs", "term": "int", "timeout": "num"},
    ),
    "set_election_timeout": ({"node": "str", "ms": "int"}, {"as": "str"}),
    "promote": ({"node": "str"}, {"as": "str"}),
    "demote": ({"node": "str"}, {"as": "str"}),
    "drain": ({"node": "str"}, {"availability": "str", "as": "str"}),
    "transfer_leadership": ({}, {"to": "str", "as": "str"}),
    "force_new_cluster": ({"node": "str"}, {"as": "str"}),
    "lock": ({}, {}),
    "unlock": ({}, {}),
    "trace_log": ({}, {}),
    "create_service": ({"name": "str"}, {"replicas": "int", "image": "str"}),
    "scale": ({"service": "str", "replicas": "int"}, {}),
    "create_secret": ({"name": "str", "data": "str"}, {}),
    "create_config": ({"name": "str", "data": "str"}, {}),
    "quorum_table": ({}, {"sizes": "ints", "real": "ints"}),
    "join": ({"role": "str"}, {"as": "str"}),
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

#: ``wait for = ...`` conditions and the fields they need.
WAIT_FOR = {
    "leader": (),
    "no_leader": (),
    "leader_in": ("nodes",),
    "term_above": ("term",),
    "converged": (),
    "tasks_running": (),
    "voters": ("nodes",),
    "ready": ("nodes",),
}

#: check -> (required fields, optional fields)
CHECKS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "leader_within": ({"seconds": "num"}, {"after_step": "int"}),
    "no_leader_while": ({"steps": "ints"}, {"grace": "num"}),
    "writes_fail_no_quorum": ({"steps": "ints"}, {}),
    "writes_succeed": ({"steps": "ints"}, {"min": "int"}),
    "new_leader_has_all_committed": ({}, {}),
    "votes_refused": ({"node": "str"}, {"reason": "str", "by": "strs"}),
    "never_leader": ({"node": "str"}, {}),
    "leader_in": ({"nodes": "strs"}, {}),
    "stepped_down": ({"node": "str", "after_step": "int"}, {"seconds": "num"}),
    "uncommitted_overwritten": ({"node": "str"}, {}),
    "no_acknowledged_write_lost": ({}, {}),
    "tasks_placed_exactly_once": ({}, {}),
    "tasks_off_node": ({"node": "str"}, {}),
    "no_new_tasks_on": ({"node": "str", "after_step": "int"}, {}),
    "secret_plaintext_absent": ({"secret": "str"}, {"config": "str"}),
    "leader_is": ({"node": "str"}, {"after_step": "int"}),
    "fault_tolerance_matches": ({}, {}),
    "history_linearizable": ({}, {}),
    "winner_most_up_to_date": ({}, {"after_step": "int"}),
    "voter_within": ({"node": "str", "seconds": "num", "after_step": "int"}, {}),
    "quorum_size": ({"voters": "int"}, {"quorum": "int", "at_step": "int"}),
}

#: Other names for checks (after hyphens became underscores) -> the canonical one,
#: mostly the wording of the expectations in plain English (docs/scenarios.md).
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

#: Other names for ``wait for`` conditions -> the canonical one.
WAIT_ALIASES = {"leader_elected": "leader", "no_quorum": "no_leader", "voter": "voters"}


def canonical(word: str, aliases: dict[str, str]) -> str:
    """``Transfer-Leadership`` -> ``transfer_leadership``, then through ``aliases``."""
    w = word.strip().lower().replace("-", "_").replace(" ", "_")
    return aliases.get(w, w)


def _unknown(what: str, word: str, known: list[str]) -> str:
    """``unknown action 'kil' (did you mean 'kill'?; known: ...)``."""
    close = difflib.get_close_matches(word.replace("-", "_"), known, n=1)
    hint = f"did you mean {close[0]!r}?; " if close else ""
    return f"unknown {what} {word!r} ({hint}known: {', '.join(known)})"


#: The study note's "why" paragraphs (`scenarios.report.TOPICS`), by ``topic``.
TOPIC_NAMES = (
    "election",
    "quorum",
    "partition",
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
)

#: Schedules written in code (``directed = "..."``): scenarios/<name>.py with a ``run``.
DIRECTED = ("figure8",)

_CLUSTER_FIELDS = {
    "managers": "int",
    "election_timeout_ms": "int",
    "heartbeat_ms": "int",
    "request_timeout_ms": "int",
    "election_timeout_overrides": "table",
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
class Step:
    number: int  # from 1, in file order
    action: str
    args: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)

    def describe(self) -> str:
        """The step as a person would say it: ``kill leader as old_leader``."""
        parts = [self.action]
        for k, v in self.args.items():
            if k == "as":
                continue
            if isinstance(v, list):
                v = " | ".join(",".join(g) if isinstance(g, list) else str(g) for g in v)
            parts.append(f"{v}" if k in ("node", "for") else f"{k}={v}")
        if "as" in self.args:
            parts.append(f"(as {self.args['as']})")
        return " ".join(str(p) for p in parts)


@dataclass(frozen=True, slots=True)
class Expect:
    number: int
    check: str
    args: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.args.get(key, default)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    cluster: ClusterSpec
    steps: tuple[Step, ...]
    expects: tuple[Expect, ...]
    topic: str = ""
    description: str = ""
    #: Where it came from (a path, or "builtin").
    source: str = ""
    #: Run it on the simulator even without --simulated (no real processes can show it).
    simulated_only: bool = False
    #: A schedule written in code, ``scenarios/<directed>.py``, run on the simulator.
    directed: str = ""


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(value, str) and value != ""
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "num":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "strs":
        return isinstance(value, list) and all(isinstance(x, str) and x for x in value)
    if kind == "ints":
        return isinstance(value, list) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in value
        )
    if kind == "groups":
        return (
            isinstance(value, list)
            and len(value) >= 1
            and all(
                isinstance(g, list) and g and all(isinstance(x, str) and x for x in g)
                for g in value
            )
        )
    if kind == "table":
        return isinstance(value, dict)
    raise AssertionError(kind)


_TYPE_WORDS = {
    "str": "a non-empty string",
    "int": "an integer",
    "num": "a number",
    "bool": "true or false",
    "strs": "a list of names",
    "ints": "a list of integers",
    "groups": 'a list of groups, e.g. [["manager1"], ["manager2", "manager3"]]',
    "table": "a table",
}


def _fields(
    where: str, raw: dict[str, Any], required: dict[str, str], optional: dict[str, str]
) -> dict[str, Any]:
    for key, _kind in required.items():
        if key not in raw:
            raise ScenarioError(f"{where}: missing field {key!r}")
    allowed = {**required, **optional}
    for key, value in raw.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise ScenarioError(f"{where}: unknown field {key!r} (allowed: {names})")
        if not _type_ok(value, allowed[key]):
            raise ScenarioError(f"{where}: field {key!r} must be {_TYPE_WORDS[allowed[key]]}")
    return dict(raw)


def _cluster(raw: Any) -> ClusterSpec:
    if raw is None:
        return ClusterSpec()
    if not isinstance(raw, dict):
        raise ScenarioError("[cluster] must be a table")
    _fields("[cluster]", raw, {}, _CLUSTER_FIELDS)
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
        if not _type_ok(ms, "int") or ms < 2 * spec.heartbeat_ms:
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


def _check_ref(where: str, key: str, ref: str, names: list[str], aliases: set[str]) -> None:
    if ref == "leader" or ref in names or ref in aliases:
        return
    known = ", ".join([*names, "leader", *sorted(aliases)])
    raise ScenarioError(f"{where}: field {key!r}: unknown node {ref!r} (known: {known})")


def _step(number: int, raw: Any, names: list[str], aliases: set[str]) -> Step:
    where = f"step {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be a table ([[step]])")
    written = raw.get("action")
    if not isinstance(written, str):
        raise ScenarioError(f"{where}: missing field 'action'")
    action = canonical(written, ACTION_ALIASES)
    if action not in ACTIONS:
        raise ScenarioError(
            f"{where}: field 'action': {_unknown('action', written, sorted(ACTIONS))}"
        )
    where = f"step {number} ({action})"
    required, optional = ACTIONS[action]
    args = _fields(where, {k: v for k, v in raw.items() if k != "action"}, required, optional)
    new_manager = action == "promote" and re.fullmatch(r"manager[1-9]", args["node"])
    if new_manager and args["node"] not in names:
        names.append(args["node"])  # a new manager joins; later steps may name it
    if action == "join":
        if args["role"] not in ("manager", "worker"):
            raise ScenarioError(f"{where}: field 'role' must be manager or worker")
        # The swarm names a newcomer after the others of its role (the first
        # free number); later steps may use that name, or the step's 'as'.
        taken = {n for n in names if n.startswith(args["role"])}
        k = 1
        while f"{args['role']}{k}" in taken:
            k += 1
        names.append(f"{args['role']}{k}")
    for key in ("node", "via", "to"):
        if key in args:
            _check_ref(where, key, args[key], names, aliases)
    if action == "partition":
        seen: set[str] = set()
        for g in args["groups"]:
            for ref in g:
                _check_ref(where, "groups", ref, names, aliases)
                if ref in seen:
                    raise ScenarioError(f"{where}: field 'groups': {ref!r} is in two groups")
                seen.add(ref)
    if action == "write":
        if args.get("count", 1) < 1:
            raise ScenarioError(f"{where}: field 'count' must be at least 1")
        if args.get("kind", "config") not in ("config", "service", "secret"):
            raise ScenarioError(f"{where}: field 'kind' must be config, service or secret")
    if action == "drain" and args.get("availability", "drain") not in ("drain", "pause", "active"):
        raise ScenarioError(f"{where}: field 'availability' must be drain, pause or active")
    if action == "wait":
        has_s, has_for = "seconds" in args, "for" in args
        if has_s == has_for:
            raise ScenarioError(f"{where}: give exactly one of 'seconds' or 'for'")
        if has_s and args["seconds"] < 0:
            raise ScenarioError(f"{where}: field 'seconds' must not be negative")
        if has_for:
            cond = canonical(args["for"], WAIT_ALIASES)
            if cond not in WAIT_FOR:
                raise ScenarioError(
                    f"{where}: field 'for': {_unknown('condition', args['for'], list(WAIT_FOR))}"
                )
            args["for"] = cond
            for need in WAIT_FOR[cond]:
                if need not in args:
                    raise ScenarioError(f"{where}: field {need!r} is needed with for = {cond!r}")
            for ref in args.get("nodes", []):
                _check_ref(where, "nodes", ref, names, aliases)
    if action == "set_election_timeout" and args["ms"] < 10:
        raise ScenarioError(f"{where}: field 'ms' must be at least 10")
    if action in ("create_service", "scale") and args.get("replicas", 1) < 0:
        raise ScenarioError(f"{where}: field 'replicas' must not be negative")
    if "as" in args:
        if args["as"] in names or args["as"] == "leader":
            raise ScenarioError(f"{where}: field 'as': {args['as']!r} is already a node name")
        aliases.add(args["as"])
    return Step(number, action, args)


def _expect(number: int, raw: Any, steps: int, names: list[str], aliases: set[str]) -> Expect:
    where = f"expect {number}"
    if not isinstance(raw, dict):
        raise ScenarioError(f"{where}: must be a table ([[expect]])")
    written = raw.get("check")
    if not isinstance(written, str):
        raise ScenarioError(f"{where}: missing field 'check'")
    check = canonical(written, CHECK_ALIASES)
    if check not in CHECKS:
        raise ScenarioError(f"{where}: field 'check': {_unknown('check', written, sorted(CHECKS))}")
    where = f"expect {number} ({check})"
    required, optional = CHECKS[check]
    args = _fields(where, {k: v for k, v in raw.items() if k != "check"}, required, optional)
    for key in ("after_step", "at_step"):
        if key in args and not 1 <= args[key] <= steps:
            raise ScenarioError(f"{where}: field {key!r}: there is no step {args[key]}")
    if check == "quorum_size":
        if args["voters"] < 1:
            raise ScenarioError(f"{where}: field 'voters' must be at least 1")
        if "quorum" in args and args["quorum"] != args["voters"] // 2 + 1:
            raise ScenarioError(
                f"{where}: field 'quorum': {args['voters']} voters need a quorum of "
                f"{args['voters'] // 2 + 1} ((N/2)+1), not {args['quorum']}"
            )
    if "steps" in args:
        rng = args["steps"]
        if len(rng) not in (1, 2) or not all(1 <= s <= steps for s in rng) or rng != sorted(rng):
            raise ScenarioError(
                f"{where}: field 'steps' must be [first, last] step numbers between 1 and {steps}"
            )
    if "node" in args and check not in ("secret_plaintext_absent",):
        _check_ref(where, "node", args["node"], names, aliases)
    for key in ("nodes", "by"):
        for ref in args.get(key, []):
            _check_ref(where, key, ref, names, aliases)
    if "seconds" in args and args["seconds"] <= 0:
        raise ScenarioError(f"{where}: field 'seconds' must be positive")
    return Expect(number, check, args)


_TOP = {
    "name": "str",
    "title": "str",
    "topic": "str",
    "description": "str",
    "simulated_only": "bool",
    "directed": "str",
    "cluster": "table",
    "step": "list",
    "expect": "list",
    "steps": "list",
    "expectations": "list",
    "expects": "list",
}
#: A scenario's name: the directory OUT/NAME, so no path separators and no "..".
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

#: Plural table names ("steps" and "expectations", as prose says) -> the canonical one.
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
        elif not _type_ok(value, kind):
            raise ScenarioError(f"{source}: field {key!r} must be {_TYPE_WORDS[kind]}")
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
            f"{source}: field 'topic': {_unknown('topic', raw['topic'], list(TOPIC_NAMES))}"
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
    if not raw_steps and not directed:
        raise ScenarioError(f"{source}: no [[step]] at all")
    aliases: set[str] = set()
    names = list(cluster.names)
    try:
        steps = tuple(_step(i, s, names, aliases) for i, s in enumerate(raw_steps, 1))
        expects = tuple(
            _expect(i, e, len(steps), names, aliases)
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
    )


def load(path: Path) -> Scenario:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"cannot read {path}: {e.strerror or e}") from None
    return parse(text, source=path.name, default_name=path.stem)


def builtin_dir() -> Path:
    return Path(__file__).with_name("builtin")


#: The built-in scenarios in the order `list` shows and `run all` runs them.
BUILTIN_ORDER = (
    "leader-kill",
    "quorum-loss",
    "minority-leader",
    "stale-log-loses",
    "split-vote",
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
)


def builtins() -> dict[str, Path]:
    """Built-in scenario name -> file, in `BUILTIN_ORDER` (then any others by name)."""
    files = {p.stem: p for p in builtin_dir().glob("*.toml")}
    names = [n for n in BUILTIN_ORDER if n in files] + sorted(
        n for n in files if n not in BUILTIN_ORDER
    )
    return {n: files[n] for n in names}
