"""Checks of the operator's answers and of where a secret's plaintext went.

`refused` / `accepted` read what a step recorded the swarm answered
(`scenarios.steps.admin`); `manager_status` reads a recorded ``node ls``;
`files_only_where_used` a recorded ``files_held`` snapshot.  Each fails when
its step recorded nothing (it did not run), so none can pass vacuously.

`secret_absent_from_api` asks every running node's API (live);
`secret_absent_everywhere` reads every file the run left (after the
processes stopped): the whole cluster directory -- each manager's and
worker's data, keys, logs and traces, the supervisor's files -- for the
plaintext and its base64 form.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from scenarios.checks.run import CheckResult, Run
from scenarios.steps import NotApplicable
from scenarios.steps import expects as ex

__all__ = [
    "accepted",
    "files_only_where_used",
    "manager_status",
    "nodes_ready",
    "refused",
    "secret_absent_everywhere",
    "secret_absent_from_api",
]


def _answer(run: Run, step: int) -> dict[str, Any] | None:
    return run.answers.get(step)


def refused(run: Run, e: ex.Refused) -> CheckResult:
    a = _answer(run, e.step)
    if a is None:
        return CheckResult(e.label(), False, f"step {e.step} recorded no answer (did it run?)")
    if a["ok"]:
        return CheckResult(e.label(), False, f"step {e.step} was accepted, not refused")
    said = f"{a['status'] or ''} {a['message']}".strip()
    ok = (e.status is None or a["status"] == e.status) and (
        e.contains is None or e.contains.lower() in a["message"].lower()
    )
    want = " ".join(x for x in (str(e.status or ""), repr(e.contains or "")) if x and x != "''")
    return CheckResult(e.label(), ok, f"refused: {said}" + ("" if ok else f" (expected {want})"))


def accepted(run: Run, e: ex.Accepted) -> CheckResult:
    a = _answer(run, e.step)
    if a is None:
        return CheckResult(e.label(), False, f"step {e.step} recorded no answer (did it run?)")
    if not a["ok"]:
        return CheckResult(e.label(), False, f"refused: {a['status'] or ''} {a['message']}")
    return CheckResult(e.label(), True, f"step {e.step} ({run.step(e.step).text}) was accepted")


def manager_status(run: Run, e: ex.ManagerStatus) -> CheckResult:
    a = _answer(run, e.at_step)
    if a is None or "table" not in a:
        return CheckResult(e.label(), False, f"step {e.at_step} recorded no node ls")
    node = run.node(e.node)
    row = next((r for r in a["table"] if r["name"] == node), None)
    if row is None:
        return CheckResult(e.label(), e.status == "absent", f"{node} is not listed")
    shown = row["manager_status"] or "none"
    ok = shown == e.status and (e.role is None or row["role"] == e.role)
    return CheckResult(
        e.label(), ok, f"{node}: MANAGER STATUS {shown or '(empty)'}, role {row['role']}"
    )


def nodes_ready(run: Run, e: ex.NodesReady) -> CheckResult:
    names = [run.node(n) for n in e.nodes]
    states = {
        n["Description"]["Hostname"]: n.get("Status", {}).get("State") for n in run.driver.nodes()
    }
    ok = all(states.get(n) == "ready" for n in names)
    return CheckResult(
        e.label(), ok, ", ".join(f"{n} {states.get(n, 'not listed')}" for n in names)
    )


def files_only_where_used(run: Run, e: ex.FilesOnlyWhereUsed) -> CheckResult:
    a = _answer(run, e.at_step)
    if a is None or "held" not in a:
        return CheckResult(e.label(), False, f"step {e.at_step} recorded no files_held")
    held, used = a["held"], a["used"]
    if not held:
        return CheckResult(e.label(), False, "no node said what it holds")
    wrong, parts, shown_somewhere, absent_somewhere = [], [], False, False
    for kind, names in (("secrets", e.secrets or []), ("configs", e.configs or [])):
        for name in names:
            holders = sorted(n for n, h in held.items() if name in h[kind])
            users = sorted(n for n, u in used.items() if name in u[kind] and n in held)
            shown_somewhere |= bool(holders)
            absent_somewhere |= len(holders) < len(held)
            parts.append(f"{name} on {', '.join(holders) or 'no node'}")
            if holders != users:
                wrong.append(f"{name}: held by {holders}, used by {users}")
    detail = "; ".join(parts) + f" (of {len(held)} nodes asked)"
    if wrong:
        detail += "; MISMATCH " + "; ".join(wrong)
    run.metrics.setdefault("files_held", {})[f"step {e.at_step}"] = {
        n: h["secrets"] + h["configs"] for n, h in sorted(held.items())
    }
    ok = not wrong and shown_somewhere and absent_somewhere
    if not (shown_somewhere and absent_somewhere):
        detail += "; nothing shows the rule (every node or no node holds them)"
    return CheckResult(e.label(), ok, detail)


def _needles(run: Run, secrets: list[str]) -> dict[str, list[bytes]]:
    """secret name -> its plaintexts (the created data, and any refused update's)
    and their base64 forms."""
    out = {}
    for name in secrets:
        plains = [v for k, v in run.named_data.items() if k in (name, f"{name}:update")]
        out[name] = [x for p in plains for x in (p.encode(), base64.b64encode(p.encode()))]
    return out


def secret_absent_from_api(run: Run, e: ex.SecretAbsentFromApi) -> CheckResult:
    needles = _needles(run, e.secrets)
    missing = [n for n, v in needles.items() if not v]
    if missing:
        return CheckResult(e.label(), False, f"no create_secret step made {', '.join(missing)}")
    answers = run.driver.api_answers()
    hits = [where for where, body in answers.items() for v in needles.values() for x in v
            if x in body]  # fmt: skip
    nodes = sorted({w.split(" ")[0] for w in answers})
    detail = f"{len(answers)} API answers of {len(nodes)} nodes searched: {len(hits)} hits"
    run.metrics["api_answers_searched"] = len(answers)
    return CheckResult(e.label(), not hits and bool(answers), detail + (f", e.g. {hits[0]}"
                       if hits else ""))  # fmt: skip


def secret_absent_everywhere(run: Run, e: ex.SecretAbsentEverywhere) -> CheckResult:
    if run.mode != "real":
        raise NotApplicable("the simulator keeps no files")
    needles = _needles(run, e.secrets)
    if not run.data_dirs:
        return CheckResult(e.label(), False, "the run recorded no data directory")
    root = Path(next(iter(run.data_dirs.values()))).parent
    files = hits = 0
    where: list[str] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        files += 1
        data = path.read_bytes()
        for v in needles.values():
            if any(x in data for x in v):
                hits += 1
                where.append(str(path.relative_to(root)))
    kinds = sorted({p.parts[0] for p in (Path(w) for w in where)})
    run.metrics["files_searched_everywhere"] = files
    detail = (f"{files} files of the whole cluster directory (managers, workers, logs, "
              f"traces) searched: {hits} hits")  # fmt: skip
    if where:
        detail += f", e.g. {where[0]} ({', '.join(kinds)})"
    return CheckResult(e.label(), hits == 0 and files > 0, detail)
