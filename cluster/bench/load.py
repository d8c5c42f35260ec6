"""One measured level of load: the load generator as a process, and the CPU
every process spent on it.

Throughput drifts on a shared 2-core machine; CPU time per write varies far
less, and it is the budget that sets the ceiling (2 cores / CPU ms per write
= the most writes per second the machine can give).  So every level reports
``cpu_ms_per_write``: for each server process and for the load generator, the
CPU seconds it used while the level was measured, divided by the writes
acknowledged in that window.  Server CPU is read from ``/proc/PID/stat``
(utime + stime) when the generator's warm-up ends and when it exits; the
generator measures its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from cluster.local.layout import ClusterError

__all__ = ["cpu_seconds", "load_level"]

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (None: it is gone)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # stat fields 14 and 15


async def load_level(
    urls: Sequence[str],
    clients: int,
    *,
    write: str = "config-update",
    size: int = 16,
    duration: float = 5.0,
    warmup: float = 1.0,
    max_ops: int = 500_000,
    pids: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Run `cluster.bench.loadgen` once; its result plus ``cpu_ms_per_write``."""
    cmd = [sys.executable, "-m", "cluster.bench.loadgen", "--clients", str(clients),
           "--size", str(size), "--duration", str(duration), "--warmup", str(warmup),
           "--max-ops", str(max_ops), "--write", write]  # fmt: skip
    for url in urls:
        cmd += ["--url", url]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL
    )
    pids = dict(pids or {})
    try:
        async with asyncio.timeout(warmup + duration + 60):
            await asyncio.sleep(warmup)
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            out, _ = await proc.communicate()
            after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        raise ClusterError(f"the load generator failed (exit {proc.returncode})")
    res: dict[str, Any] = json.loads(out)
    ops = max(1, int(res["ops"]))
    per_write: dict[str, float] = {}
    for name in pids:
        b, a = before[name], after[name]
        if a is not None and b is not None:
            per_write[name] = round((a - b) * 1000 / ops, 4)
    per_write["loadgen"] = round(res["generator_cpu"] * res["elapsed_s"] * 1000 / ops, 4)
    res["cpu_ms_per_write"] = per_write
    res["write"] = write
    return res
