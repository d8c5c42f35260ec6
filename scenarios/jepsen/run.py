"""The run: clients, nemesis and recorder against real managers, then the check."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import random
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cluster.client.http import Unreachable, exchange
from cluster.client.wait import attempts
from scenarios.checks import CheckResult
from scenarios.drivers.real import RealDriver
from scenarios.jepsen.history import (
    JepsenModel,
    Record,
    Reply,
    classify,
    history_lines,
    to_operation,
)
from scenarios.jepsen.nemesis import Nemesis, fault_intervals, schedule
from scenarios.jepsen.settings import Settings
from scenarios.linearizability import Status, Verdict, check
from scenarios.steps import ClusterSpec

__all__ = ["TITLE", "JepsenOutcome", "Settings", "run_jepsen"]

TITLE = "Jepsen-style test: concurrent clients, random faults, linearizability checked"
NAME = "jepsen"
Progress = Callable[[str], None]


@dataclass(slots=True)
class JepsenOutcome:
    scenario: str
    passed: bool
    out: Path
    duration_s: float
    metrics: dict[str, Any]
    checks: list[CheckResult]
    verdict: Verdict | None = None


# ---------------------------------------------------------------------------
# HTTP, with the one distinction the checker needs: was the request sent?


def call(method: str, url: str, body: Any = None, timeout: float = 5.0) -> Reply:
    """One request; never raises.  A refused connection is the only "not sent"."""
    try:
        answer = exchange(method, url, body, timeout=timeout)
    except Unreachable as e:
        return Reply(error=str(e), sent=e.sent)
    try:
        payload = answer.json()
    except ValueError:
        payload = {"message": answer.raw.decode(errors="replace")}
    return Reply(answer.status, payload, served_by=answer.headers.get("X-Swarmraft-Served-By"))


# ---------------------------------------------------------------------------
# The history recorder


class Clock:
    """Monotonic time, reported as absolute Unix seconds (one offset for the run)."""

    def __init__(self) -> None:
        self.mono0 = time.monotonic()
        self.wall0 = time.time()

    def now(self) -> float:
        return self.wall0 + (time.monotonic() - self.mono0)


class Recorder:
    """Every operation of every client, in completion order; thread-safe."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.records: list[Record] = []
        self.counts = {s: 0 for s in Status}
        self._ids = itertools.count()
        self._lock = threading.Lock()
        #: client -> the operation it is waiting on (recorded as unknown if stuck)
        self.pending: dict[int, Record] = {}

    def invoke(self, client: int, op: str, key: str, inp: Any, node: str) -> Record:
        with self._lock:
            rec = Record(next(self._ids), client, op, key, inp, self.clock.now(), 0.0,
                         Status.INFO, node=node)  # fmt: skip
            self.pending[client] = rec
        return rec

    def complete(self, rec: Record, reply: Reply) -> Record:
        status, output = classify(rec.op, reply)
        with self._lock:
            rec.end = self.clock.now()
            rec.status, rec.output = status, output
            rec.http, rec.served_by = reply.status, reply.served_by
            if status is not Status.OK or reply.status not in (200, None):
                rec.error = reply.error or reply.message or None
            self.pending.pop(rec.client, None)
            self.records.append(rec)
            self.counts[status] += 1
        return rec

    def abandon_pending(self) -> int:
        """Operations whose client is stuck: unknown, ending now.  How many."""
        with self._lock:
            stuck = list(self.pending.values())
            self.pending.clear()
            for rec in stuck:
                rec.end, rec.status, rec.error = self.clock.now(), Status.INFO, "client stuck"
                self.records.append(rec)
                self.counts[Status.INFO] += 1
        return len(stuck)

    def snapshot(self) -> tuple[int, int, int, int]:
        with self._lock:
            c = self.counts
            return len(self.records), c[Status.OK], c[Status.FAIL], c[Status.INFO]


class Versions:
    """Recent versions anyone saw per key: where ``cas`` draws its expectation."""

    def __init__(self, initial: dict[str, int]) -> None:
        self._seen = {k: deque([v], maxlen=5) for k, v in initial.items()}
        self._lock = threading.Lock()

    def saw(self, key: str, version: int | None) -> None:
        if isinstance(version, int):
            with self._lock:
                if version not in self._seen[key]:
                    self._seen[key].append(version)

    def pick(self, key: str, rng: random.Random) -> int:
        with self._lock:
            return rng.choice(list(self._seen[key]))


