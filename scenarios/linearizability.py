"""A linearizability checker for client histories: pure Python, no I/O.

Theory of operation
-------------------
A *history* is what clients saw: each `Operation` was invoked at one moment
and answered at a later one, with an outcome.  The history is *linearizable*
(Herlihy and Wing) when every operation can be given one instant, its
linearization point, inside its own interval, such that replaying the
operations one at a time in the order of those points through a sequential
*model* (a register, a versioned object) gives exactly the answers the clients
got.  That is the promise a Raft-backed store makes: a completed write is never
lost and never read "stale", however leaders die.

Outcomes are the subtle part.  ``ok`` answers are facts: the operation took
effect inside its interval and returned what it says.  ``fail`` answers are
facts too, that it did *not* take effect, so the checker drops them.  ``info``
(a timeout, a dropped connection) is ignorance: the operation may have taken
effect at any instant after its invocation, even long after the client gave
up, or never.  Its completion time is therefore +infinity and its output is
unknown; an unknown read cannot change anything and is dropped too.

The search (Wing and Gong, improved by Lowe; the idea behind Knossos and
Porcupine) walks a doubly linked list of *call* and *return* events sorted by
time.  Scanning from the front, any call it meets belongs to an operation that
could be linearized next: it tries the model on it and, if the model agrees,
*lifts* the call and its return out of the list, pushes the choice on a stack
and starts again from the front.  Meeting a *return* means that operation's
deadline came while it was still unplaced: the last choice was wrong, so it
pops the stack, puts the lifted events back and tries the next candidate.
Success is reached when every ``ok`` operation is placed; ``info`` operations
have no return event, so they never force a backtrack and may stay unplaced.

Two things keep it fast.  A cache of (set of placed operations, model state)
pairs, the set kept as a Python int used as a bitset: two search paths that
placed the same operations and reached the same state have the same future, so
the second is cut off.  And P-compositionality: linearizability is local to
each object, so every key's sub-history is checked on its own; the search is
exponential in the worst case, but in the size of one key's concurrency, not of
the whole history.

When a key fails, the answer should be small enough to read.  We report:

1. the *first failing moment*: the earliest completion time T such that the
   history cut at T (operations invoked after T removed, those still running
   at T made ``info``) is already not linearizable.  Cutting is monotone, so a
   binary search finds T, and the operation completing at T is "the operation
   that cannot be placed";
2. a *conflict core*: a 1-minimal set of ``ok`` operations of that cut whose
   answers cannot all be true.  We shrink by *weakening* operations, never by
   deleting them: a weakened operation may or may not have happened, inside
   its own interval, and its answer is forgotten.  Weakening only adds
   possible orders, so a history that still fails fails for a reason already
   present.  (Deleting a write would instead make its readers fail for a new,
   invented reason; weakening to a plain unknown outcome would let the
   operation float to +infinity, and a few hundred of those make the search
   explode.)  Every core operation is needed: weakening any single one of
   them makes the cut linearizable;
3. the longest partial linearization of that core the search reached and
   the operation that could not follow it, as the human-readable story.
"""

from __future__ import annotations

import enum
import json
import math
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

__all__ = [
    "KeyResult",
    "Model",
    "Operation",
    "RegisterModel",
    "Status",
    "Verdict",
    "VersionedModel",
    "Violation",
    "check",
    "check_key",
    "decode_op",
    "dumps_history",
    "encode_op",
    "freeze",
    "loads_history",
    "random_register_history",
]

#: Default bound on explored (placed-set, state) pairs per key before giving up.
DEFAULT_MAX_STATES = 1_000_000
#: Default bound on states explored by all of one key's diagnosis searches together.
DEFAULT_DIAGNOSIS_STATES = 200_000


# ---------------------------------------------------------------------------
# History model


class Status(enum.StrEnum):
    """How an operation ended, as far as the client knows."""

    OK = "ok"  #: took effect inside its interval; ``output`` is what it returned
    FAIL = "fail"  #: definitely did not take effect
    INFO = "info"  #: unknown (timeout): may take effect at any time after invoke, or never


