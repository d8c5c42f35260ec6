"""Faults, for real: kill, pause, restart, partition, heal.

``kill`` is SIGKILL and ``pause`` is SIGSTOP, sent to the node's process.
Partitions are rules in each manager's ``raft/faults.json`` that its
transport applies (drop traffic to and from the other side); the supervisor
rewrites the file and sends SIGHUP.  A stopped manager reads the rules when
it starts, a paused one when it resumes, so a partition holds until
``heal``.  Every fault is appended to ``DIR/faults.jsonl`` (`layout`), so
figures can shade it.

Apart from the cluster's lifecycle (`supervisor`) because these are what
scenarios and users do *to* a running cluster to watch Raft cope: each
method is one fault, checked, applied and recorded.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from cluster.local.layout import ClusterDir, ClusterError, Description, Member
from cluster.local.lookup import resolve
from cluster.local.ports import check_ports
from cluster.local.processes import Processes
from cluster.local.provision import Provisioner

__all__ = ["Faults", "apply_partition"]


class Faults:
    """The faults a user or a scenario injects into the cluster in one directory."""

    def __init__(self, cdir: ClusterDir, processes: Processes, provisioner: Provisioner) -> None:
        self.cdir = cdir
        self.processes = processes
        self.provisioner = provisioner

    def _resolve(self, desc: Description, ref: str) -> Member:
        return resolve(self.processes, desc, ref)

    def kill(self, ref: str) -> Member:
        desc = self.cdir.load()
        m = self._resolve(desc, ref)
        if not self.processes.signal(m, signal.SIGKILL):
            raise ClusterError(f"{m.name} is not running")
        self.cdir.record_fault("kill", time.time(), target=m.name, role=m.role)
        if self.processes.wait_down([m], 5.0):
            raise ClusterError(f"{m.name} did not die after SIGKILL")
        return m

    def pause(self, ref: str) -> Member:
        desc = self.cdir.load()
        m = self._resolve(desc, ref)
        if self.processes.state(m) != "running":
            raise ClusterError(f"{m.name} is {self.processes.state(m)}, not running")
        self.processes.signal(m, signal.SIGSTOP)
        self.cdir.record_fault("pause", time.time(), target=m.name, role=m.role)
        return m

    def unpause(self, ref: str) -> Member:
        desc = self.cdir.load()
        m = self._resolve(desc, ref)
        if self.processes.state(m) != "paused":
            raise ClusterError(f"{m.name} is {self.processes.state(m)}, not paused")
        self.processes.signal(m, signal.SIGCONT)
        self.cdir.record_fault("unpause", time.time(), target=m.name, role=m.role)
        return m

    def restart(self, ref: str) -> Member:
        """Start a manager again on its data (stopping it first if it runs)."""
        desc = self.cdir.load()
        m = self._resolve(desc, ref)
        if self.processes.state(m) != "down":
            self.processes.stop([m])
        check_ports(Description(desc.cluster_id, desc.created, members=[m]))
        self.provisioner.write_config(desc, m)
        self.processes.start(m)
        self.cdir.save(desc)
        self.cdir.record_fault("restart", time.time(), target=m.name, role=m.role)
        return m

    def partition(self, groups: list[list[str]]) -> list[list[str]]:
        """Cut the network between groups of managers (names, ID prefixes or ``leader``).

        Managers named in no group form one more group together.
        """
        desc = self.cdir.load()
        members = [[self._resolve(desc, ref) for ref in g] for g in groups]
        workers = [m.name for g in members for m in g if m.role != "manager"]
        if workers:
            raise ClusterError(
                f"partitions cut the managers' Raft network; {', '.join(workers)} is a worker"
            )
        resolved = [[m.name for m in g] for g in members]
        flat = [n for g in resolved for n in g]
        if len(flat) != len(set(flat)):
            raise ClusterError("a node appears in two groups")
        rest = [m.name for m in desc.members if m.role == "manager" and m.name not in flat]
        if rest:
            resolved.append(rest)
        if len(resolved) < 2:
            raise ClusterError("a partition needs at least two groups")
        desc.partition = resolved
        apply_partition(self.cdir, self.processes, desc)
        self.cdir.save(desc)
        self.cdir.record_fault("partition", time.time(), groups=resolved)
        return resolved

    def isolate(self, ref: str) -> list[list[str]]:
        desc = self.cdir.load()
        m = self._resolve(desc, ref)
        return self.partition([[m.name]])

    def heal(self) -> None:
        desc = self.cdir.load()
        desc.partition = []
        apply_partition(self.cdir, self.processes, desc)
        self.cdir.save(desc)
        self.cdir.record_fault("heal", time.time())


def apply_partition(cdir: ClusterDir, processes: Processes, desc: Description) -> None:
    """Write every manager's ``faults.json`` for ``desc.partition`` and tell it (SIGHUP)."""
    group_of = {n: i for i, g in enumerate(desc.partition) for n in g}
    managers = [m for m in desc.members if m.role == "manager"]
    for m in managers:
        others = [
            p.name
            for p in managers
            if p.name != m.name and group_of.get(p.name) != group_of.get(m.name)
        ]
        cut = {"drop": True, "loss": 0.0, "delay": 0.0}
        rules: dict[str, Any] = {
            "outbound": {p: cut for p in others},
            "inbound": {p: cut for p in others},
        }
        path = cdir.node_dir(m.name) / "raft" / "faults.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".sup")
        tmp.write_text(json.dumps(rules, indent=1))
        os.replace(tmp, path)
        processes.signal(m, signal.SIGHUP)
