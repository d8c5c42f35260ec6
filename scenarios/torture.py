"""Crash torture: SIGKILL managers under a steady write load, then prove nothing was lost.

    python -m scenarios.torture --rounds N [--managers 3|5] [--dir DIR] [--seed S]
                                [--writers K] [--rate R] [--max-seconds T] [--quiet]

Theory of operation
-------------------
Raft promises that a write, once acknowledged to a client, is in the log of
every future leader (§5.4, Leader Completeness) and so, in the end, in every
replica's state machine (§5.3, Log Matching; State Machine Safety).  This
module attacks that promise with real processes and real SIGKILLs:

1. **Cluster.**  A new cluster in a temporary directory (or in ``--dir``;
   a cluster already running in ``--dir`` is used as it is and left running).
2. **Load.**  ``K`` writers, each an asyncio task, create configs through the
   HTTP API of a random running manager (a follower forwards to the leader).
   Every config has a name no other write uses and a payload derived from it,
   and every attempt is recorded with its outcome:

   * ``ok``: the API acknowledged it (2xx): it must survive everything;
   * ``fail``: a definite answer refusing it (4xx, or a 503 such as "no
     quorum"), or a connection refused (nothing was sent).  A 4xx write must
     never appear; a 503 one may (the API says "may still be committed");
   * ``unknown``: a timeout or a connection cut mid-request; either way is fine.

3. **Rounds.**  Each round SIGKILLs one manager -- the leader with
   probability ``--leader-kill`` (default 0.4), else any manager, the leader
   included -- keeps it down for a random short time, restarts it on its data,
   waits (bounded) until it answers again, and lets the cluster run a little.
   One manager down at a time: the cluster keeps its quorum, so writes go on.
4. **Heal and converge.**  The writers stop; every manager is running again
   and network rules are cleared; then we wait (bounded) until all managers
   report one leader, the same term, the same commit index, and applied ==
   commit.
5. **Verify.**  Read every manager's replica with ``?consistency=local``
   (configs, secrets, services, nodes) while the applied index stays put:
   the listings must be identical, every acknowledged write must be there
   with its payload, and no 4xx-refused write may be.  When this run owns the
   cluster it then stops it and opens each manager's Raft log on disk
   (`raft.runtime.disk.DiskStorage`): the entries every manager has at or below every
   manager's commit index must be equal (term, kind, data): the logs agree.

The summary goes to stdout; every write attempt goes to ``DIR/torture.jsonl``
as a ``client`` trace line, and every kill/restart to ``DIR/faults.jsonl``
(written by the supervisor), so ``viz`` can draw the run.  Exit status 0 only
when nothing acknowledged was lost and nothing diverged; 2 for a usage or
start-up error.

Every loop is bounded (rounds, ``--max-seconds``, per-request timeouts,
bounded waits for readiness and convergence), and a cluster this run started
is always stopped, whatever happens (``finally``), with a last-resort SIGKILL
of its recorded manager PIDs.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from cluster.client.wait import async_attempts
from cluster.local.layout import ClusterDir, ClusterError, Description, Timing
from cluster.local.supervisor import Supervisor

__all__ = ["Settings", "Summary", "main", "raft_status", "run"]

#: What ``/raft/status`` polling and readiness checks wait per request.
STATUS_TIMEOUT = 1.0
#: The kinds whose listings are compared across managers.
COMPARED = ("configs", "secrets", "services", "nodes")


@dataclass(frozen=True, slots=True)
class Settings:
    rounds: int = 20
    managers: int = 3
    writers: int = 4
    seed: int = 1
    #: Writes per second per writer (a pause between writes; 0 = as fast as possible).
    rate: float = 25.0
    #: Probability that a round kills the leader on purpose.
    leader_kill: float = 0.4
    down_min: float = 0.1
    down_max: float = 0.8
    settle_min: float = 0.1
    settle_max: float = 0.6
    #: A restarted manager must answer within this many seconds (a manager with a
    #: big state on a busy machine can take tens of seconds to replay it).
    ready_timeout: float = 90.0
    #: Bounded wait for convergence after the last round.
    converge_timeout: float = 60.0
    #: The whole run of rounds stops after this many seconds, whatever ``rounds`` says.
    max_seconds: float = 3600.0
    #: Raft snapshot interval of a cluster this run creates (small: compaction happens).
    snapshot_entries: int = 2000
    quiet: bool = False


@dataclass(slots=True)
class Write:
    """One write attempt and what the client learned about it."""

    name: str
    writer: int
    manager: str
    start: float
    end: float = 0.0
    outcome: str = "pending"  # ok | fail | unknown
    status: int | None = None
    detail: str = ""


@dataclass(slots=True)
class Summary:
    rounds: int = 0
    leader_kills: int = 0
    writes: Counter[str] = field(default_factory=Counter)
    fail_reasons: Counter[str] = field(default_factory=Counter)
    converged: bool = False
    converge_s: float = 0.0
    commit_index: int = 0
    verified_ok: int = 0
    lost: list[str] = field(default_factory=list)
    refused_but_present: list[str] = field(default_factory=list)
    uncertain_present: int = 0
    divergence: list[str] = field(default_factory=list)
    log_entries_compared: int = 0
    elapsed_s: float = 0.0
    #: Why the rounds stopped early (a manager that never came back), if they did.
    aborted: str = ""

    @property
    def passed(self) -> bool:
        return (
            self.converged
            and not self.aborted
            and not self.lost
            and not self.refused_but_present
            and not self.divergence
            and self.writes["ok"] > 0
        )

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["writes"] = dict(self.writes)
        d["fail_reasons"] = dict(self.fail_reasons)
        d["lost"] = self.lost[:20]
        d["refused_but_present"] = self.refused_but_present[:20]
        d["divergence"] = self.divergence[:20]
        d["passed"] = self.passed
        return d


def payload_of(name: str) -> bytes:
    """The config data of write ``name``: derived from it, so it can be checked later."""
    return hashlib.sha256(name.encode()).digest() * 2


async def raft_status(
    http: aiohttp.ClientSession, api_url: str, timeout: float = STATUS_TIMEOUT
) -> dict[str, Any] | None:
    """A manager's ``/raft/status``, or None when it does not answer in time."""
    try:
        async with http.get(
            f"{api_url}/raft/status", timeout=aiohttp.ClientTimeout(total=timeout)
        ) as r:
            return await r.json() if r.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None