_STATUS_ALIASES = {"timeout": Status.INFO, "unknown": Status.INFO}


class _FrozenDict(dict):
    """A dict that can be hashed, so JSON objects can be model states."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


def freeze(value: Any) -> Hashable:
    """Make a JSON-ish value hashable (lists become tuples) so states can be cached."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return _FrozenDict((k, freeze(v)) for k, v in value.items())
    return value


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation on one key, from invocation to answer.

    ``input`` depends on ``kind``: a register ``write`` carries the value, a
    ``cas`` the pair ``(expected, new)``, a ``read`` nothing.  ``output`` is
    meaningful only for ``ok``: the value read, or for ``cas`` whether it
    applied.  Inputs and outputs are frozen on construction (lists become
    tuples) because they end up inside cached model states.
    """

    id: int
    process: int | str
    kind: str
    key: Hashable
    input: Any = None
    output: Any = None
    invoke: float = 0.0
    complete: float = math.inf
    status: Status = Status.OK

    def __post_init__(self) -> None:
        status = self.status
        if not isinstance(status, Status):
            status = _STATUS_ALIASES.get(status) or Status(status)
            object.__setattr__(self, "status", status)
        object.__setattr__(self, "input", freeze(self.input))
        object.__setattr__(self, "output", freeze(self.output))
        object.__setattr__(self, "key", freeze(self.key))
        if status is Status.INFO:
            # Ignorance extends forever: the effect may land after the client gave up.
            object.__setattr__(self, "complete", math.inf)
        elif not math.isfinite(self.complete):
            raise ValueError(f"operation {self.id}: a {status.value} answer needs a finite time")
        if self.complete < self.invoke:
            raise ValueError(f"operation {self.id}: completes before it is invoked")

    def __str__(self) -> str:
        body = f"{self.kind}({self.key!r}"
        if self.input is not None:
            body += f", {self.input!r}"
        body += ")"
        if self.status is Status.OK and self.output is not None:
            body += f" -> {self.output!r}"
        end = "∞" if math.isinf(self.complete) else f"{self.complete:.3f}"
        who = f"p{self.process}" if isinstance(self.process, int) else self.process
        return f"#{self.id} {who} {body} {self.status.value} [{self.invoke:.3f}, {end}]"


def _thaw(value: Any) -> Any:
    """Inverse of `freeze` for JSON: tuples back to lists, frozen dicts to dicts."""
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, dict):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def encode_op(op: Operation) -> str:
    """One JSON line for ``op``; ``complete`` is null for an unknown outcome (no +inf in JSON)."""
    return json.dumps(
        {
            "id": op.id,
            "process": op.process,
            "kind": op.kind,
            "key": _thaw(op.key),
            "input": _thaw(op.input),
            "output": _thaw(op.output),
            "invoke": op.invoke,
            "complete": None if math.isinf(op.complete) else op.complete,
            "status": op.status.value,
        },
        separators=(",", ":"),
    )


def decode_op(line: str) -> Operation:
    """Parse one line written by `encode_op` (``status`` may also be "timeout"/"unknown")."""
    d = json.loads(line)
    complete = d.get("complete")
    return Operation(
        id=int(d["id"]),
        process=d["process"],
        kind=d["kind"],
        key=d["key"],
        input=d.get("input"),
        output=d.get("output"),
        invoke=float(d["invoke"]),
        complete=math.inf if complete is None else float(complete),
        status=d.get("status", "ok"),
    )


def dumps_history(ops: Iterable[Operation]) -> str:
    """A whole history as JSON lines; a recorder may instead write `encode_op` per line."""
    return "".join(encode_op(op) + "\n" for op in ops)


def loads_history(lines: str | Iterable[str]) -> list[Operation]:
    """Read JSON lines (a string or any iterable of lines, e.g. an open file); blanks skipped."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    return [decode_op(line) for line in lines if line.strip()]


# ---------------------------------------------------------------------------
# Sequential models


