"""Run one scenario: start a cluster, play the steps, check, draw, write the note.

Order of a run (the cluster is always stopped, whatever fails):

1. a fresh cluster: real processes in a new temporary directory (free
   ports), or the simulator under the seed (``simulated``);
2. the steps, in order, one progress line each with the elapsed time;
   ``leader`` and aliases are resolved at the moment a step runs; a step
   that fails stops the remaining steps (a check then says so);
3. the checks that need the live cluster, a last log trace, then ``down``;
4. the traces are copied into ``OUT/NAME/traces``, read back with
   `viz.model.read_model`, the remaining checks run on them, and the
   figures, ``report.md`` and ``result.json`` are written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.client.http import ApiError, Unreachable
from cluster.local.layout import ClusterError
from cluster.local.verbs import equivalent
from scenarios import report
from scenarios.checks import LIVE, CheckResult, Run, StepRecord, evaluate
from scenarios.drivers.real import RealDriver
from scenarios.drivers.sim import SimDriver
from scenarios.steps import (
    ClientOp,
    Driver,
    NotApplicable,
    Scenario,
    ScenarioError,
    StepFailed,
    Unsupported,
)
from scenarios.steps import expects as ex

__all__ = ["Outcome", "run_scenario"]

Progress = Callable[[str], None]


@dataclass(slots=True)
class Outcome:
    scenario: str
    passed: bool
    out: Path
    duration_s: float
    metrics: dict[str, Any]
    checks: list[CheckResult]


def _driver(
    scn: Scenario, simulated: bool, seed: int, cluster_dir: Path, netns: bool = False
) -> Driver:
    if simulated:
        return SimDriver(scn.cluster, seed)
    return RealDriver(scn.cluster, cluster_dir, netns=netns)


def run_scenario(
    scn: Scenario,
    out_root: Path,
    *,
    seed: int = 1,
    simulated: bool = False,
    keep: bool = False,
    progress: Progress = lambda _: None,
    unsafe_commit_rule: bool = False,
    netns: bool = False,
) -> Outcome:
    """Run ``scn`` (``netns``: real processes in netns mode, partitions in the kernel;
    a scenario that runs on the simulator only ignores it)."""
    if unsafe_commit_rule and scn.directed != "figure8":
        raise ScenarioError("--unsafe-commit-rule is a teaching demo of figure-8 only")
    if scn.directed:  # a schedule in code, on the simulator: scenarios/<directed>.py
        module = importlib.import_module(f"scenarios.{scn.directed}")
        kwargs = {"unsafe_commit_rule": True} if unsafe_commit_rule else {}
        return module.run(scn, out_root, seed=seed, progress=progress, **kwargs)
    if simulated and scn.real_only:
        raise ScenarioError(f"{scn.name} runs on real processes only: {scn.real_only}")
    simulated = simulated or scn.simulated_only
    netns = netns and not simulated
    out = out_root / scn.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    cluster_dir = (out / "cluster") if keep else Path(tempfile.mkdtemp(prefix="swarmraft-scn-"))
    if keep:
        cluster_dir.mkdir()
    else:
        cluster_dir.rmdir()  # the supervisor creates it; we only wanted a unique name
    wall0 = time.monotonic()
    driver = _driver(scn, simulated, seed, cluster_dir, netns)
    run = Run(
        scenario=scn,
        mode=driver.mode,
        seed=seed if simulated else None,
        driver=driver,
        steps=[StepRecord(s.number, s.action, s.describe()) for s in scn.steps],
    )
    player = _Player(run, progress, wall0)
    live: list[CheckResult] = []
    t_start = None
    try:
        what = "simulated" if simulated else ("real netns" if netns else "real")
        progress(f"[{scn.name}] starting {scn.cluster.managers} {what} managers")
        driver.start()
        t_start = driver.now()
        player.t0 = t_start
        player.play()
        driver.trace_log()
        if run.placements:
            # "after" (none if the run stopped where no leader can answer)
            with contextlib.suppress(ApiError, Unreachable, ClusterError):
                run.placements.append(placement(driver))
        final_ops = run.acked()
        if final_ops and any(isinstance(e, ex.HistoryLinearizable) for e in scn.expects):
            t1 = driver.now()
            _leader, seen = driver.present_via_leader(final_ops)
            if seen is not None:
                run.final_read = (t1, driver.now(), seen)
        for e in scn.expects:
            if type(e) in LIVE:
                live.append(evaluate(run, e))
        driver.trace_log()
        run.end_t = driver.now()
        driver.fill_indexes(run.ops)
        driver.write_client_lines(run.ops)
    finally:
        driver.stop()
        traces = out / "traces"
        with contextlib.suppress(OSError):
            driver.collect_traces(traces)
        if driver.mode == "real":
            joined = [j["name"] for j in run.joined if j["role"] == "manager"]
            run.data_dirs = {n: cluster_dir / n for n in [*scn.cluster.names, *joined]}
    try:
        checks = _finish(run, scn, out, live)
    finally:
        if not keep:
            shutil.rmtree(cluster_dir, ignore_errors=True)
    duration = time.monotonic() - wall0
    run.metrics["duration_s"] = round(duration, 2)
    run.metrics["network"] = driver.network
    if t_start is not None and run.model is not None:
        run.metrics["scenario_time_s"] = round(run.model.end, 2)
    passed = all(c.passed for c in checks)
    report.write_result(out, run, checks, passed)
    report.write_note(out, run, checks, passed)
    verdict = "PASSED" if passed else "FAILED"
    progress(f"[{scn.name}] {verdict} in {duration:.1f} s: {out / 'report.md'}")
    return Outcome(scn.name, passed, out, duration, run.metrics, checks)


def _commands(step: Any, resolved: dict[str, str]) -> tuple[str, str]:
    """The step as a ``python -m cluster`` command and in Docker, with the nodes
    it acted on named (``leader`` becomes whoever led then)."""
    names = {f.name: getattr(step, f.name) for f in dataclasses.fields(step)}
    node = names.get("node") or names.get("to") or ""
    fields = {k: v for k, v in names.items() if k not in ("node", "to")}
    if isinstance(names.get("groups"), list):
        fields["groups"] = [[resolved.get(r, r) for r in g] for g in names["groups"]]
    found = equivalent(step.action, resolved.get(node, node), **fields)
    return (found.command, found.docker) if found is not None else ("", "")


def placement(driver: Any) -> dict[str, str]:
    """Running tasks as ``service.slot`` -> node name, for the placement grid."""
    names = {n["ID"]: n.get("Description", {}).get("Hostname", n["ID"][:8]) for n in driver.nodes()}
    services = {s["ID"]: s["Spec"]["Name"] for s in driver.services()}
    out = {}
    for t in driver.tasks():
        if t.get("DesiredState") != "running" or t.get("Status", {}).get("State") != "running":
            continue
        sid = t.get("ServiceID", "")
        services.setdefault(sid, sid[:6])
        label = f"{services[sid]}.{t.get('Slot') or names.get(t.get('NodeID', ''), '?')}"
        out[label] = names.get(t.get("NodeID", ""), "?")
    return out


def _finish(run: Run, scn: Scenario, out: Path, live: list[CheckResult]) -> list[CheckResult]:
    """Read the traces, run the remaining checks, draw the figures."""
    from viz.model import TraceError, read_model

    checks: list[CheckResult] = []
    broken = [s for s in run.steps if s.status in ("failed", "unsupported")]
    if broken:
        s = broken[0]
        checks.append(CheckResult(f"step {s.number} ({s.action})", False, s.note))
    try:
        # The story ends with the last step, not with the shutdown after it.
        until = run.end_t if run.end_t else None
        run.model = read_model(out / "traces", until=until)
        run.conf_lines = _conf_lines(out / "traces", run.model.t0, until)
    except (TraceError, OSError) as e:
        checks.append(CheckResult("traces", False, f"cannot read the traces: {e}"))
        return checks + live
    by_number = {c.name: c for c in live}
    live_iter = iter(live)
    for e in scn.expects:
        if type(e) in LIVE:
            checks.append(next(live_iter))
        else:
            checks.append(evaluate(run, e))
    del by_number
    report.collect_metrics(run)
    report.draw_figures(out, run)
    _write_replay(out, run)
    return checks


def _write_replay(out: Path, run: Run) -> None:
    """``replay.html``: the run played back in a browser, each step a caption."""
    from viz.replay import Caption, write_replay

    captions = [
        Caption(run.rel(s.start), f"step {s.number}: {s.text}", s.cli, s.docker)
        for s in run.steps
        if s.status != "not run"
    ]
    write_replay(out / "traces", out / "replay.html", run.scenario.title, captions)


def _conf_lines(traces: Path, t0: float, until: float | None) -> list[Any]:
    """Every ``membership`` line: (model time, node, voters, learners), in time order."""
    from viz.model import load

    records, _warnings = load(traces)
    return [
        (
            float(r["t"]) - t0,
            str(r.get("node")),
            tuple(r.get("voters") or ()),
            tuple(r.get("learners") or ()),
        )
        for r in records
        if r["type"] == "membership" and (until is None or float(r["t"]) <= until)
    ]


class _Player:
    """Plays the steps of a run against its driver."""

    def __init__(self, run: Run, progress: Progress, wall0: float) -> None:
        self.run = run
        self.d = run.driver
        self.progress = progress
        self.wall0 = wall0
        self.t0 = 0.0
        self._current: StepRecord | None = None
        # Comparing logs at each election needs every node's log, not only
        # the candidates' (traced at each role change): ask after every step.
        self.log_each_step = any(isinstance(e, ex.WinnerMostUpToDate) for e in run.scenario.expects)

    def step_line(self, rec: StepRecord, msg: str) -> None:
        elapsed = self.d.now() - self.t0
        self.progress(f"[{self.run.scenario.name}] +{elapsed:6.2f}s  step {rec.number}: {msg}")

    def play(self) -> None:
        for step, rec in zip(self.run.scenario.steps, self.run.steps, strict=True):
            rec.start = self.d.now()
            self._current = rec
            try:
                note = step.apply(self)
                rec.status, rec.note = "ok", note or ""
                rec.cli, rec.docker = _commands(step, rec.resolved)
            except NotApplicable as e:
                rec.status, rec.note = "skipped", f"not applicable in {self.d.mode} mode: {e}"
            except Unsupported as e:
                rec.status = "unsupported"
                rec.note = f"action not supported by this cluster yet: {e}"
            except (StepFailed, ClusterError, ApiError, Unreachable, RuntimeError) as e:
                rec.status = "failed"
                rec.note = f"{getattr(e, 'message', None) or e}"
            except Exception as e:  # a bug of ours: still a report, not a traceback
                rec.status = "failed"
                rec.note = f"internal error: {type(e).__name__}: {e}"
            if self.log_each_step and rec.status == "ok":
                self.d.trace_log()
            rec.end = self.d.now()
            self.step_line(rec, f"{rec.text}: {rec.note}" if rec.note else rec.text)
            if rec.status in ("failed", "unsupported"):
                self.progress(
                    f"[{self.run.scenario.name}] stopping: step {rec.number} {rec.status}"
                )
                return

    # ------------------------------------------------------------ resolution

    def node(self, ref: str) -> str:
        name = self._resolve(ref)
        if self._current is not None:
            self._current.resolved[ref] = name
        return name

    def _resolve(self, ref: str) -> str:
        if ref in self.run.aliases:
            return self.run.aliases[ref]
        if ref == "leader":
            leader = self.d.leader()
            if leader is None:
                raise StepFailed("there is no leader to act on")
            return leader
        return ref

    def remember(self, alias: str | None, node: str) -> None:
        if alias:
            self.run.aliases[alias] = node

    # ------------------------------------------------------------ what the steps record

    @property
    def driver(self) -> Driver:
        return self.d

    @property
    def scenario_name(self) -> str:
        return self.run.scenario.name

    @property
    def write_count(self) -> int:
        return len(self.run.ops)

    def record_ops(self, ops: list[ClientOp]) -> None:
        self.run.ops += ops

    def record_placement(self) -> None:
        if not self.run.placements:
            self.run.placements.append(placement(self.d))

    def record_named(self, name: str, data: str) -> None:
        self.run.named_data[name] = data

    def record_joined(self, name: str, role: str, step: int) -> None:
        self.run.joined.append({"name": name, "role": role, "step": step})

    def record_quorum_row(self, row: dict[str, Any]) -> None:
        self.run.quorum_rows.append(row)

    def record(self, kind: str, item: dict[str, Any]) -> None:
        self.run.records.setdefault(kind, []).append(item)

    def record_answer(self, step: int, answer: dict[str, Any]) -> None:
        self.run.answers[step] = answer

    def say(self, message: str) -> None:
        self.progress(f"[{self.run.scenario.name}]     {message}")
