"""The rolling-update and manager-count pieces without a cluster: parsing, the
batch and cost arithmetic, the checks (each shown failing too), the figures."""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest
from scenario_runs import builtin

from scenarios.checks import evaluate
from scenarios.checks.rollout import batches
from scenarios.steps import ScenarioError, parse
from scenarios.steps.measures import ROWS_TABLE, percentile, summarize
from scenarios.steps.rollout import ROLLOUT_TABLE, TASKS_TABLE

T0 = 1_800_000_000.0


def iso(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fake_run(name: str, records: dict, mode: str = "real", starts: dict | None = None):
    scn = builtin(name)
    steps = [SimpleNamespace(number=s.number, action=s.action, start=T0, end=T0 + 1,
                             docker="", note="") for s in scn.steps]  # fmt: skip
    for number, t in (starts or {}).items():
        steps[number - 1].start = t
    run = SimpleNamespace(scenario=scn, mode=mode, records=records, steps=steps,
                          metrics={}, model=None)  # fmt: skip
    run.step = lambda n: steps[n - 1]
    run.rel = lambda t: t - T0
    return run


def tasks(image: str, times: list[float]) -> list[dict]:
    return [{"image": image, "created": iso(t), "slot": i + 1, "state": "running",
             "desired": "running"} for i, t in enumerate(times)]  # fmt: skip


def rollout_tables(update_times: list[float], back_times: list[float], mixed: bool = True):
    samples = [
        {"t": T0 + 1, "step": 4, "images": {"nginx:1.24": 4, "nginx:1.25": 2} if mixed
         else {"nginx:1.24": 6}, "state": "updating", "spec": "nginx:1.25"},
        {"t": T0 + 9, "step": 5, "images": {"nginx:1.24": 6}, "state": "completed",
         "spec": "nginx:1.24"},
    ]  # fmt: skip
    return {
        ROLLOUT_TABLE: samples,
        TASKS_TABLE: [
            {"step": 4, "replicas": 6, "from": "nginx:1.24", "to": "nginx:1.25",
             "tasks": tasks("nginx:1.25", update_times)},
            {"step": 5, "replicas": 6, "from": "nginx:1.25", "to": "nginx:1.24",
             "tasks": tasks("nginx:1.24", back_times)},
        ],
    }  # fmt: skip


def check(run, name: str):
    e = next(e for e in run.scenario.expects if e.check == name)
    return evaluate(run, e)


# ------------------------------------------------------------------ parsing


def test_real_only_is_read_and_cannot_be_combined_with_simulated():
    assert "Swarm objects" in builtin("rolling-update").real_only
    assert builtin("leader-kill").real_only == ""
    text = 'name = "x"\nreal_only = "why"\nsimulated_only = true\n[[step]]\naction = "heal"\n'
    with pytest.raises(ScenarioError, match="both real_only and simulated"):
        parse(text)


@pytest.mark.parametrize(
    ("step", "words"),
    [
        (
            'action = "update_service"\nservice = "web"\nimage = "a"\nparallelism = -1',
            "parallelism",
        ),
        ('action = "update_service"\nservice = "web"', "missing field 'image'"),
        ('action = "manager_count"\nsizes = [0, 3]', "between 1 and 9"),
        ('action = "manager_count"\nwrites = 0', "'writes' must be at least 1"),
    ],
)
def test_bad_steps_are_one_line_errors(step, words):
    with pytest.raises(ScenarioError, match=words):
        parse(f'name = "x"\n[[step]]\n{step}\n')


# ------------------------------------------------------------------ arithmetic


def test_percentile_is_a_measured_value_by_nearest_rank():
    values = [float(v) for v in range(1, 41)]
    assert percentile(values, 50) == 20.0
    assert percentile(values, 99) == 40.0  # 40 samples: the slowest
    assert percentile([], 50) is None
    row = summarize(3, {"seq_ms": [5.0, 7.0, 6.0], "conc_ms": [9.0], "elections_s": [0.5, 0.7],
                        "failed": 0, "cpu_ms_per_write": 1.5})  # fmt: skip
    assert (row["quorum"], row["tolerance"], row["seq_p50_ms"], row["election_max_s"]) == (
        2, 1, 6.0, 0.7)  # fmt: skip


def test_batches_split_on_gaps_between_passes():
    assert [len(b) for b in batches([10.0, 10.01, 12.0, 12.0, 14.5])] == [2, 2, 1]
    assert batches([]) == []


# ------------------------------------------------------------------ rollout checks


def test_rollout_checks_pass_on_batches_of_two_a_second_apart():
    run = fake_run("rolling-update", rollout_tables(
        [T0 + 2, T0 + 2.001, T0 + 4.3, T0 + 4.3, T0 + 6.6, T0 + 6.6],
        [T0 + 9.5 + i * 1.3 for i in range(6)]), starts={5: T0 + 9})  # fmt: skip
    ok = check(run, "updated_in_batches")
    assert ok.passed, ok.detail
    assert "3 batches (2, 2, 2" in ok.detail
    back = check(run, "rolled_back")
    assert back.passed, back.detail


def test_rollout_checks_fail_when_the_update_went_all_at_once_or_too_fast():
    at_once = fake_run("rolling-update", rollout_tables([T0 + 2] * 6, []), starts={5: T0 + 9})
    assert not check(at_once, "updated_in_batches").passed
    too_fast = fake_run("rolling-update", rollout_tables(
        [T0 + 2, T0 + 2, T0 + 2.5, T0 + 2.5, T0 + 3, T0 + 3], []), starts={5: T0 + 9})  # fmt: skip
    assert not check(too_fast, "updated_in_batches").passed  # gaps under the 1 s delay
    # No new tasks of the old image after the rollback step: not rolled back.
    assert not check(at_once, "rolled_back").passed


def test_rollout_checks_fail_without_records():
    run = fake_run("rolling-update", {})
    assert not check(run, "updated_in_batches").passed
    assert not check(run, "rolled_back").passed


# ------------------------------------------------------------------ cost checks


def cost_rows(cpu: list[float], elections: int = 3, failed: int = 0) -> dict:
    rows = []
    for n, c in zip([1, 3, 5, 7, 9], cpu, strict=True):
        raw = {
            "seq_ms": [6.0] * 40,
            "conc_ms": [15.0] * 40,
            "failed": failed,
            "elections_s": [0.6] * (elections if n > 1 else 0),
            "cpu_ms_per_write": c,
        }
        rows.append(summarize(n, raw))  # fmt: skip
    return {ROWS_TABLE: rows}


def test_cost_checks_pass_and_fail():
    good = fake_run("manager-count", cost_rows([0.5, 1.5, 2.5, 4.0, 4.8]))
    assert check(good, "every_size_measured").passed
    assert check(good, "cpu_per_write_grows").passed
    flat = fake_run("manager-count", cost_rows([1.0, 1.1, 1.2, 1.3, 1.4]))
    assert not check(flat, "cpu_per_write_grows").passed
    short = fake_run("manager-count", cost_rows([0.5, 1.5, 2.5, 4.0, 4.8], elections=2))
    assert not check(short, "every_size_measured").passed
    lost = fake_run("manager-count", cost_rows([0.5, 1.5, 2.5, 4.0, 4.8], failed=1))
    assert not check(lost, "every_size_measured").passed
    assert not check(fake_run("manager-count", {}), "every_size_measured").passed


# ------------------------------------------------------------------ figures


def test_the_figures_draw(tmp_path):
    from viz.figures import save
    from viz.figures.costs import CostRow, costs_figure
    from viz.figures.rollout import RolloutSample, rollout_figure

    rows = [CostRow(1, 0, 6.0, 20.0, 15.0, 40.0, 0.5), CostRow(3, 1, 6.5, 21.0, 16.0, 41.0, 1.5,
                                                            (0.6, 0.7))]  # fmt: skip
    assert save(costs_figure(rows, "t"), tmp_path / "c", ("png",))[0].stat().st_size > 0
    pts = [RolloutSample(0.0, {"a": 2}), RolloutSample(1.0, {"a": 1, "b": 1})]
    fig = rollout_figure(pts, [(0.5, "update -> b")], "a -> b")
    assert save(fig, tmp_path / "r", ("png",))[0].stat().st_size > 0


# ------------------------------------------------------------------ quorum refusals


def test_a_write_that_only_failed_to_reach_a_dead_leader_is_no_quorum_refusal():
    from scenarios.steps import ClientOp

    run = fake_run("quorum-loss", {})
    run.ops_in = lambda steps: ops
    run.metrics = {}
    e = next(e for e in run.scenario.expects if e.check == "writes_fail_no_quorum")
    refused = "no leader: manager4 knows of no leader (election under way or no quorum)"
    ops = [ClientOp("write", "k", "v", 0.0, 0.01, "fail", 9, status=503, error=refused)]
    assert evaluate(run, e).passed
    unreached = "the leader manager1 could not be reached from manager4 (ClientConnectorError)"
    ops = [ClientOp("write", "k", "v", 0.0, 0.01, "fail", 9, status=503, error=unreached)]
    result = evaluate(run, e)
    assert not result.passed and "not a quorum refusal" in result.detail


def test_writes_readable_holds_both_ways_and_can_fail():
    from scenarios.steps import ClientOp

    run = fake_run("disaster-recovery", {})
    ops = [ClientOp("write", f"k{i}", "v", 0.0, 0.1, "ok", 6) for i in range(2)]
    run.ops_in = lambda steps: ops
    lost = next(e for e in run.scenario.expects if e.check == "writes_readable" and not e.readable)
    kept = next(e for e in run.scenario.expects if e.check == "writes_readable" and e.readable)
    for seen, lost_ok, kept_ok in (({"k0": False, "k1": False}, True, False),
                                   ({"k0": True, "k1": True}, False, True),
                                   ({"k0": True, "k1": False}, False, False)):  # fmt: skip
        run.driver = SimpleNamespace(present_via_leader=lambda acked, seen=seen: ("manager1", seen))
        assert evaluate(run, lost).passed is lost_ok
        assert evaluate(run, kept).passed is kept_ok


def test_the_manager_count_note_corrects_more_managers_are_stronger_with_its_numbers():
    from scenarios import report_ops
    from viz.notes import render

    run = fake_run("manager-count", cost_rows([0.5, 1.5, 2.5, 4.0, 4.8]))
    beliefs = report_ops.misconceptions(run)
    assert [b["kind"] for b in beliefs] == ["more_managers"]
    text = render("_misconceptions.md.j2", misconceptions=beliefs)
    assert "0.50 ms of CPU per write with 1, 4.80 ms with 9" in text
    assert report_ops.misconceptions(fake_run("manager-count", {})) == []