# -- the run -------------------------------------------------------------------


class Torture:
    """One torture run against the cluster in ``sup``'s directory."""

    def __init__(self, sup: Supervisor, desc: Description, settings: Settings) -> None:
        self.sup = sup
        self.desc = desc
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.tag = f"t{settings.seed}-{os.getpid()}-{int(time.time()) % 100000}"
        self.writes: list[Write] = []
        self.down: set[str] = set()
        self.summary = Summary()
        self.stop_writers = asyncio.Event()
        self.log_path = sup.cdir.path / "torture.jsonl"
        self.url = {m.name: m.api_url for m in desc.members if m.role == "manager"}

    def say(self, msg: str) -> None:
        if not self.s.quiet:
            print(msg, flush=True)

    # -- HTTP ----------------------------------------------------------------

    async def status(self, http: aiohttp.ClientSession, name: str) -> dict[str, Any] | None:
        return await raft_status(http, self.url[name])

    async def leader(self, http: aiohttp.ClientSession) -> str | None:
        up = [n for n in self.url if n not in self.down]
        sts = await asyncio.gather(*(self.status(http, n) for n in up))
        for name, st in zip(up, sts, strict=True):
            if st and st.get("role") == "leader":
                return name
        return None

    # -- writers ---------------------------------------------------------------

    async def writer(self, http: aiohttp.ClientSession, i: int, log: Any) -> None:
        rng = random.Random(self.s.seed * 1000 + i)
        timeout = aiohttp.ClientTimeout(total=self.desc.timing.request_timeout * 3 + 2.0)
        pause = 1.0 / self.s.rate if self.s.rate > 0 else 0.0
        seq = 0
        while not self.stop_writers.is_set():
            seq += 1
            up = [n for n in self.url if n not in self.down] or list(self.url)
            w = Write(f"{self.tag}-w{i}-{seq}", i, rng.choice(up), time.time())
            self.writes.append(w)
            body = {
                "Name": w.name,
                "Labels": {"torture": self.tag},
                "Data": base64.b64encode(payload_of(w.name)).decode(),
            }
            try:
                async with http.post(
                    f"{self.url[w.manager]}/configs/create", json=body, timeout=timeout
                ) as r:
                    w.status = r.status
                    text = await r.text()
                if 200 <= r.status < 300:
                    w.outcome = "ok"
                else:
                    w.outcome = "fail"
                    w.detail = text[:200]
            except aiohttp.ClientConnectorError:
                w.outcome, w.detail = "fail", "connection refused"
            except (aiohttp.ClientError, TimeoutError) as exc:
                w.outcome, w.detail = "unknown", type(exc).__name__
            w.end = time.time()
            self.summary.writes[w.outcome] += 1
            if w.outcome == "fail":
                self.summary.fail_reasons[_reason(w)] += 1
            log.write(
                json.dumps(
                    {
                        "t": w.end,
                        "node": f"writer{i}",
                        "type": "client",
                        "op": "config create",
                        "key": w.name,
                        "via": w.manager,
                        "start": w.start,
                        "end": w.end,
                        "result": w.outcome,
                        "status": w.status,
                    }
                )
                + "\n"
            )
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_writers.wait(), rng.uniform(0, 2 * pause))

    # -- rounds ----------------------------------------------------------------

    async def wait_ready(self, http: aiohttp.ClientSession, name: str) -> bool:
        async for _ in async_attempts(self.s.ready_timeout, every=0.05):
            if await self.status(http, name) is not None:
                return True
        return False

    async def one_round(self, http: aiohttp.ClientSession, n: int) -> None:
        leader = await self.leader(http)
        if leader is not None and self.rng.random() < self.s.leader_kill:
            victim = leader
        else:
            victim = self.rng.choice(sorted(self.url))
        if victim == leader:
            self.summary.leader_kills += 1
        self.down.add(victim)
        await asyncio.to_thread(self.sup.kill, victim)
        down_for = self.rng.uniform(self.s.down_min, self.s.down_max)
        await asyncio.sleep(down_for)
        await asyncio.to_thread(self.sup.restart, victim)
        ready = await self.wait_ready(http, victim)
        self.down.discard(victim)
        if not ready:
            raise ClusterError(f"{victim} did not answer within {self.s.ready_timeout:g}s")
        await asyncio.sleep(self.rng.uniform(self.s.settle_min, self.s.settle_max))
        self.summary.rounds = n
        w = self.summary.writes
        role = " (leader)" if victim == leader else ""
        self.say(
            f"round {n}/{self.s.rounds}: killed {victim}{role} for {down_for:.2f}s; "
            f"writes ok {w['ok']} fail {w['fail']} unknown {w['unknown']}"
        )

    # -- convergence and checks -----------------------------------------------

    async def converge(self, http: aiohttp.ClientSession) -> dict[str, dict[str, Any]] | None:
        """Wait until all managers agree on leader, term, commit and applied."""
        names = sorted(self.url)
        async for _ in async_attempts(self.s.converge_timeout, every=0.2):
            sts = await asyncio.gather(*(self.status(http, n) for n in names))
            if all(sts):
                by = dict(zip(names, sts, strict=True))
                fields = ("leader", "term", "commit_index", "applied_index")
                keys = {tuple(st.get(f) for f in fields) for st in by.values()}
                leaders = [n for n, st in by.items() if st.get("role") == "leader"]
                if len(keys) == 1 and len(leaders) == 1:
                    (_, _, commit, applied) = keys.pop()
                    if commit == applied:
                        return by
        return None

    async def listings(self, http: aiohttp.ClientSession, name: str) -> dict[str, Any]:
        out = {}
        for kind in COMPARED:
            async with http.get(
                f"{self.url[name]}/{kind}",
                params={"consistency": "local"},
                timeout=aiohttp.ClientTimeout(total=60),
            ) as r:
                if r.status != 200:
                    raise ClusterError(f"{name}: GET /{kind} answered {r.status}")
                out[kind] = await r.json()
        return out

    async def verify_live(self, http: aiohttp.ClientSession) -> None:
        """Compare every manager's replica at one applied index; check every write."""
        s = self.summary
        started = time.monotonic()
        for _attempt in range(10):
            before = await self.converge(http)
            if before is None:
                break
            views = {n: await self.listings(http, n) for n in sorted(self.url)}
            after = await self.converge(http)
            if after is not None and all(
                after[n]["applied_index"] == before[n]["applied_index"] for n in before
            ):
                s.converged = True
                s.converge_s = time.monotonic() - started
                s.commit_index = next(iter(after.values()))["commit_index"]
                break
        if not s.converged:
            s.divergence.append(
                f"managers did not converge within {self.s.converge_timeout:g}s"
                " (leader, term, commit and applied index equal on all)"
            )
            return
        names = sorted(views)
        first = views[names[0]]
        for n in names[1:]:
            for kind in COMPARED:
                if views[n][kind] != first[kind]:
                    s.divergence.append(f"GET /{kind} differs between {names[0]} and {n}")
        for n in names:
            present = {
                c["Spec"]["Name"]: c["Spec"].get("Data", "")
                for c in views[n]["configs"]
                if c.get("Spec", {}).get("Labels", {}).get("torture") == self.tag
            }
            for w in self.writes:
                data = present.get(w.name)
                if w.outcome == "ok":
                    want = base64.b64encode(payload_of(w.name)).decode()
                    if data is None:
                        s.lost.append(f"{w.name} (acknowledged by {w.manager}) missing on {n}")
                    elif data != want:
                        s.lost.append(f"{w.name}: wrong data on {n}")
                elif data is not None and w.status is not None and 400 <= w.status < 500:
                    s.refused_but_present.append(f"{w.name} ({w.status}) present on {n}")
        lost = {item.split(" ", 1)[0].rstrip(":") for item in s.lost}
        s.verified_ok = sum(1 for w in self.writes if w.outcome == "ok" and w.name not in lost)
        present0 = {c["Spec"]["Name"] for c in first["configs"]}
        s.uncertain_present = sum(
            1 for w in self.writes if w.outcome != "ok" and w.name in present0
        )

    async def run(self) -> Summary:
        started = time.monotonic()
        deadline = started + self.s.max_seconds
        async with aiohttp.ClientSession() as http:
            with self.log_path.open("a") as log:
                async with asyncio.TaskGroup() as tg:
                    for i in range(self.s.writers):
                        tg.create_task(self.writer(http, i, log))
                    try:
                        for n in range(1, self.s.rounds + 1):
                            if time.monotonic() >= deadline:
                                self.say(f"stopping after {n - 1} rounds: --max-seconds reached")
                                break
                            await self.one_round(http, n)
                    except ClusterError as exc:
                        # The rounds stop, but what was acknowledged so far is
                        # still verified below; the run counts as failed.
                        self.summary.aborted = str(exc)
                        self.say(f"rounds aborted: {exc}")
                    finally:
                        self.stop_writers.set()
            self.say("healing: every manager running, no network rules; waiting to converge")
            await asyncio.to_thread(self.heal)
            await self.verify_live(http)
        self.summary.elapsed_s = time.monotonic() - started
        return self.summary

    def heal(self) -> None:
        self.sup.restore()
        self.down.clear()


