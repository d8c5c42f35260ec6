"""Tests for the linearizability checker (scenarios/linearizability/).

Hand-made histories first, each drawn as a timeline in its comment, then a
cross-check against brute force on small random histories, then the models,
serialization and the cost bound on a large generated history.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from scenarios.linearizability import (
    Operation,
    RegisterModel,
    Status,
    VersionedModel,
    check,
    check_key,
    decode_op,
    dumps_history,
    encode_op,
    loads_history,
    random_register_history,
)

OK, FAIL, INFO = Status.OK, Status.FAIL, Status.INFO


class History:
    """Builds operations with ids in the order written."""

    def __init__(self) -> None:
        self.ops: list[Operation] = []

    def add(self, process, kind, key, inp, out, invoke, complete, status=OK) -> Operation:
        op = Operation(len(self.ops), process, kind, key, inp, out, invoke, complete, status)
        self.ops.append(op)
        return op

    def w(self, p, value, t0, t1, status=OK, key="x") -> Operation:
        return self.add(p, "write", key, value, None, t0, t1, status)

    def r(self, p, value, t0, t1, status=OK, key="x") -> Operation:
        return self.add(p, "read", key, None, value, t0, t1, status)

    def cas(self, p, expected, new, applied, t0, t1, status=OK, key="x") -> Operation:
        return self.add(p, "cas", key, (expected, new), applied, t0, t1, status)


def ids(ops) -> set[int]:
    return {op.id for op in ops}


# --- registers: hand-made histories -----------------------------------------


def test_empty_history_is_linearizable():
    assert check([]).ok is True


def test_sequential_reads_and_writes():
    h = History()
    h.r(0, None, 0, 1)
    h.w(0, 1, 2, 3)
    h.r(1, 1, 4, 5)
    h.w(1, 2, 6, 7)
    h.r(0, 2, 8, 9)
    assert check(h.ops).ok is True


def test_stale_read_after_completed_write():
    # p0: |w1|  |w2|
    # p1:             |r->1|     the read began after w2 completed
    h = History()
    w1 = h.w(0, 1, 0, 1)
    w2 = h.w(0, 2, 2, 3)
    r = h.r(1, 1, 4, 5)
    verdict = check(h.ops)
    assert verdict.ok is False
    (v,) = verdict.violations
    assert v.op == r and v.failed_at == 5
    # w1 need not be certain: even if it only *may* have happened (in its
    # interval), nothing can write 1 after w2.  Without w2 or the read, fine.
    assert ids(v.core) == ids([w2, r])
    assert [op.id for op in v.partial] == [w1.id, w2.id] and v.blocked == r
    assert "#2" in v.explanation and "value 2" in v.explanation


def test_read_concurrent_with_write_may_see_either_value():
    h = History()
    h.w(0, 1, 0, 1)
    h.w(0, 2, 2, 5)
    h.r(1, 1, 3, 4)  # overlaps w2: old value is fine
    h.r(2, 2, 3, 4)  # ... and so is the new one
    assert check(h.ops).ok is True


def test_concurrent_writes_observed_in_one_order_is_linearizable():
    # w1 and w2 overlap everything; both readers see 1 then 2.
    h = History()
    h.w(0, 1, 0, 10)
    h.w(1, 2, 0, 10)
    h.r(2, 1, 1, 2)
    h.r(2, 2, 3, 4)
    h.r(3, 1, 1, 2)
    h.r(3, 2, 3, 4)
    assert check(h.ops).ok is True


def test_concurrent_writes_observed_in_impossible_orders():
    # p2 sees 1 then 2 (so w1 < w2), p3 sees 2 then 1 (so w2 < w1).
    h = History()
    h.w(0, 1, 0, 10)
    h.w(1, 2, 0, 10)
    h.r(2, 1, 1, 2)
    h.r(2, 2, 3, 4)
    h.r(3, 2, 1, 2)
    h.r(3, 1, 3, 4)
    verdict = check(h.ops)
    assert verdict.ok is False
    (v,) = verdict.violations
    assert v.failed_at == 4
    assert v.op in v.core and v.op.complete == 4
    assert len(v.core) <= 6


@pytest.mark.parametrize("winner", [0, 1])
def test_cas_success_either_way(winner):
    # Two concurrent cas(0 -> a), cas(0 -> b): exactly one may win, either one.
    h = History()
    h.w(0, 0, 0, 1)
    h.cas(1, 0, "a", winner == 0, 2, 4)
    h.cas(2, 0, "b", winner == 1, 2, 4)
    h.r(3, "a" if winner == 0 else "b", 5, 6)
    assert check(h.ops).ok is True


def test_cas_both_succeeding_is_not_linearizable():
    h = History()
    h.w(0, 0, 0, 1)
    a = h.cas(1, 0, "a", True, 2, 4)
    b = h.cas(2, 0, "b", True, 2, 4)
    verdict = check(h.ops)
    assert verdict.ok is False
    (v,) = verdict.violations
    assert {a.id, b.id} <= ids(v.core)


def test_cas_reported_false_while_value_matched():
    # Nothing else touched x: a comparison failure is a lie.
    h = History()
    h.w(0, 0, 0, 1)
    c = h.cas(1, 0, 5, False, 2, 3)
    verdict = check(h.ops)
    assert verdict.ok is False
    assert verdict.violations[0].op == c


def test_cas_chain():
    h = History()
    h.cas(0, None, 1, True, 0, 1)
    h.cas(1, 1, 2, True, 2, 3)
    h.cas(0, 1, 3, False, 4, 5)
    h.r(1, 2, 6, 7)
    assert check(h.ops).ok is True


def test_timed_out_write_observed_later_is_linearizable():
    # p0's write timed out; its effect shows up long after the client gave up.
    h = History()
    h.w(0, 1, 0, 1)
    h.w(1, 2, 2, 3, status=INFO)
    h.r(2, 1, 5, 6)  # not yet applied
    h.r(2, 2, 10, 11)  # applied now
    assert check(h.ops).ok is True


def test_timed_out_write_never_observed_is_linearizable():
    h = History()
    h.w(0, 1, 0, 1)
    h.w(1, 2, 2, 3, status=INFO)
    h.r(2, 1, 5, 6)
    assert check(h.ops).ok is True


def test_timed_out_write_cannot_take_effect_before_invocation():
    h = History()
    h.r(0, 2, 0, 1)
    h.w(1, 2, 2, 3, status=INFO)
    assert check(h.ops).ok is False


def test_timed_out_write_takes_effect_at_most_once():
    h = History()
    h.w(0, 1, 0, 1, status=INFO)
    h.w(1, 2, 2, 3)
    h.r(2, 1, 4, 5)  # the late write of 1 lands after 2
    h.r(2, 2, 6, 7)  # ... and cannot be undone
    assert check(h.ops).ok is False


def test_failed_write_observed_is_not_linearizable():
    h = History()
    h.w(0, 1, 0, 1)
    h.w(1, 2, 2, 3, status=FAIL)
    r = h.r(2, 2, 4, 5)
    verdict = check(h.ops)
    assert verdict.ok is False
    assert verdict.violations[0].op == r


def test_failed_and_unknown_reads_are_ignored():
    h = History()
    h.w(0, 1, 0, 1)
    h.r(1, 99, 2, 3, status=FAIL)
    h.add(2, "read", "x", None, None, 2, math.inf, status="timeout")
    assert check(h.ops).ok is True


def test_touching_intervals_count_as_concurrent():
    h = History()
    h.w(0, 1, 0, 1)
    h.r(1, None, 1, 2)  # begins at the instant the write ends
    assert check(h.ops).ok is True


# --- per-key partitioning ----------------------------------------------------


def test_keys_are_independent():
    # Read y -> None after x was written: fine, they are different registers.
    h = History()
    h.w(0, 1, 0, 1, key="x")
    h.r(1, None, 2, 3, key="y")
    h.r(1, 1, 2, 3, key="x")
    verdict = check(h.ops)
    assert verdict.ok is True
    assert set(verdict.keys) == {"x", "y"}


def test_violation_reported_for_its_key_only():
    h = History()
    for k in ("a", "b", "c"):
        h.w(0, 1, 0, 1, key=k)
        h.r(1, 1, 2, 3, key=k)
    h.r(2, None, 4, 5, key="b")  # stale: b was written at 1
    verdict = check(h.ops)
    assert verdict.ok is False
    assert {k: r.ok for k, r in verdict.keys.items()} == {"a": True, "b": False, "c": True}
    assert [v.key for v in verdict.violations] == ["b"]
    assert "key 'b'" in verdict.explain()


def test_check_key_on_sub_history():
    h = History()
    h.w(0, 1, 0, 1)
    h.r(1, 1, 2, 3)
    result = check_key(h.ops, RegisterModel())
    assert result.ok is True and result.key == "x" and result.ops == 2


def test_state_budget_gives_undecided():
    h = History()
    for p in range(12):
        h.w(p, p, 0, 10)
    h.r(99, -1, 11, 12)  # impossible, but the search must try many orders first
    verdict = check(h.ops, max_states=50)
    assert verdict.ok is None
    assert "undecided" in verdict.explain()


def test_initial_value():
    h = History()
    h.r(0, 0, 0, 1)
    assert check(h.ops, RegisterModel(initial=0)).ok is True
    assert check(h.ops).ok is False


# --- versioned objects (Docker's Version.Index) ---------------------------------


def v_read(h, p, version, value, t0, t1, status=OK):
    return h.add(p, "read", "svc", None, (version, value), t0, t1, status)


def v_write(h, p, expected, value, new_index, t0, t1, status=OK):
    return h.add(p, "write", "svc", (expected, value), new_index, t0, t1, status)


def test_versioned_updates_in_sequence():
    h = History()
    v_read(h, 0, 5, "a", 0, 1)
    v_write(h, 0, 5, "b", 9, 2, 3)
    v_read(h, 1, 9, "b", 4, 5)
    v_write(h, 1, 9, "c", 12, 6, 7)
    v_write(h, 0, 9, "d", None, 8, 9)  # 409: version 9 is stale now
    v_read(h, 0, 12, "c", 10, 11)
    assert check(h.ops, VersionedModel(5, "a")).ok is True


def test_versioned_lost_update_is_caught():
    # Two clients both update from version 5 and both are told they won.
    h = History()
    v_write(h, 0, 5, "b", 9, 0, 2)
    v_write(h, 1, 5, "c", 10, 0, 2)
    verdict = check(h.ops, VersionedModel(5, "a"))
    assert verdict.ok is False
    assert len(verdict.violations[0].core) == 2


def test_versioned_refusal_must_be_justified():
    h = History()
    v_write(h, 0, 5, "b", None, 0, 1)  # refused, yet version 5 was current
    assert check(h.ops, VersionedModel(5, "a")).ok is False


def test_versioned_unknown_write_then_read_pins_version():
    h = History()
    v_write(h, 0, 5, "b", None, 0, 1, status=INFO)
    v_read(h, 1, 7, "b", 2, 3)  # the timed-out update did land, at index 7
    v_write(h, 1, 7, "c", 8, 4, 5)
    assert check(h.ops, VersionedModel(5, "a")).ok is True
    h2 = History()
    v_write(h2, 0, 5, "b", None, 0, 1, status=INFO)
    v_read(h2, 1, 7, "b", 2, 3)
    v_write(h2, 1, 6, "c", 8, 4, 5)  # expected version 6, but it is 7
    assert check(h2.ops, VersionedModel(5, "a")).ok is False


def test_versioned_stale_read():
    h = History()
    v_write(h, 0, 5, "b", 9, 0, 1)
    v_read(h, 1, 5, "a", 2, 3)
    assert check(h.ops, VersionedModel(5, "a")).ok is False


# --- serialization -----------------------------------------------------------


def test_jsonl_round_trip():
    h = History()
    h.w(0, {"replicas": [1, 2]}, 0.5, 1.25)
    h.cas("client-7", 1, 2, True, 2, 3)
    h.w(1, 3, 4, 5, status=INFO)
    h.w(1, 4, 6, 7, status=FAIL)
    text = dumps_history(h.ops)
    assert len(text.splitlines()) == 4
    assert '"complete":null' in text.splitlines()[2]
    back = loads_history(text)
    assert back == h.ops
    assert back[1].input == (1, 2) and back[2].complete == math.inf
    assert loads_history(iter(text.splitlines(keepends=True))) == h.ops
    assert decode_op(encode_op(h.ops[0])) == h.ops[0]


def test_decode_accepts_timeout_alias_and_checks_times():
    op = decode_op('{"id":1,"process":2,"kind":"write","key":"x","input":1,'
                   '"invoke":1.0,"complete":2.0,"status":"timeout"}')  # fmt: skip
    assert op.status is INFO and op.complete == math.inf
    with pytest.raises(ValueError):
        Operation(0, 0, "write", "x", 1, None, 2.0, 1.0)
    with pytest.raises(ValueError):
        Operation(0, 0, "write", "x", 1, None, 2.0, math.inf, OK)


# --- cross-check against brute force -------------------------------------------


def brute_force(ops: list[Operation], model, deadlines=None) -> bool:
    """Try every order of every admissible subset: the definition, executed.

    ``deadlines`` gives unknown-outcome operations an end of interval (the
    checker's weakened operations).
    """
    deadlines = deadlines or {}
    ops = [op for op in ops if op.status is not FAIL]
    must = [op for op in ops if op.status is OK]
    maybe = [op for op in ops if op.status is INFO]
    for r in range(len(maybe) + 1):
        for extra in itertools.combinations(maybe, r):
            for order in itertools.permutations(must + list(extra)):
                if _valid(order, model, deadlines):
                    return True
    return False


def _valid(order, model, deadlines) -> bool:
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if (
                deadlines.get(b.id, b.complete) < a.invoke
            ):  # b finished before a began, yet comes after
                return False
    state = model.init(order[0].key if order else None)
    for op in order:
        ok, state = model.step(state, op)
        if not ok:
            return False
    return True


def mutate(ops: list[Operation], rng: random.Random) -> list[Operation]:
    """Corrupt one answer, which usually (not always) breaks linearizability."""
    ops = list(ops)
    candidates = [i for i, op in enumerate(ops) if op.status is OK and op.kind != "write"]
    if not candidates:
        return ops
    i = rng.choice(candidates)
    op = ops[i]
    if op.kind == "read":
        values = [o.input for o in ops if o.kind == "write"] + [None]
        output = rng.choice(values)
    else:
        output = not op.output
    ops[i] = Operation(op.id, op.process, op.kind, op.key, op.input, output,
                       op.invoke, op.complete, op.status)  # fmt: skip
    return ops


def test_agrees_with_brute_force_on_small_histories():
    model = RegisterModel()
    outcomes = {True: 0, False: 0}
    for seed in range(300):
        rng = random.Random(seed)
        ops = random_register_history(rng, n_ops=6, n_keys=1, n_clients=3, p_info=0.15)
        if seed % 2:
            ops = mutate(ops, rng)
        expected = brute_force(ops, model)
        result = check_key(ops, model)
        assert result.ok is expected, (seed, dumps_history(ops))
        outcomes[expected] += 1
        if not expected:
            core_is_one_minimal(result.violation, ops, model)
    assert outcomes[True] > 50 and outcomes[False] > 30


def core_is_one_minimal(violation, ops, model) -> None:
    """The cut fails with all but the core weakened; weakening any member fixes it."""
    t = violation.failed_at
    cut = [op if op.complete <= t else unknown(op) for op in ops if op.invoke <= t]
    deadlines = {op.id: op.complete for op in cut if op.status is OK}
    core = ids(violation.core)
    assert violation.op.id in core

    def keep(members):
        return [op if op.id in members else unknown(op) for op in cut]

    assert not brute_force(keep(core), model, deadlines)
    for member in core:
        assert brute_force(keep(core - {member}), model, deadlines)


def unknown(op: Operation) -> Operation:
    """Forget that ``op`` happened and what it answered (a read then says nothing)."""
    if op.status is not OK:
        return op
    return Operation(op.id, op.process, op.kind, op.key, op.input, None, op.invoke, math.inf, INFO)


# --- cost -----------------------------------------------------------------------


def test_generated_history_is_linearizable_within_state_bound():
    """~5,000 ops over 10 keys from a correct register, ~10 clients per key.

    Cost is counted in explored search states, not seconds, so the test is
    deterministic.  A correct history costs about one state per operation plus
    the wrong turns concurrency invites; measured ~56k for this seed, and
    55k-78k over seeds 0-9.  The bound leaves room for that spread, and would
    catch a pruning rule going missing (that costs millions).
    """
    ops = random_register_history(random.Random(2024), n_ops=5000, n_keys=10, n_clients=100)
    assert len(ops) == 5000
    assert sum(op.status is INFO for op in ops) > 50  # timeouts are exercised
    verdict = check(ops)
    assert verdict.ok is True
    assert len(verdict.keys) == 10
    assert verdict.states <= 150_000


def test_generated_history_with_planted_stale_read_is_caught():
    ops = random_register_history(random.Random(7), n_ops=2000, n_keys=10, n_clients=40)
    # Plant a read, long after everything else, of a value that was overwritten.
    writes = [op for op in ops if op.key == "k3" and op.kind == "write" and op.status is OK]
    end = max(op.complete for op in ops if op.status is not INFO)
    stale = Operation(len(ops), "late", "read", "k3", None, writes[0].input, end + 1, end + 2)
    verdict = check([*ops, stale])
    assert verdict.ok is False
    (v,) = verdict.violations
    assert v.key == "k3" and v.op == stale
    assert len(v.core) < 10  # minimized, not the whole key


def test_minimize_off_reports_whole_key():
    h = History()
    h.w(0, 1, 0, 1)
    h.r(1, 2, 2, 3)
    verdict = check(h.ops, minimize=False)
    assert verdict.ok is False
    (v,) = verdict.violations
    assert len(v.core) == 2 and "not minimized" in v.explanation
