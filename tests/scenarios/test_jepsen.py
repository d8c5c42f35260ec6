"""The Jepsen test: answer -> model mapping, schedule, figure; one short real run."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest

from scenarios.drivers.real import kill_leftovers
from scenarios.jepsen.history import (
    JepsenModel,
    Record,
    Reply,
    classify,
    history_lines,
    record_from_line,
    to_operation,
)
from scenarios.jepsen.nemesis import KINDS, fault_intervals, schedule
from scenarios.linearizability import Status, VersionedModel, check, loads_history

NAMES = [f"manager{i}" for i in range(1, 6)]


def _config(version: int, value: str) -> dict:
    return {"ID": "x", "Version": {"Index": version}, "Spec": {"Labels": {"value": value}}}


# ---------------------------------------------------------------- classify


def test_ok_read_outputs_version_and_value():
    assert classify("read", Reply(200, _config(7, "a"))) == (Status.OK, (7, "a"))


def test_ok_update_outputs_the_new_version():
    assert classify("cas", Reply(200, _config(9, "b"))) == (Status.OK, 9)


def test_409_is_an_ok_refusal_for_writes():
    assert classify("write", Reply(409, {"message": "update out of sequence"})) == (
        Status.OK,
        None,
    )


@pytest.mark.parametrize("status", [400, 404])
def test_client_errors_are_failures(status):
    assert classify("write", Reply(status, {"message": "bad"}))[0] is Status.FAIL


@pytest.mark.parametrize(
    "message",
    [
        "the write did not commit within 2s: the leader cannot reach a majority "
        "(it may still commit later)",
        "write timed out after 2.5s: no quorum or no leader; the write may still be "
        "committed later",
        "leadership changed while the write was in flight and it was not kept; retry",
        "the leader manager1 could not be reached from manager2 (ServerTimeoutError); retry",
        "the outcome of this write is unknown: ...",
        "something nobody has seen before",
    ],
)
def test_a_503_that_may_follow_a_proposal_is_unknown(message):
    assert classify("cas", Reply(503, {"message": message})) == (Status.INFO, None)


@pytest.mark.parametrize(
    "message",
    [
        "no leader: manager3 knows of no leader (election under way or no quorum)",
        "manager2 is not the leader either (request forwarded by manager4): retry",
        "no leader confirmed a read within 2s: there is no quorum",
        "leadership transfer to manager2 in progress",
    ],
)
def test_a_503_before_any_proposal_is_a_failure(message):
    assert classify("write", Reply(503, {"message": message})) == (Status.FAIL, None)


def test_500_is_unknown():
    assert classify("write", Reply(500, {"message": "internal error"}))[0] is Status.INFO


def test_no_answer_after_sending_is_unknown_refused_connection_is_failure():
    assert classify("write", Reply(error="timed out"))[0] is Status.INFO
    assert classify("write", Reply(error="refused", sent=False))[0] is Status.FAIL
    assert classify("read", Reply(error="timed out"))[0] is Status.INFO


def test_a_read_refused_with_409_is_not_a_cas_refusal():
    assert classify("read", Reply(409, {"message": "?"}))[0] is Status.FAIL


# ---------------------------------------------------------------- to the model


def _rec(i, client, op, inp, invoke, end, status, output=None):
    return Record(i, client, op, "k", inp, invoke, end, status, output)


def test_records_become_versioned_model_operations():
    ops = [
        to_operation(_rec(0, 0, "cas", (5, "a"), 1.0, 2.0, Status.OK, 8)),
        to_operation(_rec(1, 1, "final-read", None, 3.0, 3.5, Status.OK, (8, "a"))),
        to_operation(_rec(2, 2, "write", (8, "b"), 4.0, 9.0, Status.INFO)),
    ]
    assert [o.kind for o in ops] == ["write", "read", "write"]
    assert ops[0].input == (5, "a") and ops[0].output == 8
    assert math.isinf(ops[2].complete) and ops[2].output is None
    assert check(ops, JepsenModel({"k": (5, "init")})).ok is True


def test_a_stale_read_after_an_acknowledged_cas_is_a_violation():
    model = JepsenModel({"k": (5, "init")})
    ops = [
        to_operation(_rec(0, 0, "cas", (5, "a"), 1.0, 2.0, Status.OK, 8)),
        to_operation(_rec(1, 1, "read", None, 3.0, 3.5, Status.OK, (5, "init"))),
    ]
    verdict = check(ops, model)
    assert verdict.ok is False
    assert {op.id for op in verdict.violations[0].core} == {0, 1}


def test_a_409_contradicting_the_version_is_a_violation():
    # Nothing changed k since version 5: a refusal of expected=5 cannot be true.
    ops = [to_operation(_rec(0, 0, "write", (5, "a"), 1.0, 2.0, Status.OK, None))]
    assert check(ops, JepsenModel({"k": (5, "init")})).ok is False


def test_an_unknown_write_may_take_effect_later():
    model = JepsenModel({"k": (5, "init")})
    ops = [
        to_operation(_rec(0, 0, "cas", (5, "a"), 1.0, 2.0, Status.INFO)),
        to_operation(_rec(1, 1, "read", None, 3.0, 3.5, Status.OK, (5, "init"))),
        to_operation(_rec(2, 1, "read", None, 10.0, 10.5, Status.OK, (12, "a"))),
    ]
    assert check(ops, model).ok is True


def test_history_lines_round_trip_through_the_checker_format():
    recs = [
        _rec(0, 0, "cas", (5, "a"), 1.0, 2.0, Status.OK, 8),
        _rec(1, 3, "write", (8, "b"), 4.0, 9.0, Status.INFO),
    ]
    lines = list(history_lines(recs))
    ops = loads_history(lines)
    assert [o.id for o in ops] == [0, 1] and ops[1].status is Status.INFO
    back = [record_from_line(json.loads(line)) for line in lines]
    assert back[1].end == 9.0 and back[1].op == "write" and back[0].client == 0


# ---------------------------------------------------------------- nemesis


def test_schedule_is_seeded_and_fits_the_duration():
    a = schedule(4, 60.0, NAMES)
    assert a == schedule(4, 60.0, NAMES)
    assert a != schedule(5, 60.0, NAMES)
    assert len(a) >= 10
    assert all(f.end <= 59.5 and f.start < f.end for f in a)
    assert all(x.end < y.start for x, y in itertools.pairwise(a))
    assert {f.kind for f in a} == set(KINDS)
    for f in a:
        if f.kind == "partition":
            small, big = f.target
            assert len(small) < len(big) and sorted(small + big) == NAMES


def test_a_short_run_still_gets_a_fault():
    assert len(schedule(1, 3.0, NAMES)) >= 1


def test_fault_intervals_pair_starts_and_ends():
    lines = [
        {"t": 10.0, "kind": "kill", "target": "manager1"},
        {"t": 12.0, "kind": "restart", "target": "manager1"},
        {"t": 13.0, "kind": "partition", "groups": [["manager2"], ["manager1", "manager3"]]},
        {"t": 15.0, "kind": "heal"},
        {"t": 16.0, "kind": "pause", "target": "manager3"},
    ]
    windows = fault_intervals(lines, 20.0)
    got = [(i.start, i.end, i.kind) for i in windows]
    assert got == [(10.0, 12.0, "kill"), (13.0, 15.0, "partition"), (16.0, 20.0, "pause")]
    assert [i.short for i in windows] == ["kill m1", "cut m2", "pause m3"]
    assert windows[1].label == "partition manager2 | manager1,manager3"


# ---------------------------------------------------------------- figure


def _synthetic_history(rng: random.Random) -> list[Record]:
    recs, t = [], 100.0
    for i in range(300):
        client = i % 5
        start = t + rng.uniform(0, 10)
        status = rng.choice([Status.OK] * 8 + [Status.FAIL, Status.INFO])
        length = rng.uniform(0.002, 0.05) if status is Status.OK else rng.uniform(1, 3)
        recs.append(_rec(i, client, "read", None, start, start + length, status, (1, "x")))
    return recs


def test_note_names_the_verdict_the_faults_and_the_minimized_operations(tmp_path):
    from scenarios.checks import CheckResult
    from scenarios.jepsen.report import write_note
    from scenarios.jepsen.settings import Settings

    recs = [
        _rec(1, 0, "write", (3, "a"), 100.1, 100.2, Status.OK, 5),
        _rec(2, 1, "read", None, 100.3, 101.3, Status.INFO),
    ]
    recs.append(_rec(3, 1, "read", None, 100.4, 100.5, Status.OK, (4, "z")))  # never written
    verdict = check([to_operation(r) for r in (recs[0], recs[2])], VersionedModel(3, "x"))
    faults = [{"t": 101.5, "kind": "partition", "groups": [["manager1"], ["manager2"]]}]
    metrics = {
        "keys": 1,
        "faults_injected": 1,
        "ops": 3,
        "ok": 2,
        "fail": 0,
        "unknown": 1,
        "refused_409": 0,
        "states_explored": verdict.states,
        "check_seconds": 0.01,
    }
    checks = [CheckResult("linearizable", False, "1 key violated")]
    write_note(tmp_path, Settings(duration=10, clients=2, seed=4), recs, verdict, checks, metrics,
               faults, 100.0, 110.0, ["history.png"], False)  # fmt: skip
    note = (tmp_path / "report.md").read_text()
    assert note.startswith(
        "# Jepsen-style test: FAILED\n\n## Exam card\n\n- **5 managers**: a quorum"
    )
    assert "- This run: 3 operations under 1 faults; the history is **NOT linearizable**." in note
    assert (
        "injected 1 faults (partition). The history of 3 operations is **NOT linearizable**."
        in note
    )
    assert "| 1.50 s | 10.00 s | partition manager1 \\| manager2 |" in note  # escaped in a cell
    assert "### Key `k`, first failing at 0.50 s" in note
    assert "| #3 | client 1 | read |  | (4, 'z') | ok |" in note  # the minimized core
    assert "- ❌ **linearizable**: 1 key violated" in note
    assert note.endswith("`history.png`, `traces/`.\n")


def test_history_model_is_relative_to_the_start_and_draws(tmp_path):
    from scenarios.jepsen.report import history_model
    from viz.figures import save
    from viz.figures.jepsen import history_figure

    recs = _synthetic_history(random.Random(1))
    faults = [
        {"t": 102.0, "kind": "pause", "target": "manager2"},
        {"t": 104.0, "kind": "unpause", "target": "manager2"},
        {"t": 105.0, "kind": "partition", "groups": [["manager1"], ["manager2", "manager3"]]},
    ]
    model = history_model(recs, faults, 100.0, 111.0)
    assert model.clients == (0, 1, 2, 3, 4)
    assert [f.kind for f in model.faults] == ["pause", "partition"]
    assert model.faults[1].end == pytest.approx(11.0)
    assert model.bars[0].start == pytest.approx(recs[0].invoke - 100.0)
    paths = save(history_figure(model, "synthetic"), tmp_path / "history", dpi=130)
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert all(p.stat().st_size > 10_000 for p in paths)


# ---------------------------------------------------------------- a real run


@pytest.mark.integration
def test_short_jepsen_run_is_linearizable(tmp_path):
    from scenarios.jepsen import Settings, run_jepsen

    cluster_dir = tmp_path / "cluster"
    settings = Settings(duration=8.0, clients=5, seed=2, cluster_dir=cluster_dir)
    try:
        outcome = run_jepsen(settings, tmp_path / "out")
    finally:
        # run_jepsen stops its cluster in a finally (down); this is the last resort.
        kill_leftovers(cluster_dir)
    out = tmp_path / "out" / "jepsen"
    result = json.loads((out / "result.json").read_text())
    assert outcome.passed, [c for c in result["checks"] if not c["passed"]]
    assert outcome.verdict is not None and outcome.verdict.ok is True
    m = result["metrics"]
    assert m["ok"] > 50 and m["faults_injected"] >= 1 and m["keys"] == 3
    history = loads_history((out / "history.jsonl").read_text())
    assert len(history) == m["ops"] == m["ok"] + m["fail"] + m["unknown"]
    for name in ("history.png", "history.svg", "report.md", "faults.jsonl"):
        assert (out / name).exists(), name
