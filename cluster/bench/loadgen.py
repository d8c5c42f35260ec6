"""The benchmark's load generator: HTTP writes from a process of its own.

``python -m cluster bench`` starts this module as a separate process for each
measured level, so that generating the load does not compete with the
benchmark's bookkeeping (and so that its CPU use can be read and reported:
on a small machine the generator itself can be what limits the rate).

The default write (``--write config-update``) is a config label update,
``POST /configs/{id}/update?version=N`` with one label of ``size`` bytes: a
real replicated write (a client-session command through Raft, compare-and-set
on the version, applied by every manager's store).  Each client first creates
its own config (not measured) and then updates only that one, passing the
version the previous answer returned, so compare-and-set never refuses it.
Other writes (`WRITES`): ``config`` and ``service`` create a new object each
time (the creates whose cost must not grow with the store), and ``etcd-put``
is etcd's put, for ``bench --against etcd``.  Each client is one keep-alive
connection with one request outstanding; client ``i`` talks to
``urls[i % len(urls)]``.

Every loop is bounded twice: by time (``warmup + duration``) and by count
(``max_ops``).  The result is one JSON object on stdout (`run`'s value).

The statistics helpers (`percentile`, `summarize`) are pure and used by the
benchmark too.  This module imports nothing heavy: no matplotlib, no rich.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

__all__ = ["percentile", "run", "summarize"]

#: At most this many (time, latency) samples are returned for the figure.
MAX_SAMPLES = 20_000
#: The generator's CPU share above which it is reported as the bottleneck.
SATURATED_CPU = 0.85


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in [0, 1]) of an ascending sequence; NaN if empty."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * q // 1))  # ceil(n * q), at least 1
    return float(sorted_values[min(len(sorted_values), int(rank)) - 1])


def summarize(latencies_ms: Sequence[float], elapsed: float, clients: int, size: int) -> dict:
    """One row of the benchmark's JSON: rate and latency percentiles of a level."""
    ordered = sorted(latencies_ms)
    rate = len(ordered) / elapsed if elapsed > 0 else 0.0

    def pct(q: float) -> float | None:
        v = percentile(ordered, q)
        return None if v != v else round(v, 3)  # NaN -> null in JSON

    return {
        "clients": clients,
        "size": size,
        "ops_per_s": round(rate, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "p999_ms": pct(0.999),
    }


def thin(samples: list[list[float]], limit: int = MAX_SAMPLES) -> list[list[float]]:
    """Every k-th sample so that at most ``limit`` remain (for the figure only)."""
    if len(samples) <= limit:
        return samples
    step = -(-len(samples) // limit)
    return samples[::step]


class _Writer:
    """One client's writes of one kind: `prepare` once, then `write` in a loop.

    `write` answers (ok, error kind); `recover` re-reads what a failed write
    may have left stale (a config's version)."""

    def __init__(self, http: Any, base: str, name: str, label: str) -> None:
        self.http, self.base, self.name, self.label = http, base, name, label
        self.n = 0

    async def prepare(self) -> None:
        return None

    async def write(self) -> tuple[bool, str]:
        raise NotImplementedError

    async def recover(self) -> None:
        return None


class ConfigUpdate(_Writer):
    """A label update of this client's own config (compare-and-set on its version)."""

    async def prepare(self) -> None:
        body = {"Name": self.name, "Data": base64.b64encode(b"bench").decode()}
        async with self.http.post(f"{self.base}/configs/create", json=body) as resp:
            created = await resp.json()
            if resp.status != 201:
                raise RuntimeError(f"cannot create {self.name}: {created}")
        self.id = created["ID"]
        await self.recover()

    async def recover(self) -> None:
        async with self.http.get(f"{self.base}/configs/{self.id}") as resp:
            self.version = int((await resp.json())["Version"]["Index"])

    async def write(self) -> tuple[bool, str]:
        body = {"Name": self.name, "Labels": {"bench": self.label}}
        url = f"{self.base}/configs/{self.id}/update"
        async with self.http.post(url, params={"version": self.version}, json=body) as resp:
            doc = await resp.json(content_type=None)
            if resp.status != 200:
                return False, str(resp.status)
        self.version = int(doc["Version"]["Index"])
        return True, "200"


class ConfigCreate(_Writer):
    """A new config each write (its name checked against every config's)."""

    async def write(self) -> tuple[bool, str]:
        self.n += 1
        body = {"Name": f"{self.name}-{self.n}", "Data": base64.b64encode(b"x").decode()}
        async with self.http.post(f"{self.base}/configs/create", json=body) as resp:
            await resp.read()
            return resp.status == 201, str(resp.status)


class ServiceCreate(_Writer):
    """A new replicated service of 0 replicas each write: the orchestrator's work
    grows with the services in the store unless it reconciles only what changed."""

    async def write(self) -> tuple[bool, str]:
        self.n += 1
        body = {
            "Name": f"{self.name}-{self.n}",
            "TaskTemplate": {"ContainerSpec": {"Image": "bench:1"}},
            "Mode": {"Replicated": {"Replicas": 0}},
        }
        async with self.http.post(f"{self.base}/services/create", json=body) as resp:
            await resp.read()
            return resp.status == 201, str(resp.status)


class EtcdPut(_Writer):
    """etcd's put through its JSON gateway (``/v3/kv/put``): the side-by-side peer."""

    async def write(self) -> tuple[bool, str]:
        self.n += 1
        key = base64.b64encode(f"{self.name}/{self.n}".encode()).decode()
        body = {"key": key, "value": base64.b64encode(self.label.encode()).decode()}
        async with self.http.post(f"{self.base}/v3/kv/put", json=body) as resp:
            await resp.read()
            return resp.status == 200, str(resp.status)


#: The write each client makes, by the name ``--write`` takes.
WRITES: dict[str, type[_Writer]] = {
    "config-update": ConfigUpdate,
    "config": ConfigCreate,
    "service": ServiceCreate,
    "etcd-put": EtcdPut,
}


async def run(
    urls: Sequence[str],
    clients: int,
    size: int,
    duration: float,
    warmup: float,
    max_ops: int,
    timeout: float = 10.0,
    write: str = "config-update",
) -> dict[str, Any]:
    """Keep ``clients`` writes outstanding; measure after ``warmup`` for ``duration`` s."""
    import aiohttp  # imported here so `summarize` users need no aiohttp

    if write not in WRITES:
        raise ValueError(f"unknown write {write!r}; known: {', '.join(WRITES)}")

    label = base64.b64encode(os.urandom(size)).decode()[:size]
    prefix = f"bench-{os.getpid()}-{time.time_ns() % 10**9}"
    latencies: list[float] = []
    samples: list[list[float]] = []
    errors: dict[str, int] = {}
    issued = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from = start + warmup
    end = measure_from + duration
    cpu0 = time.process_time()
    cpu_measure0 = cpu0

    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as http:

        async def client(i: int) -> None:
            nonlocal issued
            base = urls[i % len(urls)].rstrip("/")
            writer = WRITES[write](http, base, f"{prefix}-{i}", label)
            await writer.prepare()
            while loop.time() < end and issued < max_ops:
                issued += 1
                t0 = loop.time()
                try:
                    ok, kind = await writer.write()
                except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as e:
                    ok, kind = False, type(e).__name__
                t1 = loop.time()
                if not ok:
                    errors[kind] = errors.get(kind, 0) + 1
                    await asyncio.sleep(0.01)  # no busy loop against a failing server
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                        await writer.recover()
                    continue
                if t0 >= measure_from and t1 <= end:
                    ms = (t1 - t0) * 1000
                    latencies.append(ms)
                    samples.append([time.time(), ms])

        async def mark_measure_start() -> None:
            nonlocal cpu_measure0
            await asyncio.sleep(max(0.0, measure_from - loop.time()))
            cpu_measure0 = time.process_time()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(mark_measure_start())
            for i in range(clients):
                tg.create_task(client(i))
    stopped = loop.time()
    elapsed = max(1e-9, min(stopped, end) - measure_from)
    cpu = (time.process_time() - cpu_measure0) / max(1e-9, stopped - measure_from)
    return {
        **summarize(latencies, elapsed, clients, size),
        "ops": len(latencies),
        "elapsed_s": round(elapsed, 3),
        "errors": errors,
        "generator_cpu": round(cpu, 3),
        "generator_saturated": cpu >= SATURATED_CPU,
        "samples": thin(samples),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m cluster.bench.loadgen", description=__doc__.split("\n")[0]
    )
    p.add_argument("--url", action="append", required=True, help="a manager's API (repeatable)")
    p.add_argument("--clients", type=int, default=1)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--max-ops", type=int, default=1_000_000)
    p.add_argument("--write", choices=tuple(WRITES), default="config-update")
    a = p.parse_args(argv)
    for url in a.url:
        if not url.startswith("http://127.0.0.1:"):
            p.error(f"only 127.0.0.1 is benchmarked, got {url}")
    result = asyncio.run(
        run(a.url, a.clients, a.size, a.duration, a.warmup, a.max_ops, write=a.write)
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
