"""Checks of the ``manager_count`` measurements (`scenarios.steps.measures`)."""

from __future__ import annotations

from typing import Any

from scenarios.checks.run import CheckResult, Run
from scenarios.steps import NotApplicable
from scenarios.steps import expects as ex
from scenarios.steps.measures import ROWS_TABLE

__all__ = ["cpu_per_write_grows", "every_size_measured"]


def _rows(run: Run) -> list[dict[str, Any]]:
    rows = run.records.get(ROWS_TABLE, [])
    if not rows and run.mode != "real":
        raise NotApplicable("only real managers show what each one costs")
    return rows


def every_size_measured(run: Run, e: ex.EverySizeMeasured) -> CheckResult:
    rows = _rows(run)
    if not rows:
        return CheckResult(e.label(), False, "no cluster size was measured")
    step = next(s for s in run.scenario.steps if s.action == "manager_count")
    bad = []
    for r in rows:
        n = r["managers"]
        if r["failed"] or r["seq_p50_ms"] is None or r["conc_p50_ms"] is None:
            bad.append(f"{n} managers: {r['failed']} writes not acknowledged")
        if n > 1 and len(r["elections_s"]) != step.rounds:
            bad.append(f"{n} managers: {len(r['elections_s'])} of {step.rounds} elections")
    writes = step.writes + step.clients * step.per_client
    detail = (
        f"{len(rows)} sizes ({', '.join(str(r['managers']) for r in rows)}): {writes} writes "
        f"acknowledged each; a new leader after each of {step.rounds} leader kills "
        "(from 2 managers)"
    )
    if bad:
        detail = "; ".join(bad)
    return CheckResult(e.label(), not bad, detail)


def cpu_per_write_grows(run: Run, e: ex.CpuPerWriteGrows) -> CheckResult:
    rows = _rows(run)
    if len(rows) < 2:
        return CheckResult(e.label(), False, "fewer than two sizes measured")
    small = min(rows, key=lambda r: r["managers"])
    large = max(rows, key=lambda r: r["managers"])
    if small["cpu_ms_per_write"] <= 0:
        return CheckResult(e.label(), False, f"no CPU time measured with {small['managers']}")
    ratio = large["cpu_ms_per_write"] / small["cpu_ms_per_write"]
    detail = (
        f"CPU per write, all managers together: {small['cpu_ms_per_write']:.2f} ms with "
        f"{small['managers']} manager{'' if small['managers'] == 1 else 's'}, "
        f"{large['cpu_ms_per_write']:.2f} ms with "
        f"{large['managers']}: x{ratio:.1f} (must exceed x{e.ratio:g})"
    )
    return CheckResult(e.label(), ratio > e.ratio, detail)
