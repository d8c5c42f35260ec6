"""The benchmark's load generator: HTTP writes from a process of its own.

``python -m cluster bench`` starts this module as a separate process for each
measured level, so that generating the load does not compete with the
benchmark's bookkeeping (and so that its CPU use can be read and reported:
on a small machine the generator itself can be what limits the rate).

The write is a config label update, ``POST /configs/{id}/update?version=N``
with one label of ``size`` bytes: a real replicated write (a client-session
command through Raft, compare-and-set on the version, applied by every
manager's store).  Each client first creates its own config (not measured)
and then updates only that one, passing the version the previous answer
returned, so compare-and-set never refuses it.  (``POST /configs/create``
was the first choice, but the store checks a new name against every
config, so its cost grows with each write the benchmark makes.)  Each client
is one keep-alive connection with one request outstanding; client ``i``
talks to ``urls[i % len(urls)]``.

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


async def run(
    urls: Sequence[str],
    clients: int,
    size: int,
    duration: float,
    warmup: float,
    max_ops: int,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """Keep ``clients`` writes outstanding; measure after ``warmup`` for ``duration`` s."""
    import aiohttp  # imported here so `summarize` users need no aiohttp

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

        async def own_config(base: str, name: str) -> tuple[str, int]:
            """Create this client's config; its ID and current version."""
            body = {"Name": name, "Data": base64.b64encode(b"bench").decode()}
            async with http.post(f"{base}/configs/create", json=body) as resp:
                created = await resp.json()
                if resp.status != 201:
                    raise RuntimeError(f"cannot create {name}: {created}")
            return created["ID"], await version_of(base, created["ID"])

        async def version_of(base: str, config_id: str) -> int:
            async with http.get(f"{base}/configs/{config_id}") as resp:
                return int((await resp.json())["Version"]["Index"])

        async def client(i: int) -> None:
            nonlocal issued
            base = urls[i % len(urls)].rstrip("/")
            name = f"{prefix}-{i}"
            config_id, version = await own_config(base, name)
            url = f"{base}/configs/{config_id}/update"
            body = {"Name": name, "Labels": {"bench": label}}
            while loop.time() < end and issued < max_ops:
                issued += 1
                t0 = loop.time()
                try:
                    async with http.post(url, params={"version": version}, json=body) as resp:
                        doc = await resp.json(content_type=None)
                        ok = resp.status == 200
                        kind = str(resp.status)
                    if ok:
                        version = int(doc["Version"]["Index"])
                except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as e:
                    ok, kind = False, type(e).__name__
                t1 = loop.time()
                if not ok:
                    errors[kind] = errors.get(kind, 0) + 1
                    await asyncio.sleep(0.01)  # no busy loop against a failing server
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
                        version = await version_of(base, config_id)
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
    a = p.parse_args(argv)
    for url in a.url:
        if not url.startswith("http://127.0.0.1:"):
            p.error(f"only 127.0.0.1 is benchmarked, got {url}")
    result = asyncio.run(run(a.url, a.clients, a.size, a.duration, a.warmup, a.max_ops))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
