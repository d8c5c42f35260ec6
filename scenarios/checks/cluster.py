"""Checks that ask the cluster itself (while it still runs), read the managers'
data directories (after they stopped), or check the client history."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path
from typing import Any

from scenarios import linearizability as lin
from scenarios.checks.run import CheckResult, Run
from scenarios.steps import NotApplicable
from scenarios.steps import expects as ex

__all__ = [
    "history_linearizable",
    "new_leader_has_all_committed",
    "no_acknowledged_write_lost",
    "no_new_tasks_on",
    "secret_plaintext_absent",
    "tasks_off_node",
    "tasks_placed_exactly_once",
    "writes_readable",
]


def new_leader_has_all_committed(run: Run, e: ex.NewLeaderHasAllCommitted) -> CheckResult:
    acked = run.acked()
    if not acked:
        return CheckResult(e.label(), False, "no write was acknowledged: there is nothing to check")
    leader, present = run.driver.present_via_leader(acked)
    if leader is None or present is None:
        return CheckResult(e.label(), False, f"could not read through the leader ({leader})")
    missing = [k for k, ok in present.items() if not ok]
    detail = (
        f"{len(acked) - len(missing)} of {len(acked)} acknowledged writes readable via {leader}"
    )
    if missing:
        detail += f"; missing {', '.join(missing[:5])}"
    return CheckResult(e.label(), not missing and bool(acked), detail)


def writes_readable(run: Run, e: ex.WritesReadable) -> CheckResult:
    acked = [op for op in run.ops_in(e.steps) if op.outcome == "ok"]
    if not acked:
        return CheckResult(e.label(), False, "no write of those steps was acknowledged")
    leader, present = run.driver.present_via_leader(acked)
    if leader is None or present is None:
        return CheckResult(e.label(), False, f"could not read through the leader ({leader})")
    found = [k for k, ok in present.items() if ok]
    detail = f"{len(found)} of {len(acked)} acknowledged writes readable via {leader}"
    ok = len(found) == len(acked) if e.readable else not found
    return CheckResult(e.label(), ok, detail)


def no_acknowledged_write_lost(run: Run, e: ex.NoAcknowledgedWriteLost) -> CheckResult:
    acked = run.acked()
    converged = run.driver.converge(15.0)
    lost: list[str] = []
    silent: list[str] = []
    checked = 0
    for node in run.driver.running():
        present = run.driver.present_on(node, acked)
        if present is None:
            silent.append(node)
            continue
        checked += 1
        lost += [f"{k}@{node}" for k, ok in present.items() if not ok]
    if not acked:
        return CheckResult(e.label(), False, "no write was acknowledged: there is nothing to check")
    detail = f"{len(acked)} acknowledged writes checked on {checked} managers (local reads)"
    if not converged:
        detail += "; applied indexes did not converge within 15 s"
    if silent:
        detail += f"; no answer from {', '.join(silent)}"
    if lost:
        detail += f"; missing: {', '.join(lost[:6])}"
    return CheckResult(e.label(), not lost and not silent and checked > 0 and bool(acked), detail)


def _node_ids(run: Run) -> dict[str, str]:
    return {n["Description"]["Hostname"]: n["ID"] for n in run.driver.nodes()}


def _running_tasks(run: Run) -> list[dict[str, Any]]:
    return [t for t in run.driver.tasks() if t.get("DesiredState") == "running"]


def tasks_placed_exactly_once(run: Run, e: ex.TasksPlacedExactlyOnce) -> CheckResult:
    tasks = _running_tasks(run)
    slots: dict[tuple[str, Any], int] = {}
    for t in tasks:
        key = (t["ServiceID"], t.get("Slot") or t.get("NodeID"))
        slots[key] = slots.get(key, 0) + 1
    twice = [k for k, n in slots.items() if n > 1]
    unplaced = [t["ID"] for t in tasks if not t.get("NodeID")]
    detail = f"{len(tasks)} tasks desired running in {len(slots)} slots"
    if twice:
        detail += f"; slot {twice[0][1]} has {slots[twice[0]]} tasks"
    if unplaced:
        detail += f"; {len(unplaced)} not placed on a node"
    return CheckResult(e.label(), bool(tasks) and not twice and not unplaced, detail)


def tasks_off_node(run: Run, e: ex.TasksOffNode) -> CheckResult:
    node = run.node(e.node)
    node_id = _node_ids(run).get(node)
    tasks = _running_tasks(run)
    on = [t for t in tasks if t.get("NodeID") == node_id]
    elsewhere = {}
    for t in tasks:
        elsewhere[t.get("NodeID")] = elsewhere.get(t.get("NodeID"), 0) + 1
    return CheckResult(
        e.label(),
        not on and bool(tasks),
        f"{len(on)} of {len(tasks)} running tasks on {node}",
    )


def _created(task: dict[str, Any]) -> float:
    raw = task.get("CreatedAt", "")
    head, _, frac = raw.rstrip("Z").partition(".")
    dt = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC)
    return dt.timestamp() + (float("0." + frac) if frac else 0.0)


def no_new_tasks_on(run: Run, e: ex.NoNewTasksOn) -> CheckResult:
    node = run.node(e.node)
    node_id = _node_ids(run).get(node)
    since = run.step(e.after_step).end
    new = [t for t in run.driver.tasks() if _created(t) > since]
    on = [t for t in new if t.get("NodeID") == node_id]
    return CheckResult(
        e.label(),
        bool(new) and not on,
        f"{len(new)} tasks created after step {e.after_step}, {len(on)} of them on {node}",
    )


# ============================================================ on-disk checks


def _count_hits(dirs: dict[str, Path], needles: list[bytes]) -> tuple[int, int, list[str]]:
    files = hits = 0
    where: list[str] = []
    for name, d in dirs.items():
        for path in d.rglob("*"):
            if not path.is_file():
                continue
            files += 1
            data = path.read_bytes()
            for needle in needles:
                if needle in data:
                    hits += 1
                    where.append(f"{name}/{path.relative_to(d)}")
    return files, hits, where


def secret_plaintext_absent(run: Run, e: ex.SecretPlaintextAbsent) -> CheckResult:
    if run.mode != "real":
        raise NotApplicable("the simulator keeps no data directories")
    secret = e.secret
    plain = run.named_data.get(secret)
    if plain is None:
        return CheckResult(e.label(), False, f"no create_secret step made {secret!r}")
    needles = [plain.encode(), base64.b64encode(plain.encode())]
    files, hits, where = _count_hits(run.data_dirs, needles)
    detail = f"secret {secret!r}: {hits} hits (plaintext or base64) in {files} files"
    ok = hits == 0 and files > 0
    if where:
        detail += f", e.g. {where[0]}"
    config = e.config
    if config:
        cplain = run.named_data.get(config, "")
        _, chits, _cwhere = _count_hits(
            run.data_dirs, [cplain.encode(), base64.b64encode(cplain.encode())]
        )
        run.metrics["config_hits"] = chits
        detail += f"; config {config!r} found {chits} times (configs are stored in the clear)"
        ok = ok and chits > 0
    run.metrics["secret_hits"] = hits
    run.metrics["files_searched"] = files
    return CheckResult(e.label(), ok, detail)


# ============================================================ linearizability


def history_linearizable(run: Run, e: ex.HistoryLinearizable) -> CheckResult:
    if not run.ops:
        return CheckResult(e.label(), False, "no write was made: there is no history to check")
    if run.final_read is None:
        return CheckResult(e.label(), False, "no final read through the leader was possible")
    ops = []
    for i, op in enumerate(run.ops):
        status = "ok" if op.outcome == "ok" else "info"  # a 503 may still commit later
        ops.append(lin.Operation(i, f"s{op.step}", "write", op.key, op.value, None,
                                 op.start, op.end, status))  # fmt: skip
    start, end, seen = run.final_read
    values = {op.key: op.value for op in run.ops}
    for j, (key, visible) in enumerate(seen.items(), len(ops)):
        ops.append(lin.Operation(j, "reader", "read", key, None,
                                 values[key] if visible else None, start, end, "ok"))  # fmt: skip
    verdict = lin.check(ops, lin.RegisterModel())
    return CheckResult(e.label(), verdict.ok is True, verdict.explain().splitlines()[0][:300])
