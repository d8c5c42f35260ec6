"""The endurance run (`scenarios.endurance`): the verdict on samples, and a short real run.

The long run is ``python -m scenarios.endurance --minutes 30``; here the
judging is checked on made-up series (a leak must fail, a flat series must
pass, a process that lived too short is not judged), and a run of well under
a minute proves the tool works end to end on real managers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scenarios.endurance import Sample, Settings, Verdict, judge, run


def _series(node: str, pid: int, values: list[tuple[float, int]], step: float = 10.0):
    return [Sample(i * step, node, pid, rss, fds) for i, (rss, fds) in enumerate(values)]


def test_flat_memory_passes_and_is_reported() -> None:
    # Memory that moves within the warm-up and then stays put; files that come and go.
    rss = [48.0, 49.5, 50.0, 50.0] + [50.0] * 8
    samples = _series("manager1", 10, [(rss[i], 30 + i % 2) for i in range(12)])
    v = Verdict(writes={"ok": 5}, converged=True)
    judge(samples, duration=110.0, verdict=v)
    assert v.growth == []
    (row,) = v.processes
    assert row["node"] == "manager1" and row["samples"] == 12
    assert row["rss_slope_mb_per_10min"] == 0.0 and row["rss_rise_mb"] == 0.0
    assert v.passed


def test_a_leak_fails() -> None:
    rising = _series("manager1", 10, [(50.0 + i * 1.5, 30 + i * 3) for i in range(12)])
    v = Verdict(writes={"ok": 5}, converged=True)
    judge(rising, duration=110.0, verdict=v)
    assert len(v.growth) == 2  # memory and open files
    assert "RSS rose" in v.growth[0] and "open files rose" in v.growth[1]
    assert v.processes[0]["rss_slope_mb_per_10min"] == pytest.approx(90.0)
    assert not v.passed


def test_a_short_lived_process_is_not_judged() -> None:
    # Restarted at 200 s: the first process spans half of the 220 s run, the
    # second one lived 11 s and is not judged (a fresh process says nothing yet).
    first = _series("manager2", 11, [(50.0, 30)] * 12)
    late = [Sample(200.0 + s.t / 10, "manager2", 12, 90.0, 90) for s in first]
    v = Verdict(writes={"ok": 5}, converged=True)
    judge(first + late, duration=220.0, verdict=v)
    assert [r["pid"] for r in v.processes] == [11]


def test_nothing_judged_proves_nothing() -> None:
    v = Verdict(writes={"ok": 5}, converged=True)
    judge(_series("manager1", 10, [(50.0, 30)] * 3), duration=30.0, verdict=v)
    assert v.processes == [] and not v.passed


@pytest.mark.integration
def test_short_endurance_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    settings = Settings(minutes=0.5, fault_every=3.0, sample_every=2.0, seed=3, quiet=True)
    verdict = run(settings, out)
    assert verdict.passed, verdict
    assert verdict.writes["ok"] > 0 and sum(verdict.faults.values()) >= 3
    assert any(p["node"] == "manager1" for p in verdict.processes)
    doc = json.loads((out / "endurance.json").read_text())
    assert doc["passed"] and len(doc["samples"]) >= 3 * 6
    assert (out / "endurance.png").stat().st_size > 10_000
