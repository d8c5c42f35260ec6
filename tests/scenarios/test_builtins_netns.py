"""Every built-in that partitions, isolates or degrades links, in netns mode (root;
about 15-20 s each).

The same scenarios pass on the transport-level filter in
``test_builtins_real.py``; here the cuts are packets the kernel drops, and
each must pass with the same checks, none skipped, the run saying which
network mode it used -- and leave no namespace, link or table behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scenario_runs import builtin, failed_checks

from scenarios.runner import run_scenario
from scenarios.steps import builtins

pytestmark = pytest.mark.integration


def _partitioning() -> list[str]:
    """The built-ins with a partition, isolate or network step (as parsed from their files)."""
    return [
        name
        for name in builtins()
        if any(s.action in ("partition", "isolate", "network") for s in builtin(name).steps)
    ]


PARTITIONING = _partitioning()


def test_the_partitioning_builtins_are_found() -> None:
    assert {
        "minority-leader",
        "split-vote",
        "stale-log-loses",
        "asymmetric-partition",
        "lossy-network",
    } <= set(PARTITIONING)


@pytest.mark.parametrize("name", PARTITIONING)
def test_partitioning_builtin_passes_in_netns_mode(
    netns_clean: list[str], name: str, tmp_path: Path
) -> None:
    outcome = run_scenario(builtin(name), tmp_path, netns=True)
    assert outcome.passed, failed_checks(tmp_path, name)
    result = json.loads((tmp_path / name / "result.json").read_text())
    assert result["metrics"]["network"] == "netns"
    assert not [c["name"] for c in result["checks"] if c.get("skipped")]
    assert "own network namespace" in (tmp_path / name / "report.md").read_text()