def _reason(w: Write) -> str:
    if w.status is None:
        return w.detail
    if w.status == 503:
        text = w.detail.lower()
        words = ("no quorum", "timed out", "not the leader", "no leader", "could not be reached")
        for word in words:
            if word in text:
                return f"503 {word}"
        return "503"
    return str(w.status)


# -- the logs on disk ----------------------------------------------------------


def compare_disk_logs(cdir: ClusterDir, desc: Description, summary: Summary) -> None:
    """Open each stopped manager's Raft log: committed entries must be equal on all (§5.3)."""
    from raft.runtime.disk import CorruptLogError, DiskStorage

    states = {}
    for m in desc.members:
        try:
            with DiskStorage(cdir.node_dir(m.name) / "raft" / "raft") as storage:
                states[m.name] = storage.load()
        except CorruptLogError as exc:
            summary.divergence.append(f"{m.name}: {exc}")
            return
    low = max(st.snapshot.meta.index for st in states.values()) + 1
    high = min(st.hard_state.commit for st in states.values())
    compared = 0
    for index in range(low, high + 1):
        seen = {}
        for name, st in states.items():
            pos = index - st.snapshot.meta.index - 1
            if not 0 <= pos < len(st.entries):
                summary.divergence.append(f"{name} has no entry {index} at or below commit")
                return
            e = st.entries[pos]
            seen[name] = (e.term, e.kind, e.data)
        if len(set(seen.values())) != 1:
            terms = {n: v[0] for n, v in seen.items()}
            summary.divergence.append(f"committed entry {index} differs: terms {terms}")
            return
        compared += 1
    summary.log_entries_compared = compared


