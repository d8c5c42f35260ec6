"""A budgeted subset of the built-in scenarios on real manager processes."""

from __future__ import annotations

import pytest
from scenario_helpers import builtin, failed_checks

from scenarios.runner import run_scenario

pytestmark = pytest.mark.integration

#: About 10 s each on two cores.
REAL = ["leader-kill", "quorum-loss", "minority-leader", "stale-log-loses", "split-vote"]


@pytest.mark.parametrize("name", REAL)
def test_builtin_passes_on_real_processes(name, tmp_path):
    # run_scenario stops its cluster in a finally (down, then SIGKILL of any
    # cluster.manager PID left in DIR/cluster.json) and deletes the temp dir.
    outcome = run_scenario(builtin(name), tmp_path)
    assert outcome.passed, failed_checks(tmp_path, name)
    assert (tmp_path / name / "timeline.png").exists()
