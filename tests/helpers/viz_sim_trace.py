"""Realistic trace directories for the `viz` tests, made with the simulator.

`SimTracer` (now in `scenarios.drivers.simtrace`, where the scenario runner uses it
for ``--simulated`` runs) steps a simulator and records the JSON lines a real
cluster would have written; this module keeps the canned trace the viz tests
draw.
"""

from __future__ import annotations

from pathlib import Path

from scenarios.drivers.simtrace import T0, SimTracer

__all__ = ["T0", "SimTracer", "leader_failover_trace"]


def leader_failover_trace(out: Path, seed: int = 1) -> Path:
    """Five managers: writes, the leader killed, a follower paused, a partition
    that loses quorum, a stale node refused, then healing."""
    s = SimTracer(nodes=5, seed=seed)
    first = s.wait_leader()
    assert first is not None
    for _ in range(6):
        s.write()
        s.run(0.05)
    s.snapshot_logs()
    s.kill(first)
    for _ in range(4):
        s.write()
        s.run(0.05)
    second = s.wait_leader()
    assert second is not None
    for _ in range(4):
        s.write()
    s.restart(first)
    s.run(0.4)
    others = [n for n in s.sim.ids if n not in (first, second)]
    s.pause(others[0])
    s.run(0.3)
    s.write()
    # The leader and one follower on one side, the rest on the other, one paused:
    # no side holds three live managers, so nothing commits.
    s.partition([second, others[1]], [first, others[0], others[2]])
    s.run(0.1)
    s.write()
    s.write()
    s.run(0.5)
    s.snapshot_logs()
    s.unpause(others[0])
    s.run(0.6)
    s.heal()
    s.wait_leader()
    s.run(0.3)
    for _ in range(4):
        s.write()
        s.run(0.05)
    s.run(0.3)
    s.snapshot_logs()
    return s.write_dir(out)
