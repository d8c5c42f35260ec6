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
"""

from __future__ import annotations

from cluster.control.orchestrator import ControlLoop
from cluster.state.store import Store

__all__ = ["FULL_EVERY", "Reconciler"]

#: Seconds between two full passes while leading.
FULL_EVERY = 10.0
#: A wake-up this close ahead counts as due: one pass early is harmless (it
#: finds nothing to do), one too late would wait for the next change.
WAKE_SLACK = 1e-3


class Reconciler:
    """Runs `ControlLoop` on what changed since its last pass; in full when in doubt."""

    def __init__(self, loop: ControlLoop | None = None, full_every: float = FULL_EVERY) -> None:
        self.loop = loop or ControlLoop()
        self.full_every = full_every
        self._cursor: int | None = None
        self._next_full = 0.0
        self._revisit: set[str] = set()
        self._wake: dict[str, float] = {}
        #: Passes done, by kind: for tests and the curious.
        self.passes = {"full": 0, "incremental": 0}

    def reset(self) -> None:
        """Forget everything: the next pass is a full one (a new leadership starts here)."""
        self._cursor = None
        self._revisit.clear()
        self._wake.clear()

    def step(self, store: Store, now: float) -> list[bytes]:
        """The commands to propose now; see `ControlLoop.step`."""
        changes = None
        if self._cursor is not None and now < self._next_full:
            changes = store.changes_since(self._cursor)
        cursor = store.applied_index
        if changes is None:
            work = self.loop.run(store, now)
            self._next_full = now + self.full_every
            self._wake.clear()
            self.passes["full"] += 1
        else:
            due = {s for s, when in self._wake.items() if when <= now + WAKE_SLACK}
            work = self.loop.run(store, now, changes, also=due | self._revisit)
            for service_id in due:
                del self._wake[service_id]
            self.passes["incremental"] += 1
        self._cursor = cursor
        self._revisit = work.revisit
        for service_id, when in work.wake.items():
            self._wake[service_id] = min(when, self._wake.get(service_id, when))
        return work.commands
