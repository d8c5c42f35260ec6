"""`check` and `check_key`: the search per key (P-compositionality), then, for a
key that fails, the diagnosis: the first failing moment and a 1-minimal core."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

from scenarios.linearizability.history import Operation, Status
from scenarios.linearizability.model import Model, RegisterModel
from scenarios.linearizability.search import as_unknown, cut_at, relevant_ops, search
from scenarios.linearizability.verdict import KeyResult, Verdict, Violation

__all__ = ["DEFAULT_DIAGNOSIS_STATES", "DEFAULT_MAX_STATES", "check", "check_key"]

#: Default bound on explored (placed-set, state) pairs per key before giving up.
DEFAULT_MAX_STATES = 1_000_000
#: Default bound on states explored by all of one key's diagnosis searches together.
DEFAULT_DIAGNOSIS_STATES = 200_000


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
    relevant = sorted(relevant_ops(model, ops), key=lambda op: (op.invoke, op.id))
    out = search(model, init, relevant, max_states)
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
        out = search(model, init, history, budget, deadlines=deadlines)
        budget -= out.states
        return None if out.ok is None else not out.ok

    times = sorted({op.complete for op in ops if op.status is Status.OK})
    lo, hi = 0, len(times) - 1  # the cut at times[hi] fails (it is the whole history)
    while lo < hi:
        mid = (lo + hi) // 2
        verdict = fails(cut_at(ops, times[mid]))
        if verdict is None:
            return None
        if verdict:
            hi = mid
        else:
            lo = mid + 1
    t = times[lo]
    cut = cut_at(ops, t)

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
        return relevant_ops(model, [op if op.id in keep else as_unknown(op) for op in cut])

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
    story = search(model, init, history, max_states, record=True, deadlines=deadlines)
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
