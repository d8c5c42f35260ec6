"""Real node processes (``python -m raft.kv``) for integration tests.

Each node gets a JSON config with a free Raft port and control port 0; once
serving it writes ``node.json`` (pid, ports), which is how we find its
control endpoint.  `ProcCluster.cleanup` SIGKILLs every process it started,
by PID, so nothing outlives a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from local_nodes import free_ports

from raft.kv import ControlClient, ControlError

CLUSTER = "node-proc-test"


class ProcCluster:
    def __init__(self, root: Path, n: int = 3, *, fsync: bool = True, tick: float = 0.05) -> None:
        self.root = root
        ids = [f"n{i}" for i in range(1, n + 1)]
        self.peers = {i: ["127.0.0.1", p] for i, p in zip(ids, free_ports(n), strict=True)}
        self.fsync, self.tick = fsync, tick
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.clients: dict[str, ControlClient] = {}

    def _config(self, node_id: str) -> Path:
        d = self.root / node_id
        d.mkdir(parents=True, exist_ok=True)
        cfg = {
            "id": node_id,
            "cluster_id": CLUSTER,
            "peers": self.peers,
            "data_dir": str(d),
            "tick_interval": self.tick,
            "fsync": self.fsync,
            "trace_path": str(d / "trace.jsonl"),
            "control_port": 0,
        }
        path = d / "config.json"
        path.write_text(json.dumps(cfg))
        return path

    async def start(self, node_id: str, timeout: float = 10.0) -> None:
        cfg = self._config(node_id)
        (self.root / node_id / "node.json").unlink(missing_ok=True)
        with (self.root / node_id / "stderr.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "raft.kv", "--config", str(cfg)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.procs[node_id] = proc
        info = await self._wait_info(node_id, proc, timeout)
        client = ControlClient("127.0.0.1", info["control_port"])
        await client.connect()
        self.clients[node_id] = client

    async def _wait_info(
        self, node_id: str, proc: subprocess.Popen[bytes], timeout: float
    ) -> dict[str, Any]:
        path = self.root / node_id / "node.json"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if proc.poll() is not None:
                raise RuntimeError(f"{node_id} exited with {proc.returncode}: {self.log(node_id)}")
            if path.exists():
                info = json.loads(path.read_text())
                if info["pid"] == proc.pid:
                    return info
            await asyncio.sleep(0.02)
        raise TimeoutError(f"{node_id} did not come up in {timeout}s")

    def log(self, node_id: str) -> str:
        return (self.root / node_id / "stderr.log").read_text()[-3000:]

    async def call(self, node_id: str, op: str, timeout: float = 5.0, **args: Any) -> Any:
        client = self.clients.get(node_id)
        if client is None:  # killed while a caller still held its name
            raise ConnectionError(f"{node_id} is not running")
        return await client.call(op, timeout=timeout, **args)

    async def kill(self, node_id: str, sig: int = signal.SIGKILL, timeout: float = 10.0) -> int:
        """Send ``sig`` to the node's PID and reap it (bounded); returns its exit status."""
        client = self.clients.pop(node_id, None)
        if client is not None:
            await client.close()
        proc = self.procs.pop(node_id)
        if proc.poll() is None:
            os.kill(proc.pid, sig)
        end = time.monotonic() + timeout
        while proc.poll() is None:
            if time.monotonic() > end:
                proc.kill()
                proc.wait(5)
                raise TimeoutError(f"{node_id} did not exit within {timeout}s of signal {sig}")
            await asyncio.sleep(0.02)
        return proc.returncode

    async def statuses(self) -> dict[str, dict[str, Any]]:
        out = {}
        for node_id in list(self.clients):
            with contextlib.suppress(ConnectionError, TimeoutError, ControlError):
                out[node_id] = await self.call(node_id, "status", timeout=1.0)
        return out

    async def wait_leader(self, timeout: float = 10.0, exclude: str | None = None) -> str:
        """The leader all live nodes agree on (other than ``exclude``)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            sts = await self.statuses()
            leaders = {s["id"] for s in sts.values() if s["role"] == "leader"}
            if len(leaders) == 1:
                (leader,) = leaders
                if leader != exclude and all(s["leader"] == leader for s in sts.values()):
                    return leader
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no leader within {timeout}s")

    async def cleanup(self) -> None:
        for client in self.clients.values():
            await client.close()
        self.clients.clear()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs.values():
            proc.wait(10)
        self.procs.clear()
