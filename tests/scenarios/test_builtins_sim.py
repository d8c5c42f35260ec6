"""Every built-in scenario runs on the simulator, under a seed, and passes."""

from __future__ import annotations

import json

import pytest
from scenario_runs import builtin, failed_checks

from scenarios.__main__ import main
from scenarios.runner import run_scenario
from scenarios.steps import ScenarioError, builtins, load

#: Scenarios whose point is real processes only say so (``real_only``, with the reason).
REAL_ONLY = [n for n, p in builtins().items() if load(p).real_only]
SIM_NAMES = [n for n in builtins() if n not in REAL_ONLY]


@pytest.mark.parametrize("name", SIM_NAMES)
def test_builtin_passes_simulated(name, tmp_path):
    outcome = run_scenario(builtin(name), tmp_path, seed=3, simulated=True)
    assert outcome.passed, failed_checks(tmp_path, name)
    out = tmp_path / name
    assert (out / "timeline.png").exists() and (out / "timeline.svg").exists()
    assert (out / "report.md").read_text().startswith("# ")
    result = json.loads((out / "result.json").read_text())
    assert result["scenario"] == name and result["passed"] is True
    assert set(result) >= {"scenario", "passed", "checks", "metrics"}
    assert list((out / "traces").rglob("trace.jsonl"))


def test_same_seed_same_story(tmp_path):
    a = run_scenario(builtin("leader-kill"), tmp_path / "a", seed=7, simulated=True)
    b = run_scenario(builtin("leader-kill"), tmp_path / "b", seed=7, simulated=True)
    assert a.metrics["time_to_leader_s"] == b.metrics["time_to_leader_s"]


def test_unsupported_swarm_actions_are_not_applicable(tmp_path):
    outcome = run_scenario(builtin("drain"), tmp_path, simulated=True)
    assert outcome.passed
    assert all(c.skipped for c in outcome.checks)


@pytest.mark.parametrize("name", REAL_ONLY)
def test_a_real_only_scenario_refuses_the_simulator_with_its_reason(name, tmp_path):
    scn = builtin(name)
    with pytest.raises(ScenarioError, match=f"{name} runs on real processes only: .+"):
        run_scenario(scn, tmp_path, seed=3, simulated=True)
    assert not (tmp_path / name).exists()


def test_run_by_name_simulated_is_one_line_error_for_a_real_only_scenario(tmp_path, capsys):
    name = REAL_ONLY[0]
    assert main(["run", name, "--simulated", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {name} runs on real processes only") and "\n" not in err