# -- command line --------------------------------------------------------------


def run(settings: Settings, path: Path | None = None, keep: bool = False) -> Summary:
    """Start (or use) a cluster, torture it, verify, and always stop what was started."""
    tmp = None
    if path is None:
        tmp = tempfile.mkdtemp(prefix="swarmraft-torture-")
        path = Path(tmp)
    cdir = ClusterDir(path.resolve())
    sup = Supervisor(cdir)
    owned = True
    if cdir.exists():
        desc = cdir.load()
        owned = not any(sup.process_state(m) != "down" for m in desc.members)
    try:
        if owned:
            timing = Timing(snapshot_entries=settings.snapshot_entries)
            managers = None if cdir.exists() else settings.managers
            desc = sup.up(managers, timing=timing, progress=_progress(settings))
        else:
            desc = cdir.load()
            _progress(settings)(f"using the cluster running in {cdir.path}; it stays running")
        summary = asyncio.run(Torture(sup, desc, settings).run())
        if owned:
            sup.down()
            compare_disk_logs(cdir, cdir.load(), summary)
        return summary
    finally:
        if owned:
            try:
                sup.down()
            finally:
                _kill_leftovers(cdir)
            if tmp is not None and not keep:
                import shutil

                shutil.rmtree(tmp, ignore_errors=True)