class Model(Protocol):
    """A sequential specification: what one key does when operations come one at a time.

    ``step`` must be a pure function of (state, op) and states must be hashable:
    the checker caches them.  For an ``info`` operation, ``step`` describes the
    effect *if* it happened (it must not reject on output, which is unknown).
    """

    name: str
    #: Kinds that never change the state; unknown-outcome ones are dropped.
    read_kinds: frozenset[str]

    def init(self, key: Hashable) -> Hashable: ...

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]: ...

    def is_pure(self, op: Operation) -> bool:
        """True if ``op`` is a pure observation: in every state ``step`` either
        refuses it or leaves the state exactly as it was.  The search places
        such operations greedily (see `_search`), so say False when unsure."""
        ...

    def describe_state(self, state: Hashable) -> str: ...


class RegisterModel:
    """A read/write/compare-and-set register, one per key, starting at ``initial``.

    ``cas`` takes ``(expected, new)``; an ``ok`` cas whose output is False
    reports that the comparison failed, which is also information: at its
    linearization point the register held something other than ``expected``.
    """

    name = "register"
    read_kinds = frozenset({"read"})

    def __init__(self, initial: Any = None) -> None:
        self.initial = freeze(initial)

    def init(self, key: Hashable) -> Hashable:
        return self.initial

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]:
        kind = op.kind
        if kind == "read":
            return op.status is not Status.OK or op.output == state, state
        if kind == "write":
            return True, op.input
        if kind == "cas":
            expected, new = op.input
            if op.status is not Status.OK:
                return True, (new if state == expected else state)
            if op.output is False:
                return state != expected, state
            return state == expected, new
        raise ValueError(f"register: unknown operation kind {kind!r}")

    def is_pure(self, op: Operation) -> bool:
        if op.status is not Status.OK:
            return False
        return op.kind == "read" or (op.kind == "cas" and op.output is False)

    def describe_state(self, state: Hashable) -> str:
        return f"value {state!r}"


class VersionedModel:
    """An object with a version number, updated by compare-and-set on the version.

    Like a Docker API object's ``Version.Index``: ``read`` returns
    ``(version, value)``; ``write`` takes ``(expected_version, value)`` and
    applies iff the current version equals ``expected_version``, after which
    the version is the index the server answered with (``output``).  An ``ok``
    write with output None was refused as stale (HTTP 409) -- a fact about the
    version at that moment.  A timed-out write leaves the new version unknown
    (None in the state): until a read reveals it, any version matches.
    """

    name = "versioned"
    read_kinds = frozenset({"read"})

    def __init__(self, initial_version: int | None = 0, initial_value: Any = None) -> None:
        self.initial = (initial_version, freeze(initial_value))

    def init(self, key: Hashable) -> Hashable:
        return self.initial

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]:
        version, value = state
        if op.kind == "read":
            if op.status is not Status.OK:
                return True, state
            seen_version, seen_value = op.output
            if seen_value != value or (version is not None and version != seen_version):
                return False, state
            return True, (seen_version, value)  # pins an unknown version
        if op.kind == "write":
            expected, new_value = op.input
            matches = version is None or version == expected
            if op.status is not Status.OK:
                return True, ((None, new_value) if matches else state)
            if op.output is None:  # refused: the version did not match
                return version is None or version != expected, state
            return matches, (op.output, new_value)
        raise ValueError(f"versioned: unknown operation kind {op.kind!r}")

    def is_pure(self, op: Operation) -> bool:
        # Not even reads: one can pin a version left unknown by a timed-out write.
        return False

    def describe_state(self, state: Hashable) -> str:
        version, value = state
        shown = "unknown" if version is None else version
        return f"version {shown}, value {value!r}"


