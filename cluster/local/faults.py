"""Faults, for real: kill, pause, restart, partition, heal, net loss/delay.

``kill`` is SIGKILL and ``pause`` is SIGSTOP, sent to the node's process.
Partitions take one of two forms, by the cluster's network mode:

* by default, rules in each manager's ``raft/faults.json`` that its
  transport applies (drop traffic to and from the other side); the
  supervisor rewrites the file and sends SIGHUP.  A stopped manager reads
  the rules when it starts, a paused one when it resumes;
* in netns mode (``up --netns``), packets dropped by the kernel: nftables
  rules on the cluster's bridge (`netns`), which no process can ignore.

Either way a partition holds until ``heal``, and a one-way cut (``partition
--oneway A B``: A's traffic to B is lost, B's still reaches A) is one rule
per direction.  ``net loss``/``net delay``/``net clear`` work in both: in
netns mode on packets (nftables; netem or the transport for delay), by
default on whole Raft messages, which the managers' transports drop and
delay (`raft.runtime.faults`) -- only managers, then, as workers speak
HTTP.  Every fault is appended to ``DIR/faults.jsonl`` (`layout`), so
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
from pathlib import Path
from typing import Any

from cluster.local.layout import ClusterDir, ClusterError, Description, Member
from cluster.local.lookup import resolve
from cluster.local.netns import Network, cut_pairs, node_rules
from cluster.local.ports import check_ports
from cluster.local.processes import Processes
from cluster.local.provision import Provisioner

__all__ = ["Faults", "apply_partition", "transport_rules"]


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
        if desc.netns is not None:
            Network(desc.netns).abort_sockets(m)  # its queued messages die with it
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
        if desc.netns is not None:
            # After `down` the namespaces are gone: make this node's again, and
            # the table with the faults in force.  (No SIGHUP to the others:
            # their rules did not change, and one that has just started may not
            # handle it yet.)
            net = Network(desc.netns)
            net.create_bridge()
            net.place(m, m.host)
            net.write_rules(node_rules(desc.netns, desc))
            if desc.netns.delay_via == "netem" and desc.netns.delay.get(m.name):
                net.set_delay(m, desc.netns.delay[m.name])
        self.provisioner.write_config(desc, m)
        self.processes.start(m)
        self.cdir.save(desc)
        self.cdir.record_fault("restart", time.time(), target=m.name, role=m.role)
        return m

    def partition(self, groups: list[list[str]], oneway: bool = False) -> list[list[str]]:
        """Cut the network between groups of managers (names, ID prefixes or ``leader``).

        Managers named in no group form one more group together.  With
        ``oneway`` there must be exactly two groups, FROM and TO: only FROM's
        traffic to TO is cut, and nobody else is touched.
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
        if oneway:
            if len(resolved) != 2:
                raise ClusterError("a one-way cut names two groups: FROM TO")
            desc.partition, desc.oneway = [], resolved
        else:
            rest = [m.name for m in desc.members if m.role == "manager" and m.name not in flat]
            if rest:
                resolved.append(rest)
            if len(resolved) < 2:
                raise ClusterError("a partition needs at least two groups")
            desc.partition, desc.oneway = resolved, []
        apply_partition(self.cdir, self.processes, desc)
        self.cdir.save(desc)
        kind = "partition"
        extra: dict[str, Any] = {"oneway": True} if oneway else {}
        self.cdir.record_fault(kind, time.time(), groups=resolved, **extra)
        return resolved

    def isolate(self, ref: str) -> list[list[str]]:
        desc = self.cdir.load()
        m = self._resolve(desc, ref)
        return self.partition([[m.name]])

    def heal(self) -> None:
        desc = self.cdir.load()
        desc.partition, desc.oneway = [], []
        apply_partition(self.cdir, self.processes, desc)
        self.cdir.save(desc)
        self.cdir.record_fault("heal", time.time())

    def restore(self) -> list[str]:
        """Undo every process fault: thaw the paused, start the down, heal the cuts.

        What a long run does before it checks that the nodes agree (torture,
        endurance, the Jepsen run); loss and delay stay as set.  Returns what it
        did, one phrase a node ("unpaused manager2", "restarted manager3").
        """
        done = []
        for m in self.cdir.load().members:
            state = self.processes.state(m)
            if state == "paused":
                self.unpause(m.name)
                done.append(f"unpaused {m.name}")
            elif state == "down":
                self.restart(m.name)
                done.append(f"restarted {m.name}")
        self.heal()
        return done

    # ------------------------------------------------------------ loss and delay

    def net_loss(self, ref: str, percent: int) -> Member:
        """Drop ``percent``% of ``ref``'s packets (netns) or Raft messages (transport)
        to and from other nodes, at random."""
        desc = self.cdir.load()
        m = self._resolve(desc, ref)
        if not 0 <= percent <= 100:
            raise ClusterError(f"loss is a percentage (0-100), got {percent}")
        table = desc.netns.loss if desc.netns is not None else desc.loss
        if desc.netns is None:
            _manager_only(m, "loss")
        table[m.name] = percent
        if not percent:
            del table[m.name]
        apply_partition(self.cdir, self.processes, desc)
        self.cdir.save(desc)
        self.cdir.record_fault("loss", time.time(), target=m.name, percent=percent)
        return m

    def net_delay(self, ref: str, ms: int) -> tuple[Member, str]:
        """Delay ``ref``'s outgoing packets (netem) or Raft messages (transport) by ``ms``.

        Returns the member and how the delay is realised ("netem" or "transport").
        """
        desc = self.cdir.load()
        m = self._resolve(desc, ref)
        if not 0 <= ms <= 60_000:
            raise ClusterError(f"delay is in milliseconds (0-60000), got {ms}")
        via = desc.netns.delay_via if desc.netns is not None else "transport"
        if desc.netns is None:
            _manager_only(m, "delay")
        elif via == "transport" and m.role != "manager":
            raise ClusterError(
                "this kernel has no netem: delay is the managers' own (their Raft messages); "
                f"{m.name} is a worker"
            )
        table = desc.netns.delay if desc.netns is not None else desc.delay
        table[m.name] = ms
        if not ms:
            del table[m.name]
        if desc.netns is not None and via == "netem":
            Network(desc.netns).set_delay(m, ms)
        apply_partition(self.cdir, self.processes, desc)
        self.cdir.save(desc)
        self.cdir.record_fault("delay", time.time(), target=m.name, ms=ms, via=via)
        return m, via

    def net_clear(self) -> None:
        """Remove every loss and delay (cuts stay: that is ``heal``)."""
        desc = self.cdir.load()
        cfg = desc.netns
        if cfg is not None:
            if cfg.delay_via == "netem":
                net = Network(cfg)
                for m in desc.members:
                    if m.name in cfg.delay:
                        net.set_delay(m, 0)
            cfg.loss, cfg.delay = {}, {}
        desc.loss, desc.delay = {}, {}
        apply_partition(self.cdir, self.processes, desc)
        self.cdir.save(desc)
        self.cdir.record_fault("net_clear", time.time())


