"""Does a write cost more when the swarm is bigger?  (Not a test: a measurement.)

Starts a local cluster (``python -m cluster --dir D up --managers 3 -d``),
creates ``--services`` services through the leader's HTTP API, ``--clients``
requests at a time, and prints:

* the rate of service creates in each block of ``--block`` services (the
  last block's rate over the first's is the number to watch: 1.0 means a
  write costs the same whatever the state's size);
* at each checkpoint (0 and every ``--checkpoint`` services): how long until
  every task runs (with ``--replicas``), then each manager's idle CPU in % of
  one core, read from ``/proc/PID/stat`` over ``--idle`` seconds after
  ``--settle`` more seconds without writes (leader first), and how long
  ``GET /tasks`` (all tasks, and one service's) takes.

::

    python bench/scale_bench.py --services 2000
    python bench/scale_bench.py --services 500 --replicas 4 --checkpoint 500

Everything runs on 127.0.0.1 and the cluster is always stopped and purged
(``down --purge``) at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cluster.client.http import ApiError, Unreachable, request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cli(cdir: Path, *args: str, timeout: float = 120.0) -> str:
    """Run ``python -m cluster --dir D ARGS``; its stdout, or an error naming the command."""
    cmd = [sys.executable, "-m", "cluster", "--dir", str(cdir), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[:300]}")
    return done.stdout


def leader_of(cdir: Path, timeout: float = 30.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the leader's entry, every manager's) from ``status --json``, within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = json.loads(cli(cdir, "status", "--json"))
        managers = [n for n in status["nodes"] if n.get("pid")]
        leader = next((n for n in managers if n["name"] == status["leader"]), None)
        if leader is not None:
            leader_first = sorted(managers, key=lambda n: n["name"] != leader["name"])
            return leader, leader_first
        time.sleep(0.5)
    raise RuntimeError(f"no leader within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def idle_cpu(pids: list[int], seconds: float) -> list[float]:
    """Each process's CPU over ``seconds``, in % of one core."""
    before = [cpu_seconds(p) for p in pids]
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    return [
        round(100 * (cpu_seconds(p) - b) / elapsed, 1) for p, b in zip(pids, before, strict=True)
    ]


def timed_get(url: str) -> tuple[float, int]:
    start = time.perf_counter()
    found = request("GET", url, timeout=60.0)
    return (time.perf_counter() - start) * 1000, len(found)


def service_spec(i: int, replicas: int) -> dict[str, Any]:
    return {
        "Name": f"scale{i}",
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {"ContainerSpec": {"Image": "nginx:alpine"}},
    }


def create(api: str, i: int, replicas: int) -> None:
    """One service create; retried (bounded) on a transient 503 or a lost connection."""
    for attempt in range(5):
        try:
            request("POST", f"{api}/services/create", service_spec(i, replicas), timeout=30.0)
            return
        except ApiError as e:
            if e.status == 409 and attempt:  # our own earlier try did commit
                return
            if e.status != 503:
                raise
        except Unreachable:
            pass
        time.sleep(0.2 * (attempt + 1))
    raise RuntimeError(f"service scale{i} could not be created")


def converged(api: str, want: int, timeout: float) -> float:
    """Seconds until ``want`` tasks run (agents move each through 5 states); bounded."""
    start = time.monotonic()
    running = urllib.parse.quote(json.dumps({"desired-state": ["running"]}))
    while time.monotonic() - start < timeout:
        tasks = request("GET", f"{api}/tasks?filters={running}", timeout=60.0)
        if sum(1 for t in tasks if t["Status"]["State"] == "running") >= want:
            return time.monotonic() - start
        time.sleep(1.0)
    raise RuntimeError(f"{want} tasks were not all running within {timeout:.0f} s")


def checkpoint(
    api: str, managers: list[dict[str, Any]], a: argparse.Namespace, services: int
) -> dict:
    converge_s = converged(api, services * a.replicas, a.converge_timeout)
    time.sleep(a.settle)
    cpu = idle_cpu([m["pid"] for m in managers], a.idle)
    all_ms, tasks = timed_get(f"{api}/tasks")
    one = urllib.parse.quote(json.dumps({"service": ["scale0"]}))
    one_ms, _ = timed_get(f"{api}/tasks?filters={one}")
    return {
        "converge_s": round(converge_s, 1),
        "idle_cpu_pct": dict(zip((m["name"] for m in managers), cpu, strict=True)),
        "tasks": tasks,
        "get_tasks_ms": round(all_ms, 1),
        "get_tasks_one_service_ms": round(one_ms, 1),
    }


def run(cdir: Path, a: argparse.Namespace) -> dict[str, Any]:
    cli(cdir, "up", "--managers", "3", "-d")
    leader, managers = leader_of(cdir)
    api = leader["api_url"]
    out: dict[str, Any] = {"leader": leader["name"], "blocks": [], "checkpoints": {}}
    out["checkpoints"][0] = checkpoint(api, managers, a, 0)
    print(f"0 services: {out['checkpoints'][0]}", flush=True)
    with ThreadPoolExecutor(a.clients) as pool:
        for start in range(0, a.services, a.block):
            ids = range(start, min(start + a.block, a.services))
            began = time.perf_counter()
            list(pool.map(lambda i: create(api, i, a.replicas), ids))
            rate = len(ids) / (time.perf_counter() - began)
            out["blocks"].append({"from": start, "to": ids[-1] + 1, "ops_per_s": round(rate, 1)})
            print(f"services {start}-{ids[-1] + 1}: {rate:.0f} creates/s", flush=True)
            if (ids[-1] + 1) % a.checkpoint == 0 or ids[-1] + 1 == a.services:
                point = checkpoint(api, managers, a, ids[-1] + 1)
                out["checkpoints"][ids[-1] + 1] = point
                print(f"{ids[-1] + 1} services: {point}", flush=True)
    rates = [b["ops_per_s"] for b in out["blocks"]]
    out["last_over_first"] = round(rates[-1] / rates[0], 2) if rates else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--services", type=int, default=2000)
    ap.add_argument("--replicas", type=int, default=0)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--block", type=int, default=500, help="services per measured block")
    ap.add_argument("--checkpoint", type=int, default=1000, help="idle CPU every N services")
    ap.add_argument("--settle", type=float, default=3.0, help="seconds without writes first")
    ap.add_argument(
        "--converge-timeout", type=float, default=300.0, help="bound on waiting for tasks to run"
    )
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle CPU measured")
    ap.add_argument("--dir", type=Path, help="cluster directory (default: a fresh temporary one)")
    ap.add_argument("--json", action="store_true", help="also print one JSON object at the end")
    a = ap.parse_args()
    cdir = a.dir or Path(tempfile.mkdtemp(prefix="scale-bench-"))
    try:
        out = run(cdir, a)
    finally:
        try:
            cli(cdir, "down", "--purge", timeout=60.0)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            print(f"warning: could not stop the cluster in {cdir}: {e}", file=sys.stderr)
    print(f"last block / first block: {out['last_over_first']}")
    if a.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
