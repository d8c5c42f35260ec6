"""Every TOML built-in scenario on real manager processes (about 10-20 s each).

figure-8 always runs on the simulator (tests/test_scenario_figure8.py) and
jepsen has its own short run (tests/test_jepsen.py).  manager-count builds
five clusters of up to nine managers (about a minute): CI runs it reduced to
1, 3 and 5 managers, with the same checks.
"""

from __future__ import annotations

import json

import pytest
from scenario_runs import STALE, TOUR, builtin, failed_checks

from scenarios.runner import run_scenario
from scenarios.steps import builtins, parse

pytestmark = pytest.mark.integration

REAL = [
    "leader-kill",
    "quorum-loss",
    "minority-leader",
    "stale-log-loses",
    "split-vote",
    "asymmetric-partition",
    "lossy-network",
    "leader-pause",
    "rolling-restart",
    "drain",
    "secrets-at-rest",
    "transfer-leadership",
    "quorum-table",
    "membership",
    "disaster-recovery",
    "join",
    "autolock",
    "tasks-survive-quorum-loss",
    "global-service",
    "node-failure",
    "availability",
    "rolling-update",
    "secret-delivery",
    "demote-and-remove",
    "join-token-rotation",
]


@pytest.mark.parametrize("name", REAL)
def test_builtin_passes_on_real_processes(name, tmp_path):
    # run_scenario stops its cluster in a finally (down, then SIGKILL of any
    # cluster.manager.process PID left in DIR/cluster.json) and deletes the temp dir.
    outcome = run_scenario(builtin(name), tmp_path)
    assert outcome.passed, failed_checks(tmp_path, name)
    assert (tmp_path / name / "timeline.png").exists()
    assert_nothing_skipped(tmp_path, name)


def assert_nothing_skipped(out, name):
    """On real processes every step runs and every check means something."""
    result = json.loads((out / name / "result.json").read_text())
    assert result["checks"], f"{name}: no check"
    assert not [c["name"] for c in result["checks"] if c.get("skipped")]
    assert not [s for s in result["steps"] if s["status"] != "ok"]


def test_manager_count_reduced_passes_on_real_processes(tmp_path):
    text = builtins()["manager-count"].read_text()
    assert "sizes = [1, 3, 5, 7, 9]" in text
    scn = parse(text.replace("sizes = [1, 3, 5, 7, 9]", "sizes = [1, 3, 5]"))
    outcome = run_scenario(scn, tmp_path)
    assert outcome.passed, failed_checks(tmp_path, scn.name)
    out = tmp_path / scn.name
    assert (out / "manager-count.png").exists()
    assert "## What each manager costs (measured)" in (out / "report.md").read_text()


@pytest.mark.parametrize("text", [TOUR, STALE], ids=["tour", "stale"])
def test_outsider_scenarios_pass_on_real_processes(text, tmp_path):
    # The tour kills a manager (perhaps the leader) and restarts it at once,
    # then demotes another: the restart waits for the dead process's ports
    # (`Supervisor._check_ports`) and the demote rides out the election.
    scn = parse(text)
    outcome = run_scenario(scn, tmp_path)
    assert outcome.passed, failed_checks(tmp_path, scn.name)
    assert_nothing_skipped(tmp_path, scn.name)


def test_secret_delivery_leaves_no_plaintext_in_its_own_note(tmp_path):
    # The checks search the cluster's files and APIs while it runs; the note,
    # the result and the replay are written after them: search those too.
    scn = builtin("secret-delivery")
    outcome = run_scenario(scn, tmp_path)
    assert outcome.passed, failed_checks(tmp_path, scn.name)
    secrets = [s.data for s in scn.steps if s.action in ("create_secret", "update_secret")]
    assert len(secrets) == 3
    for path in (tmp_path / scn.name).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(x.encode() in data for x in secrets), path
    assert (tmp_path / scn.name / "files.png").exists()
