"""Nodes that join a running swarm: the workers of ``up --workers``, and ``swarm join``.

`join.join_swarm` is the newcomer's side of the protocol (a token in, a
certificate out); this is the supervisor's side around it: which managers
to ask, the worker token to use, the new node's name, ports, files and
process.  A manager that joins starts with no configuration and joins Raft
as a learner, promoted by the leader once it has caught up (§4.2.1).
Apart from provisioning because the swarm, not the supervisor, decides a
newcomer's identity: nothing is written until a leader said yes.
"""

from __future__ import annotations

import contextlib
import shutil

from cluster.client.http import ApiError, Unreachable, request
from cluster.local.join import join_swarm
from cluster.local.layout import ClusterDir, ClusterError, Description, Member
from cluster.local.lookup import Progress
from cluster.local.netns import Network
from cluster.local.ports import pick_ports
from cluster.local.processes import Processes
from cluster.local.provision import Provisioner
from raft.runtime.tls import TLSFiles

__all__ = ["Newcomers"]


class Newcomers:
    """Joins new nodes to the cluster in one directory."""

    def __init__(self, cdir: ClusterDir, processes: Processes, provisioner: Provisioner) -> None:
        self.cdir = cdir
        self.processes = processes
        self.provisioner = provisioner

    def join_worker(self, desc: Description, m: Member, progress: Progress) -> None:
        """A worker of ``up --workers`` joins with the worker token, as ``swarm join`` does."""
        if TLSFiles.in_dir(self.cdir.node_dir(m.name) / "keys").cert.exists():
            return  # joined on an earlier start
        joined = join_swarm(
            self._swarm_urls(desc),
            self._worker_token(desc),
            hostname=m.name,
            role="worker",
            timeout=desc.timing.request_timeout * 2,
        )
        self.provisioner.keep_certificate(m, joined)
        progress(f"{m.name} joined the swarm as a worker (node {joined.node_id[:12]})")

    def _worker_token(self, desc: Description) -> str:
        """The swarm's worker join token (``docker swarm join-token worker``)."""
        for m in desc.members:
            if m.role != "manager" or self.processes.state(m) != "running":
                continue
            with contextlib.suppress(Unreachable, ApiError):
                cluster = request("GET", f"{m.api_url}/swarm", timeout=desc.timing.request_timeout)
                token = (cluster or {}).get("JoinTokens", {}).get("Worker")
                if token:
                    return str(token)
        raise ClusterError("no manager could give the worker join token (is there a leader?)")

    def _swarm_urls(self, desc: Description) -> list[str]:
        """The swarm URLs of the managers running now."""
        return [
            m.swarm_url
            for m in desc.members
            if m.role == "manager" and m.swarm_port and self.processes.state(m) == "running"
        ]

    def join(self, token: str, progress: Progress = lambda _: None) -> Member:
        """``docker swarm join --token TOKEN``: start one more node, its role set by the token.

        The new node gets the next free name (the swarm picks it), fresh ports,
        and its own key; a manager starts with no configuration and joins Raft
        as a learner, promoted by the leader once it has caught up (§4.2.1).
        """
        desc = self.cdir.load()
        if not any(m.role == "manager" and m.swarm_port for m in desc.members):
            raise ClusterError(f"the cluster in {self.cdir.path} has no swarm port (made before)")
        raft_port, api_port, swarm_port = pick_ports(3, None)
        # Netns mode: the newcomer gets its own address (its namespace is made
        # once the swarm has named it).
        net = Network(desc.netns) if desc.netns is not None else None
        host = net.free_address(desc.members) if net is not None else "127.0.0.1"
        endpoints = {
            "Raft": f"{host}:{raft_port}",
            "API": f"http://{host}:{api_port}",
            "Swarm": f"https://{host}:{swarm_port}",
        }
        joined = join_swarm(
            self._swarm_urls(desc),
            token,
            endpoints=endpoints,
            timeout=desc.timing.request_timeout * 2,
        )
        old = next((x for x in desc.members if x.name == joined.hostname), None)
        if old is not None:
            # The swarm gave us the name of a node it no longer knows (`node rm`):
            # whatever still runs under it is not a member; the name is the newcomer's.
            progress(f"{old.name} was removed from the swarm; its name goes to the new node")
            self.processes.stop([old])
            if net is not None:
                net.remove(old)
            desc.members.remove(old)
            shutil.rmtree(self.cdir.node_dir(old.name), ignore_errors=True)
        m = Member(
            name=joined.hostname, node_id=joined.node_id, role=joined.role, api_port=api_port
        )
        if joined.role == "manager":
            m.raft_port, m.swarm_port, m.joiner = raft_port, swarm_port, True
            self.provisioner.give_kek(desc, m)
        self.provisioner.keep_certificate(m, joined)
        m.host = host
        if net is not None:
            net.place(m, host)
        desc.members.append(m)
        self.cdir.save(desc)
        self.provisioner.write_config(desc, m)
        self.processes.start(m)
        self.cdir.save(desc)
        progress(f"started {m.name} (pid {m.pid}, api {m.api_url})")
        return m
