"""Checks of a rolling update and a rollback, from what the steps recorded: the
service's tasks once each rollout ended (`scenarios.steps.rollout`).

A batch is the set of new tasks the updater created in one pass: they share
a creation time (one Raft entry), and the next batch comes only once they
run and ``UpdateConfig.Delay`` has passed, so batches are told apart by the
gaps between creation times.
"""

from __future__ import annotations

import datetime
import itertools
import math
from typing import Any

from scenarios.checks.run import CheckResult, Run
from scenarios.steps import NotApplicable
from scenarios.steps import expects as ex
from scenarios.steps.rollout import ROLLOUT_TABLE, TASKS_TABLE

__all__ = ["batches", "new_task_times", "rolled_back", "updated_in_batches"]

#: Tasks of one pass are created within this many seconds of each other.
SAME_PASS_S = 0.2


def _when(created: str) -> float:
    head, _, frac = created.rstrip("Z").partition(".")
    dt = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def batches(times: list[float]) -> list[list[float]]:
    """Creation times grouped into passes (a gap over `SAME_PASS_S` starts a new one)."""
    out: list[list[float]] = []
    for t in sorted(times):
        if out and t - out[-1][-1] <= SAME_PASS_S:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def _recorded(run: Run, step: int) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    if run.mode != "real":
        raise NotApplicable("services and their tasks are not simulated")
    tasks = next((r for r in run.records.get(TASKS_TABLE, []) if r["step"] == step), None)
    samples = [r for r in run.records.get(ROLLOUT_TABLE, []) if r["step"] == step]
    return tasks, samples


def new_task_times(record: dict[str, Any], image: str, since: float) -> list[float]:
    """Creation times (Unix seconds) of the recorded tasks of ``image`` created
    since ``since``: the tasks a rollout made."""
    times = [_when(t["created"]) for t in record["tasks"] if t["image"] == image and t["created"]]
    return [t for t in times if t >= since]


def _new_tasks(run: Run, step: int, record: dict[str, Any], image: str) -> list[float]:
    return new_task_times(record, image, run.step(step).start)


def updated_in_batches(run: Run, e: ex.UpdatedInBatches) -> CheckResult:
    step = run.scenario.steps[e.after_step - 1]
    if step.action != "update_service":
        return CheckResult(e.label(), False, f"step {e.after_step} is no update_service step")
    record, samples = _recorded(run, e.after_step)
    if record is None:
        return CheckResult(e.label(), False, "the rollout never finished: no tasks recorded")
    p, delay, replicas = step.parallelism, step.delay, record["replicas"]
    groups = batches(_new_tasks(run, e.after_step, record, step.image))
    sizes = [len(g) for g in groups]
    gaps = [b[0] - a[-1] for a, b in itertools.pairwise(groups)]
    expected = math.ceil(replicas / p) if p > 0 else 1
    mixed = any(len(s["images"]) > 1 for s in samples)
    ok = (
        sum(sizes) == replicas
        and len(groups) == expected
        and all(n <= (p or replicas) for n in sizes)
        and all(g >= delay for g in gaps)
        and (mixed or expected == 1)
    )
    detail = (
        f"{sum(sizes)} of {replicas} tasks replaced by {step.image} in {len(groups)} batches "
        f"({', '.join(map(str, sizes))}; parallelism {p}, {expected} expected)"
    )
    if gaps:
        detail += f"; batches {', '.join(f'{g:.2f}' for g in gaps)} s apart (delay {delay:g} s)"
    detail += "; old and new images ran side by side" if mixed else "; never two images at once"
    return CheckResult(e.label(), ok, detail)


def rolled_back(run: Run, e: ex.RolledBack) -> CheckResult:
    step = run.scenario.steps[e.after_step - 1]
    if step.action != "rollback_service":
        return CheckResult(e.label(), False, f"step {e.after_step} is no rollback_service step")
    updates = [s for s in run.scenario.steps[: e.after_step - 1] if s.action == "update_service"]
    record, samples = _recorded(run, e.after_step)
    update = None
    if updates:
        update = next(
            (r for r in run.records.get(TASKS_TABLE, []) if r["step"] == updates[-1].number), None
        )
    if update is None:
        return CheckResult(e.label(), False, "no finished update_service step before it")
    before = update["from"]  # what the service ran before its update
    if record is None or not samples:
        return CheckResult(e.label(), False, "the rollback never finished: no tasks recorded")
    last = samples[-1]
    new = _new_tasks(run, e.after_step, record, before)
    replicas = record["replicas"]
    ok = last["spec"] == before and last["images"] == {before: replicas} and len(new) == replicas
    detail = (
        f"spec back to {last['spec']} (before the update: {before}); running {last['images']}; "
        f"{len(new)} new tasks on {before} (replicas {replicas})"
    )
    return CheckResult(e.label(), ok, detail)