# ---------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True, slots=True)
class Violation:
    """Why one key is not linearizable, as small as we could make it."""

    key: Hashable
    #: The earliest completion time at which the history cut there already fails.
    failed_at: float
    #: The operation completing at ``failed_at``: it cannot be placed.
    op: Operation
    #: 1-minimal set of ok operations (incl. ``op``) whose answers cannot all hold.
    core: tuple[Operation, ...]
    #: Longest order of the core (plus possible unknown effects) the search reached.
    partial: tuple[Operation, ...]
    #: Model state after ``partial``, described by the model.
    state: str
    #: The operation whose deadline passed after ``partial`` (None if not found).
    blocked: Operation | None
    explanation: str


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key: ``ok`` is None when the state budget ran out."""

    key: Hashable
    ok: bool | None
    ops: int
    states: int
    violation: Violation | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verdict for a whole history: linearizable iff every key is."""

    ok: bool | None
    model: str
    keys: dict[Hashable, KeyResult] = field(default_factory=dict)

    @property
    def states(self) -> int:
        """Search states explored over all keys (the deterministic cost measure)."""
        return sum(r.states for r in self.keys.values())

    @property
    def violations(self) -> list[Violation]:
        return [r.violation for r in self.keys.values() if r.violation is not None]

    def explain(self) -> str:
        """A paragraph per failing or undecided key, or one line when all is well."""
        if self.ok:
            return f"linearizable: {len(self.keys)} key(s), {self.states} states explored"
        parts = []
        for r in self.keys.values():
            if r.violation is not None:
                parts.append(r.violation.explanation)
            elif r.ok is None:
                parts.append(f"key {r.key!r}: undecided, state budget exhausted")
        return "\n\n".join(parts)


# ---------------------------------------------------------------------------
# The search


@dataclass(slots=True)
class _Outcome:
    ok: bool | None
    states: int
    partial: list[int] = field(default_factory=list)
    state: Hashable = None
    blocked: int | None = None


def _search(
    model: Model,
    init: Hashable,
    ops: Sequence[Operation],
    max_states: int,
    record: bool = False,
    deadlines: Mapping[int, float] | None = None,
) -> _Outcome:
    """Wing-Gong-Lowe depth-first search over one key's operations.

    ``ops`` must already exclude fail operations and unknown reads.
    ``deadlines`` maps ids of unknown-outcome operations to a time before which
    they took effect if they did at all: the diagnosis weakens an ok operation
    this way, keeping its interval but forgetting that it happened and what
    it returned.  With
    ``record``, also keep the deepest partial linearization (costs O(depth)
    each time a new depth is reached, so only used on small cores).
    """
    n = len(ops)
    # Events: calls sort before returns at the same instant, so touching
    # intervals count as concurrent (the permissive reading of equal clocks).
    events = [(op.invoke, 0, i) for i, op in enumerate(ops)]
    deadlines = deadlines or {}
    for i, op in enumerate(ops):
        end = deadlines.get(op.id, op.complete)
        if math.isfinite(end):
            events.append((end, 1, i))
    events.sort()
    size = len(events) + 1  # node 0 is the head sentinel
    nxt = [*range(1, size), -1]
    prv = [-1, *range(size - 1)]
    node_op = [-1] * size
    is_call = [False] * size
    ret_node = [-1] * n
    call_node = [-1] * n
    for j, (_, is_ret, i) in enumerate(events, start=1):
        node_op[j] = i
        is_call[j] = not is_ret
        if is_ret:
            ret_node[i] = j
        else:
            call_node[i] = j
    required = [op.status is Status.OK for op in ops]
    remaining = sum(required)
    step = model.step
    pure = [model.is_pure(op) for op in ops]

    def unlink(j: int) -> None:
        nxt[prv[j]] = nxt[j]
        if nxt[j] != -1:
            prv[nxt[j]] = prv[j]

    def relink(j: int) -> None:
        nxt[prv[j]] = j
        if nxt[j] != -1:
            prv[nxt[j]] = j

    state = init
    placed = 0  # bitset of linearized operations
    cache: set[tuple[int, Hashable]] = set()
    # (call node, state before, placed before, whether alternatives are dominated)
    stack: list[tuple[int, Hashable, int, bool]] = []
    best: list[int] = []
    best_state = init
    at_best = record
    blocked: int | None = None
    node = nxt[0]
    while remaining:
        i = node_op[node]
        backtrack = False
        if is_call[node]:
            op = ops[i]
            ok, new_state = step(state, op)
            if ok:
                # A pure observation that fits now may as well go now: any
                # order placing it later stays valid with it moved here, so
                # if going now fails, so does every alternative at this point.
                forced = pure[i] and new_state == state
                key = (placed | (1 << i), new_state)
                if key not in cache:
                    if len(cache) >= max_states:
                        return _Outcome(None, len(cache))
                    cache.add(key)
                    stack.append((node, state, placed, forced))
                    state, placed = new_state, key[0]
                    unlink(node)
                    if ret_node[i] != -1:
                        unlink(ret_node[i])
                    remaining -= required[i]
                    if record:
                        at_best = len(stack) > len(best)
                        if at_best:
                            best = [node_op[s[0]] for s in stack]
                            best_state = state
                    node = nxt[0]
                    continue
                backtrack = forced  # already explored from here, and it failed
            if not backtrack:
                node = nxt[node]
                continue
        elif not required[i]:
            # An optional operation's deadline: from here on it never happened.
            # Nothing to choose, so undoing this step must undo the one before.
            cache.add((placed | (1 << i), state))
            stack.append((call_node[i], state, placed, True))
            placed |= 1 << i
            unlink(call_node[i])
            unlink(node)
            node = nxt[0]
            continue
        elif record and at_best:
            blocked = i
        # Operation i reached its deadline unplaced (or a forced move is known
        # to fail): undo choices until one with untried alternatives.
        at_best = False
        while True:
            if not stack:
                return _Outcome(False, len(cache), best, best_state, blocked)
            node, state, placed, forced = stack.pop()
            i = node_op[node]
            if ret_node[i] != -1:
                relink(ret_node[i])
            remaining += required[i]
            relink(node)
            if not forced:
                break
        node = nxt[node]
    return _Outcome(True, len(cache))


