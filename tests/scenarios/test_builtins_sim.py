"""Every built-in scenario runs on the simulator, under a seed, and passes."""

from __future__ import annotations

import json

import pytest
from scenario_runs import builtin, failed_checks

from scenarios.runner import run_scenario
from scenarios.steps import builtins, load

#: Scenarios whose point is real processes only (all their checks are not applicable),
#: and those that say the simulator cannot express them (``real_only``).
SIM_NAMES = [n for n, p in builtins().items() if n not in ("autolock",) and not load(p).real_only]


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