def _manager_only(m: Member, what: str) -> None:
    if m.role != "manager":
        raise ClusterError(
            f"without netns, {what} is the managers' own (their Raft messages); {m.name} is a "
            "worker (start the cluster with up --netns for packet-level faults)"
        )


def apply_partition(cdir: ClusterDir, processes: Processes, desc: Description) -> None:
    """Put ``desc``'s network faults in force.

    In netns mode: the cluster's nftables table (cuts and losses), and each
    manager's ``faults.json`` for delays realised by the transport.  By
    default: each manager's ``faults.json`` for the cuts.  A manager is told
    of a changed ``faults.json`` with SIGHUP.
    """
    if desc.netns is not None:
        Network(desc.netns).write_rules(node_rules(desc.netns, desc))
    for m in desc.members:
        if m.role != "manager":
            continue
        rules = transport_rules(desc, m.name)
        path = cdir.node_dir(m.name) / "raft" / "faults.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".sup")
        tmp.write_text(json.dumps(rules, indent=1))
        os.replace(tmp, path)
        if m.pid and _handles_sighup(m.pid):
            processes.signal(m, signal.SIGHUP)


def _handles_sighup(pid: int) -> bool:
    """Whether the process already ignores or catches SIGHUP.

    A manager that has only just been started has not: SIGHUP would end it
    (its default action).  It reads ``faults.json`` once it has set SIGHUP
    aside (`cluster.manager.process.main`'s first step), so the file written
    above is the one it reads: nothing to tell it.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    masks = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    bit = 1 << (signal.SIGHUP - 1)
    return any(int(masks.get(k, "0").strip(), 16) & bit for k in ("SigIgn", "SigCgt"))


def transport_rules(desc: Description, name: str) -> dict[str, Any]:
    """What manager ``name``'s transport must drop or delay (`raft.runtime.faults`)."""
    outbound: dict[str, Any] = {}
    inbound: dict[str, Any] = {}
    if desc.netns is None:
        loss, delay = desc.loss.get(name, 0) / 100, desc.delay.get(name, 0) / 1000
        if loss or delay:  # its own messages out, lost and late; its peers' in, lost
            outbound["*"] = {"drop": False, "loss": loss, "delay": delay}
        if loss:
            inbound["*"] = {"drop": False, "loss": loss, "delay": 0.0}
        cut = {"drop": True, "loss": 0.0, "delay": 0.0}
        managers = [m.name for m in desc.members if m.role == "manager"]
        for src, dst in cut_pairs(desc, managers):
            if src == name:
                outbound[dst] = cut
            if dst == name:
                inbound[src] = cut
    elif desc.netns.delay_via == "transport" and desc.netns.delay.get(name):
        outbound["*"] = {"drop": False, "loss": 0.0, "delay": desc.netns.delay[name] / 1000}
    return {"outbound": outbound, "inbound": inbound}
