"""Recovery from a lost majority: ``docker swarm init --force-new-cluster``.

Apart from the faults because it is their opposite and far rarer: it
rewrites a survivor's Raft log on disk (`raft.core.protocol.force_new_cluster`)
while every process is stopped, which nothing else in the supervisor does.
"""

from __future__ import annotations

import shutil
import time

from cluster.local.faults import apply_partition
from cluster.local.layout import ClusterDir, ClusterError, Member
from cluster.local.lookup import Progress, resolve, wait_for_leader
from cluster.local.processes import Processes
from cluster.local.provision import Provisioner

__all__ = ["force_new_cluster"]


def force_new_cluster(
    cdir: ClusterDir,
    processes: Processes,
    provisioner: Provisioner,
    ref: str,
    progress: Progress = lambda _: None,
) -> Member:
    """``docker swarm init --force-new-cluster`` on a surviving manager.

    For when a majority of managers is lost for good: quorum can never
    come back, so no write can commit.  Every process is stopped; the
    survivor's log loses its uncommitted entries and gains a
    configuration naming only itself (`raft.core.protocol.force_new_cluster`),
    keeping every committed entry; it restarts as a one-manager swarm.
    The other managers' Raft data is wiped: restarting one later makes it
    *join* the new swarm (as a learner, promoted once caught up) rather
    than revive the old configuration and elect a second leader.
    """
    from raft.core.protocol import force_new_cluster as rewrite_log
    from raft.runtime.disk import DiskStorage

    desc = cdir.load()
    survivor = resolve(processes, desc, ref)
    live = [m for m in desc.members if processes.state(m) != "down"]
    processes.stop(live)
    path = cdir.node_dir(survivor.name) / "raft" / "raft"
    with DiskStorage(path) as storage:
        state = storage.load()
        new, entry = rewrite_log(state, survivor.name)
        storage.append([entry])
        storage.set_hard_state(new.hard_state)
        storage.sync()
    progress(
        f"{survivor.name}: kept {new.hard_state.commit} committed entries, dropped "
        f"{len(state.entries) - len(new.entries) + 1} uncommitted; now the only voter"
    )
    for m in desc.members:
        if m is survivor:
            continue
        if m.role != "manager":
            m.pid = m.pid_start = None  # stopped above; `restart` brings it back
            continue
        shutil.rmtree(cdir.node_dir(m.name) / "raft", ignore_errors=True)
        m.joiner = True
        m.pid = m.pid_start = None
    desc.partition = []
    apply_partition(cdir, processes, desc)
    provisioner.write_config(desc, survivor)
    processes.start(survivor)
    cdir.save(desc)
    cdir.record_fault("force-new-cluster", time.time(), target=survivor.name)
    if wait_for_leader(processes, desc, 30.0, progress) is None:
        raise ClusterError(f"{survivor.name} did not become leader after the recovery")
    return survivor
