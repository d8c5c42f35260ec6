"""The note's and figures' share of the measurements steps record in ``run.records``:
a rolling update's samples and tasks, the manager-count rows.

`scenarios.report` calls these three: `figures` (drawn after the trace
figures), `note_data` (what the ``_rollout`` and ``_manager_count`` parts of
the note print) and `key_metric` (the index's phrase).  Every number they
give comes from the rows the steps recorded, so the note, the figure and the
checks say the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenarios.checks import Run
from scenarios.checks.rollout import batches, new_task_times
from scenarios.steps.measures import ROWS_TABLE
from scenarios.steps.rollout import ROLLOUT_TABLE, TASKS_TABLE

__all__ = ["figures", "key_metric", "note_data"]


def _rollouts(run: Run) -> list[dict[str, Any]]:
    """Per update/rollback step: the command, from -> to, the batches and their gaps."""
    out = []
    for rec in run.records.get(TASKS_TABLE, []):
        step = run.step(rec["step"])
        groups = batches(new_task_times(rec, rec["to"], step.start))
        out.append({
            "step": rec["step"],
            "action": step.action,
            "docker": step.docker,
            "from": rec["from"],
            "to": rec["to"],
            "replicas": rec["replicas"],
            "sizes": [len(g) for g in groups],
            "starts": [run.rel(g[0]) for g in groups],
            "took": step.end - step.start,
        })  # fmt: skip
    return out


def _managers(n: int) -> str:
    return f"{n} manager{'' if n == 1 else 's'}"


def figures(out: Path, run: Run) -> list[Path]:
    from viz.figures import save

    paths: list[Path] = []
    samples = run.records.get(ROLLOUT_TABLE, [])
    if samples and run.model is not None:
        from viz.figures.rollout import RolloutSample, rollout_figure

        pts = [RolloutSample(run.rel(s["t"]), dict(s["images"])) for s in samples]
        marks = []
        for r in _rollouts(run):
            verb = "update" if r["action"] == "update_service" else "rollback"
            marks.append((run.rel(run.step(r["step"]).start), f"{verb} -> {r['to']}"))
        title = "; ".join(
            f"{r['from']} -> {r['to']}: {len(r['sizes'])} batches of "
            f"{'/'.join(map(str, r['sizes']))} tasks"
            for r in _rollouts(run)
        )
        paths += save(rollout_figure(pts, marks, title), out / "rollout")
    rows = run.records.get(ROWS_TABLE, [])
    if rows:
        from viz.figures.costs import CostRow, costs_figure

        fields = ("managers", "tolerance", "seq_p50_ms", "seq_p99_ms", "conc_p50_ms",
                  "conc_p99_ms", "cpu_ms_per_write")  # fmt: skip
        cost_rows = [
            CostRow(*(r[f] for f in fields), elections_s=tuple(r["elections_s"]))
            for r in rows
            if r["seq_p50_ms"] is not None and r["conc_p50_ms"] is not None
        ]
        small, large = cost_rows[0], cost_rows[-1]
        title = (
            f"A write cost the cluster {small.cpu_ms_per_write:.1f} ms of CPU with "
            f"{_managers(small.managers)}, {large.cpu_ms_per_write:.1f} ms with {large.managers}; "
            f"median latency {small.seq_p50_ms:.1f} -> {large.seq_p50_ms:.1f} ms "
            "(one machine, real processes)"
        )
        paths += save(costs_figure(cost_rows, title), out / "manager-count")
    return paths


def misconceptions(run: Run) -> list[dict[str, Any]]:
    """Beliefs these measurements correct, with the run's numbers (see
    ``_misconceptions.md.j2``): only where the check that proves it passed."""
    rows = run.records.get(ROWS_TABLE, [])
    if len(rows) < 2 or not any(e.check == "cpu_per_write_grows" for e in run.scenario.expects):
        return []
    small, large = rows[0], rows[-1]
    return [{"kind": "more_managers", "small": small, "large": large}]


def note_data(run: Run) -> dict[str, Any]:
    """``rollouts`` and ``cost_rows`` for the note (empty when the run has none)."""
    return {"rollouts": _rollouts(run), "cost_rows": run.records.get(ROWS_TABLE, [])}


def key_metric(run_metrics: dict[str, Any]) -> str | None:
    """The index's phrase for these runs, from the metrics `collect` put there."""
    if "cpu_ms_per_write_by_managers" in run_metrics:
        by = run_metrics["cpu_ms_per_write_by_managers"]
        return "CPU per write " + ", ".join(f"N={n}: {ms:.2f} ms" for n, ms in by.items())
    if "rollout_batches" in run_metrics:
        return "batches " + ", ".join(run_metrics["rollout_batches"])
    return None


def collect(run: Run) -> None:
    """Metrics for ``result.json`` and the index."""
    rows = run.records.get(ROWS_TABLE, [])
    if rows:
        run.metrics["commit_p50_ms_by_managers"] = {
            str(r["managers"]): round(r["seq_p50_ms"], 2)
            for r in rows
            if r["seq_p50_ms"] is not None
        }
        run.metrics["cpu_ms_per_write_by_managers"] = {
            str(r["managers"]): round(r["cpu_ms_per_write"], 2) for r in rows
        }
        run.metrics["manager_count"] = [
            {k: v for k, v in r.items() if k not in ("seq_ms", "conc_ms")} for r in rows
        ]
    rollouts = _rollouts(run)
    if rollouts:
        run.metrics["rollout_batches"] = [
            f"{r['from']}->{r['to']}: {'/'.join(map(str, r['sizes']))}" for r in rollouts
        ]