class Client(threading.Thread):
    """One client: operations back to back on random managers until told to stop."""

    def __init__(self, n: int, ctx: _Context, rng: random.Random) -> None:
        super().__init__(name=f"jepsen-client-{n}", daemon=True)
        self.n = n
        self.ctx = ctx
        self.rng = rng
        self.node = rng.choice(ctx.names)
        #: the version this client last saw per key (None: read it first)
        self.known: dict[str, int | None] = dict(ctx.initial_versions)
        self._values = itertools.count(1)

    def run(self) -> None:
        ctx, rng = self.ctx, self.rng
        while not ctx.stop.is_set():
            key = rng.choice(ctx.keys)
            roll = rng.random()
            if self.known[key] is None or roll < 0.5:
                op = "read"
            else:
                op = "write" if roll < 0.75 else "cas"
            self.do(op, key)
            ctx.stop.wait(rng.uniform(0.0, 0.02))

    def do(self, op: str, key: str) -> Record:
        ctx = self.ctx
        url = ctx.urls[self.node]
        if op in ("read", "final-read"):
            rec = ctx.recorder.invoke(self.n, op, key, None, self.node)
            reply = call("GET", f"{url}/configs/{key}", timeout=ctx.timeout)
        else:
            expected = self.known[key] if op == "write" else ctx.versions.pick(key, self.rng)
            value = f"{self.n}.{next(self._values)}"
            rec = ctx.recorder.invoke(self.n, op, key, (expected, value), self.node)
            reply = call(
                "POST", f"{url}/configs/{key}/update?version={expected}",
                {"Labels": {"value": value}}, timeout=ctx.timeout,
            )  # fmt: skip
        rec = ctx.recorder.complete(rec, reply)
        if rec.status is Status.OK:
            version = rec.output[0] if rec.op in ("read", "final-read") else rec.output
            if version is None:  # a 409: our view of this key is stale
                self.known[key] = None
            else:
                self.known[key] = version
                ctx.versions.saw(key, version)
        else:
            if rec.op not in ("read", "final-read"):
                self.known[key] = None  # unknown: the version may have moved
            self.node = self.rng.choice(ctx.names)
        return rec


@dataclass
class _Context:
    names: list[str]
    urls: dict[str, str]
    keys: list[str]
    initial_versions: dict[str, int]
    recorder: Recorder
    versions: Versions
    timeout: float
    stop: threading.Event = field(default_factory=threading.Event)


# ---------------------------------------------------------------------------
# The run


