"""The built-in ``figure-8`` scenario: the paper's Figure 8 (§5.4.2) on the simulator."""

from __future__ import annotations

import json
import re

import pytest
from scenario_runs import builtin

from raft.core.protocol import RaftCore
from scenarios.runner import run_scenario
from scenarios.steps import ScenarioError

PNG = b"\x89PNG\r\n\x1a\n"


def _png(path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 1_000


@pytest.mark.parametrize("seed", [1, 7])
def test_figure8_passes_with_figures_and_note(tmp_path, seed):
    outcome = run_scenario(builtin("figure-8"), tmp_path, seed=seed)
    out = tmp_path / "figure-8"
    result = json.loads((out / "result.json").read_text())
    assert outcome.passed and result["passed"], result["checks"]
    names = {c["name"] for c in result["checks"]}
    assert {
        "x never counted as committed while only old-term replicas existed",
        "S5 never led after x committed",
        "every node ends with x at index k",
        "the simulator's SafetyChecker found nothing",
    } <= names
    for name in ("timeline", "log-a", "log-b", "log-c", "log-d", "log-e", "log-end"):
        assert _png(out / f"{name}.png"), name
    assert (out / "timeline.svg").exists()
    note = (out / "report.md").read_text()
    assert note.startswith("# ") and "§5.4.2" in note and "Leader Completeness" in note
    assert note.split("\n")[2] == "## Exam card"  # DESIGN.md: it opens with the card
    # Refusals are counted by reason: a vote already given is no "log behind".
    s5 = next(c for c in result["checks"] if c["name"] == "S5 never led after x committed")
    refused = re.search(r"(\d+) of its vote requests were refused \(([^:)]*)", s5["detail"])
    assert refused, s5["detail"]
    counted = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) ([a-z ]+)", refused[2]))
    assert sum(counted.values()) == int(refused[1]), s5["detail"]
    assert "- **5 managers**: a quorum is 3 of 5" in note
    assert result["metrics"]["safety_violations"] == 0
    assert list((out / "traces").rglob("trace.jsonl"))


def test_figure8_same_seed_same_story(tmp_path):
    a = run_scenario(builtin("figure-8"), tmp_path / "a", seed=3)
    b = run_scenario(builtin("figure-8"), tmp_path / "b", seed=3)
    assert a.metrics["instants_s"] == b.metrics["instants_s"]


def test_unsafe_commit_rule_demo_loses_x_and_restores_the_rule(tmp_path):
    rule = RaftCore._maybe_commit
    outcome = run_scenario(builtin("figure-8"), tmp_path, seed=2, unsafe_commit_rule=True)
    assert RaftCore._maybe_commit is rule  # the planted bug does not outlive the demo
    out = tmp_path / "figure-8-unsafe-commit-rule"
    assert outcome.passed, [c.detail for c in outcome.checks if not c.passed]
    result = json.loads((out / "result.json").read_text())
    assert result["variant"].startswith("unsafe-commit-rule")
    assert result["metrics"]["safety_violations"] > 0
    note = (out / "report.md").read_text()
    assert "PLANTED BUG" in note and "Leader Completeness" in note
    assert note.split("\n")[2] == "## Exam card"
    assert _png(out / "log-d.png")


def test_unsafe_commit_rule_is_figure8_only(tmp_path):
    with pytest.raises(ScenarioError, match="figure-8 only"):
        run_scenario(builtin("leader-kill"), tmp_path, unsafe_commit_rule=True)
