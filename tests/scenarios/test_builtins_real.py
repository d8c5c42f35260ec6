"""Every TOML built-in scenario on real manager processes (about 10-20 s each).

figure-8 always runs on the simulator (tests/test_scenario_figure8.py) and
jepsen has its own short run (tests/test_jepsen.py).
"""

from __future__ import annotations

import pytest
from scenario_runs import STALE, TOUR, builtin, failed_checks

from scenarios.runner import run_scenario
from scenarios.steps import parse

pytestmark = pytest.mark.integration

REAL = [
    "leader-kill",
    "quorum-loss",
    "minority-leader",
    "stale-log-loses",
    "split-vote",
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


@pytest.mark.parametrize("text", [TOUR, STALE], ids=["tour", "stale"])
def test_outsider_scenarios_pass_on_real_processes(text, tmp_path):
    # The tour kills a manager (perhaps the leader) and restarts it at once,
    # then demotes another: the restart waits for the dead process's ports
    # (`Supervisor._check_ports`) and the demote rides out the election.
    scn = parse(text)
    outcome = run_scenario(scn, tmp_path)
    assert outcome.passed, failed_checks(tmp_path, scn.name)


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
