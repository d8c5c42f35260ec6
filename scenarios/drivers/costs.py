"""Measuring what a cluster size costs, for the ``manager_count`` action.

On one fresh cluster of real managers: the latency of acknowledged writes
(each a Raft entry that a majority must fsync before the leader answers),
first from one client, one write after the other -- with the CPU time all
the managers together spent meanwhile, per write: every manager receives,
stores and applies every entry -- then from several clients at once; then
the time from killing the leader to the first moment a surviving manager
reports itself leader, over a few rounds (the killed leader is restarted,
and the cluster settles, before the next round).

Only real processes measure this: the simulator charges nothing for a disk
write and draws each message's delay from its own model, so its curve would
show that model, not what a manager costs.
"""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any, Protocol

from cluster.client.wait import attempts

__all__ = ["measure_costs"]


class _Cluster(Protocol):
    """What the measurement needs of `scenarios.drivers.real.RealDriver`."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def leader(self) -> str | None: ...
    def kill(self, node: str) -> None: ...
    def restart(self, node: str) -> None: ...
    def converge(self, timeout: float) -> bool: ...
    def cpu_seconds(self) -> float: ...
    def write(
        self, step: int, key: str, kind: str, via: str | None, timeout: float | None
    ) -> Any: ...


def _timed_write(d: _Cluster, key: str, via: str) -> float | None:
    """Milliseconds until the write was acknowledged; None if it was not."""
    op = d.write(0, key, "config", via, 10.0)
    return (op.end - op.start) * 1000 if op.outcome == "ok" else None


def _leader(d: _Cluster, timeout: float) -> str:
    for _ in attempts(timeout, every=0.02):
        leader = d.leader()
        if leader is not None:
            return leader
    raise RuntimeError(f"no leader within {timeout:g} s")


def measure_costs(d: _Cluster, n: int, settings: dict[str, int]) -> dict[str, Any]:
    """Start ``d`` (``n`` managers), measure, stop it.  ``settings``: ``writes``,
    ``clients``, ``per_client``, ``rounds`` (see `scenarios.steps.measures`)."""
    seq: list[float] = []
    conc: list[float] = []
    elections: list[float] = []
    failed = 0
    try:
        d.start()
        leader = _leader(d, 15.0)
        _timed_write(d, f"mc{n}-warm", leader)  # first connection, first entry
        cpu0 = d.cpu_seconds()
        for i in range(settings["writes"]):
            ms = _timed_write(d, f"mc{n}-s{i}", leader)
            if ms is None:
                failed += 1
            else:
                seq.append(ms)
        cpu = (d.cpu_seconds() - cpu0) * 1000 / settings["writes"]
        keys = [
            f"mc{n}-c{c}-{i}"
            for c in range(settings["clients"])
            for i in range(settings["per_client"])
        ]
        per = settings["per_client"]

        def client(c: int) -> list[float | None]:
            return [_timed_write(d, k, leader) for k in keys[c * per : (c + 1) * per]]

        with concurrent.futures.ThreadPoolExecutor(max_workers=settings["clients"]) as pool:
            for result in pool.map(client, range(settings["clients"])):
                conc += [ms for ms in result if ms is not None]
                failed += sum(ms is None for ms in result)
        if n > 1:
            for _ in range(settings["rounds"]):
                old = _leader(d, 15.0)
                t0 = time.time()
                d.kill(old)
                for _ in attempts(15.0, every=0.01):
                    new = d.leader()
                    if new is not None and new != old:
                        elections.append(time.time() - t0)
                        break
                else:
                    raise RuntimeError(f"no new leader within 15 s of killing {old}")
                d.restart(old)
                d.converge(10.0)
    finally:
        d.stop()
    return {"seq_ms": seq, "conc_ms": conc, "elections_s": elections, "failed": failed,
            "cpu_ms_per_write": cpu}  # fmt: skip
