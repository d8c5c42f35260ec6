"""The crash torture (`scenarios.torture`): a few rounds of SIGKILL under write load.

The long run is ``python -m scenarios.torture --rounds 250``; here a handful
of rounds prove that the tool itself works end to end (cluster started,
managers killed and restarted, writes verified on every replica and in every
log on disk, cluster stopped) in well under a minute.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from scenarios.torture import Settings, Summary, Write, _reason, format_summary, run


def test_summary_fails_on_any_lost_write_or_divergence() -> None:
    good = Summary(rounds=1, writes=Counter(ok=3), converged=True)
    assert good.passed
    assert "PASSED" in format_summary(good)
    for bad in (
        Summary(writes=Counter(ok=3), converged=True, lost=["x missing on manager2"]),
        Summary(writes=Counter(ok=3), converged=True, divergence=["GET /configs differs"]),
        Summary(writes=Counter(ok=3), converged=True, refused_but_present=["y (409)"]),
        Summary(writes=Counter(ok=3), converged=False),
        Summary(writes=Counter(fail=3), converged=True),  # nothing was proven
    ):
        assert not bad.passed
        assert format_summary(bad).endswith("FAILED")


def test_failure_reasons() -> None:
    detail = '{"message": "no quorum"}'
    w = Write("n", 0, "manager1", 0.0, outcome="fail", status=503, detail=detail)
    assert _reason(w) == "503 no quorum"
    assert _reason(Write("n", 0, "m", 0.0, status=None, detail="connection refused")) == (
        "connection refused"
    )
    assert _reason(Write("n", 0, "m", 0.0, status=409)) == "409"


@pytest.mark.integration
def test_a_few_rounds_of_sigkill_lose_no_acknowledged_write(tmp_path: Path) -> None:
    settings = Settings(rounds=4, managers=3, writers=3, seed=11, max_seconds=40, quiet=True)
    summary = run(settings, tmp_path / "cluster")
    assert summary.rounds == 4
    assert summary.writes["ok"] > 0
    assert summary.converged, summary.divergence
    assert not summary.lost and not summary.divergence and not summary.refused_but_present
    assert summary.verified_ok == summary.writes["ok"]
    assert summary.log_entries_compared > 0
    assert summary.passed
    # every attempt was recorded as a client trace line
    lines = (tmp_path / "cluster" / "torture.jsonl").read_text().splitlines()
    assert len(lines) == sum(summary.writes.values())
