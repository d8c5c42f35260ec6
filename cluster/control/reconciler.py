"""The leader's driver of the control loop: incremental passes, and a full one now and then.

Theory of operation
-------------------
`ControlLoop` (`cluster.control.orchestrator`) is pure and remembers
nothing.  Run in full on every duty tick, it made each write cost more the
bigger the swarm was: with thousands of services the leader spent its time
re-deciding about objects nobody had touched.  `Reconciler` remembers three
things between passes, all of them only to save work:

* the store's applied index at its previous pass (the *cursor*), so the
  next pass asks the store what changed since (`Store.changes_since`) and
  looks only there;
* the services its previous pass proposed commands for, which it looks at
  once more: should one of those commands be lost (a leader change, a
  timeout), no change would ever name the service again;
* the wake-ups the loop asked for (`Pass.wake`: a restart delay, a down
  node's grace period, an update's delay end at a known time).

And it falls back to a full pass when it cannot trust what it remembers:
on its first pass and after `reset` (the manager calls it on becoming
leader), when the store cannot say what changed (`changes_since` gives
``None`` after a snapshot was installed), and every `FULL_EVERY` seconds in
any case, to repair whatever a bug in the incremental scope would miss.
Losing its memory therefore costs one full pass, never a wrong decision.

A full pass is a *sweep*, cut into chunks
-----------------------------------------
With 10,000 services and 20,000 tasks one full pass took 0.16-0.7 s of
the leader's event loop, longer than an election timeout (0.3 s by
default): while it ran no heartbeat left, the followers started an
election, the new leader began with a full pass of its own, and leadership
went round the managers for ever (term 199 in ten minutes, measured).  So
a full pass is a sweep over every service, at most `SWEEP_BUDGET` objects
(a service plus its tasks) per step, and the caller yields to its event
loop between steps.  A chunk's pass is an incremental pass whose scope is
widened by the chunk's services, so it proposes for them exactly what a
full pass would; whatever changes during the sweep is in the change log,
and a service that changed before the sweep began is still ahead of it.
A store small enough to fit one chunk gets one plain full pass, as before.
"""

from __future__ import annotations

from cluster.control.orchestrator import ControlLoop
from cluster.state import objects as o
from cluster.state.store import Store

__all__ = ["FULL_EVERY", "SWEEP_BUDGET", "Reconciler"]

#: Seconds between the starts of two full sweeps while leading.
FULL_EVERY = 10.0
#: Objects (each service counts 1 plus its tasks) one step of a sweep looks at:
#: a few tens of milliseconds of the leader's loop, well inside an election timeout.
SWEEP_BUDGET = 2_000
#: A wake-up this close ahead counts as due: one pass early is harmless (it
#: finds nothing to do), one too late would wait for the next change.
WAKE_SLACK = 1e-3


class Reconciler:
    """Runs `ControlLoop` on what changed since its last pass; in full (a sweep) when in doubt."""

    def __init__(
        self,
        loop: ControlLoop | None = None,
        full_every: float = FULL_EVERY,
        sweep_budget: int = SWEEP_BUDGET,
    ) -> None:
        self.loop = loop or ControlLoop()
        self.full_every = full_every
        self.sweep_budget = sweep_budget
        self._cursor: int | None = None
        self._next_full = 0.0
        self._revisit: set[str] = set()
        self._wake: dict[str, float] = {}
        #: Services the current sweep has still to visit, the next one last.
        self._sweep: list[str] = []
        #: Passes done, by kind (a sweep counts as one full pass, its later
        #: chunks as incremental ones): for tests and the curious.
        self.passes = {"full": 0, "incremental": 0}

    def reset(self) -> None:
        """Forget everything: the next pass starts a full sweep (a new leadership starts here)."""
        self._cursor = None
        self._revisit.clear()
        self._wake.clear()
        self._sweep.clear()

    @property
    def sweeping(self) -> bool:
        """A sweep is under way: the caller should step again soon (after yielding)."""
        return bool(self._sweep)

    def step(self, store: Store, now: float) -> list[bytes]:
        """The commands to propose now; see `ControlLoop.step`."""
        changes = None
        if self._cursor is not None:
            changes = store.changes_since(self._cursor)
        cursor = store.applied_index
        starting = changes is None or (not self._sweep and now >= self._next_full)
        if starting:
            # Every service, plus the removed ones that still own tasks.
            everything = {s["ID"] for s in store.list(o.SERVICE)} | store.task_services()
            self._sweep = sorted(everything, reverse=True)
            self._next_full = now + self.full_every
            self.passes["full"] += 1
        chunk = self._take_chunk(store)
        if starting and not self._sweep:
            # The whole sweep fits one step: a plain full pass.
            work = self.loop.run(store, now)
            self._wake.clear()
        else:
            if not starting:
                self.passes["incremental"] += 1
            due = {s for s, when in self._wake.items() if when <= now + WAKE_SLACK}
            # Changes unknown: the sweep just started covers everything before `cursor`.
            work = self.loop.run(store, now, changes or set(), also=due | self._revisit | chunk)
            for service_id in due:
                del self._wake[service_id]
        self._cursor = cursor
        self._revisit = work.revisit
        for service_id, when in work.wake.items():
            self._wake[service_id] = min(when, self._wake.get(service_id, when))
        return work.commands

    def _take_chunk(self, store: Store) -> set[str]:
        """The next services of the sweep, up to `sweep_budget` objects (at least one service)."""
        chunk: set[str] = set()
        cost = 0
        while self._sweep and cost < self.sweep_budget:
            service_id = self._sweep.pop()
            chunk.add(service_id)
            cost += 1 + store.task_count(service_id)
        return chunk