def _relevant(model: Model, ops: Iterable[Operation]) -> list[Operation]:
    """Drop what cannot matter: failed operations and reads of unknown outcome."""
    return [
        op
        for op in ops
        if op.status is Status.OK or (op.status is Status.INFO and op.kind not in model.read_kinds)
    ]


def _unknown(op: Operation) -> Operation:
    return replace(op, status=Status.INFO, output=None, complete=math.inf)


def _cut(ops: Sequence[Operation], t: float) -> list[Operation]:
    """The history as it stood at time ``t``: later invocations gone, running ones unknown."""
    return [op if op.complete <= t else _unknown(op) for op in ops if op.invoke <= t]


def check_key(
    ops: Sequence[Operation],
    model: Model | None = None,
    *,
    key: Hashable = None,
    max_states: int = DEFAULT_MAX_STATES,
    minimize: bool = True,
    diagnosis_states: int = DEFAULT_DIAGNOSIS_STATES,
) -> KeyResult:
    """Check the operations of one key; on failure, build a minimal `Violation`."""
    model = model or RegisterModel()
    if key is None and ops:
        key = ops[0].key
    init = model.init(key)
    relevant = sorted(_relevant(model, ops), key=lambda op: (op.invoke, op.id))
    out = _search(model, init, relevant, max_states)
    if out.ok is not False:
        return KeyResult(key, out.ok, len(relevant), out.states)
    spent = out.states
    violation = None
    if minimize:
        violation = _diagnose(model, init, key, relevant, min(max_states, diagnosis_states))
    if violation is None:
        violation = _undiagnosed(model, init, key, relevant, max_states)
    return KeyResult(key, False, len(relevant), spent, violation)


def check(
    history: Iterable[Operation],
    model: Model | None = None,
    *,
    max_states: int = DEFAULT_MAX_STATES,
    minimize: bool = True,
    diagnosis_states: int = DEFAULT_DIAGNOSIS_STATES,
) -> Verdict:
    """Check a whole history, key by key (linearizability is compositional).

    ``max_states`` bounds the search per key; a key that exceeds it is
    reported undecided (``ok`` None) rather than searched forever.
    ``diagnosis_states`` bounds the extra searches that shrink a violation;
    past it the violation is reported unminimized (the verdict stands).
    """
    model = model or RegisterModel()
    by_key: dict[Hashable, list[Operation]] = {}
    for op in history:
        by_key.setdefault(op.key, []).append(op)
    results = {
        k: check_key(
            v,
            model,
            key=k,
            max_states=max_states,
            minimize=minimize,
            diagnosis_states=diagnosis_states,
        )
        for k, v in by_key.items()
    }
    verdicts = [r.ok for r in results.values()]
    ok: bool | None
    if False in verdicts:
        ok = False
    elif None in verdicts:
        ok = None
    else:
        ok = True
    return Verdict(ok, model.name, results)


