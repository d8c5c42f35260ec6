"""``bench --scale``: the plan, the rows' shape (pure), and one smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from repo import ROOT

from cluster.bench.run import BenchPlan, Run, result_object
from cluster.bench.scale import ROW_KEYS, ScalePlan, replica_counts, scale_rows


def detail(services: int, tasks: int, write: str) -> dict:
    return {
        "services": services, "tasks": tasks, "write": write, "ops_per_s": 812.5,
        "p50_ms": 9.1, "p99_ms": 30.2, "idle_cpu_pct": [1.2, 0.4, 0.4],
        "rss_mb": [60.1, 58.0, 58.2], "errors": {}, "cpu_ms_per_write": {"manager1": 0.3},
        "fill_per_s": 450.0,
    }  # fmt: skip


def test_scale_rows_keep_exactly_the_design_keys_in_order() -> None:
    details = [detail(0, 0, "service"), detail(0, 0, "config"), detail(10_000, 20_000, "config")]
    rows = scale_rows(details)
    assert [list(r) for r in rows] == [list(ROW_KEYS)] * 3
    assert rows[2]["services"] == 10_000 and rows[2]["tasks"] == 20_000
    assert rows[0]["idle_cpu_pct"] == [1.2, 0.4, 0.4]
    assert "rss_mb" in details[0]  # the details keep what the rows leave out


def test_result_object_has_scale_rows_only_when_asked() -> None:
    run = Run(managers=3)
    assert "scale" not in result_object(run)
    run.scale = [detail(1_000, 0, "service")]
    obj = result_object(run)
    assert obj["scale"] == [
        {"services": 1_000, "tasks": 0, "write": "service", "ops_per_s": 812.5,
         "p50_ms": 9.1, "p99_ms": 30.2, "idle_cpu_pct": [1.2, 0.4, 0.4]}
    ]  # fmt: skip
    json.dumps(obj)


class Args:
    managers, duration, against = 3, None, None

    def __init__(self, quick: bool, scale: bool) -> None:
        self.quick, self.scale = quick, scale


def test_scale_plan_levels_full_and_quick() -> None:
    full = BenchPlan.from_args(Args(quick=False, scale=True))  # type: ignore[arg-type]
    assert full.scale is not None
    assert full.scale.levels == (0, 1_000, 5_000, 10_000) and full.scale.tasks == 20_000
    assert full.scale.steps == 5
    quick = BenchPlan.from_args(Args(quick=True, scale=True))  # type: ignore[arg-type]
    assert quick.scale == ScalePlan.quick()
    assert max(quick.scale.levels) <= 1_000 and quick.scale.tasks <= 500
    # Measured service creates must not carry a level past the next one.
    assert quick.scale.service_ops < quick.scale.levels[1] - quick.scale.levels[0]


def test_scale_is_off_unless_asked_and_counts_in_the_steps() -> None:
    plain = BenchPlan.from_args(Args(quick=True, scale=False))  # type: ignore[arg-type]
    scaled = BenchPlan.from_args(Args(quick=True, scale=True))  # type: ignore[arg-type]
    assert plain.scale is None
    assert scaled.steps == plain.steps + ScalePlan.quick().steps


def test_replica_counts_sum_to_the_tasks() -> None:
    assert replica_counts(20_000, 200) == [200] * 100
    assert replica_counts(450, 200) == [200, 200, 50]
    assert replica_counts(0, 200) == []
    with pytest.raises(ValueError):
        replica_counts(10, 0)


@pytest.mark.integration
def test_bench_quick_scale_json_and_cluster_stopped(tmp_path: Path) -> None:
    cdir = tmp_path / "cluster"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "cluster", "--dir", str(cdir), "bench", "--quick", "--scale",
         "--json", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["scale"]
    plan = ScalePlan.quick()
    assert [(r["tasks"], r["write"]) for r in rows] == [
        (0, "service"), (0, "config"), (0, "service"), (0, "config"),
        (plan.tasks, "service"), (plan.tasks, "config"),
    ]  # fmt: skip
    for r in rows:
        assert list(r) == list(ROW_KEYS)
        assert r["ops_per_s"] > 0 and len(r["idle_cpu_pct"]) == 3
    assert rows[0]["services"] == 0 and rows[2]["services"] >= plan.levels[1]
    details = json.loads((tmp_path / "out" / "results.json").read_text())["scale_details"]
    assert all(len(d["rss_mb"]) == 3 for d in details)
    desc = json.loads((cdir / "cluster.json").read_text())
    assert all(m["pid"] is None for m in desc["members"])
    print(f"bench --quick --scale: {time.monotonic() - t0:.1f} s")
