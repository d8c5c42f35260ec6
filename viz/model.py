"""From trace lines to a model of what happened: pure data, no drawing.

`viz` reads only traces, never live nodes (docs/traces.md).  A trace
directory holds JSON lines (``*.jsonl``, searched recursively): each node's
``DIR/<node>/trace.jsonl`` and the supervisor's and scenario runner's own
files (``faults.jsonl``, ``client.jsonl``, ...).  Every line has ``t`` (Unix
seconds), ``node`` and ``type``.  `load` merges them all in time order and
`build` turns them into a `TraceModel`; `read_model(dir)` does both.

This module is the way in: it reads the directory, and every name of the
model can be imported from it.  The rest lives in four modules, by concern:

* `viz.model_data` -- what the model *is*: the frozen records (roles,
  elections, votes, faults, quorum, client operations, logs) and
  `TraceModel` with its queries and headline sentences;
* `viz.model_build` -- how lines *become* the model: which lines are read
  and what they mean, one pass over them, and `build`;
* `viz.model_membership` -- the cluster's configurations over time (who
  voted, who only learned), read from the leader's ``membership`` lines
  first, and the learner and not-a-member stretches of each lane;
* `viz.model_quorum` -- what is derived from the whole trace at once: when
  each fault was in force, and how many voters could reach each other.

Conventions of the model
------------------------

* Times are seconds from the first line of the whole directory.
* A node is *down* from a ``kill`` fault (or a ``stop`` line) until the next
  ``restart`` fault or ``start`` line; it comes back as a follower.  It is
  *paused* between ``pause`` and ``unpause``; it keeps its role underneath.
  It is *locked* from a ``locked`` line (autolock: alive, out of Raft) until
  its next ``start`` line, and counts as down for the quorum meanwhile.
* Role intervals are split where the node's term changes, so every interval
  has one term.  A node's term is the highest term its own lines showed
  (role, real election, granted real vote, leader, start, check_quorum,
  membership, commit): terms never go back.
* The configuration at an instant is the last one the leader of the moment
  traced in a ``membership`` line; another node's line counts only for a
  change no leader line shows (a follower may trace it a few ms early).
  Before the first one: its voters plus every node seen earlier that did
  not join later (rules in `viz.model_membership`).
* A follower is shown as a *learner* while the configuration lists it as
  one, and as *not a member* while it lists it nowhere (before it joined,
  after it was removed).  Without ``membership`` lines nobody is either.
* Reachable managers at an instant: the most voters that are up, not paused
  and all on the same side of the partition.  Quorum is lost while that is
  below a majority of the voters (nodes a partition names in no group count
  as alone).  Voters come from the configuration, else every node seen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from viz.model_build import NODE_TYPES, build
from viz.model_data import (
    DOWN,
    LEARNER,
    LOCKED,
    OUTSIDE,
    PAUSED,
    ROLES,
    ClientOp,
    Config,
    Election,
    Fault,
    FaultInterval,
    LogMatrix,
    LogRow,
    LogSnapshot,
    Quorum,
    RoleInterval,
    Steps,
    TraceError,
    TraceModel,
    Vote,
)

__all__ = [
    "DOWN",
    "LEARNER",
    "LOCKED",
    "NODE_TYPES",
    "OUTSIDE",
    "PAUSED",
    "ROLES",
    "ClientOp",
    "Config",
    "Election",
    "Fault",
    "FaultInterval",
    "LogMatrix",
    "LogRow",
    "LogSnapshot",
    "Quorum",
    "RoleInterval",
    "Steps",
    "TraceError",
    "TraceModel",
    "Vote",
    "build",
    "load",
    "read_model",
]


def load(directory: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """All trace lines under ``directory`` in time order, and warnings.

    A torn last line (a process killed mid-write) is skipped with a warning,
    as is any other line that is not a JSON object with ``t`` and ``type``.
    Lines with equal ``t`` keep their order within their file."""
    root = Path(directory)
    if not root.is_dir():
        raise TraceError(f"no trace directory at {root}")
    records: list[tuple[float, int, int, dict[str, Any]]] = []
    warnings: list[str] = []
    files = sorted(root.rglob("*.jsonl"))
    for fi, path in enumerate(files):
        default_node = path.parent.name if path.name == "trace.jsonl" else None
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        while lines and not lines[-1].strip():
            lines.pop()
        for li, raw in enumerate(lines):
            if not raw.strip():
                continue
            rec = _parse(raw)
            if rec is None:
                where = "torn last line" if li == len(lines) - 1 else f"bad line {li + 1}"
                warnings.append(f"{path.relative_to(root)}: {where} skipped")
                continue
            if "node" not in rec and default_node is not None:
                rec["node"] = default_node
            records.append((float(rec["t"]), fi, li, rec))
    if not files:
        raise TraceError(f"no *.jsonl traces under {root}")
    records.sort(key=lambda r: r[:3])
    return [r[3] for r in records], warnings


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        rec = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(rec, dict) or "type" not in rec:
        return None
    try:
        rec["t"] = float(rec["t"])
    except (KeyError, TypeError, ValueError):
        return None
    return rec


def read_model(directory: str | Path, until: float | None = None) -> TraceModel:
    """`load` then `build`; the load warnings end up in ``model.warnings``.

    ``until`` (Unix seconds) leaves out later lines: a scenario's story ends
    when its last step does, not when its cluster is shut down afterwards.
    """
    records, warnings = load(directory)
    if until is not None:
        records = [r for r in records if float(r["t"]) <= until]
    if not records:
        raise TraceError(f"no trace lines under {directory}")
    model = build(records)
    model.warnings[:0] = warnings
    return model