# ---------------------------------------------------------------------------
# Diagnosis: the first failing moment and a 1-minimal conflict core


def _diagnose(
    model: Model, init: Hashable, key: Hashable, ops: list[Operation], max_states: int
) -> Violation | None:
    """Find the first failing cut, shrink it to a core, and tell its story.

    Returns None once the sub-searches together have explored ``max_states``
    states (the caller then reports the failure without minimization): a
    failure found late in a long, highly concurrent key costs a search of
    every reachable configuration, and the diagnosis repeats that search.
    """
    budget = max_states

    def fails(history: Sequence[Operation], deadlines: Mapping[int, float] | None = None):
        nonlocal budget
        if budget <= 0:
            return None
        out = _search(model, init, history, budget, deadlines=deadlines)
        budget -= out.states
        return None if out.ok is None else not out.ok

    times = sorted({op.complete for op in ops if op.status is Status.OK})
    lo, hi = 0, len(times) - 1  # the cut at times[hi] fails (it is the whole history)
    while lo < hi:
        mid = (lo + hi) // 2
        verdict = fails(_cut(ops, times[mid]))
        if verdict is None:
            return None
        if verdict:
            hi = mid
        else:
            lo = mid + 1
    t = times[lo]
    cut = _cut(ops, t)

    # ddmin-style shrink: try weakening chunks of the core, halving the chunk
    # size down to single operations, which leaves a 1-minimal core.  A
    # weakened operation keeps its interval (so it cannot float across the
    # whole history and blow the search up) but may or may not have happened
    # and its answer is forgotten; a weakened read is simply gone.
    core = [op.id for op in cut if op.status is Status.OK]
    by_id = {op.id: op for op in cut}
    deadlines = {op.id: op.complete for op in cut if op.status is Status.OK}

    def with_core(ids: Sequence[int]) -> list[Operation]:
        keep = set(ids)
        return _relevant(model, [op if op.id in keep else _unknown(op) for op in cut])

    chunk = max(1, len(core) // 2)
    while True:
        i = 0
        while i < len(core):
            trial = core[:i] + core[i + chunk :]
            verdict = fails(with_core(trial), deadlines)
            if verdict is None:
                return None
            if verdict:
                core = trial
            else:
                i += chunk
        if chunk == 1:
            break
        chunk = max(1, chunk // 2)

    core_ops = tuple(sorted((by_id[i] for i in core), key=lambda op: (op.invoke, op.id)))
    culprit = max(core_ops, key=lambda op: (op.complete, op.invoke, op.id))
    history = sorted(with_core(core), key=lambda op: (op.invoke, op.id))
    story = _search(model, init, history, max_states, record=True, deadlines=deadlines)
    partial = tuple(history[i] for i in story.partial)
    blocked = history[story.blocked] if story.blocked is not None else None
    state = model.describe_state(story.state)
    text = _explain(key, t, culprit, core_ops, partial, state, blocked)
    return Violation(key, t, culprit, core_ops, partial, state, blocked, text)


def _undiagnosed(
    model: Model, init: Hashable, key: Hashable, ops: list[Operation], max_states: int
) -> Violation:
    """A violation without minimization: the whole key history is the core."""
    last = max((op for op in ops if op.status is Status.OK), key=lambda op: (op.complete, op.id))
    text = (
        f"key {key!r} is not linearizable ({len(ops)} operations; "
        "not minimized: minimization off or over budget)"
    )
    state = model.describe_state(init)
    return Violation(key, last.complete, last, tuple(ops), (), state, None, text)


def _explain(
    key: Hashable,
    t: float,
    culprit: Operation,
    core: Sequence[Operation],
    partial: Sequence[Operation],
    state: str,
    blocked: Operation | None,
) -> str:
    lines = [
        f"key {key!r} is not linearizable.",
        f"Everything that completed before t={t:.3f} can be ordered; then this operation "
        "completes and cannot be placed:",
        f"    {culprit}",
        (
            f"These {len(core)} operations' answers cannot all be true (make any one of "
            "them unknown and the rest can be ordered):"
            if len(core) > 1
            else "Its answer cannot be true whatever the other operations did:"
        ),
    ]
    lines += [f"    {op}" for op in core]
    core_ids = {op.id for op in core}
    if partial:
        # Only the core is worth reading; the rest is summarized where it falls.
        lines.append("The longest order the search found for them:")
        others = 0
        for op in partial:
            if op.id not in core_ids:
                others += 1
                continue
            if others:
                lines.append(f"    ... {others} other operation(s) that may have happened")
                others = 0
            lines.append(f"    {op}")
        if others:
            lines.append(f"    ... {others} other operation(s) that may have happened")
        lines.append(f"leaving {state};")
    else:
        lines.append(f"No operation can even go first from the initial {state};")
    if blocked is not None:
        lines.append(
            f"then {blocked} reaches its deadline without a place: the model refuses it "
            "at every point still open to it."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# A simulated correct register, for tests and the benchmark


def random_register_history(
    rng: random.Random,
    n_ops: int = 5000,
    n_keys: int = 10,
    n_clients: int = 20,
    p_info: float = 0.02,
    p_fail: float = 0.02,
) -> list[Operation]:
    """A linearizable history from an ideal register under random concurrency.

    Each client runs operations back to back (random think and service
    times); each operation takes effect at a random instant inside its
    interval, and answers are computed by replaying those instants in order,
    so the history is correct by construction.  A timed-out operation takes
    effect (or not) somewhere after its invocation, and its client continues
    under a fresh process id, as a real client would after losing a reply.
    """
    planned: list[dict[str, Any]] = []
    next_process = n_clients
    next_value = 1
    per_client = max(1, n_ops // n_clients)
    for client in range(n_clients):
        process, now = client, rng.uniform(0.0, 1.0)
        for _ in range(per_client):
            invoke = now + rng.expovariate(5.0)
            complete = invoke + rng.expovariate(2.0) + 0.001
            kind = rng.choices(("read", "write", "cas"), (0.5, 0.35, 0.15))[0]
            key = f"k{rng.randrange(n_keys)}"
            status = Status.OK
            roll = rng.random()
            if roll < p_info:
                status = Status.INFO
            elif roll < p_info + p_fail and kind != "read":
                status = Status.FAIL
            point: float | None = rng.uniform(invoke, complete)
            if status is Status.FAIL or (status is Status.INFO and rng.random() < 0.5):
                point = None  # never takes effect
            elif status is Status.INFO:
                point = invoke + rng.uniform(0.0, 3.0) * (complete - invoke)
            value: Any = None
            if kind == "write":
                value, next_value = next_value, next_value + 1
            elif kind == "cas":
                expected = rng.choice((None, *range(max(1, next_value - 6), next_value)))
                value, next_value = (expected, next_value), next_value + 1
            planned.append(
                dict(
                    process=process,
                    kind=kind,
                    key=key,
                    input=value,
                    invoke=invoke,
                    complete=complete,
                    status=status,
                    point=point,
                )
            )
            now = complete
            if status is Status.INFO:
                process, next_process = next_process, next_process + 1
    registers: dict[str, Any] = {}
    for p in sorted((p for p in planned if p["point"] is not None), key=lambda p: p["point"]):
        current = registers.get(p["key"])
        if p["kind"] == "read":
            p["output"] = current
        elif p["kind"] == "write":
            registers[p["key"]] = p["input"]
        else:
            expected, new = p["input"]
            p["output"] = current == expected
            if current == expected:
                registers[p["key"]] = new
    planned.sort(key=lambda p: p["invoke"])
    return [
        Operation(
            id=n,
            process=p["process"],
            kind=p["kind"],
            key=p["key"],
            input=p["input"],
            output=p.get("output") if p["status"] is Status.OK else None,
            invoke=p["invoke"],
            complete=p["complete"],
            status=p["status"],
        )
        for n, p in enumerate(planned)
    ]
