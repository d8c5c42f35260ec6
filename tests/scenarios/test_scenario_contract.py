"""Scenario files as an outsider writes them from the scenario docs (docs/scenarios.md).

The design lists the actions (write, kill, restart, pause, partition, isolate,
heal, wait, promote/demote, drain, transfer-leadership) and expectations (a
leader within T, no leader while X, writes fail with no quorum, the winner has
the most up-to-date log, the stale node's votes are refused, no committed
write lost, the history is linearizable) in words; these files use those
words, hyphens and all, and run on the simulator (fast, replayable).  The
same files on real processes are in tests/scenarios/test_builtins_real.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scenario_runs import NO_QUORUM, STALE, TOUR, builtin, failed_checks

from scenarios.__main__ import main
from scenarios.checks import Run, evaluate
from scenarios.runner import run_scenario
from scenarios.steps import ScenarioError, parse
from viz.model_build import build


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _result(out: Path, name: str) -> dict:
    return json.loads((out / name / "result.json").read_text())


# ------------------------------------------------------------------ parsing


def test_designs_spellings_become_the_canonical_names():
    scn = parse(TOUR)
    assert scn.steps[17].action == "transfer_leadership"
    assert [e.check for e in scn.expects] == [
        "leader_within",
        "writes_succeed",
        "leader_is",
        "no_acknowledged_write_lost",
        "history_linearizable",
    ]
    nq = parse(NO_QUORUM)
    assert nq.steps[3].get("for") == "no_leader"
    assert nq.expects[1].check == "writes_fail_no_quorum"
    assert parse(STALE).expects[1].check == "winner_most_up_to_date"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[[step]]\naction = "kil"\nnode = "leader"\n', ["step 1", "did you mean 'kill'"]),
        (
            '[[step]]\naction = "heal"\n[[steps]]\naction = "heal"\n',
            ["[[step]] or [[steps]]", "not both"],
        ),
        ("[cluster]\nmanagers = 'three'\n[[step]]\naction = 'heal'\n", ["t.toml", "[cluster]"]),
        (
            '[[step]]\naction = "heal"\n[[expect]]\ncheck = "quorum_size"\nvoters = 4\n'
            "quorum = 2\n",
            ["expect 1", "4 voters need a quorum of 3"],
        ),
        ('[[step]]\naction = "join"\nrole = "boss"\n', ["step 1 (join)", "'role'"]),
        ('[[step]]\naction = "kill"\nnode = "manager4"\n', ["unknown node 'manager4'"]),
        ('name = "../x"\n[[step]]\naction = "heal"\n', ["'name'", "output directory"]),
        (
            'topic = "elections"\n[[step]]\naction = "heal"\n',
            ["'topic'", "did you mean 'election'"],
        ),
        (
            '[[step]]\naction = "partition"\ngroups = [["manager1", "manager2"], ["manager2"]]\n',
            ["step 1 (partition)", "'manager2' is in two groups"],
        ),
    ],
)
def test_mistakes_are_one_line(text, words):
    with pytest.raises(ScenarioError) as err:
        parse(text if text.startswith("name") else 'name = "t"\n' + text, source="t.toml")
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_a_joined_node_may_be_named_by_the_name_the_swarm_gives_it():
    scn = parse(
        'name = "t"\n[[step]]\naction = "join"\nrole = "manager"\n'
        '[[step]]\naction = "kill"\nnode = "manager4"\n'
        '[[step]]\naction = "join"\nrole = "worker"\nas = "w"\n'
        '[[step]]\naction = "wait"\nfor = "ready"\nnodes = ["worker1", "w"]\n'
    )
    assert [s.action for s in scn.steps] == ["join", "kill", "join", "wait"]


def test_cli_errors_are_one_line_without_a_traceback(tmp_path):
    bad = _write(tmp_path, 'name = "bad"\n[[step]]\naction = "explode"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "scenarios", "run", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "step 1" in proc.stderr and "explode" in proc.stderr


def test_seed_without_simulated_says_it_is_ignored(tmp_path, capsys, monkeypatch):
    import scenarios.runner

    seen = {}

    def fake_run(scn, out, **kw):
        seen.update(kw)
        raise ScenarioError("stop here")

    monkeypatch.setattr(scenarios.runner, "run_scenario", fake_run)
    assert main(["run", str(_write(tmp_path, NO_QUORUM)), "--seed", "9"]) == 2
    assert "--seed applies to simulated runs only" in capsys.readouterr().err
    assert seen["seed"] == 9 and seen["simulated"] is False


def test_a_cluster_that_will_not_start_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    from cluster.local.layout import ClusterError
    from scenarios.drivers.real import RealDriver

    def refuse(self):
        raise ClusterError("no leader was elected within 30 s")

    monkeypatch.setattr(RealDriver, "start", refuse)
    assert main(["run", str(_write(tmp_path, NO_QUORUM)), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "error: no leader was elected within 30 s"


# ------------------------------------------------------------------ simulated runs


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("kill manager2|kill manager2", "manager2 is not running"),
        ("pause manager2|pause manager2", "manager2 is paused, not running"),
        ("unpause manager2", "manager2 is running, not paused"),
        ("kill manager2|pause manager2", "manager2 is down, not running"),
    ],
)
def test_impossible_steps_fail_the_same_way_as_on_real_processes(tmp_path, steps, message):
    text = 'name = "x"\n[[step]]\naction = "wait"\nfor = "leader"\n'
    for s in steps.split("|"):
        action, node = s.split()
        text += f'[[step]]\naction = "{action}"\nnode = "{node}"\n'
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, text)), "--out", str(out), "--simulated"]) == 1
    failed = failed_checks(out, "x")
    assert failed[0]["name"].startswith("step ") and failed[0]["detail"] == message


def test_a_paused_node_can_be_killed_and_restarted_simulated(tmp_path):
    text = 'name = "p"\n[[step]]\naction = "wait"\nfor = "leader"\n'
    for action in ("pause", "kill", "restart"):
        text += f'[[step]]\naction = "{action}"\nnode = "manager2"\n'
    text += '[[step]]\naction = "write"\n[[step]]\naction = "wait"\nfor = "converged"\n'
    text += '[[expect]]\ncheck = "no_acknowledged_write_lost"\n'
    outcome = run_scenario(parse(text), tmp_path, simulated=True)
    assert outcome.passed, failed_checks(tmp_path, "p")


@pytest.mark.parametrize("seed", [1, 5])
def test_every_documented_action_simulated(tmp_path, seed):
    out = tmp_path / "out"
    args = ["run", str(_write(tmp_path, TOUR)), "--out", str(out), "--simulated"]
    assert main([*args, "--seed", str(seed)]) == 0, failed_checks(out, "tour")
    result = _result(out, "tour")
    assert {"scenario", "passed", "checks", "metrics"} <= set(result)
    assert result["scenario"] == "tour" and result["passed"] is True
    for c in result["checks"]:
        assert set(c) >= {"name", "passed", "detail"}
    for f in ("timeline.png", "report.md", "traces/faults.jsonl"):
        assert (out / "tour" / f).exists()
    note = (out / "tour/report.md").read_text()
    # drain has no meaning on the simulator: skipped, said so, not failed.
    assert "*skipped*: not applicable in simulated mode" in note
    # No topic in the file: the "why" comes from what its steps do.
    assert "## Why Raft did this" in note and "**§5.1 Terms as a logical clock.**" in note


def test_no_quorum_simulated_and_wrong_expectations_fail(tmp_path):
    out = tmp_path / "out"
    assert main(["run", str(_write(tmp_path, NO_QUORUM)), "--out", str(out), "--simulated"]) == 0
    wrong = NO_QUORUM.replace('name = "no-quorum"', 'name = "wrong"') + (
        '[[expect]]\ncheck = "no_leader_while"\nsteps = [9]\n'
        '[[expect]]\ncheck = "writes_fail_no_quorum"\nsteps = [9]\n'
        '[[expect]]\ncheck = "quorum_size"\nvoters = 5\n'
    )
    assert (
        main(["run", str(_write(tmp_path, wrong, "w.toml")), "--out", str(out), "--simulated"]) == 1
    )
    result = _result(out, "wrong")
    assert result["passed"] is False
    failed = {c["name"] for c in result["checks"] if not c["passed"]}
    assert failed == {
        "no_leader_while (step 9)",
        "writes_fail_no_quorum (step 9)",
        "quorum_size 3 of 5 at the end",
    }


def test_stale_node_refused_and_the_winner_is_up_to_date_simulated(tmp_path):
    outcome = run_scenario(parse(STALE), tmp_path, seed=3, simulated=True)
    assert outcome.passed, failed_checks(tmp_path, "stale")
    winner = next(c for c in outcome.checks if c.name.startswith("winner_most_up_to_date"))
    assert "manager3" in winner.detail and "BEHIND" in winner.detail


def test_transfer_to_the_leader_itself_is_a_no_op(tmp_path):
    text = (
        'name = "t"\n[cluster]\nmanagers = 3\n[cluster.election_timeout_overrides]\n'
        'manager1 = 150\n[[step]]\naction = "wait"\nfor = "leader_in"\nnodes = ["manager1"]\n'
        '[[step]]\naction = "transfer-leadership"\nto = "manager1"\n'
        '[[expect]]\ncheck = "leader_is"\nnode = "manager1"\nafter_step = 2\n'
    )
    outcome = run_scenario(parse(text), tmp_path, simulated=True)
    assert outcome.passed, failed_checks(tmp_path, "t")
    assert "already leads" in (tmp_path / "t/report.md").read_text()


# ------------------------------------------------------------------ join


def test_join_simulated_learner_then_voter(tmp_path):
    outcome = run_scenario(builtin("join"), tmp_path, seed=2, simulated=True)
    assert outcome.passed, failed_checks(tmp_path, "join")
    m = outcome.metrics
    assert m["learner_phase_s"] > 0 and m["writes_while_learner"] >= 1
    assert m["voter_after_s"] <= 10
    note = (tmp_path / "join/report.md").read_text()
    assert "## The join, in numbers" in note
    assert "**learner**" in note and "quorum 3 of 4" in note and "4 is even" in note
    assert "Step 12, with manager2, manager3 down (2 of 4 up, 3 needed)" in note
    # The worker steps mean nothing on the simulator: skipped, and said so.
    assert "workers are Swarm agents" in note


# ------------------------------------------------------------------ the winner check itself


def _line(t, node, type_, **fields):
    return {"t": 1000.0 + t, "node": node, "type": type_, **fields}


def _election_where_manager2_is_ahead(extra=()):
    """manager1 wins term 2 although manager2 (up, reachable) holds a longer log."""
    lines = [_line(0.0, n, "start", term=1) for n in ("manager1", "manager2", "manager3")]
    lines += [
        _line(0.5, "manager2", "log", entries=[[1, 1], [2, 1], [3, 1]], commit=2),
        _line(0.5, "manager3", "log", entries=[[1, 1]], commit=1),
        _line(1.0, "manager1", "role", **{"from": "follower", "to": "candidate", "term": 2}),
        _line(1.0, "manager1", "log", entries=[[1, 1], [2, 1]], commit=2),
        _line(1.0, "manager1", "election", term=2, pre_vote=False),
        _line(1.2, "manager1", "role", **{"from": "candidate", "to": "leader", "term": 2}),
        _line(2.0, "manager1", "commit", index=4, term=2),
        *extra,
    ]
    return build(lines)


def _winner_check(model):
    scn = parse(
        'name = "w"\n[[step]]\naction = "heal"\n[[expect]]\ncheck = "winner_most_up_to_date"\n'
    )
    run = Run(scenario=scn, mode="simulated", seed=1, driver=None, steps=[])
    run.model = model
    return evaluate(run, scn.expects[0])


def test_winner_check_fails_when_a_reachable_node_was_ahead():
    result = _winner_check(_election_where_manager2_is_ahead())
    assert not result.passed
    assert "manager2 held (term 1, index 3)" in result.detail


def test_winner_check_ignores_a_node_on_the_other_side_of_a_partition():
    cut = _line(
        0.8,
        "supervisor",
        "fault",
        kind="partition",
        targets=["manager1", "manager2", "manager3"],
        groups=[["manager1", "manager3"], ["manager2"]],
    )
    result = _winner_check(_election_where_manager2_is_ahead([cut]))
    assert result.passed, result.detail
    assert "manager3 (1, 1) BEHIND" in result.detail


ONEWAY = """
name = "oneway"
title = "A one-way cut"
[cluster]
managers = 3
[[steps]]
action = "wait"
for = "leader"
[[steps]]
action = "partition"
groups = [["manager1"], ["manager2", "manager3"]]
oneway = true
[[steps]]
action = "wait"
seconds = 1
[[steps]]
action = "heal"
[[steps]]
action = "wait"
for = "converged"
"""


def test_a_one_way_cut_cuts_one_direction_on_the_simulator_and_is_recorded(tmp_path):
    from scenarios.drivers.sim import SimDriver

    driver = SimDriver(parse(ONEWAY).cluster, seed=1)
    driver.partition([["manager1"], ["manager2", "manager3"]], oneway=True)
    m1, m2, m3 = (driver._id(n) for n in ("manager1", "manager2", "manager3"))
    assert driver.sim.cut == {(m1, m2), (m1, m3)}
    outcome = run_scenario(parse(ONEWAY), tmp_path, seed=1, simulated=True)
    assert outcome.passed, failed_checks(tmp_path, "oneway")
    faults = [
        json.loads(line)
        for line in (tmp_path / "oneway" / "traces" / "faults.jsonl").read_text().splitlines()
    ]
    cut = next(f for f in faults if f["kind"] == "partition")
    assert cut["oneway"] is True
    assert cut["groups"] == [["manager1"], ["manager2", "manager3"]]
    with pytest.raises(ScenarioError, match="two groups, FROM and TO"):
        parse(ONEWAY.replace('[["manager1"], ["manager2", "manager3"]]', '[["manager1"]]'))
