"""``bench --scale``: does a write cost more, or idling cost more, when the swarm is big?

Theory of operation
-------------------
A store that grows must not make each write slower: a create checks its
name against the others and the orchestrator reconciles what changed, and
both should cost the same with 10 or 10,000 services.  Nor should a big but
quiet swarm keep the managers busy.  So the phase climbs through levels of
stored services (`ScalePlan.levels`: 0, 1k, 5k, 10k), and at each one

1. **fills** the store up to the level with services of 0 replicas
   (``FILL_CONCURRENCY`` creates outstanding through the leader, each retried
   a bounded number of times on a 503 or a lost connection; a progress line);
2. **waits** ``settle_s`` without writes, then reads each manager's **idle CPU**
   from ``/proc/PID/stat`` over ``idle_s`` seconds, in % of one core (no client
   talks to the cluster meanwhile);
3. **measures** service creates, then config creates, with `load_level` (the
   load generator as a process of its own, ``clients`` outstanding).  Service
   creates stop after ``service_ops`` (or ``duration``), so that the store
   stays near its level; the rows give the count when measuring began.

Last, services with replicas (``tasks_replicas`` each, labelled
``swarmraft.bench=tasks``) bring ``tasks`` tasks into the swarm; the phase
waits, with a deadline, until the managers' agents report every one running
(``GET /services?status=true``), then measures the same three things.

Each measured step is one row of `scale_rows` (the ``"scale"`` rows of
``bench --json``, docs/cli.md); the details (resident memory of each manager
at each step, errors, CPU per write, fill rates) go to ``results.json``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.bench.load import cpu_seconds, load_level
from cluster.local.layout import ClusterError

__all__ = ["ScalePhase", "ScalePlan", "print_scale", "replica_counts", "rss_mb", "scale_rows"]

#: Service creates in flight while filling the store.
FILL_CONCURRENCY = 16
#: Tries of one create while filling (a 503 during an election, a lost connection).
FILL_TRIES = 5
#: The label of the services that carry the running tasks.
TASKS_LABEL = "swarmraft.bench=tasks"
#: The keys of one ``"scale"`` row (docs/cli.md, ``bench``).
ROW_KEYS = ("services", "tasks", "write", "ops_per_s", "p50_ms", "p99_ms", "idle_cpu_pct")


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """Levels of the store and how long each measurement lasts."""

    levels: tuple[int, ...] = (0, 1_000, 5_000, 10_000)
    tasks: int = 20_000
    tasks_replicas: int = 200
    clients: int = 16
    duration: float = 5.0
    warmup: float = 0.3
    #: Bound on one level's service creates (warm-up included): each adds a
    #: service, and the store must not outgrow the next level while measured.
    service_ops: int = 1_500
    settle_s: float = 3.0
    idle_s: float = 5.0
    converge_timeout: float = 900.0

    @classmethod
    def quick(cls, duration: float | None = None) -> ScalePlan:
        """A smoke run: two small levels and a few hundred tasks."""
        return cls(
            levels=(0, 1_000), tasks=200, tasks_replicas=50, duration=duration or 1.0,
            warmup=0.1, service_ops=600, settle_s=1.0, idle_s=1.0, converge_timeout=120.0,
        )  # fmt: skip

    @property
    def steps(self) -> int:
        """Measured steps: one per level, and one with tasks running."""
        return len(self.levels) + (1 if self.tasks else 0)


def scale_rows(details: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``"scale"`` rows of ``bench --json``: exactly `ROW_KEYS` of each detail."""
    return [{k: d[k] for k in ROW_KEYS} for d in details]