def run_jepsen(
    settings: Settings, out_root: Path, progress: Progress = lambda _: None
) -> JepsenOutcome:
    """Run the test; the cluster is always stopped.  See the module docstring."""
    s = settings
    out = out_root / NAME
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    if s.keep or s.cluster_dir is not None:
        cluster_dir = s.cluster_dir or out / "cluster"
    else:
        cluster_dir = Path(tempfile.mkdtemp(prefix="swarmraft-jepsen-")) / "cluster"
    spec = ClusterSpec(managers=s.managers)
    driver = RealDriver(spec, cluster_dir, netns=s.netns)
    names = spec.names
    wall0 = time.monotonic()
    say = progress
    keys = [f"jepsen-k{i}" for i in range(s.keys)]
    faults = schedule(s.seed, s.duration, names)
    client_timeout = spec.request_timeout_ms / 1000 * 1.25 + 2.5
    recorder: Recorder | None = None
    nemesis: Nemesis | None = None
    initial: dict[str, tuple[int, Any]] = {}
    checks: list[CheckResult] = []
    t_start = t_end = time.time()
    try:
        say(f"[{NAME}] starting {s.managers} managers in {cluster_dir}")
        driver.start()
        initial = _create_keys(driver, keys)
        say(f"[{NAME}] {len(keys)} registers: {', '.join(keys)}; {len(faults)} faults planned "
            f"(seed {s.seed}); {s.clients} clients for {s.duration:g} s")  # fmt: skip
        clock = Clock()
        recorder = Recorder(clock)
        ctx = _Context(
            names, _api_urls(driver), keys, {k: v for k, (v, _) in initial.items()}, recorder,
            Versions({k: v for k, (v, _) in initial.items()}), client_timeout,
        )  # fmt: skip
        rng = random.Random(s.seed)
        clients = [Client(n, ctx, random.Random(rng.random())) for n in range(s.clients)]
        nemesis = Nemesis(driver, faults, lambda m: say(f"[{NAME}] +{_el(clock):6.2f}s  {m}"))
        t_start = clock.now()
        for c in clients:
            c.start()
        nemesis.start(clock.mono0)
        while (elapsed := _el(clock)) < s.duration:
            time.sleep(min(s.progress_every, s.duration - elapsed))
            n, ok, fail, info = recorder.snapshot()
            fault = nemesis.current or "no fault"
            say(f"[{NAME}] +{_el(clock):6.2f}s  ops {n}  ok {ok}  fail {fail}  "
                f"unknown {info}  | {fault}")  # fmt: skip
        ctx.stop.set()
        say(f"[{NAME}] +{_el(clock):6.2f}s  stopping: healing every fault, "
            "letting clients finish")  # fmt: skip
        nemesis.finish()
        _everyone_up(driver, say)
        bound = time.monotonic() + client_timeout + 2.0
        for c in clients:
            c.join(max(0.0, bound - time.monotonic()))
        stuck = [c.n for c in clients if c.is_alive()]
        abandoned = recorder.abandon_pending() if stuck else 0
        checks.append(CheckResult(
            "clients finished", not stuck,
            f"every client's last operation completed within {client_timeout + 2:.1f} s"
            if not stuck else
            f"clients {stuck} still waiting; {abandoned} operation(s) recorded as unknown",
        ))  # fmt: skip
        leader = _await_leader(driver, 30.0)
        checks.append(CheckResult(
            "leader after healing", leader is not None,
            f"{leader} leads once every fault is undone" if leader else
            "no leader within 30 s of healing",
        ))  # fmt: skip
        final_ok = _final_reads(clients, keys, deadline=time.monotonic() + 20.0)
        checks.append(CheckResult(
            "final reads", final_ok,
            "every client read every key once everything healed" if final_ok else
            "some final reads never succeeded within 20 s",
        ))  # fmt: skip
        t_end = clock.now()
        with contextlib.suppress(Exception):
            driver.trace_log()
    except Exception as e:
        checks.append(CheckResult("run", False, f"the run stopped early: {type(e).__name__}: {e}"))
        say(f"[{NAME}] error: {e}")
        if recorder is not None:
            recorder.abandon_pending()
        t_end = time.time()
    finally:
        if nemesis is not None:
            nemesis.cancel()
        driver.stop()
        with contextlib.suppress(OSError):
            shutil.copyfile(cluster_dir / "faults.jsonl", out / "faults.jsonl")
        with contextlib.suppress(OSError):
            driver.collect_traces(out / "traces")
        if not (s.keep or s.cluster_dir is not None):
            shutil.rmtree(cluster_dir.parent, ignore_errors=True)
    records = sorted(recorder.records if recorder else [], key=lambda r: (r.invoke, r.id))
    return _finish(s, out, records, initial, nemesis, checks, t_start, t_end, wall0, say)


def _el(clock: Clock) -> float:
    return time.monotonic() - clock.mono0


def _api_urls(driver: RealDriver) -> dict[str, str]:
    return {m.name: m.api_url for m in driver.cdir.load().members}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _create_keys(driver: RealDriver, keys: list[str]) -> dict[str, tuple[int, Any]]:
    """Create each register and read it back linearizably: its (version, value)."""
    initial: dict[str, tuple[int, Any]] = {}
    for _ in attempts(30.0, every=0.2):
        missing = [k for k in keys if k not in initial]
        if not missing:
            return initial
        leader = driver.leader()
        if leader is None:
            continue
        url = _api_urls(driver)[leader]
        key = missing[0]
        body = {"Name": key, "Labels": {"value": "init"}, "Data": _b64("jepsen register")}
        made = call("POST", f"{url}/configs/create", body, timeout=5.0)
        if made.status not in (201, 409):  # 409: an earlier attempt did create it
            continue
        got = call("GET", f"{url}/configs/{key}", timeout=5.0)
        if got.status == 200:
            _status, (version, value) = classify("read", got)
            initial[key] = (version, value)
    missing = [k for k in keys if k not in initial]
    if missing:
        raise RuntimeError(f"could not create the register {missing[0]}")
    return initial


def _everyone_up(driver: RealDriver, say: Progress) -> None:
    """After the nemesis: no partition, nobody paused, every manager running."""
    try:
        for done in driver.sup.restore():
            say(f"[{NAME}] {done}")
    except Exception as e:  # the history is still checked; the run reports what it can
        say(f"[{NAME}] could not bring every manager back: {e}")


def _await_leader(driver: RealDriver, timeout: float) -> str | None:
    for _ in attempts(timeout, every=0.2):
        leader = driver.leader()
        if leader is not None:
            return leader
    return None


def _final_reads(clients: list[Client], keys: list[str], deadline: float) -> bool:
    """Every client reads every key until it succeeds (or the deadline passes)."""
    done = True
    for c in clients:
        for key in keys:
            while True:
                if c.do("final-read", key).status is Status.OK:
                    break
                if time.monotonic() > deadline:
                    done = False
                    break
                time.sleep(0.2)
    return done


