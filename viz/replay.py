"""A replay page for a trace directory: the run played back in a browser.

``python -m viz replay DIR [--out FILE]`` (and every scenario run) writes one
self-contained HTML file (`viz.web.page_html`) that shows the nodes, their
roles and terms, the votes flying, the logs and the quorum at any instant of
the run, with a time slider in seconds from its start.

`replay_data` turns a `TraceModel` into the plain data the page's script
reads; it is pure and tested without a browser.  Everything shown comes from
the traces: a log row is the node's log as it last reported it (the row says
how old that report is), votes are the requests and answers the voters
traced, and appends and heartbeats are the per-link counts the senders
summarised every ~100 ms (``message`` lines).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viz.model import TraceModel, load, read_model
from viz.web import page_html

__all__ = ["Caption", "replay_data", "write_replay"]


@dataclass(frozen=True, slots=True)
class Caption:
    """One step of a run, shown under the title while it is the latest:
    ``t`` in seconds from the start of the trace."""

    t: float
    text: str
    cli: str = ""
    docker: str = ""


def _steps(times: Sequence[float], values: Sequence[Any]) -> list[list[Any]]:
    return [[round(t, 4), v] for t, v in zip(times, values, strict=True)]


def link_samples(records: Iterable[dict[str, Any]], t0: float) -> list[list[Any]]:
    """``[t, from, to, kind, count, window]`` of every per-link ``message`` summary
    (appends, heartbeats and their answers; times from ``t0``)."""
    out = []
    for r in records:
        if r.get("type") != "message" or r.get("kind") not in _LINK_KINDS:
            continue
        out.append(
            [round(float(r["t"]) - t0, 4), r.get("from"), r.get("to"), r.get("kind"),
             int(r.get("count", 1)), float(r.get("window", 0.1)) or 0.1]
        )  # fmt: skip
    return out


_LINK_KINDS = frozenset({"append", "heartbeat", "append_reply"})


def replay_data(
    model: TraceModel,
    captions: Iterable[Caption] = (),
    links: Sequence[Sequence[Any]] = (),
) -> dict[str, Any]:
    """What the page needs to draw any instant of the run (times from the start);
    ``links`` from `link_samples`."""
    nodes = list(model.nodes)
    roles = {
        n: [
            {"start": round(iv.start, 4), "end": round(iv.end, 4), "role": iv.role, "term": iv.term}
            for iv in model.roles.get(n, [])
        ]
        for n in nodes
    }
    partitions = []
    for f in model.fault_intervals:
        if f.kind != "partition":
            continue
        groups = [list(g) for g in f.groups]
        if not groups:  # isolate: the node alone, the others together
            groups = [list(f.nodes), [n for n in nodes if n not in f.nodes]]
        partitions.append({"start": round(f.start, 4), "end": round(f.end, 4), "groups": groups})
    q = model.quorum
    quorum = [
        [round(t, 4), [voters, needed, reachable]]
        for t, reachable, voters, needed in zip(
            q.times, q.reachable, q.voters, q.needed, strict=True
        )
    ]
    events = [{"t": round(f.t, 4), "text": f.label} for f in model.faults]
    events += [
        {"t": round(e.decided or e.t, 4), "text": f"{e.node} elected leader of term {e.term}"}
        for e in model.won()
    ]
    events.sort(key=lambda e: e["t"])
    return {
        "end": round(model.end, 4),
        "nodes": nodes,
        "roles": roles,
        "commit": {n: _steps(s.times, s.values) for n, s in model.commit.items()},
        "applied": {n: _steps(s.times, s.values) for n, s in model.applied.items()},
        "logs": {
            n: [[round(s.t, 4), [list(e) for e in s.entries], s.commit] for s in snaps]
            for n, snaps in model.logs.items()
        },
        "votes": [
            {
                "t": round(v.t, 4),
                "voter": v.voter,
                "candidate": v.candidate,
                "term": v.term,
                "pre_vote": v.pre_vote,
                "granted": v.granted,
                "reason": v.reason,
            }
            for v in model.votes
        ],
        "partitions": partitions,
        "quorum": quorum,
        "events": events,
        "steps": [
            {"t": round(c.t, 4), "text": c.text, "cli": c.cli, "docker": c.docker}
            for c in sorted(captions, key=lambda c: c.t)
        ],
        "links": [list(x) for x in links],
    }


def write_replay(
    trace_dir: Path, out: Path, title: str = "", captions: Iterable[Caption] = ()
) -> Path:
    """Read ``trace_dir``'s traces and write the replay page to ``out``."""
    model = read_model(trace_dir)
    records, _ = load(trace_dir)
    data = replay_data(model, captions, link_samples(records, model.t0))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page_html("replay", title or f"replay of {trace_dir.name}", data))
    return out
