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
import importlib
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.client.http import ApiError, Unreachable
from cluster.local.layout import ClusterError
from scenarios import report
from scenarios.actions import NotApplicable, RealDriver, Unsupported
from scenarios.checks import LIVE, CheckResult, Run, StepRecord, evaluate
from scenarios.schema import ClusterSpec, Scenario, ScenarioError, Step

__all__ = ["Outcome", "run_scenario"]

Progress = Callable[[str], None]


class StepFailed(Exception):
    pass


@dataclass(slots=True)
class Outcome:
    scenario: str
    passed: bool
    out: Path
    duration_s: float
    metrics: dict[str, Any]
    checks: list[CheckResult]


def _driver(scn: Scenario, simulated: bool, seed: int, cluster_dir: Path) -> Any:
    if simulated:
        from scenarios.simdriver import SimDriver

        return SimDriver(scn.cluster, seed)
    return RealDriver(scn.cluster, cluster_dir)


def run_scenario(
    scn: Scenario,
    out_root: Path,
    *,
    seed: int = 1,
    simulated: bool = False,
    keep: bool = False,
    progress: Progress = lambda _: None,
    unsafe_commit_rule: bool = False,
) -> Outcome:
    if unsafe_commit_rule and scn.directed != "figure8":
        raise ScenarioError("--unsafe-commit-rule is a teaching demo of figure-8 only")
    if scn.directed:  # a schedule in code, on the simulator: scenarios/<directed>.py
        module = importlib.import_module(f"scenarios.{scn.directed}")
        kwargs = {"unsafe_commit_rule": True} if unsafe_commit_rule else {}
        return module.run(scn, out_root, seed=seed, progress=progress, **kwargs)
    simulated = simulated or scn.simulated_only
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
    driver = _driver(scn, simulated, seed, cluster_dir)
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
        what = "simulated" if simulated else "real"
        progress(f"[{scn.name}] starting {scn.cluster.managers} {what} managers")
        driver.start()
        t_start = driver.now()
        player.t0 = t_start
        player.play()
        driver.trace_log()
        if run.placements:
            run.placements.append(placement(driver))  # "after"
        final_ops = run.acked()
        if final_ops and any(e.check == "history_linearizable" for e in scn.expects):
            t1 = driver.now()
            _leader, seen = driver.present_via_leader(final_ops)
            if seen is not None:
                run.final_read = (t1, driver.now(), seen)
        for e in scn.expects:
            if e.check in LIVE:
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
    if t_start is not None and run.model is not None:
        run.metrics["scenario_time_s"] = round(run.model.end, 2)
    passed = all(c.passed for c in checks)
    report.write_result(out, run, checks, passed)
    report.write_note(out, run, checks, passed)
    verdict = "PASSED" if passed else "FAILED"
    progress(f"[{scn.name}] {verdict} in {duration:.1f} s: {out / 'report.md'}")
    return Outcome(scn.name, passed, out, duration, run.metrics, checks)


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
        if e.check in LIVE:
            checks.append(next(live_iter))
        else:
            checks.append(evaluate(run, e))
    del by_number
    report.collect_metrics(run)
    report.draw_figures(out, run)
    return checks


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
        # Comparing logs at each election needs every node's log, not only
        # the candidates' (traced at each role change): ask after every step.
        self.log_each_step = any(e.check == "winner_most_up_to_date" for e in run.scenario.expects)

    def say(self, rec: StepRecord, msg: str) -> None:
        elapsed = self.d.now() - self.t0
        self.progress(f"[{self.run.scenario.name}] +{elapsed:6.2f}s  step {rec.number}: {msg}")

    def play(self) -> None:
        for step, rec in zip(self.run.scenario.steps, self.run.steps, strict=True):
            rec.start = self.d.now()
            try:
                note = self.do(step)
                rec.status, rec.note = "ok", note or ""
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
            self.say(rec, f"{rec.text}: {rec.note}" if rec.note else rec.text)
            if rec.status in ("failed", "unsupported"):
                self.progress(
                    f"[{self.run.scenario.name}] stopping: step {rec.number} {rec.status}"
                )
                return

    # ------------------------------------------------------------ resolution

    def node(self, ref: str) -> str:
        if ref in self.run.aliases:
            return self.run.aliases[ref]
        if ref == "leader":
            leader = self.d.leader()
            if leader is None:
                raise StepFailed("there is no leader to act on")
            return leader
        return ref

    def remember(self, step: Step, node: str) -> None:
        if step.get("as"):
            self.run.aliases[step.get("as")] = node

    # ------------------------------------------------------------ actions

    def do(self, step: Step) -> str | None:
        a = step.action
        d = self.d
        if a in ("kill", "restart", "pause", "unpause", "isolate"):
            node = self.node(step.get("node"))
            getattr(d, a)(node)
            self.remember(step, node)
            return f"{a} {node}" if step.get("node") != node else None
        if a == "partition":
            groups = [[self.node(r) for r in g] for g in step.get("groups")]
            flat = [n for g in groups for n in g]
            twice = sorted({n for n in flat if flat.count(n) > 1})
            if twice:  # "leader" or an alias named a node another group names
                raise StepFailed(f"{', '.join(twice)} would be in two groups")
            d.partition(groups)
            return " | ".join(",".join(g) for g in groups)
        if a == "heal":
            d.heal()
            return None
        if a == "write":
            return self.write(step)
        if a == "wait":
            return self.wait(step)
        if a == "set_election_timeout":
            node = self.node(step.get("node"))
            d.set_election_timeout(node, step.get("ms"))
            self.remember(step, node)
            return f"{node} restarted with a {step.get('ms')} ms election timeout"
        if a in ("promote", "demote", "force_new_cluster"):
            node = self.node(step.get("node"))
            getattr(d, a)(node)
            self.remember(step, node)
            return None
        if a == "drain":
            node = self.node(step.get("node"))
            if not self.run.placements:
                self.run.placements.append(placement(d))  # "before", for the figure
            d.drain(node, step.get("availability", "drain"))
            self.remember(step, node)
            return f"{node} availability {step.get('availability', 'drain')}"
        if a == "transfer_leadership":
            to = self.node(step.get("to")) if step.get("to") else None
            if to is not None and to == d.leader():
                self.remember(step, to)
                return f"{to} already leads: nothing to transfer"
            chosen = d.transfer_leadership(to)
            if chosen:
                self.remember(step, chosen)
            return f"leadership handed to {chosen}"
        if a in ("lock", "unlock"):
            getattr(d, a)()
            return None
        if a == "trace_log":
            d.trace_log()
            return None
        if a == "create_service":
            d.create_service(
                step.get("name"), step.get("replicas", 1), step.get("image", "nginx:alpine")
            )
            return None
        if a == "scale":
            d.scale(step.get("service"), step.get("replicas"))
            return None
        if a in ("create_secret", "create_config"):
            d.create_named(a.split("_")[1], step.get("name"), step.get("data"))
            self.run.named_data[step.get("name")] = step.get("data")
            return None
        if a == "quorum_table":
            return self.quorum_table(step)
        if a == "join":
            role = step.get("role")
            name = d.join(role)
            self.run.joined.append({"name": name, "role": role, "step": step.number})
            self.remember(step, name)
            if role == "manager":
                return f"{name} joined with the manager token: a learner until it catches up"
            return f"{name} joined with the worker token: an agent, no part of Raft"
        raise StepFailed(f"no implementation for action {a!r}")

    def write(self, step: Step) -> str:
        via = self.node(step.get("via")) if step.get("via") else None
        ops = []
        base = len(self.run.ops)
        # Object names: a service's must be a DNS label (no '.' or '_').
        prefix = re.sub(r"[^A-Za-z0-9-]+", "-", self.run.scenario.name)[:40].strip("-") or "w"
        for i in range(step.get("count", 1)):
            key = f"{prefix}-{base + i + 1:03d}"
            op = self.d.write(
                step.number, key, step.get("kind", "config"), via, step.get("timeout")
            )
            ops.append(op)
        self.run.ops += ops
        counts: dict[str, int] = {}
        for op in ops:
            counts[op.outcome] = counts.get(op.outcome, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in counts.items())
        err = next((op.error for op in ops if op.error), None)
        return f"{len(ops)} writes: {summary}" + (f" ({err})" if err else "")

    def wait(self, step: Step) -> str | None:
        d = self.d
        if step.get("seconds") is not None:
            d.sleep(step.get("seconds"))
            return None
        cond = step.get("for")
        timeout = step.get("timeout", 15.0)
        if cond == "converged":
            if not d.converge(timeout):
                raise StepFailed(f"applied indexes did not converge within {timeout:g} s")
            return "every running manager applied the same index"
        tests: dict[str, Callable[[], Any]] = {
            "leader": lambda: d.leader(),
            "no_leader": lambda: d.leader() is None,
            "leader_in": lambda: d.leader() in [self.node(n) for n in step.get("nodes")],
            "term_above": lambda: d.max_term() > step.get("term"),
            "tasks_running": lambda: d.tasks_running(),
            "voters": lambda: set(map(self.node, step.get("nodes"))) <= set(d.voters()),
            "ready": lambda: d.nodes_ready([self.node(n) for n in step.get("nodes")]),
        }
        test = tests[cond]
        start = d.now()
        while True:
            got = test()
            if got:
                waited = d.now() - start
                leader = d.leader() if cond in ("leader", "leader_in") else None
                if cond == "voters":
                    n = len(d.voters())
                    return f"voters after {waited:.2f} s: {n}, quorum {n // 2 + 1} of {n}"
                return f"{cond} after {waited:.2f} s" + (f": {leader}" if leader else "")
            if d.now() - start > timeout:
                raise StepFailed(f"waited {timeout:g} s for {cond}: it never came")
            d.poll()

    def quorum_table(self, step: Step) -> str:
        """For each cluster size, kill managers one at a time until writes stop."""
        sizes = step.get("sizes", list(range(1, 10)))
        real = set(step.get("real", [])) if self.d.mode == "real" else set()
        seed = self.run.seed or 1
        for n in sizes:
            mode = "real" if n in real else "simulated"
            measured = _measure_tolerance(self.run.scenario.cluster, n, mode, seed)
            row = {
                "managers": n,
                "quorum": n // 2 + 1,
                "expected_tolerance": (n - 1) // 2,
                "measured_tolerance": measured,
                "mode": mode,
            }
            self.run.quorum_rows.append(row)
            self.progress(
                f"[{self.run.scenario.name}]     {n} managers ({mode}): quorum {row['quorum']}, "
                f"writes survived {measured} failures"
            )
        return f"{len(sizes)} cluster sizes measured"


def _measure_tolerance(base: ClusterSpec, n: int, mode: str, seed: int) -> int:
    """Kill followers (then the leader) one by one; how many failures still allow a write."""
    spec = ClusterSpec(n, base.election_timeout_ms, base.heartbeat_ms, base.request_timeout_ms)
    if mode == "real":
        d: Any = RealDriver(spec, Path(tempfile.mkdtemp(prefix="swarmraft-qt-")) / "c")
    else:
        from scenarios.simdriver import SimDriver

        d = SimDriver(spec, seed + n)
    try:
        d.start()
        killed = 0
        settle = 4 * spec.election_timeout_ms / 1000
        while True:
            if d.write(0, f"probe-{killed}", "config", None, None).outcome != "ok":
                return killed - 1
            if killed == n:
                return killed  # unreachable in practice: a write needs a live manager
            leader = d.leader()
            victims = [x for x in d.running() if x != leader] or d.running()
            d.kill(victims[0])
            killed += 1
            start = d.now()
            while d.leader() is None and d.now() - start < settle:
                d.poll()
    finally:
        d.stop()
        if mode == "real":
            shutil.rmtree(d.dir.parent, ignore_errors=True)
