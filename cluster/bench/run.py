"""``python -m cluster bench``: how fast is it, how fast does it recover, is it stable.

Theory of operation
-------------------
The benchmark starts its own cluster in a temporary directory (or, with
``--dir``, uses the cluster running there, or creates one there), then
measures, in this order:

1. **up**: seconds from starting the managers to an elected leader
   (``up_to_leader_s``), then each manager's resident memory once idle.
2. **http**: committed writes per second and latency percentiles through the
   HTTP API, for 1, 16, 64 and 256 concurrent clients and 16 B and 1 KiB
   values.  The write is a config label update (``POST
   /configs/{id}/update?version=N`` with a label of that many bytes; each
   client updates a config of its own: a client-session command replicated
   through Raft, compare-and-set in every store; see `cluster.bench.loadgen`).
   Clients talk to the leader directly (a follower would forward: one more
   hop).  The load comes from `cluster.bench.loadgen`, a process of its own;
   each level reports the CPU milliseconds every manager and the generator
   spent per write (`cluster.bench.load`), and when the generator is
   saturated the output says it, not the cluster, may be the limit.
3. **raw**: the consensus ceiling -- no-op entries proposed inside the leader
   (``POST /raft/bench``, `cluster.manager.bench.bench_proposals`) with 1,
   16, 64 and 256 outstanding: replication, fsync on a majority, commit and
   apply, without HTTP, sessions or the store.
4. **failover**: SIGKILL the leader; time until a survivor says it leads and
   until a client's write first commits (a writer keeps trying all the
   time, from the bench process); restart the killed manager and let it
   catch up; repeat.  Each round is a fault window ``[kill, caught up + 1 s]``.
5. **stability**: real elections (``election`` trace lines with
   ``pre_vote`` false) outside every fault window, after start-up: none
   should happen on a healthy cluster.  Then memory again.
6. **against** (``--against etcd``): an etcd cluster of the same size beside
   it, alternating runs, ratios (`cluster.bench.against`).
7. **scale** (``--scale``): writes and idle CPU with 0 to 10k services, then
   with 20k running tasks (`cluster.bench.scale`).

Every loop is bounded by count and time; all traffic goes to 127.0.0.1; the
cluster the benchmark started is stopped in a ``finally`` (and its temporary
directory removed).  Results: a table (or ``--json``, the object in docs/cli.md)
on stdout, progress on stderr, and ``results.json`` plus ``latency.png``
(latency of every sampled write over time, fault windows shaded) in
``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.bench.against import against_etcd
from cluster.bench.load import cpu_seconds, load_level
from cluster.bench.loadgen import percentile, summarize
from cluster.bench.scale import ScalePhase, ScalePlan, print_scale, rss_mb, scale_rows
from cluster.client.wait import async_attempts
from cluster.local.layout import ClusterDir, ClusterError, Member, Timing
from cluster.local.supervisor import Supervisor

__all__ = ["BenchPlan", "count_unprovoked", "register", "result_object"]

SIZES = (16, 1024)
CLIENTS = (1, 16, 64, 256)
#: Every HTTP call the benchmark itself makes is bounded by this.
CALL_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class BenchPlan:
    """What to measure; ``--quick`` is a smoke run of every phase."""

    managers: int = 3
    sizes: tuple[int, ...] = SIZES
    clients: tuple[int, ...] = CLIENTS
    duration: float = 5.0
    warmup: float = 1.0
    rounds: int = 5
    max_ops: int = 500_000
    #: ``--against etcd``: the side-by-side comparison (`cluster.bench.against`).
    against: str | None = None
    #: ``--scale``: the phase of `cluster.bench.scale`, run last.
    scale: ScalePlan | None = None

    @classmethod
    def from_args(cls, a: argparse.Namespace) -> BenchPlan:
        scale = None
        if getattr(a, "scale", False):
            scale = ScalePlan.quick(a.duration) if a.quick else ScalePlan(duration=a.duration or 5)
        if a.quick:
            return cls(
                managers=a.managers,
                sizes=(16,),
                clients=(16,),
                duration=a.duration or 1.0,
                warmup=0.3,
                rounds=1,
                max_ops=50_000,
                against=getattr(a, "against", None),
                scale=scale,
            )
        return cls(
            managers=a.managers,
            duration=a.duration or 5.0,
            against=getattr(a, "against", None),
            scale=scale,
        )

    @property
    def levels(self) -> list[tuple[int, int]]:
        return [(size, clients) for size in self.sizes for clients in self.clients]

    @property
    def steps(self) -> int:
        scale = self.scale.steps if self.scale else 0
        return 2 + 2 * len(self.levels) + self.rounds + 1 + (1 if self.against else 0) + scale


@dataclass(slots=True)
class Window:
    """A fault: from the kill until the killed manager has caught up (plus a margin)."""

    start: float
    end: float
    target: str


@dataclass(slots=True)
class Run:
    """Everything measured; `result_object` turns it into the docs/cli.md object."""

    managers: int
    http: list[dict[str, Any]] = field(default_factory=list)
    raw: list[dict[str, Any]] = field(default_factory=list)
    leader_s: list[float] = field(default_factory=list)
    commit_s: list[float] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    unprovoked: int = 0
    rss_idle_mb: list[float] = field(default_factory=list)
    rss_after_mb: list[float] = field(default_factory=list)
    up_to_leader_s: float | None = None
    #: (Unix time, ms, phase) of sampled writes, for the figure.
    samples: list[tuple[float, float, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: float = 0.0
    #: ``bench --against etcd``'s object, when it ran.
    against: dict[str, Any] | None = None
    #: ``bench --scale``'s measured steps with their details (`cluster.bench.scale`).
    scale: list[dict[str, Any]] | None = None


# ---------------------------------------------------------------- pure parts


def _pct(values: Sequence[float], q: float) -> float | None:
    v = percentile(sorted(values), q)
    return None if v != v else round(v, 3)


def result_object(run: Run) -> dict[str, Any]:
    """The object ``bench --json`` prints (docs/cli.md, ``bench``), and nothing else."""
    keys = ("clients", "size", "ops_per_s", "p50_ms", "p99_ms", "p999_ms")
    obj: dict[str, Any] = {
        "managers": run.managers,
        "http": [
            {**{k: row[k] for k in keys}, "cpu_ms_per_write": row.get("cpu_ms_per_write", {})}
            for row in run.http
        ],
        "raw": [
            {**{k: row[k] for k in keys}, "cpu_ms_per_write": row.get("cpu_ms_per_write", {})}
            for row in run.raw
        ],
        "failover": {
            "rounds": len(run.leader_s),
            "leader_p50_s": _pct(run.leader_s, 0.5),
            "commit_p50_s": _pct(run.commit_s, 0.5),
            "commit_p99_s": _pct(run.commit_s, 0.99),
        },
        "unprovoked_elections": run.unprovoked,
        "rss_idle_mb": run.rss_idle_mb,
        "rss_after_mb": run.rss_after_mb,
        "up_to_leader_s": run.up_to_leader_s,
    }
    if run.against is not None:
        obj["against"] = run.against
    if run.scale is not None:
        obj["scale"] = scale_rows(run.scale)
    return obj


def count_unprovoked(
    lines: Sequence[dict[str, Any]], since: float, windows: Sequence[Window]
) -> int:
    """Real elections (not pre-votes) at or after ``since`` and outside every fault window."""
    n = 0
    for ev in lines:
        if ev.get("type") != "election" or ev.get("pre_vote", True):
            continue
        t = float(ev.get("t", 0.0))
        if t < since or any(w.start <= t <= w.end for w in windows):
            continue
        n += 1
    return n


def read_trace(path: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with contextlib.suppress(FileNotFoundError), path.open() as f:
        for line in f:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
    return out


# ---------------------------------------------------------------- the run


class Bench:
    def __init__(self, plan: BenchPlan, cdir: ClusterDir, progress: Any, task: Any) -> None:
        self.plan = plan
        self.cdir = cdir
        self.sup = Supervisor(cdir)
        self.progress = progress
        self.task = task
        self.run = Run(managers=plan.managers)
        self.http: Any = None  # aiohttp.ClientSession

    def step(self, what: str, advance: int = 1) -> None:
        self.progress.update(self.task, advance=advance, description=what)

    def note(self, msg: str) -> None:
        self.run.notes.append(msg)
        self.progress.console.print(f"[yellow]note:[/] {msg}")

    def members(self) -> list[Member]:
        return [m for m in self.cdir.load().members if m.role == "manager"]

    async def status(self, m: Member) -> dict[str, Any] | None:
        import aiohttp

        try:
            async with asyncio.timeout(0.5), self.http.get(f"{m.api_url}/raft/status") as r:
                return await r.json() if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def leader(self, timeout: float = 15.0, exclude: str | None = None) -> Member:
        async for _ in async_attempts(timeout, every=0.01):
            ms = [m for m in self.members() if m.name != exclude]
            sts = await asyncio.gather(*(self.status(m) for m in ms))
            for m, st in zip(ms, sts, strict=True):
                if st and st.get("role") == "leader":
                    return m
        raise ClusterError(f"no leader within {timeout:g}s")

    async def write_once(self, url: str, name: str, timeout: float = CALL_TIMEOUT) -> bool:
        import aiohttp

        body = {"Name": name, "Data": "YmVuY2g="}
        try:
            async with (
                asyncio.timeout(timeout),
                self.http.post(f"{url}/configs/create", json=body) as r,
            ):
                await r.read()
                return r.status == 201
        except (aiohttp.ClientError, TimeoutError):
            return False

    # ------------------------------------------------------------ phases

    async def start(self) -> bool:
        """Start a cluster unless one runs in the directory; True if we started it."""
        if self.cdir.exists():
            desc = self.cdir.load()
            if any(self.sup.process_state(m) == "running" for m in desc.members):
                self.run.managers = sum(1 for m in desc.members if m.role == "manager")
                self.note(f"using the cluster running in {self.cdir.path}")
                t0 = time.monotonic()
                await self.leader()
                self.run.up_to_leader_s = round(time.monotonic() - t0, 3)
                return False
        t0 = time.monotonic()
        await asyncio.to_thread(self.sup.up, self.plan.managers, None, Timing(), {})
        self.run.up_to_leader_s = round(time.monotonic() - t0, 3)
        return True

    async def settle(self) -> None:
        """Wait until a write commits (the swarm is bootstrapped), then measure idle memory."""
        leader = await self.leader()
        async for i in async_attempts(20, every=0.05):
            if await self.write_once(leader.api_url, f"bench-ready-{time.time_ns()}-{i}"):
                break
        else:
            raise ClusterError("the cluster accepted no write within 20s")
        await asyncio.sleep(1.0)
        self.run.rss_idle_mb = [rss_mb(m.pid) or 0.0 for m in self.members()]

    async def http_level(self, size: int, clients: int) -> None:
        leader = await self.leader()
        p = self.plan
        res = await load_level(
            [leader.api_url], clients, size=size, duration=p.duration, warmup=p.warmup,
            max_ops=p.max_ops, pids=self.manager_pids(),
        )  # fmt: skip
        res["target"] = leader.name
        self.run.http.append(res)
        self.run.samples.extend((t, ms, f"http {clients}c {size}B") for t, ms in res["samples"])
        if res["errors"]:
            self.note(f"http {clients} clients {size} B: errors {res['errors']}")
        if res["generator_saturated"]:
            self.note(
                f"http {clients} clients {size} B: the load generator used "
                f"{res['generator_cpu']:.0%} of a CPU: it may be the bottleneck"
            )

    async def leader_url(self) -> str:
        return (await self.leader()).api_url

    def manager_pids(self) -> dict[str, int]:
        return {m.name: m.pid for m in self.members() if m.pid is not None}

    async def ours(self) -> tuple[list[str], dict[str, int]]:
        """Where `cluster.bench.against` sends our writes: the leader, and whose CPU counts."""
        return [(await self.leader()).api_url], self.manager_pids()

    async def raw_level(self, size: int, outstanding: int) -> None:
        import aiohttp

        leader = await self.leader()
        p = self.plan
        url = f"{leader.api_url}/raft/bench"

        async def call(duration: float) -> dict[str, Any]:
            body = {"outstanding": outstanding, "size": size, "duration": duration,
                    "max_ops": p.max_ops}  # fmt: skip
            timeout = aiohttp.ClientTimeout(total=duration + 30)
            async with self.http.post(url, json=body, timeout=timeout) as r:
                doc = await r.json()
                if r.status != 200:
                    raise ClusterError(f"raw bench on {leader.name}: {doc.get('message')}")
                return doc

        await call(p.warmup)
        pids = self.manager_pids()
        before = {n: cpu_seconds(pid) for n, pid in pids.items()}
        doc = await call(p.duration)
        after = {n: cpu_seconds(pid) for n, pid in pids.items()}
        row = summarize(doc["latencies_ms"], doc["elapsed_s"], outstanding, size)
        row["errors"] = doc["errors"]
        commits = max(1, len(doc["latencies_ms"]))
        row["cpu_ms_per_write"] = {
            n: round((after[n] - before[n]) * 1000 / commits, 4)  # type: ignore[operator]
            for n in pids
            if after[n] is not None and before[n] is not None
        }
        self.run.raw.append(row)

    async def failover(self) -> None:
        """Kill the leader ``rounds`` times while one client keeps writing."""
        stop = asyncio.Event()
        known: dict[str, Member | None] = {"leader": await self.leader()}
        successes: list[tuple[float, float]] = []  # (start, end) Unix times

        async def writer() -> None:
            i = 0
            while not stop.is_set() and i < 200_000:
                i += 1
                target = known["leader"]
                if target is None:
                    live = [m for m in self.members() if self.sup.process_state(m) == "running"]
                    target = live[i % len(live)] if live else None
                if target is None:
                    await asyncio.sleep(0.005)
                    continue
                t0 = time.time()
                if await self.write_once(target.api_url, f"bench-fo-{t0}-{i}", timeout=1.0):
                    t1 = time.time()
                    successes.append((t0, t1))
                    self.run.samples.append((t1, (t1 - t0) * 1000, "failover"))
                else:
                    known["leader"] = None
                    await asyncio.sleep(0.005)

        async with asyncio.TaskGroup() as tg:
            w = tg.create_task(writer())
            try:
                for r in range(self.plan.rounds):
                    await self.failover_round(known, successes)
                    self.step(f"failover round {r + 1}/{self.plan.rounds}")
            finally:
                stop.set()
            await w

    async def failover_round(
        self, known: dict[str, Member | None], successes: list[tuple[float, float]]
    ) -> None:
        old = await self.leader()
        known["leader"] = old
        await asyncio.sleep(0.3)  # some writes before the fault
        t_kill = time.time()
        await asyncio.to_thread(self.sup.kill, old.name)
        known["leader"] = None
        new = await self.leader(timeout=15.0, exclude=old.name)
        t_leader = time.time()
        known["leader"] = new
        async for _ in async_attempts(15, every=0.005):
            if any(s >= t_kill for s, _ in successes):
                break
        else:
            raise ClusterError("no write committed within 15s of the failover")
        t_commit = min(e for s, e in successes if s >= t_kill)
        self.run.leader_s.append(round(t_leader - t_kill, 3))
        self.run.commit_s.append(round(t_commit - t_kill, 3))
        # Bring the killed manager back and let it catch up before the next round.
        await asyncio.to_thread(self.sup.restart, old.name)
        victim = next(m for m in self.members() if m.name == old.name)
        async for _ in async_attempts(20, every=0.05):
            st, lst = await asyncio.gather(self.status(victim), self.status(new))
            if st and lst and st.get("applied_index", 0) >= lst.get("commit_index", 1) - 50:
                break
        else:
            self.note(f"{old.name} did not catch up within 20s of its restart")
        await asyncio.sleep(1.0)
        self.run.windows.append(Window(t_kill, time.time(), old.name))

    def stability(self) -> None:
        lines: list[dict[str, Any]] = []
        for m in self.members():
            lines.extend(read_trace(self.cdir.node_dir(m.name) / "trace.jsonl"))
        self.run.unprovoked = count_unprovoked(lines, self.run.started, self.run.windows)
        self.run.rss_after_mb = [rss_mb(m.pid) or 0.0 for m in self.members()]

    async def main(self) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as self.http:
            self.step("starting the cluster", 0)
            await self.start()
            self.step("waiting for the swarm")
            await self.settle()
            self.run.started = time.time()
            self.step("http")
            for size, clients in self.plan.levels:
                self.step(f"http: {clients} clients, {size} B", 0)
                await self.http_level(size, clients)
                self.step(f"http: {clients} clients, {size} B")
            for size, outstanding in self.plan.levels:
                self.step(f"raw: {outstanding} outstanding, {size} B", 0)
                await self.raw_level(size, outstanding)
                self.step(f"raw: {outstanding} outstanding, {size} B")
            if self.plan.rounds:
                self.step("failover", 0)
                await self.failover()
            await asyncio.sleep(0.5)  # let the traces reach the files
            self.stability()
            if self.plan.against == "etcd":
                self.step("against etcd", 0)
                self.run.against = await against_etcd(
                    self.ours, self.run.managers, self.cdir.path.parent / "against",
                    duration=self.plan.duration, warmup=self.plan.warmup, say=self.note,
                )  # fmt: skip
                self.step("against etcd")
            if self.plan.scale:
                phase = ScalePhase(self.plan.scale, self.http, self.leader_url, self.manager_pids,
                                   lambda msg: self.step(msg, 0))  # fmt: skip
                self.run.scale = await phase.run(self.step)
            self.step("done")


# ---------------------------------------------------------------- output


def draw(run: Run, path: Path) -> None:
    """Latency of sampled writes over time, fault windows shaded (drawn by `viz`)."""
    from viz.figures import save
    from viz.figures.bench import latency_figure, latency_model

    windows = [(w.start, w.end) for w in run.windows]
    model = latency_model(run.samples, windows, run.started, run.managers)
    save(latency_figure(model), path.with_suffix(""), ("png",))


def print_table(run: Run, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"swarmraft bench: {run.managers} managers, fsync on")
    for col in ("path", "clients", "size", "writes/s", "p50 ms", "p99 ms", "p99.9 ms"):
        table.add_column(col, justify="right" if col != "path" else "left")
    for label, rows in (("http", run.http), ("raw", run.raw)):
        for r in rows:
            table.add_row(label, str(r["clients"]), f"{r['size']} B", f"{r['ops_per_s']:,.0f}",
                          *(f"{r[k]}" for k in ("p50_ms", "p99_ms", "p999_ms")))  # fmt: skip
    console.print(table)
    fo = result_object(run)["failover"]
    console.print(
        f"failover ({fo['rounds']} rounds, SIGKILL the leader): new leader p50 "
        f"{fo['leader_p50_s']} s; first committed write p50 {fo['commit_p50_s']} s, "
        f"p99 {fo['commit_p99_s']} s"
    )
    console.print(f"unprovoked elections: {run.unprovoked}")
    console.print(f"RSS idle (MiB): {run.rss_idle_mb}; after: {run.rss_after_mb}")
    console.print(f"up to an elected leader: {run.up_to_leader_s} s")
    if run.scale:
        print_scale(run.scale, console)


def cmd_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    plan = BenchPlan.from_args(args)
    if plan.managers not in (3, 5):
        raise ClusterError("--managers must be 3 or 5")
    err = Console(stderr=True)
    tmp: Path | None = None
    if args.dir:
        path = Path(args.dir).resolve()
    else:
        tmp = Path(tempfile.mkdtemp(prefix="swarmraft-bench-"))
        path = tmp / "cluster"
    cdir = ClusterDir(path)
    out = Path(args.out).resolve()
    ours_before = cdir.exists()
    progress = Progress(
        TextColumn("{task.description:<36}"), BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err, transient=False,
    )  # fmt: skip
    started_here = False
    try:
        with progress:
            task = progress.add_task("bench", total=plan.steps)
            bench = Bench(plan, cdir, progress, task)
            # A cluster we did not find running is ours to stop.
            running = ours_before and any(
                bench.sup.process_state(m) == "running" for m in cdir.load().members
            )
            started_here = not running
            asyncio.run(bench.main())
    finally:
        if started_here and cdir.exists():
            err.print("stopping the benchmark's cluster")
            Supervisor(cdir).down(purge=tmp is not None)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    run = bench.run
    out.mkdir(parents=True, exist_ok=True)
    obj = result_object(run)
    details = {
        **obj,
        "http_details": [{k: v for k, v in r.items() if k != "samples"} for r in run.http],
        "raw_details": run.raw,
        "failover_rounds": {"leader_s": run.leader_s, "commit_s": run.commit_s},
        "scale_details": run.scale,
        "notes": run.notes,
    }
    (out / "results.json").write_text(json.dumps(details, indent=2))
    draw(run, out / "latency.png")
    if args.json:
        print(json.dumps(obj))
    else:
        print_table(run, Console())
    err.print(f"results: {out / 'results.json'}, figure: {out / 'latency.png'}")
    return 0


def register(sub: Any) -> None:
    """Add the ``bench`` verb to `cluster.cli.main`'s parser."""
    b = sub.add_parser("bench", help="benchmark: writes/s, latency, failover, stability, memory")
    b.add_argument("--managers", type=int, choices=(3, 5), default=3)
    b.add_argument("--json", action="store_true", help="print the result object only (docs/cli.md)")
    b.add_argument("--duration", type=float, help="seconds measured per level (default 5)")
    b.add_argument("--quick", action="store_true", help="a smoke run: one level of each phase")
    b.add_argument("--out", default="bench-results", help="where results.json and the figure go")
    b.add_argument(
        "--against",
        choices=("etcd",),
        help="also run etcd (Debian's etcd-server) side by side and report ratios",
    )
    b.add_argument("--scale", action="store_true", help="also: writes, idle CPU as the store grows")
    b.set_defaults(func=_run_from_cli)


def _run_from_cli(ctx: Any) -> int:
    return cmd_bench(ctx.args)
