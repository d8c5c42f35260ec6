"""The search for a linearization (Wing and Gong, with Lowe's cache): see the
package docstring for the theory of operation."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from scenarios.linearizability.history import Operation, Status
from scenarios.linearizability.model import Model

__all__ = ["Outcome", "as_unknown", "cut_at", "relevant_ops", "search"]


@dataclass(slots=True)
class Outcome:
    """One search's answer (None: gave up), with what `checker` needs to explain it."""

    ok: bool | None
    states: int
    partial: list[int] = field(default_factory=list)
    state: Hashable = None
    blocked: int | None = None


def search(
    model: Model,
    init: Hashable,
    ops: Sequence[Operation],
    max_states: int,
    record: bool = False,
    deadlines: Mapping[int, float] | None = None,
) -> Outcome:
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
                        return Outcome(None, len(cache))
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
                return Outcome(False, len(cache), best, best_state, blocked)
            node, state, placed, forced = stack.pop()
            i = node_op[node]
            if ret_node[i] != -1:
                relink(ret_node[i])
            remaining += required[i]
            relink(node)
            if not forced:
                break
        node = nxt[node]
    return Outcome(True, len(cache))


def relevant_ops(model: Model, ops: Iterable[Operation]) -> list[Operation]:
    """Drop what cannot matter: failed operations and reads of unknown outcome."""
    return [
        op
        for op in ops
        if op.status is Status.OK or (op.status is Status.INFO and op.kind not in model.read_kinds)
    ]


def as_unknown(op: Operation) -> Operation:
    return replace(op, status=Status.INFO, output=None, complete=math.inf)


def cut_at(ops: Sequence[Operation], t: float) -> list[Operation]:
    """The history as it stood at time ``t``: later invocations gone, running ones unknown."""
    return [op if op.complete <= t else as_unknown(op) for op in ops if op.invoke <= t]
