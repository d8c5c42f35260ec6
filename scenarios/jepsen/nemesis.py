"""The Jepsen test's nemesis: a seeded schedule of faults, and the thread that plays it.

The schedule is a pure function of (seed, duration, managers): a list of
`Fault` windows, one at a time, each followed by a quiet gap so the cluster
can elect and catch up before the next blow.  Four kinds:

* ``partition``: the managers split at random into a minority and a majority
  (with 5 managers, 2 | 3); heal ends it;
* ``isolate-leader``: whoever leads when the window opens is cut off alone;
* ``kill``: SIGKILL of the leader or of a random manager; restart ends it;
* ``pause``: SIGSTOP of the leader or of a random manager; SIGCONT ends it.

Only "the leader" is decided when the window opens (who leads is not
seeded); everything else, times included, comes from the seed.  The
supervisor records every fault in ``DIR/faults.jsonl``, which is what the
figure shades.  `Nemesis.finish` undoes whatever is still in force.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KINDS", "Fault", "Interval", "Nemesis", "fault_intervals", "schedule"]

KINDS = ("partition", "isolate-leader", "kill", "pause")
LEADER = "leader"


@dataclass(frozen=True, slots=True)
class Fault:
    """One planned fault: from ``start`` to ``end`` seconds after the clients start."""

    start: float
    end: float
    kind: str
    #: kill/pause: a manager name or "leader"; partition: the groups.
    target: Any = None

    def describe(self) -> str:
        if self.kind == "partition":
            return "partition " + " | ".join(",".join(g) for g in self.target)
        if self.kind == "isolate-leader":
            return "isolate the leader"
        return f"{self.kind} {'the leader' if self.target == LEADER else self.target}"


def schedule(
    seed: int,
    duration: float,
    names: list[str],
    *,
    warmup: float = 1.0,
    length: tuple[float, float] = (1.5, 4.0),
    gap: tuple[float, float] = (1.0, 2.5),
) -> list[Fault]:
    """The faults of a run, in order; every one ends by ``duration - 0.5``."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    t = warmup
    while True:
        kind = rng.choice(KINDS)
        span = rng.uniform(*length)
        if t + span > duration - 0.5:
            # Still give a short run at least one fault, if it fits at all.
            span = min(span, duration - 0.5 - t)
            if faults or span < 0.5:
                break
        target: Any = None
        if kind == "partition":
            shuffled = rng.sample(names, len(names))
            minority = rng.randint(1, (len(names) - 1) // 2) if len(names) > 2 else 1
            target = [sorted(shuffled[:minority]), sorted(shuffled[minority:])]
        elif kind in ("kill", "pause"):
            target = LEADER if rng.random() < 0.5 else rng.choice(names)
        faults.append(Fault(round(t, 3), round(t + span, 3), kind, target))
        t += span + rng.uniform(*gap)
    return faults


@dataclass(frozen=True, slots=True)
class Interval:
    start: float
    end: float
    kind: str
    label: str
    #: a few characters for a figure: ``kill m3``, ``cut m1,m2`` (the minority side)
    short: str = ""


def fault_intervals(lines: list[dict[str, Any]], end: float) -> list[Interval]:
    """Fault windows from ``faults.jsonl`` lines (absolute times), for shading.

    kill..restart and pause..unpause pair up per manager; a partition lasts
    until the next partition or heal.  Anything still open ends at ``end``.
    """
    out: list[Interval] = []
    open_kill: dict[str, float] = {}
    open_pause: dict[str, float] = {}
    part: tuple[float, str] | None = None
    for rec in sorted(lines, key=lambda r: r.get("t", 0.0)):
        kind, t, who = rec.get("kind"), float(rec.get("t", 0.0)), rec.get("target")
        if kind == "kill":
            open_kill[who] = t
        elif kind == "restart" and who in open_kill:
            out.append(_interval(open_kill.pop(who), t, "kill", who))
        elif kind == "pause":
            open_pause[who] = t
        elif kind == "unpause" and who in open_pause:
            out.append(_interval(open_pause.pop(who), t, "pause", who))
        elif kind in ("partition", "heal"):
            if part is not None:
                out.append(_interval(part[0], t, "partition", part[1]))
                part = None
            if kind == "partition":
                part = (t, rec.get("groups") or [])
    for who, t in open_kill.items():
        out.append(_interval(t, end, "kill", who))
    for who, t in open_pause.items():
        out.append(_interval(t, end, "pause", who))
    if part is not None:
        out.append(_interval(part[0], end, "partition", part[1]))
    return sorted(out, key=lambda i: i.start)


def _short(name: str) -> str:
    return name.replace("manager", "m")


def _interval(start: float, end: float, kind: str, what: Any) -> Interval:
    if kind != "partition":
        return Interval(start, end, kind, f"{kind} {what}", f"{kind} {_short(str(what))}")
    groups = [list(g) for g in what]
    label = "partition " + " | ".join(",".join(g) for g in groups)
    small = min(groups, key=len) if groups else []
    return Interval(start, end, kind, label, "cut " + ",".join(_short(n) for n in small))


@dataclass
class Nemesis:
    """Plays a schedule against a `scenarios.drivers.real.RealDriver` in its own thread."""

    driver: Any
    faults: list[Fault]
    say: Callable[[str], None]
    #: monotonic time the schedule's zero stands for
    t0: float = 0.0
    injected: int = 0
    errors: list[str] = field(default_factory=list)
    current: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _undo: list[tuple[str, str | None]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self, t0: float) -> None:
        self.t0 = t0
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        self._thread.start()

    def _wait_until(self, t: float) -> bool:
        """Sleep until schedule time ``t``; False if told to stop first."""
        return not self._stop.wait(max(0.0, self.t0 + t - time.monotonic()))

    def _run(self) -> None:
        for f in self.faults:
            if not self._wait_until(f.start):
                return
            try:
                what = self._inject(f)
            except Exception as e:  # a fault that cannot be done is reported, not fatal
                self.errors.append(f"{f.describe()}: {e}")
                self.say(f"nemesis: could not {f.describe()}: {e}")
                continue
            self.injected += 1
            self.current = what
            self.say(f"nemesis: {what}")
            if not self._wait_until(f.end):
                return
            self._heal_all()

    def _inject(self, f: Fault) -> str:
        d = self.driver
        if f.kind == "partition":
            d.partition(f.target)
            self._remember("heal", None)
            return f.describe()
        target = f.target
        if f.kind == "isolate-leader" or target == LEADER:
            target = d.leader()
            if target is None:
                raise RuntimeError("there is no leader right now")
        if f.kind == "isolate-leader":
            d.isolate(target)
            self._remember("heal", None)
            return f"isolate the leader {target}"
        if f.kind == "kill":
            d.kill(target)
            self._remember("restart", target)
        else:
            d.pause(target)
            self._remember("unpause", target)
        return f"{f.kind} {target}" + (" (the leader)" if f.target == LEADER else "")

    def _remember(self, action: str, node: str | None) -> None:
        with self._lock:
            self._undo.append((action, node))

    def _heal_all(self) -> None:
        with self._lock:
            undo, self._undo = self._undo, []
        for action, node in undo:
            try:
                if action == "heal":
                    self.driver.heal()
                else:
                    getattr(self.driver, action)(node)
                self.say(f"nemesis: {action}" + (f" {node}" if node else ""))
            except Exception as e:
                self.errors.append(f"{action} {node or ''}: {e}")
                self.say(f"nemesis: could not {action} {node or ''}: {e}")
        self.current = ""

    def cancel(self) -> None:
        """Play no more of the schedule (what is in force stays; see `finish`)."""
        self._stop.set()

    def finish(self, timeout: float = 30.0) -> None:
        """Stop the schedule and undo whatever fault is still in force."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._heal_all()
