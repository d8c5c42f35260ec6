"""Commit throughput and latency of the Raft node over real TCP (not a test).

Starts N ``python -m raft.kv`` processes on this machine (fsync on unless
``--no-fsync``), waits for a leader, then for each concurrency level keeps
that many proposals outstanding against the leader's control endpoint for
``--duration`` seconds.  A proposal's latency runs from sending it to the
leader until the leader has applied it (committed on a majority, fsynced on
each of them).  Prints one line per level, or one JSON object with --json::

    python bench/raft_bench.py --clients 1 64 --duration 5

Every process it starts is killed (by PID) before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cluster.client.wait import async_attempts
from raft.kv import ControlClient, ControlError, encode_set


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Cluster:
    """N node processes in ``root``; `close` kills them all by PID."""

    def __init__(self, root: Path, n: int, fsync: bool, tls: bool = False) -> None:
        self.root = root
        ids = [f"n{i}" for i in range(1, n + 1)]
        self.peers = {i: ["127.0.0.1", p] for i, p in zip(ids, _free_ports(n), strict=True)}
        self.fsync = fsync
        self.tls = tls
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.control: dict[str, int] = {}

    async def start(self, timeout: float = 15.0) -> None:
        ca = None
        if self.tls:  # one CA, one certificate per node, as `up` issues them
            from cluster.security.pki import MANAGER_ROLE, CertificateAuthority

            ca = CertificateAuthority.create("bench")
        for node_id in self.peers:
            d = self.root / node_id
            d.mkdir(parents=True)
            cfg = {"id": node_id, "cluster_id": "bench", "peers": self.peers, "data_dir": str(d),
                   "fsync": self.fsync, "trace_path": str(d / "trace.jsonl"),
                   "control_port": 0, "log_level": "WARNING"}  # fmt: skip
            if ca is not None:
                files = ca.issue_files(d / "keys", node_id, MANAGER_ROLE, "bench")
                cfg["tls"] = {"ca": str(files.ca), "cert": str(files.cert), "key": str(files.key)}
            (d / "config.json").write_text(json.dumps(cfg))
            with (d / "stderr.log").open("wb") as log:
                self.procs[node_id] = subprocess.Popen(
                    [sys.executable, "-m", "raft.kv", "--config", str(d / "config.json")],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                )  # fmt: skip
        for node_id, proc in self.procs.items():
            info_path = self.root / node_id / "node.json"
            async for _ in async_attempts(timeout, every=0.02):
                if info_path.exists() or proc.poll() is not None:
                    break
            if not info_path.exists():
                raise RuntimeError(f"{node_id} did not start")
            self.control[node_id] = json.loads(info_path.read_text())["control_port"]

    async def leader(self, timeout: float = 10.0) -> str:
        async for _ in async_attempts(timeout, every=0.05):
            for node_id, port in self.control.items():
                async with ControlClient("127.0.0.1", port) as c:
                    if (await c.call("status", timeout=1))["role"] == "leader":
                        return node_id
        raise TimeoutError("no leader")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(10)


def _pct(sorted_ms: list[float], q: float) -> float:
    if not sorted_ms:
        return float("nan")
    return sorted_ms[min(len(sorted_ms) - 1, int(q * len(sorted_ms)))]


async def run_level(port: int, clients: int, size: int, duration: float) -> dict[str, Any]:
    """``clients`` proposals outstanding on one pipelined connection for ``duration`` s."""
    value = os.urandom(size)
    latencies: list[float] = []
    errors = 0
    async with ControlClient("127.0.0.1", port) as conn:

        async def worker(w: int, until: float, record: bool) -> None:
            nonlocal errors
            i = 0
            while time.perf_counter() < until:
                data = encode_set(f"c{w}-{i}", value)
                i += 1
                t0 = time.perf_counter()
                try:
                    await conn.call("propose", timeout=10, data=data)
                except (ControlError, TimeoutError):
                    errors += 1
                    continue
                if record:
                    latencies.append((time.perf_counter() - t0) * 1000)

        warm = time.perf_counter() + min(1.0, duration / 4)
        async with asyncio.TaskGroup() as tg:
            for w in range(clients):
                tg.create_task(worker(w, warm, False))
        start = time.perf_counter()
        async with asyncio.TaskGroup() as tg:
            for w in range(clients):
                tg.create_task(worker(w, start + duration, True))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "clients": clients,
        "size": size,
        "ops": len(latencies),
        "ops_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(_pct(latencies, 0.50), 3),
        "p99_ms": round(_pct(latencies, 0.99), 3),
        "mean_ms": round(statistics.fmean(latencies), 3) if latencies else None,
        "errors": errors,
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="raft-bench-", dir=args.dir) as tmp:
        cluster = Cluster(Path(tmp), args.nodes, fsync=not args.no_fsync, tls=args.tls)
        try:
            await cluster.start()
            leader = await cluster.leader()
            port = cluster.control[leader]
            levels = [await run_level(port, c, args.size, args.duration) for c in args.clients]
        finally:
            cluster.close()
    return {
        "nodes": args.nodes,
        "fsync": not args.no_fsync,
        "tls": args.tls,
        "leader": leader,
        "levels": levels,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 64])
    p.add_argument("--size", type=int, default=16, help="value size in bytes")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per level")
    p.add_argument("--no-fsync", action="store_true", help="not durable: a demo mode")
    p.add_argument("--dir", default=None, help="where the data directories go (tmp)")
    p.add_argument("--tls", action="store_true", help="mutual TLS between the nodes")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    result = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['nodes']} nodes, fsync {'on' if result['fsync'] else 'off'}, "
              f"{'mutual TLS' if result['tls'] else 'plain TCP'}, "
              f"{args.size}-byte values, {args.duration}s per level")  # fmt: skip
        for r in result["levels"]:
            print(f"  {r['clients']:>3} outstanding: {r['ops_per_s']:>9.1f} ops/s  "
                  f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  "
                  f"({r['ops']} ops, {r['errors']} errors)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