# ---------------------------------------------------------------------------
# Check, draw, write


def _finish(
    s: Settings,
    out: Path,
    records: list[Record],
    initial: dict[str, tuple[int, Any]],
    nemesis: Nemesis | None,
    checks: list[CheckResult],
    t_start: float,
    t_end: float,
    wall0: float,
    say: Progress,
) -> JepsenOutcome:
    from scenarios.jepsen import report as jepsen_report

    (out / "history.jsonl").write_text("".join(line + "\n" for line in history_lines(records)))
    ops = [to_operation(r) for r in records]
    say(f"[{NAME}] checking {len(ops)} operations on {len(initial)} keys for linearizability")
    c0 = time.perf_counter()
    verdict = check(ops, JepsenModel(initial), max_states=s.max_states) if initial else None
    check_s = time.perf_counter() - c0
    ok = sum(r.status is Status.OK for r in records)
    fail = sum(r.status is Status.FAIL for r in records)
    unknown = sum(r.status is Status.INFO for r in records)
    injected = nemesis.injected if nemesis else 0
    if verdict is None:
        checks.insert(0, CheckResult("history is linearizable", False, "no history was recorded"))
    else:
        detail = (
            f"{len(ops)} operations on {len(verdict.keys)} keys, "
            f"{verdict.states} states explored in {check_s:.2f} s"
        )
        if verdict.ok is False:
            detail += f"; {len(verdict.violations)} key(s) NOT linearizable (see report.md)"
        elif verdict.ok is None:
            detail += "; undecided: the search budget ran out"
        checks.insert(0, CheckResult("history is linearizable", verdict.ok is True, detail))
    applied = sum(
        r.op in ("write", "cas") and r.status is Status.OK and r.output is not None for r in records
    )
    checks.insert(1, CheckResult(
        "non-trivial history", ok > s.min_ok,
        f"{ok} ok operations (more than {s.min_ok} needed), {applied} writes applied",
    ))  # fmt: skip
    checks.insert(2, CheckResult(
        "faults injected", injected >= 1,
        f"{injected} of {len(nemesis.faults) if nemesis else 0} planned faults injected"
        + (f"; errors: {'; '.join(nemesis.errors)}" if nemesis and nemesis.errors else ""),
    ))  # fmt: skip
    fault_lines = _read_faults(out / "faults.jsonl")
    metrics: dict[str, Any] = {
        "ops": len(records),
        "ok": ok,
        "fail": fail,
        "unknown": unknown,
        "keys": len(initial),
        "states_explored": verdict.states if verdict else 0,
        "check_seconds": round(check_s, 3),
        "refused_409": sum(r.http == 409 for r in records),
        "ops_per_key": {str(k): r.ops for k, r in verdict.keys.items()} if verdict else {},
        "clients": s.clients,
        "managers": s.managers,
        "seed": s.seed,
        "duration_s": s.duration,
        "faults_injected": injected,
        "fault_windows": len(fault_intervals(fault_lines, t_end)),
        "ok_per_s": round(ok / max(s.duration, 1e-9), 1),
        "network": "netns" if s.netns else "transport",
    }
    passed = all(c.passed for c in checks)
    metrics["wall_s"] = round(time.monotonic() - wall0, 2)
    result = {
        "scenario": NAME,
        "passed": passed,
        "mode": "real",
        "seed": s.seed,
        "checks": [c.as_json() for c in checks],
        "metrics": metrics,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    figures = jepsen_report.draw(out, records, fault_lines, t_start, t_end, s, say)
    jepsen_report.write_note(out, s, records, verdict, checks, metrics, fault_lines,
                             t_start, t_end, figures, passed)  # fmt: skip
    _write_replay(out, say)
    duration = time.monotonic() - wall0
    verdict_word = "PASSED" if passed else "FAILED"
    say(f"[{NAME}] {verdict_word} in {duration:.1f} s: {len(records)} ops ({ok} ok, {fail} fail, "
        f"{unknown} unknown), checked in {check_s:.2f} s: {out / 'report.md'}")  # fmt: skip
    return JepsenOutcome(NAME, passed, out, duration, metrics, checks, verdict)


def _read_faults(path: Path) -> list[dict[str, Any]]:
    lines = []
    with contextlib.suppress(OSError):
        for raw in path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
    return lines


def _write_replay(out: Path, say: Progress) -> None:
    """``replay.html``: the run played back, each fault the nemesis injected an event."""
    from viz.model import TraceError
    from viz.replay import write_replay

    try:
        write_replay(out / "traces", out / "replay.html", "Jepsen-style test: the run played back")
    except (TraceError, OSError) as e:
        say(f"[{NAME}] no replay page: {e}")
