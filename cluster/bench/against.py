"""``bench --against etcd``: swarmraft and etcd side by side, same machine, same load.

Absolute figures drift on a shared machine, so only ratios from one run
count: for each row (clients, write) the two systems run alternately,
`REPEATS` times each (ours first, then theirs, then theirs first, ...), and
the row reports the medians and ``ratio`` = ours / theirs writes per second.
Both get the same load generator (`cluster.bench.loadgen`); etcd gets its
put through its JSON gateway, swarmraft the create of a config or of a
service through its API, each sent to the leader.  etcd runs with as many
members as swarmraft has managers and fsyncs like it.
"""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cluster.bench.etcd import INSTALL_HINT, EtcdCluster, etcd_binary
from cluster.bench.load import load_level

__all__ = ["ROWS", "against_etcd", "ratio_rows"]

#: (clients, our write) of each row; etcd always puts.
ROWS: tuple[tuple[int, str], ...] = (
    (1, "config"),
    (64, "config"),
    (256, "config"),
    (64, "service"),
)
REPEATS = 3

Ours = Callable[[], Awaitable[tuple[list[str], Mapping[str, int]]]]


def ratio_rows(samples: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians per (clients, write) of alternating samples, and ours / theirs."""
    rows = []
    keys = sorted({(s["clients"], s["write"]) for s in samples}, key=lambda k: (k[1], k[0]))
    for clients, write in keys:
        mine = [s for s in samples if (s["clients"], s["write"]) == (clients, write)]
        ours = statistics.median(s["ours"]["ops_per_s"] for s in mine)
        theirs = statistics.median(s["theirs"]["ops_per_s"] for s in mine)
        rows.append(
            {
                "clients": clients,
                "write": write,
                "ops_per_s": round(ours, 1),
                "p50_ms": round(statistics.median(s["ours"]["p50_ms"] for s in mine), 3),
                "theirs_ops_per_s": round(theirs, 1),
                "theirs_p50_ms": round(statistics.median(s["theirs"]["p50_ms"] for s in mine), 3),
                "ratio": round(ours / theirs, 3) if theirs else None,
                "cpu_ms_per_write": _median_cpu([s["ours"] for s in mine]),
                "theirs_cpu_ms_per_write": _median_cpu([s["theirs"] for s in mine]),
            }
        )
    return rows


def _median_cpu(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    names = set().union(*(r.get("cpu_ms_per_write", {}) for r in results))
    return {
        n: round(statistics.median(r["cpu_ms_per_write"].get(n, 0.0) for r in results), 4)
        for n in sorted(names)
    }


async def against_etcd(
    ours: Ours,
    members: int,
    root: Path,
    *,
    duration: float,
    warmup: float,
    rows: Sequence[tuple[int, str]] = ROWS,
    repeats: int = REPEATS,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, Any] | None:
    """The ``against`` object of ``bench --json``; None (and one line said) without etcd.

    ``ours()`` answers the URL of swarmraft's leader and the PIDs of its managers,
    asked again before every run (a leader may change between runs).
    """
    if etcd_binary() is None:
        say(f"bench --against etcd: no etcd on PATH; {INSTALL_HINT}")
        return None
    samples = []
    with EtcdCluster(members, root / "etcd") as etcd:
        their_pids = {f"etcd{i + 1}": pid for i, pid in enumerate(etcd.pids())}
        for clients, write in rows:
            for r in range(repeats):
                order = ("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")
                got: dict[str, Any] = {}
                for who in order:
                    say(f"against etcd: {clients} clients, {write}, run {r + 1}/{repeats}: {who}")
                    if who == "ours":
                        urls, pids = await ours()
                        got[who] = await load_level(
                            urls, clients, write=write, duration=duration, warmup=warmup,
                            pids=pids,
                        )  # fmt: skip
                    else:
                        got[who] = await load_level(
                            [etcd.leader_url()], clients, write="etcd-put", duration=duration,
                            warmup=warmup, pids=their_pids,
                        )  # fmt: skip
                samples.append({"clients": clients, "write": write, **got})
        version = etcd.version
    return {"system": "etcd", "version": version, "rows": ratio_rows(samples)}
