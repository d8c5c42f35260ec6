"""Real processes: a manager join that nobody claims is undone by the leader.

Marked ``integration``.  A join request is sent by hand with the manager
token (as a client would before giving up), naming a Raft address where
nothing listens: the leader records the node and adds a learner, then --
`joins.ABANDONED_JOIN_AFTER` seconds later, the newcomer never having shown
up -- removes both.  The cluster is stopped whatever happens.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
from cli_run import ok
from cluster_procs import leader_name, running_cluster, wait_for

from cluster.client.http import request
from cluster.manager.joins import ABANDONED_JOIN_AFTER
from cluster.security import pki

pytestmark = pytest.mark.integration


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unclaimed_manager_join_is_undone(tmp_path: Path) -> None:
    cdir = tmp_path / "c"
    with running_cluster(cdir, managers=3) as (sup, desc):
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        member = next(m for m in desc.members if m.name == leader)
        token = ok(cdir, "swarm", "join-token", "-q", "manager").strip()
        ctx = ssl.create_default_context(cafile=str(cdir / "ca" / "ca.crt"))
        ctx.check_hostname = False
        _, csr = pki.new_request()
        raft_port = _unused_port()  # nothing will ever listen there
        answer = request(
            "POST",
            f"{member.swarm_url}/join",
            {
                "JoinToken": token,
                "CSR": csr.decode(),
                "Role": "manager",
                "Endpoints": {
                    "Raft": f"127.0.0.1:{raft_port}",
                    "API": "http://127.0.0.1:9",
                    "Swarm": "https://127.0.0.1:9",
                },
            },
            context=ctx,
            timeout=10.0,
        )
        name = answer["Hostname"]

        def hostnames() -> set[str]:
            return {n["Description"]["Hostname"] for n in request("GET", f"{member.api_url}/nodes")}

        def learners() -> list[str]:
            return request("GET", f"{member.api_url}/raft/status").get("learners", [])

        assert name in hostnames()
        wait_for(lambda: name in learners(), 10, f"{name} added as a learner")
        nodes = request("GET", f"{member.api_url}/nodes")
        [node] = [n for n in nodes if n["ID"] == answer["NodeID"]]
        assert node["Status"]["State"] == "unknown"  # never shown as "down": it never was up

        wait_for(
            lambda: name not in hostnames() and name not in learners(),
            ABANDONED_JOIN_AFTER + 20,
            f"the abandoned join of {name} undone",
        )
        # The swarm goes on: a write commits.
        request("POST", f"{member.api_url}/configs/create", {"Name": "after", "Data": "aGk="})
