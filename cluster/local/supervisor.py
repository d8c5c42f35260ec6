"""Start, stop and break the processes of a local cluster: the one entry point.

The supervisor is not a daemon: every CLI command loads ``cluster.json``,
acts on the processes it names, saves it back and exits.  `Supervisor` is
what the CLI, the benchmark, the scenarios and the tests hold; it brings a
whole cluster up and down itself and hands every other verb to the part
that does that job:

* `provision`  -- a new cluster's description, keys and certificates, each
  node's ``config.json``;
* `processes`  -- starting and signalling node processes, by PID *and* start
  time, so a PID reused by another program is never signalled;
* `lookup`     -- a member by name, ID prefix or ``leader``; waiting for one;
* `faults`     -- kill (SIGKILL), pause (SIGSTOP), restart, partitions
  (rules in each manager's ``raft/faults.json``, then SIGHUP; in netns mode
  nftables rules) and heal, each recorded in ``DIR/faults.jsonl`` so
  figures can shade it;
* `netns`      -- ``up --netns``: the namespaces, veth pairs, bridge and
  nftables table, made at ``up`` and removed at ``down``;
* `newcomers`  -- workers of ``up --workers`` and ``swarm join``;
* `recovery`   -- ``swarm init --force-new-cluster``.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
from typing import Any

from cluster.local import lookup, recovery
from cluster.local.faults import Faults, apply_partition
from cluster.local.layout import ClusterDir, ClusterError, Description, Member, Timing
from cluster.local.lookup import Progress
from cluster.local.netns import Network, check_available, new_config
from cluster.local.newcomers import Newcomers
from cluster.local.ports import check_ports, pick_ports
from cluster.local.processes import Processes
from cluster.local.provision import Provisioner

__all__ = ["Supervisor"]


class Supervisor:
    """The processes of the cluster in one directory."""

    def __init__(self, cdir: ClusterDir) -> None:
        self.cdir = cdir
        #: With ``up(autolock=True)`` on a new cluster: the unlock key, held in
        #: memory only, handed to each manager on its stdin at its first start
        #: and shown once to the user.
        self.unlock_key: str | None = None
        self._start_key: str | None = None
        self.processes = Processes(cdir)
        self.provisioner = Provisioner(cdir)
        self.faults = Faults(cdir, self.processes, self.provisioner)
        self.newcomers = Newcomers(cdir, self.processes, self.provisioner)

    # ------------------------------------------------------------ process state

    def process_state(self, m: Member) -> str:
        """ "running", "paused" or "down" -- checked against PID reuse."""
        return self.processes.state(m)

    def exit_reason(self, m: Member) -> str | None:
        """Why ``m`` last stopped on its own (a failed fsync, a damaged log), if it said."""
        return self.cdir.exit_reason(m.name)

    def starts_locked(self, m: Member) -> bool:
        """Will this manager start locked?  (Autolock: a fingerprint, no KEK file.)"""
        return self.provisioner.starts_locked(m)

    def _start(self, m: Member) -> None:
        # An autolocked manager's first start gets the unlock key on its stdin
        # (never on its command line, environment or disk); later starts none.
        key = self._start_key if m.role == "manager" and self.starts_locked(m) else None
        self.processes.start(m, key)

    # ------------------------------------------------------------ up / down

    def up(
        self,
        managers: int | None,
        base_port: int | None = None,
        timing: Timing | None = None,
        election_ticks: dict[str, int] | None = None,
        progress: Progress = lambda _: None,
        leader_timeout: float = 30.0,
        workers: int | None = None,
        autolock: bool = False,
        netns: bool = False,
    ) -> Description:
        """Create and start a cluster, or restart an existing one on its data
        (only the processes that are down: running ones are left as they are).

        Managers start first; worker agents once a leader has initialised
        the swarm, since they join with its worker token.  With ``netns``
        (a new cluster; root only) every node runs in its own network
        namespace (`cluster.local.netns`); a cluster made so keeps the mode.
        """
        if netns:
            check_available()  # before anything is created
        if self.cdir.exists():
            desc = self.cdir.load()
            if netns and desc.netns is None:
                raise ClusterError(
                    f"{self.cdir.path} holds a cluster made without --netns; "
                    "use another --dir, or `down --purge` first"
                )
            if desc.netns is not None:
                check_available()
            # `up` on an existing cluster starts what is down and leaves alone
            # what runs (or is paused): running it twice is harmless.
            running = [m for m in desc.members if self.process_state(m) != "down"]
            for m in running:
                progress(f"{m.name} is already running (pid {m.pid})")
            if managers is not None and managers != self._manager_count(desc):
                raise ClusterError(
                    f"{self.cdir.path} holds a cluster of {self._manager_count(desc)} managers; "
                    f"use another --dir, or `down --purge` first"
                )
            have = sum(1 for m in desc.members if m.role == "worker")
            if workers is not None and workers != have:
                raise ClusterError(
                    f"{self.cdir.path} holds a cluster of {have} workers; "
                    f"use another --dir, or `down --purge` first"
                )
            for m in desc.members:
                if election_ticks and m.name in election_ticks:
                    m.election_ticks = election_ticks[m.name]
                if m.role == "manager" and not m.swarm_port:  # a directory from before
                    m.swarm_port = pick_ports(1, None)[0]
            if len(running) < len(desc.members):
                progress(f"restarting the cluster in {self.cdir.path} on its data")
            new = False
        else:
            desc, key = self.provisioner.create(
                managers or 3,
                base_port,
                timing or Timing(),
                election_ticks or {},
                workers or 0,
                autolock,
            )
            if key is not None:
                self.unlock_key = key
            extra = f" and {workers} workers" if workers else ""
            progress(f"created a cluster of {managers or 3} managers{extra} in {self.cdir.path}")
            new = True
        to_start = [m for m in desc.members if new or self.process_state(m) == "down"]
        started: list[Member] = []
        self._start_key = self.unlock_key if new else None
        try:
            if netns and new:
                desc.netns = new_config(desc.cluster_id)
                # The prefix is on disk before anything carries it, so `down`
                # finds what an `up` killed half-way made.
                self.cdir.save(desc)
            if desc.netns is not None:
                self._build_network(
                    desc, fresh=len(to_start) == len(desc.members), progress=progress
                )
            check_ports(Description(desc.cluster_id, desc.created, members=to_start))
            for m in to_start:
                if m.role == "manager":
                    self.provisioner.write_config(desc, m)
                    self._start(m)
                    started.append(m)
                    progress(f"started {m.name} (pid {m.pid}, api {m.api_url})")
            self.cdir.save(desc)
            locked = [m.name for m in to_start if self.starts_locked(m)]
            if locked and not self._start_key:
                progress(
                    f"autolock: {', '.join(locked)} started locked; unlock with "
                    "`python -m cluster swarm unlock` (the unlock key on stdin)"
                )
            unlocked = self._manager_count(desc) - len(locked)
            if not self._start_key and unlocked < self._manager_count(desc) // 2 + 1:
                leader = "(locked)"  # no majority can run until unlocked
            else:
                leader = self.wait_for_leader(desc, leader_timeout, progress)
            if leader is None:
                raise ClusterError(
                    f"no leader was elected within {leader_timeout:g}s; "
                    f"see {self.cdir.path}/<node>/node.log"
                )
            for m in to_start:
                if m.role == "worker":
                    self.newcomers.join_worker(desc, m, progress)
                    self.provisioner.write_config(desc, m)
                    self._start(m)
                    started.append(m)
                    progress(f"started {m.name} (pid {m.pid}, status {m.api_url}/status)")
            self.cdir.save(desc)
            self._start_key = None
        except BaseException:
            self._start_key = None
            # Nothing half-started: stop what this call started.
            self.processes.stop(started)
            if desc.netns is not None and (new or not self._any_running(desc)):
                with contextlib.suppress(ClusterError):  # the first error is the one to tell
                    Network(desc.netns).teardown()
            self.cdir.save(desc)
            if new:
                shutil.rmtree(self.cdir.path, ignore_errors=True)
            raise
        return desc

    def _build_network(self, desc: Description, fresh: bool, progress: Progress) -> None:
        """Netns mode: the bridge, each node's namespace, the rules in force.

        ``fresh`` (nothing of the cluster runs): whatever a crashed run left
        with this cluster's prefix is removed first and everything made anew.
        """
        assert desc.netns is not None
        net = Network(desc.netns)
        if fresh:
            net.teardown()
        net.create_bridge()
        for m in desc.members:
            host = m.host if m.netns else net.free_address(x for x in desc.members if x.netns)
            net.place(m, host)
        if fresh:
            first = desc.members[0]
            desc.netns.delay_via = "netem" if net.probe_netem(first) else "transport"
            if desc.netns.delay_via == "netem":
                for m in desc.members:
                    if desc.netns.delay.get(m.name):
                        net.set_delay(m, desc.netns.delay[m.name])
        apply_partition(self.cdir, self.processes, desc)
        self.cdir.save(desc)
        progress(
            f"netns mode: bridge {net.bridge} {desc.netns.bridge_addr}/24, "
            f"{len(desc.members)} namespaces {net.namespace('*')}, delay via {desc.netns.delay_via}"
        )

    def _any_running(self, desc: Description) -> bool:
        return any(self.process_state(m) != "down" for m in desc.members)

    def down(self, purge: bool = False, progress: Progress = lambda _: None) -> int:
        """Stop every process; with ``purge`` delete the data too.  Returns how many stopped."""
        if not self.cdir.exists():
            if purge and self.cdir.path.exists():
                shutil.rmtree(self.cdir.path)
            return 0
        desc = self.cdir.load()
        live = [m for m in desc.members if self.process_state(m) != "down"]
        for m in live:
            progress(f"stopping {m.name} (pid {m.pid})")
        self.processes.stop(live)
        for m in desc.members:
            m.pid = m.pid_start = None
        if desc.netns is not None:
            # Everything with the cluster's prefix, a crashed run's leftovers too.
            progress(f"removing the network namespaces {Network(desc.netns).namespace('*')}")
            check_available()
            Network(desc.netns).teardown()
        if purge:
            shutil.rmtree(self.cdir.path)
        else:
            self.cdir.save(desc)
        return len(live)

    def kill_all(self) -> list[int]:
        """Last resort (tests, aborted runs): SIGKILL every live process of the cluster.

        Only processes whose PID *and* start time match what was recorded are
        signalled, so a PID reused by another program is left alone.  Returns
        the PIDs killed.
        """
        try:
            desc = self.cdir.load()
        except ClusterError:
            return []
        killed = [m.pid for m in desc.members if m.pid and self.processes.signal(m, signal.SIGKILL)]
        self.processes.wait_down(desc.members, 5.0)
        if desc.netns is not None:
            with contextlib.suppress(ClusterError):
                Network(desc.netns).teardown()
        return killed

    def _manager_count(self, desc: Description) -> int:
        return sum(1 for m in desc.members if m.role == "manager")

    # ------------------------------------------------------------ leader

    def find_leader(
        self, desc: Description, initialised: bool = False
    ) -> tuple[Member, dict[str, Any]] | None:
        """The running manager that says it leads, with its ``/raft/status``
        (with ``initialised``: once it has also set up the swarm)."""
        return lookup.find_leader(self.processes, desc, initialised)

    def wait_for_leader(
        self, desc: Description, timeout: float, progress: Progress = lambda _: None
    ) -> str | None:
        """Poll the managers until one leads an initialised swarm; its name, or None."""
        return lookup.wait_for_leader(self.processes, desc, timeout, progress)

    def resolve(self, desc: Description, ref: str) -> Member:
        """A member by name, node-ID prefix, or the word ``leader``."""
        return lookup.resolve(self.processes, desc, ref)

    # ------------------------------------------------------------ faults (`faults`)

    def kill(self, ref: str) -> Member:
        return self.faults.kill(ref)

    def pause(self, ref: str) -> Member:
        return self.faults.pause(ref)

    def unpause(self, ref: str) -> Member:
        return self.faults.unpause(ref)

    def restart(self, ref: str) -> Member:
        """Start a node again on its data (stopping it first if it runs)."""
        return self.faults.restart(ref)

    def partition(self, groups: list[list[str]], oneway: bool = False) -> list[list[str]]:
        """Cut the network between groups of managers; the unnamed form one more group
        (``oneway``: only the first group's traffic to the second)."""
        return self.faults.partition(groups, oneway)

    def isolate(self, ref: str) -> list[list[str]]:
        return self.faults.isolate(ref)

    def heal(self) -> None:
        self.faults.heal()

    def restore(self) -> list[str]:
        """Every node running and no cuts (`faults.Faults.restore`)."""
        return self.faults.restore()

    def net_loss(self, ref: str, percent: int) -> Member:
        return self.faults.net_loss(ref, percent)

    def net_delay(self, ref: str, ms: int) -> tuple[Member, str]:
        return self.faults.net_delay(ref, ms)

    def net_clear(self) -> None:
        self.faults.net_clear()

    # ------------------------------------------------------------ joins, recovery

    def join(self, token: str, progress: Progress = lambda _: None) -> Member:
        """``docker swarm join --token TOKEN`` (`newcomers.Newcomers.join`)."""
        return self.newcomers.join(token, progress)

    def force_new_cluster(self, ref: str, progress: Progress = lambda _: None) -> Member:
        """``docker swarm init --force-new-cluster`` (`recovery.force_new_cluster`)."""
        return recovery.force_new_cluster(
            self.cdir, self.processes, self.provisioner, ref, progress
        )
