"""The benchmark's statistics and JSON shape (pure), and one smoke run of it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_run import described_pids, kill_leftovers
from repo import ROOT

from cluster.bench.loadgen import percentile, summarize, thin
from cluster.bench.run import BenchPlan, Run, Window, count_unprovoked, result_object

ROW_KEYS = {"clients", "size", "ops_per_s", "p50_ms", "p99_ms", "p999_ms", "cpu_ms_per_write"}
TOP_KEYS = {
    "managers",
    "http",
    "raw",
    "failover",
    "unprovoked_elections",
    "rss_idle_mb",
    "rss_after_mb",
    "up_to_leader_s",
}


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 0.999) == 100
    assert percentile(values, 0.0) == 1
    assert percentile([7.0], 0.999) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_summarize_rate_and_percentiles() -> None:
    row = summarize([3.0, 1.0, 2.0, 4.0], elapsed=2.0, clients=16, size=1024)
    assert row == {
        "clients": 16,
        "size": 1024,
        "ops_per_s": 2.0,
        "p50_ms": 2.0,
        "p99_ms": 4.0,
        "p999_ms": 4.0,
    }
    empty = summarize([], elapsed=1.0, clients=1, size=16)
    assert empty["ops_per_s"] == 0.0 and empty["p50_ms"] is None


def test_thin_keeps_at_most_the_limit() -> None:
    samples = [[float(i), 1.0] for i in range(1001)]
    assert len(thin(samples, 100)) <= 100
    assert thin(samples[:5], 100) == samples[:5]


def test_unprovoked_elections_skip_pre_votes_start_up_and_fault_windows() -> None:
    lines = [
        {"t": 1.0, "type": "election", "pre_vote": False},  # start-up: before `since`
        {"t": 11.0, "type": "election", "pre_vote": True},  # a pre-vote: not an election
        {"t": 12.0, "type": "election", "pre_vote": False},  # unprovoked
        {"t": 20.5, "type": "election", "pre_vote": False},  # inside the kill window
        {"t": 30.0, "type": "role", "from": "follower", "to": "candidate"},
    ]
    assert count_unprovoked(lines, since=10.0, windows=[Window(20.0, 22.0, "manager1")]) == 1


def test_result_object_has_exactly_the_design_keys() -> None:
    run = Run(managers=5, up_to_leader_s=1.2, rss_idle_mb=[30.0], rss_after_mb=[31.0])
    row = {**summarize([1.0, 2.0], 1.0, 1, 16), "errors": {}, "samples": [[0.0, 1.0]]}
    row["cpu_ms_per_write"] = {"manager1": 0.2, "loadgen": 0.1}
    run.http.append(row)
    run.raw.append(dict(row))
    run.leader_s = [0.3, 0.2, 0.4]
    run.commit_s = [0.35, 0.25, 0.45]
    obj = result_object(run)
    assert set(obj) == TOP_KEYS
    assert set(obj["http"][0]) == ROW_KEYS and set(obj["raw"][0]) == ROW_KEYS
    assert obj["failover"] == {
        "rounds": 3,
        "leader_p50_s": 0.3,
        "commit_p50_s": 0.35,
        "commit_p99_s": 0.45,
    }
    assert obj["http"][0]["cpu_ms_per_write"] == {"manager1": 0.2, "loadgen": 0.1}
    json.dumps(obj)  # serialisable as it is
    run.against = {"system": "etcd", "version": "3.4.23", "rows": []}
    assert result_object(run)["against"]["system"] == "etcd"  # only when asked


def test_quick_plan_runs_every_phase_once() -> None:
    class A:
        quick, managers, duration = True, 3, None

    plan = BenchPlan.from_args(A())  # type: ignore[arg-type]
    assert plan.levels == [(16, 16)] and plan.rounds == 1
    assert len(BenchPlan().levels) == 8


@pytest.mark.integration
def test_bench_quick_json_and_cluster_stopped(tmp_path: Path) -> None:
    cdir = tmp_path / "cluster"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "cluster", "--dir", str(cdir), "bench", "--quick", "--json",
             "--out", str(tmp_path / "out")],
            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
        )  # fmt: skip
    finally:
        # A run that timed out (or failed) leaves its managers behind: the
        # timeout kills only the CLI process.  Stop them by their recorded PIDs.
        leftovers = kill_leftovers(described_pids(cdir))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not leftovers, f"bench left managers running: {leftovers}"
    obj = json.loads(proc.stdout)
    assert set(obj) == TOP_KEYS
    assert obj["managers"] == 3 and len(obj["rss_idle_mb"]) == 3
    for row in obj["http"] + obj["raw"]:
        assert set(row) == ROW_KEYS
    assert obj["failover"]["rounds"] == 1
    assert (tmp_path / "out" / "latency.png").stat().st_size > 0
    # The cluster it started is stopped: no manager process of this directory left.
    desc = json.loads((cdir / "cluster.json").read_text())
    for m in desc["members"]:
        assert m["pid"] is None
    ps = subprocess.run(["pgrep", "-af", str(cdir)], capture_output=True, text=True)
    assert "cluster.manager" not in ps.stdout