def replica_counts(tasks: int, per_service: int) -> list[int]:
    """Replicas of each task-carrying service: ``tasks`` in all, at most ``per_service`` each."""
    if per_service < 1:
        raise ValueError("per_service must be at least 1")
    counts = [per_service] * (tasks // per_service)
    return counts + ([tasks % per_service] if tasks % per_service else [])


def rss_mb(pid: int | None) -> float | None:
    """VmRSS of a process in MiB (None: gone)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


class ScalePhase:
    """One run of the phase against a running cluster.

    ``leader_url`` answers the leader's API URL (looked up again before each
    step: a leader may change); ``pids`` the managers' PIDs by name, in the
    order the ``idle_cpu_pct`` lists follow; ``say`` shows a progress line.
    """

    def __init__(
        self,
        plan: ScalePlan,
        http: Any,
        leader_url: Callable[[], Awaitable[str]],
        pids: Callable[[], dict[str, int]],
        say: Callable[[str], None],
    ) -> None:
        self.plan, self.http = plan, http
        self.leader_url, self.pids, self.say = leader_url, pids, say
        self.details: list[dict[str, Any]] = []
        self.filled = 0  # services the fill created (names bench-scale-0 ...)

    # ------------------------------------------------------------ HTTP

    async def _call(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        async with asyncio.timeout(60), self.http.request(method, url, json=body) as r:
            return r.status, await r.json(content_type=None)

    async def count_services(self, url: str) -> int:
        status, doc = await self._call("GET", f"{url}/services")
        if status != 200:
            raise ClusterError(f"GET /services answered {status}")
        return len(doc)

    async def create(self, name: str, replicas: int = 0, labels: dict | None = None) -> None:
        """One service create, retried (bounded) on a 503 or a lost connection."""
        import aiohttp

        body = {
            "Name": name,
            "Labels": labels or {},
            "TaskTemplate": {"ContainerSpec": {"Image": "bench:1"}},
            "Mode": {"Replicated": {"Replicas": replicas}},
        }
        for attempt in range(FILL_TRIES):
            try:
                url = await self.leader_url()
                status, doc = await self._call("POST", f"{url}/services/create", body)
            except (aiohttp.ClientError, TimeoutError, ValueError):
                status, doc = 0, None
            if status == 201 or (status == 409 and attempt):  # 409: an earlier try committed
                return
            if status not in (0, 503):
                raise ClusterError(f"creating service {name}: {status} {doc}")
            await asyncio.sleep(0.2 * (attempt + 1))
        raise ClusterError(f"service {name} could not be created in {FILL_TRIES} tries")

    async def fill(self, target: int, have: int) -> float:
        """Create services until ``target`` are stored; the creates per second."""
        todo = max(0, target - have)
        if not todo:
            return 0.0
        names = iter(range(self.filled, self.filled + todo))
        done = 0
        t0 = time.monotonic()

        async def worker() -> None:
            nonlocal done
            for i in names:  # shared iterator: each name is taken once
                await self.create(f"bench-scale-{i}")
                done += 1
                if done % 500 == 0 or done == todo:
                    rate = done / (time.monotonic() - t0)
                    self.say(f"scale: filling {have + done}/{target} services ({rate:.0f}/s)")

        async with asyncio.TaskGroup() as tg:
            for _ in range(min(FILL_CONCURRENCY, todo)):
                tg.create_task(worker())
        self.filled += todo
        return round(todo / (time.monotonic() - t0), 1)

    async def start_tasks(self) -> None:
        """Services with replicas until ``plan.tasks`` tasks are wanted."""
        counts = replica_counts(self.plan.tasks, self.plan.tasks_replicas)
        key, value = TASKS_LABEL.split("=")
        sem = asyncio.Semaphore(FILL_CONCURRENCY)

        async def one(i: int, replicas: int) -> None:
            async with sem:
                await self.create(f"bench-tasks-{i}", replicas, {key: value})

        async with asyncio.TaskGroup() as tg:
            for i, n in enumerate(counts):
                tg.create_task(one(i, n))

    async def running_tasks(self) -> int:
        url = await self.leader_url()
        filters = json.dumps({"label": [TASKS_LABEL]})
        status, doc = await self._call("GET", f"{url}/services?status=true&filters={filters}")
        if status != 200:
            return 0
        return sum(int(s["ServiceStatus"]["RunningTasks"]) for s in doc)

    async def wait_running(self) -> float:
        """Seconds until every task runs; bounded by ``plan.converge_timeout``."""
        import aiohttp

        t0 = time.monotonic()
        last = -1
        while time.monotonic() - t0 < self.plan.converge_timeout:
            try:
                running = await self.running_tasks()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                running = last
            if running >= self.plan.tasks:
                return round(time.monotonic() - t0, 1)
            if running != last:
                self.say(f"scale: {running}/{self.plan.tasks} tasks running")
                last = running
            await asyncio.sleep(1.0)
        raise ClusterError(
            f"{self.plan.tasks} tasks were not running within {self.plan.converge_timeout:g}s"
        )

    # ------------------------------------------------------------ measuring

    async def idle_cpu(self) -> list[float]:
        """Each manager's CPU over ``idle_s`` seconds with no client, in % of one core."""
        pids = self.pids()
        await asyncio.sleep(self.plan.settle_s)
        before = {n: cpu_seconds(pid) for n, pid in pids.items()}
        t0 = time.monotonic()
        await asyncio.sleep(self.plan.idle_s)
        elapsed = time.monotonic() - t0
        after = {n: cpu_seconds(pid) for n, pid in pids.items()}
        return [
            round(100 * (after[n] - before[n]) / elapsed, 1)  # type: ignore[operator]
            for n in pids
            if after[n] is not None and before[n] is not None
        ]

    async def measure(self, tasks: int, extra: dict[str, Any]) -> None:
        """Idle CPU, then service creates and config creates: two rows."""
        url = await self.leader_url()
        services = await self.count_services(url)
        idle = await self.idle_cpu()
        rss = [rss_mb(pid) for pid in self.pids().values()]
        for write in ("service", "config"):
            self.say(f"scale: {services} services, {tasks} tasks: {write} creates")
            p = self.plan
            res = await load_level(
                [await self.leader_url()], p.clients, write=write, duration=p.duration,
                warmup=p.warmup, pids=self.pids(),
                max_ops=p.service_ops if write == "service" else 500_000,
            )  # fmt: skip
            self.details.append({
                "services": services, "tasks": tasks, "write": write,
                "ops_per_s": res["ops_per_s"], "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"],
                "idle_cpu_pct": idle, "rss_mb": rss, "errors": res["errors"],
                "cpu_ms_per_write": res["cpu_ms_per_write"], **extra,
            })  # fmt: skip

    async def run(self, step: Callable[[str], None]) -> list[dict[str, Any]]:
        """Every level, then the tasks; ``step`` marks each measured step done."""
        for level in self.plan.levels:
            url = await self.leader_url()
            rate = await self.fill(level, await self.count_services(url))
            await self.measure(0, {"fill_per_s": rate})
            step(f"scale: {level} services")
        if self.plan.tasks:
            self.say(f"scale: starting {self.plan.tasks} tasks")
            await self.start_tasks()
            converge_s = await self.wait_running()
            await self.measure(self.plan.tasks, {"converge_s": converge_s})
            step(f"scale: {self.plan.tasks} tasks")
        return self.details


def print_scale(details: Sequence[dict[str, Any]], console: Any) -> None:
    """The rows as a table (``bench --scale`` without ``--json``)."""
    from rich.table import Table

    table = Table(title="scale: creates through the leader; each manager's idle CPU and RSS")
    cols = ("services", "tasks", "write", "writes/s", "p50 ms", "p99 ms", "idle % core", "RSS MiB")
    for col in cols:
        table.add_column(col, justify="left" if col == "write" else "right")
    for d in details:
        table.add_row(
            f"{d['services']:,}", f"{d['tasks']:,}", d["write"], f"{d['ops_per_s']:,.0f}",
            str(d["p50_ms"]), str(d["p99_ms"]), "/".join(map(str, d["idle_cpu_pct"])),
            "/".join(f"{v:.0f}" for v in d.get("rss_mb", []) if v is not None),
        )  # fmt: skip
    console.print(table)
