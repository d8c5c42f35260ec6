"""Every built-in scenario runs on the simulator, under a seed, and passes."""

from __future__ import annotations

import json

import pytest
from scenario_runs import builtin, failed_checks

from scenarios.__main__ import main
from scenarios.runner import run_scenario
from scenarios.steps import ScenarioError, builtins, load

#: Scenarios about Swarm objects or data directories, which the simulator does
#: not have: every check of theirs is "not applicable" there (asserted below),
#: so a simulated run of them would pass having checked nothing.  Those that
#: say so themselves (``real_only``) refuse the simulator outright.
SWARM_ONLY = ("drain", "secrets-at-rest")
SIM_NAMES = [n for n, p in builtins().items() if n not in SWARM_ONLY and not load(p).real_only]


@pytest.mark.parametrize("name", SIM_NAMES)
def test_builtin_passes_simulated(name, tmp_path):
    outcome = run_scenario(builtin(name), tmp_path, seed=3, simulated=True)
    assert outcome.passed, failed_checks(tmp_path, name)
    checked = [c.name for c in outcome.checks if not c.skipped]
    assert checked, f"{name}: every check was skipped on the simulator"
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


@pytest.mark.parametrize("name", SWARM_ONLY)
def test_swarm_only_scenarios_check_nothing_simulated(name, tmp_path):
    """Why they are left out of SIM_NAMES; they run on real processes
    (tests/scenarios/test_builtins_real.py), where nothing may be skipped."""
    outcome = run_scenario(builtin(name), tmp_path, simulated=True)
    assert outcome.passed
    assert outcome.checks and all(c.skipped for c in outcome.checks)


@pytest.mark.parametrize("name", [n for n, p in builtins().items() if load(p).real_only])
def test_a_real_only_scenario_refuses_the_simulator_and_says_why(name, tmp_path):
    scn = builtin(name)
    with pytest.raises(ScenarioError, match=f"(?s){name} runs on real processes only: .*simulator"):
        run_scenario(scn, tmp_path, seed=3, simulated=True)
    assert not (tmp_path / name).exists()  # refused before anything was written


def test_run_all_simulated_leaves_the_real_only_ones_out_and_says_why(
    monkeypatch, tmp_path, capsys
):
    import scenarios.report
    import scenarios.runner
    from scenarios.__main__ import main

    ran: list[str] = []

    class Done:
        def __init__(self, name: str) -> None:
            self.scenario, self.passed = name, True

    def fake_run(scn, out, **kwargs):
        assert kwargs["simulated"] is True
        ran.append(scn.name)
        return Done(scn.name)

    monkeypatch.setattr(scenarios.runner, "run_scenario", fake_run)
    monkeypatch.setattr(scenarios.report, "write_index", lambda out, outcomes: out / "index.md")
    assert main(["run", "all", "--simulated", "--out", str(tmp_path)]) == 0
    real_only = [n for n, p in builtins().items() if load(p).real_only]
    assert real_only and not set(real_only) & set(ran)
    assert "leader-kill" in ran
    err = capsys.readouterr().err
    for name in real_only:
        reason = load(builtins()[name]).real_only
        assert f"[{name}] not run: real processes only ({reason})" in err


def test_run_by_name_simulated_is_one_line_error_for_a_real_only_scenario(tmp_path, capsys):
    name = "manager-count"  # its reason spans lines in the file: the error is still one
    assert main(["run", name, "--simulated", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {name} runs on real processes only") and "\n" not in err