def _progress(settings: Settings) -> Any:
    return (lambda _m: None) if settings.quiet else (lambda m: print(m, flush=True))


def _kill_leftovers(cdir: ClusterDir) -> None:
    """Last resort: SIGKILL any live process the cluster recorded."""
    Supervisor(cdir).kill_all()


def format_summary(s: Summary) -> str:
    w = s.writes
    lines = [
        f"rounds: {s.rounds} ({s.leader_kills} leader kills) in {s.elapsed_s:.1f}s",
        f"writes: ok {w['ok']}  fail {w['fail']}  unknown {w['unknown']}"
        + (f"  (fail: {dict(s.fail_reasons.most_common(6))})" if s.fail_reasons else ""),
        f"converged: {'yes' if s.converged else 'NO'} at commit index {s.commit_index}"
        f" ({s.converge_s:.1f}s)",
        f"verified: {s.verified_ok} acknowledged writes on every manager; "
        f"{s.uncertain_present} failed/unknown writes committed anyway; "
        f"{s.log_entries_compared} committed log entries identical on disk",
    ]
    for label, items in (
        ("ABORTED", [s.aborted] if s.aborted else []),
        ("LOST", s.lost),
        ("REFUSED BUT PRESENT", s.refused_but_present),
        ("DIVERGENCE", s.divergence),
    ):
        for item in items[:10]:
            lines.append(f"{label}: {item}")
    lines.append("PASSED" if s.passed else "FAILED")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scenarios.torture",
        description="SIGKILL managers under write load; check no acknowledged write is lost.",
    )
    p.add_argument("--rounds", type=int, required=True, help="kill/restart rounds")
    p.add_argument("--managers", type=int, choices=(3, 5), default=3)
    p.add_argument("--dir", type=Path, help="cluster directory (default: a temporary one)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--writers", type=int, default=4, help="concurrent writers")
    p.add_argument("--rate", type=float, default=25.0, help="writes/s per writer (0: no pause)")
    p.add_argument("--leader-kill", type=float, default=0.4, help="probability to kill the leader")
    p.add_argument("--max-seconds", type=float, default=3600.0, help="bound on the rounds' time")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    if a.rounds < 0 or a.writers < 1:
        p.error("--rounds must be >= 0 and --writers >= 1")
    settings = Settings(
        rounds=a.rounds,
        managers=a.managers,
        writers=a.writers,
        seed=a.seed,
        rate=a.rate,
        leader_kill=a.leader_kill,
        max_seconds=a.max_seconds,
        quiet=a.quiet or a.json,
    )
    try:
        summary = run(settings, a.dir, keep=a.keep)
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the cluster was stopped", file=sys.stderr)
        return 130
    print(json.dumps(summary.as_dict()) if a.json else format_summary(summary))
    return 0 if summary.passed else 1


if __name__ == "__main__":
    sys.exit(main())
