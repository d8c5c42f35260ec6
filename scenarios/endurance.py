"""Endurance: a long mixed run that watches each manager's memory and open files.

    python -m scenarios.endurance --minutes 30 [--managers 3] [--seed S] [--out DIR]

Why
---
A leak shows only over time: a per-client session never forgotten, a
connection never closed after a partition, a buffer kept for a peer that
died.  The crash torture (`scenarios.torture`) proves no acknowledged write is
lost; this run proves the managers stay *bounded* while a cluster lives
through the ordinary weather of a real one.

What it does
------------
1. **Cluster.**  A new cluster of ``--managers`` managers in a temporary
   directory (snapshots every 2,000 entries, so the Raft log itself stays
   bounded and a growing memory means a leak, not a growing state).
2. **Steady load.**  Writers create configs and delete their oldest once
   they hold ``--window`` of them, retrying a delete until it is done (the
   state's size stays flat; ended tasks are reaped, five kept per slot as
   in Docker, `cluster.control.reaper`); readers read
   recent configs and list services through random managers; one task scales
   a replicated service up and down, so the orchestrator places and stops
   tasks all along.
3. **Weather.**  Every few seconds one fault, then its repair: a manager
   killed and restarted, the leader killed, a manager frozen (SIGSTOP) and
   thawed, a manager isolated, the cluster split into a minority and a
   majority.  The *observed* manager (``manager1``) is never killed, so its
   process lives through the whole run: its memory series is the one a
   leak cannot hide in.  (Killed managers start afresh; their series are
   cut at each restart.)
4. **Samples.**  Every ``--sample-every`` seconds each manager's resident
   memory (``VmRSS``) and open file descriptors (``/proc/PID/fd``).
5. **Verdict.**  After healing: every acknowledged create not deleted is
   on every manager, every acknowledged delete is gone.  For each process
   that lived through at least half the run, the last third of its samples
   is compared with the middle third (the first third is warm-up): RSS may
   not rise by more than ``RSS_GROWTH_MB`` and open files by more than
   ``FD_GROWTH``; the least-squares slope of RSS over the last two thirds
   is reported in MB per 10 minutes.

Writes ``OUT/endurance.json`` (settings, samples, faults, verdict) and
``OUT/endurance.png`` (RSS and open files over time, faults marked).  Every
loop is bounded by the run's length, every request by a timeout, and the
cluster is always stopped (last resort: SIGKILL of its recorded PIDs).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cluster.client.wait import async_attempts
from cluster.local.layout import ClusterDir, ClusterError, Description, Timing
from cluster.local.supervisor import Supervisor
from scenarios.torture import raft_status

__all__ = ["Sample", "Settings", "Verdict", "judge", "main", "run"]

#: The manager that is never killed: its one process spans the whole run.
OBSERVED = "manager1"
#: Allowed rise of a process's RSS from the middle third to the last third.
RSS_GROWTH_MB = 4.0
#: Allowed rise of a process's open file descriptors, the same way.
FD_GROWTH = 8
SERVICE = "endurance-web"


@dataclass(frozen=True, slots=True)
class Settings:
    minutes: float = 30.0
    managers: int = 3
    writers: int = 3
    readers: int = 2
    #: Writes per second per writer.
    rate: float = 15.0
    #: Configs a writer keeps before deleting its oldest.
    window: int = 40
    fault_every: float = 5.0
    sample_every: float = 5.0
    seed: int = 1
    quiet: bool = False


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the load started
    node: str
    pid: int
    rss_mb: float
    fds: int


@dataclass(slots=True)
class Verdict:
    """What the run proved; ``passed`` only when every part held."""

    writes: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    #: One row per process that lived long enough to judge.
    processes: list[dict[str, Any]] = field(default_factory=list)
    growth: list[str] = field(default_factory=list)
    converged: bool = False
    error: str = ""

    @property
    def passed(self) -> bool:
        return (
            self.converged
            and not self.error
            and not self.lost
            and not self.resurrected
            and not self.growth
            and bool(self.processes)
            and self.writes.get("ok", 0) > 0
        )


# -- the verdict on the samples (pure) -----------------------------------------


def _slope_per_10min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(t seconds, value)`` in value per 10 minutes."""
    if len(points) < 2:
        return 0.0
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    var = sum((t - mt) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return sum((t - mt) * (v - mv) for t, v in points) / var * 600.0


def judge(samples: list[Sample], duration: float, verdict: Verdict) -> None:
    """Fill ``verdict.processes`` and ``verdict.growth`` from the samples.

    A process (node, PID) is judged when it lived through at least half the
    run and has at least six samples: its middle and last thirds are compared
    (the first third is warm-up: caches, the first snapshot, connection pools).
    """
    by_proc: dict[tuple[str, int], list[Sample]] = {}
    for s in samples:
        by_proc.setdefault((s.node, s.pid), []).append(s)
    for (node, pid), series in sorted(by_proc.items()):
        span = series[-1].t - series[0].t
        if len(series) < 6 or span < duration / 2:
            continue
        third = len(series) // 3
        middle, last = series[third : 2 * third], series[2 * third :]
        rss_rise = max(s.rss_mb for s in last) - max(s.rss_mb for s in middle)
        fd_rise = max(s.fds for s in last) - max(s.fds for s in middle)
        row = {
            "node": node,
            "pid": pid,
            "samples": len(series),
            "span_s": round(span, 1),
            "rss_first_mb": round(series[0].rss_mb, 1),
            "rss_max_mb": round(max(s.rss_mb for s in series), 1),
            "rss_last_mb": round(series[-1].rss_mb, 1),
            "rss_rise_mb": round(rss_rise, 2),
            "rss_slope_mb_per_10min": round(
                _slope_per_10min([(s.t, s.rss_mb) for s in series[third:]]), 2
            ),
            "fds_min": min(s.fds for s in series),
            "fds_max": max(s.fds for s in series),
            "fds_rise": fd_rise,
        }
        verdict.processes.append(row)
        if rss_rise > RSS_GROWTH_MB:
            verdict.growth.append(
                f"{node} (pid {pid}): RSS rose {rss_rise:.1f} MB from the middle to the last"
                f" third of the run (allowed {RSS_GROWTH_MB:g})"
            )
        if fd_rise > FD_GROWTH:
            verdict.growth.append(
                f"{node} (pid {pid}): open files rose by {fd_rise} from the middle to the last"
                f" third of the run (allowed {FD_GROWTH})"
            )


def sample_process(pid: int) -> tuple[float, int] | None:
    """``(RSS in MB, open file descriptors)`` of a live process, or None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024, fds
    return None


# -- the run -------------------------------------------------------------------


class Endurance:
    def __init__(self, sup: Supervisor, desc: Description, settings: Settings) -> None:
        self.sup = sup
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.tag = f"e{settings.seed}-{os.getpid()}"
        self.url = {m.name: m.api_url for m in desc.members if m.role == "manager"}
        self.down: set[str] = set()
        self.stop = asyncio.Event()
        self.t0 = 0.0
        self.samples: list[Sample] = []
        self.faults: list[dict[str, Any]] = []
        self.verdict = Verdict()
        self.writes = {"ok": 0, "fail": 0, "unknown": 0}
        #: Acknowledged creates not yet deleted, and acknowledged deletes.
        self.live: set[str] = set()
        self.deleted: set[str] = set()
        self.recent: deque[str] = deque(maxlen=200)

    def say(self, msg: str) -> None:
        if not self.s.quiet:
            print(msg, flush=True)

    def _up(self) -> list[str]:
        return [n for n in self.url if n not in self.down] or list(self.url)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    # -- load --------------------------------------------------------------------

    async def writer(self, http: aiohttp.ClientSession, i: int) -> None:
        rng = random.Random(self.s.seed * 1000 + i)
        timeout = aiohttp.ClientTimeout(total=10)
        mine: deque[str] = deque()
        seq = 0
        while not self.stop.is_set():
            url = self.url[rng.choice(self._up())]
            if len(mine) >= self.s.window:
                name = mine.popleft()
                self.live.discard(name)  # a delete attempted: no longer promised present
                outcome, status = await self._send(
                    http, "DELETE", f"{url}/configs/{name}", None, timeout
                )
                if outcome == "ok" or status == 404:  # 404: an earlier attempt took it
                    self.deleted.add(name)
                else:
                    mine.appendleft(name)  # retried, so the state's size stays flat
            else:
                seq += 1
                name = f"{self.tag}-w{i}-{seq}"
                body = {
                    "Name": name,
                    "Labels": {"endurance": self.tag},
                    "Data": base64.b64encode(name.encode() * 4).decode(),
                }
                outcome, _ = await self._send(http, "POST", f"{url}/configs/create", body, timeout)
                if outcome == "ok":
                    self.live.add(name)
                    self.recent.append(name)
                    mine.append(name)
            self.writes[outcome] += 1
            await self._pause(rng.uniform(0, 2 / self.s.rate))

    async def _send(
        self,
        http: aiohttp.ClientSession,
        method: str,
        url: str,
        body: Any,
        timeout: aiohttp.ClientTimeout,
    ) -> tuple[str, int | None]:
        """``(outcome, HTTP status)``: ok, fail (a definite refusal) or unknown."""
        try:
            async with http.request(method, url, json=body, timeout=timeout) as r:
                await r.read()
                return ("ok" if 200 <= r.status < 300 else "fail"), r.status
        except aiohttp.ClientConnectorError:
            return "fail", None
        except (aiohttp.ClientError, TimeoutError):
            return "unknown", None

    async def reader(self, http: aiohttp.ClientSession, i: int) -> None:
        rng = random.Random(self.s.seed * 2000 + i)
        timeout = aiohttp.ClientTimeout(total=5)
        while not self.stop.is_set():
            url = self.url[rng.choice(self._up())]
            if self.recent and rng.random() < 0.7:
                target = f"{url}/configs/{rng.choice(self.recent)}"
            else:
                target = f"{url}/services"
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(target, timeout=timeout) as r:
                    await r.read()
            await self._pause(rng.uniform(0.02, 0.1))

    async def scaler(self, http: aiohttp.ClientSession) -> None:
        """Scale one service up and down so tasks are placed and stopped all along."""
        rng = random.Random(self.s.seed * 3000)
        timeout = aiohttp.ClientTimeout(total=10)
        while not self.stop.is_set():
            await self._pause(rng.uniform(2.0, 4.0))
            url = self.url[rng.choice(self._up())]
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
                async with http.get(f"{url}/services/{SERVICE}", timeout=timeout) as r:
                    if r.status != 200:
                        continue
                    svc = await r.json()
                spec = svc["Spec"]
                spec["Mode"] = {"Replicated": {"Replicas": rng.randint(1, 6)}}
                version = svc["Version"]["Index"]
                update = f"{url}/services/{svc['ID']}/update?version={version}"
                async with http.post(update, json=spec, timeout=timeout) as r:
                    await r.read()

    # -- weather -------------------------------------------------------------------

    async def leader(self, http: aiohttp.ClientSession) -> str | None:
        for name in self._up():
            if ((await raft_status(http, self.url[name])) or {}).get("role") == "leader":
                return name
        return None

    async def wait_ready(self, http: aiohttp.ClientSession, name: str) -> None:
        async for _ in async_attempts(90.0, every=0.1):
            if await raft_status(http, self.url[name]) is not None:
                return
        raise ClusterError(f"{name} did not answer within 90s of its restart")

    async def fault(self, http: aiohttp.ClientSession) -> None:
        """One fault and its repair; the observed manager is never killed."""
        others = sorted(n for n in self.url if n != OBSERVED)
        kind = self.rng.choice(["kill", "leader-kill", "pause", "isolate", "partition"])
        leader = await self.leader(http)
        if kind == "leader-kill" and (leader is None or leader == OBSERVED):
            kind = "isolate"  # the observed manager leads: take it away from the others instead
        hold = self.rng.uniform(0.5, 2.5)
        start = time.time()
        if kind in ("kill", "leader-kill"):
            victim = leader if kind == "leader-kill" else self.rng.choice(others)
            assert victim is not None
            self.down.add(victim)
            await asyncio.to_thread(self.sup.kill, victim)
            await asyncio.sleep(hold)
            await asyncio.to_thread(self.sup.restart, victim)
            await self.wait_ready(http, victim)
            self.down.discard(victim)
        elif kind == "pause":
            victim = self.rng.choice(sorted(self.url))
            await asyncio.to_thread(self.sup.pause, victim)
            await asyncio.sleep(hold)
            await asyncio.to_thread(self.sup.unpause, victim)
        elif kind == "isolate":
            victim = leader if leader is not None else self.rng.choice(sorted(self.url))
            await asyncio.to_thread(self.sup.isolate, victim)
            await asyncio.sleep(hold)
            await asyncio.to_thread(self.sup.heal)
        else:
            names = sorted(self.url)
            self.rng.shuffle(names)
            minority = names[: (len(names) - 1) // 2] or names[:1]
            victim = ",".join(sorted(minority))
            await asyncio.to_thread(self.sup.partition, [sorted(minority)])
            await asyncio.sleep(hold)
            await asyncio.to_thread(self.sup.heal)
        self.faults.append(
            {"t": start - self.t0, "end": time.time() - self.t0, "kind": kind, "node": victim}
        )

    async def weather(self, http: aiohttp.ClientSession, deadline: float) -> None:
        while time.monotonic() < deadline:
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.s.fault_every)
            if time.monotonic() >= deadline:
                break
            await self.fault(http)

    # -- samples -------------------------------------------------------------------

    async def sampler(self, deadline: float) -> None:
        last_line = 0.0
        while True:
            desc = self.sup.cdir.load()
            t = time.time() - self.t0
            for m in desc.members:
                if m.role != "manager" or not m.pid:
                    continue
                got = sample_process(m.pid)
                if got is not None:
                    self.samples.append(
                        Sample(round(t, 2), m.name, m.pid, round(got[0], 2), got[1])
                    )
            if t - last_line >= 60 or not last_line:
                last_line = t or 1e-9
                rss = {s.node: s.rss_mb for s in self.samples[-len(self.url) :]}
                self.say(
                    f"{t / 60:5.1f} min: writes ok {self.writes['ok']} fail {self.writes['fail']}"
                    f" unknown {self.writes['unknown']}; faults {len(self.faults)};"
                    f" RSS MB {', '.join(f'{n} {v:.1f}' for n, v in sorted(rss.items()))}"
                )
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(min(self.s.sample_every, max(0.0, deadline - time.monotonic())))

    # -- the end -------------------------------------------------------------------

    async def verify(self, http: aiohttp.ClientSession) -> None:
        """Every acknowledged, undeleted create on every manager; no acknowledged delete back."""
        v = self.verdict
        names = sorted(self.url)
        async for _ in async_attempts(60.0, every=0.3):
            answers = [await raft_status(http, self.url[n], timeout=2.0) for n in names]
            sts = [st for st in answers if st is not None]
            keys = {(st.get("term"), st.get("commit_index"), st.get("applied_index")) for st in sts}
            if len(sts) == len(names) and len(keys) == 1:
                _, commit, applied = keys.pop()
                if commit == applied:
                    v.converged = True
                    break
        if not v.converged:
            v.error = "managers did not agree on term, commit and applied index within 60s"
            return
        for n in names:
            async with http.get(
                f"{self.url[n]}/configs",
                params={"consistency": "local", "filters": json.dumps({"label": ["endurance"]})},
                timeout=aiohttp.ClientTimeout(total=30),
            ) as r:
                present = {c["Spec"]["Name"] for c in await r.json()}
            v.lost += [f"{x} missing on {n}" for x in sorted(self.live - present)][:20]
            v.resurrected += [f"{x} back on {n}" for x in sorted(self.deleted & present)][:20]

    async def run(self) -> Verdict:
        async with aiohttp.ClientSession() as http:
            await self._create_service(http)
            self.t0 = time.time()
            deadline = time.monotonic() + self.s.minutes * 60
            try:
                async with asyncio.TaskGroup() as tg:
                    load = [tg.create_task(self.writer(http, i)) for i in range(self.s.writers)]
                    load += [tg.create_task(self.reader(http, i)) for i in range(self.s.readers)]
                    load.append(tg.create_task(self.scaler(http)))
                    tg.create_task(self.sampler(deadline))
                    try:
                        await self.weather(http, deadline)
                    finally:
                        self.stop.set()
            except* ClusterError as group:
                self.verdict.error = str(group.exceptions[0])
            await asyncio.to_thread(self._heal)
            await self.verify(http)
        duration = self.s.minutes * 60
        self.verdict.writes = dict(self.writes)
        self.verdict.faults = {}
        for f in self.faults:
            self.verdict.faults[f["kind"]] = self.verdict.faults.get(f["kind"], 0) + 1
        judge(self.samples, duration, self.verdict)
        return self.verdict

    async def _create_service(self, http: aiohttp.ClientSession) -> None:
        spec = {
            "Name": SERVICE,
            "Mode": {"Replicated": {"Replicas": 3}},
            "TaskTemplate": {"ContainerSpec": {"Image": "nginx:alpine"}},
        }
        async for _ in async_attempts(30.0, every=0.2):
            url = self.url[self.rng.choice(sorted(self.url))]
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.post(f"{url}/services/create", json=spec) as r:
                    if r.status in (201, 409):
                        return
        raise ClusterError("could not create the endurance service within 30s")

    def _heal(self) -> None:
        self.sup.restore()
        self.down.clear()


# -- output --------------------------------------------------------------------


def write_outputs(out: Path, settings: Settings, run: Endurance) -> None:
    from viz.figures.base import save
    from viz.figures.endurance import endurance_figure

    out.mkdir(parents=True, exist_ok=True)
    v = run.verdict
    doc = {
        "settings": asdict(settings),
        "passed": v.passed,
        "verdict": {**asdict(v), "passed": v.passed},
        "faults": run.faults,
        "samples": [asdict(s) for s in run.samples],
    }
    (out / "endurance.json").write_text(json.dumps(doc, indent=1) + "\n")
    save(endurance_figure(run.samples, run.faults, OBSERVED), out / "endurance", ("png",))


def format_verdict(v: Verdict) -> str:
    lines = [
        f"writes: {v.writes}",
        f"faults: {v.faults}",
        f"converged: {'yes' if v.converged else 'NO'}",
    ]
    for p in v.processes:
        lines.append(
            f"{p['node']} pid {p['pid']} over {p['span_s'] / 60:.1f} min: RSS"
            f" {p['rss_first_mb']} -> {p['rss_last_mb']} MB (max {p['rss_max_mb']},"
            f" last third {p['rss_rise_mb']:+} MB vs middle, slope"
            f" {p['rss_slope_mb_per_10min']:+} MB/10 min); open files"
            f" {p['fds_min']}..{p['fds_max']} (last third {p['fds_rise']:+})"
        )
    if not v.processes:
        lines.append("NO process lived long enough to judge (run longer)")
    for label, items in (
        ("ERROR", [v.error] if v.error else []),
        ("LOST", v.lost),
        ("RESURRECTED", v.resurrected),
        ("GROWTH", v.growth),
    ):
        lines += [f"{label}: {x}" for x in items[:10]]
    lines.append("PASSED" if v.passed else "FAILED")
    return "\n".join(lines)


def run(settings: Settings, out: Path) -> Verdict:
    """Start a cluster, run the weather, judge, write outputs; always stop the cluster."""
    tmp = tempfile.mkdtemp(prefix="swarmraft-endurance-")
    cdir = ClusterDir(Path(tmp))
    sup = Supervisor(cdir)
    say = (lambda _m: None) if settings.quiet else (lambda m: print(m, flush=True))
    try:
        desc = sup.up(settings.managers, timing=Timing(snapshot_entries=2000), progress=say)
        endurance = Endurance(sup, desc, settings)
        verdict = asyncio.run(endurance.run())
        write_outputs(out, settings, endurance)
        return verdict
    finally:
        try:
            sup.down()
        finally:
            sup.kill_all()
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scenarios.endurance",
        description="A long mixed run with faults, sampling each manager's RSS and open files.",
    )
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--managers", type=int, choices=(3, 5), default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fault-every", type=float, default=5.0, help="mean seconds between faults")
    p.add_argument("--sample-every", type=float, default=5.0)
    p.add_argument("--out", type=Path, default=Path("endurance-out"))
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.minutes <= 0 or a.fault_every <= 0 or a.sample_every <= 0:
        p.error("--minutes, --fault-every and --sample-every must be positive")
    settings = Settings(
        minutes=a.minutes,
        managers=a.managers,
        seed=a.seed,
        fault_every=a.fault_every,
        sample_every=a.sample_every,
        quiet=a.quiet,
    )
    try:
        verdict = run(settings, a.out)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the cluster was stopped", file=sys.stderr)
        return 130
    print(format_verdict(verdict))
    print(f"wrote {a.out / 'endurance.json'} and {a.out / 'endurance.png'}")
    return 0 if verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
