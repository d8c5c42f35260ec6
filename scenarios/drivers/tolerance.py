"""Measuring a cluster's fault tolerance, for the ``quorum_table`` action.

The measurement is the same on both drivers: write; if that committed,
kill one more manager (followers first, the leader last) and wait for a
leader to settle; stop at the first write that fails.  The count of
failures survived should be (N-1)/2: a majority of N must stay up (§5.2).
"""

from __future__ import annotations

from scenarios.steps import Driver

__all__ = ["tolerance"]


def tolerance(d: Driver, n: int, election_timeout_ms: int) -> int:
    """Start ``d`` (a fresh cluster of ``n`` managers), measure, stop it: how many
    failures still allow a write."""
    try:
        d.start()
        killed = 0
        settle = 4 * election_timeout_ms / 1000
        while True:
            if d.write(0, f"probe-{killed}", "config", None, None).outcome != "ok":
                return killed - 1
            if killed == n:
                return killed  # unreachable in practice: a write needs a live manager
            leader = d.leader()
            victims = [x for x in d.running() if x != leader] or d.running()
            d.kill(victims[0])
            killed += 1
            start = d.now()
            while d.leader() is None and d.now() - start < settle:
                d.poll()
    finally:
        d.stop()
