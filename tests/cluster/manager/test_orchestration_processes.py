"""Real managers and worker agents: orchestration across them, secrets in memory, autolock.

Marked ``integration``: each test starts processes through the supervisor and
stops them whatever happens (`running_swarm`: ``down``, then, as a last
resort, SIGKILL of the recorded PIDs whose command line is a manager's or a
worker's).  Every wait is a bounded poll (`cluster_procs.wait_for`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cluster_procs import kill_leftovers, leader_name, wait_for

from cluster.client.http import ApiError, request
from cluster.local.layout import ClusterDir, Description, Timing
from cluster.local.status import collect
from cluster.local.supervisor import Supervisor

pytestmark = pytest.mark.integration

NS = 1_000_000_000


@contextlib.contextmanager
def running_swarm(
    path: Path, managers: int = 3, workers: int = 0, autolock: bool = False
) -> Iterator[tuple[Supervisor, Description]]:
    sup = Supervisor(ClusterDir(path))
    try:
        desc = sup.up(managers, timing=Timing(), workers=workers, autolock=autolock)
        yield sup, desc
    finally:
        try:
            sup.down()
        finally:
            kill_leftovers(path)


def url_of(desc: Description, name: str) -> str:
    return next(m.api_url for m in desc.members if m.name == name)


def node_id(desc: Description, name: str) -> str:
    return next(m.node_id for m in desc.members if m.name == name)


def live(tasks: list[dict[str, Any]], service_id: str) -> list[dict[str, Any]]:
    return [t for t in tasks if t["ServiceID"] == service_id and t["DesiredState"] == "running"]


def all_running(tasks: list[dict[str, Any]]) -> bool:
    return bool(tasks) and all(t["Status"]["State"] == "running" for t in tasks)


def test_workers_run_tasks_hold_secrets_and_drain(tmp_path: Path) -> None:
    plaintext = f"pw-{uuid.uuid4().hex}".encode()
    with running_swarm(tmp_path / "c", managers=3, workers=2) as (sup, desc):
        url = url_of(desc, wait_for(lambda: leader_name(desc, sup), 20, "a leader"))
        everyone = {m.node_id for m in desc.members}
        workers = {m.node_id for m in desc.members if m.role == "worker"}
        wait_for(
            lambda: (
                {n["ID"] for n in request("GET", f"{url}/nodes") if n["Status"]["State"] == "ready"}
                == everyone
            ),
            15,
            "both workers registered and ready",
        )
        nodes = {n["ID"]: n for n in request("GET", f"{url}/nodes")}
        assert all(nodes[w]["Spec"]["Role"] == "worker" for w in workers)
        assert all("ManagerStatus" not in nodes[w] for w in workers)

        # Workers talk to the swarm port only (mutual TLS, `test_join_integration`):
        # the users' API has no dispatcher to register with.
        with pytest.raises(ApiError) as refused:
            request("POST", f"{url}/dispatcher/register", {"NodeID": "x" * 25})
        assert refused.value.status == 404

        # Global: one task on every node, workers included.
        glob = request(
            "POST",
            f"{url}/services/create",
            {
                "Name": "agent",
                "TaskTemplate": {"ContainerSpec": {"Image": "agent:1"}},
                "Mode": {"Global": {}},
            },
        )["ID"]
        wait_for(
            lambda: (
                (ts := live(request("GET", f"{url}/tasks"), glob))
                and all_running(ts)
                and sorted(t["NodeID"] for t in ts) == sorted(everyone)
            ),
            20,
            "a running global task on each of the 5 nodes",
        )

        # A replicated service with a secret: spread over 5 nodes, so workers run some.
        secret = request(
            "POST",
            f"{url}/secrets/create",
            {"Name": "db-pw", "Data": base64.b64encode(plaintext).decode()},
        )["ID"]
        web = request(
            "POST",
            f"{url}/services/create",
            {
                "Name": "web",
                "TaskTemplate": {
                    "ContainerSpec": {
                        "Image": "nginx:1",
                        "Secrets": [
                            {
                                "SecretID": secret,
                                "SecretName": "db-pw",
                                "File": {"Name": "db-pw", "UID": "0", "GID": "0", "Mode": 292},
                            }
                        ],
                    }
                },
                "Mode": {"Replicated": {"Replicas": 5}},
            },
        )["ID"]
        tasks = wait_for(
            lambda: (
                (ts := live(request("GET", f"{url}/tasks"), web))
                and len(ts) == 5
                and all_running(ts)
                and ts
            ),
            20,
            "5 running web tasks",
        )
        on_worker = [t for t in tasks if t["NodeID"] in workers]
        assert on_worker, "the spread scheduler put no task on a worker"
        task = on_worker[0]
        worker = next(m for m in desc.members if m.node_id == task["NodeID"])
        held = wait_for(
            lambda: request("GET", f"{worker.api_url}/status")["SecretsHeld"].get(task["ID"]),
            10,
            "the worker holding the task's secret",
        )
        assert held == ["db-pw"]
        view = wait_for(
            lambda: request("GET", f"{url}/dispatcher/secrets-held").get(worker.node_id),
            10,
            "the leader's view of the worker's secrets",
        )
        assert view.get(task["ID"]) == ["db-pw"]
        # The data is in no API answer.
        needles = [plaintext.decode(), base64.b64encode(plaintext).decode()]
        for answer in (
            request("GET", f"{url}/tasks"),
            request("GET", f"{url}/secrets"),
            request("GET", f"{url}/secrets/db-pw"),
            request("GET", f"{url}/dispatcher/secrets-held"),
            request("GET", f"{worker.api_url}/status"),
        ):
            text = json.dumps(answer)
            assert not any(n in text for n in needles)

        # Drain the worker: its web task moves, its global task stops, its secret goes.
        node = request("GET", f"{url}/nodes/{worker.node_id}")
        request(
            "POST",
            f"{url}/nodes/{worker.node_id}/update?version={node['Version']['Index']}",
            {"Availability": "drain"},
        )
        wait_for(
            lambda: (
                (ts := live(request("GET", f"{url}/tasks"), web))
                and len(ts) == 5
                and all_running(ts)
                and all(t["NodeID"] != worker.node_id for t in ts)
            ),
            20,
            "the drained worker's web task replaced on other nodes",
        )
        wait_for(
            lambda: all(
                t["NodeID"] != worker.node_id for t in live(request("GET", f"{url}/tasks"), glob)
            ),
            10,
            "no global task on the drained worker",
        )
        wait_for(
            lambda: request("GET", f"{worker.api_url}/status")["SecretsHeld"] == {},
            10,
            "the drained worker dropping the secret",
        )

        # A worker killed is marked down by the leader when its heartbeats stop.
        other = next(m for m in desc.members if m.role == "worker" and m is not worker)
        sup.kill(other.name)
        wait_for(
            lambda: request("GET", f"{url}/nodes/{other.node_id}")["Status"]["State"] == "down",
            10,
            "the killed worker marked down",
        )
        st = collect(sup, sup.cdir.load())
        assert [w["state"] for w in st["workers"] if w["name"] == other.name] == ["down"]
        assert all(n["name"].startswith("manager") for n in st["nodes"])


def test_rolling_update_finishes_under_a_new_leader(tmp_path: Path) -> None:
    with running_swarm(tmp_path / "c", managers=3, workers=2) as (sup, desc):
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        url = url_of(desc, leader)
        spec = {
            "Name": "web",
            "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1"}},
            "Mode": {"Replicated": {"Replicas": 4}},
            "UpdateConfig": {"Parallelism": 1, "Delay": NS, "FailureAction": "pause"},
        }
        sid = request("POST", f"{url}/services/create", spec)["ID"]
        wait_for(
            lambda: (
                (ts := live(request("GET", f"{url}/tasks"), sid))
                and len(ts) == 4
                and all_running(ts)
            ),
            20,
            "4 running tasks",
        )
        svc = request("GET", f"{url}/services/{sid}")
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = "nginx:2"
        request("POST", f"{url}/services/{sid}/update?version={svc['Version']['Index']}", spec)

        def updated() -> int:
            return sum(
                t["Spec"]["ContainerSpec"]["Image"] == "nginx:2"
                for t in live(request("GET", f"{url}/tasks"), sid)
            )

        wait_for(lambda: 1 <= updated() < 4, 15, "the rolling update under way")
        sup.kill(leader)
        new = wait_for(
            lambda: (n := leader_name(desc, sup)) and n != leader and n, 20, "a new leader"
        )
        url = url_of(desc, new)
        sup.restart(leader)  # back on its data, as a follower

        def done() -> bool:
            ts = live(request("GET", f"{url}/tasks"), sid)
            svc = request("GET", f"{url}/services/{sid}")
            return (
                svc.get("UpdateStatus", {}).get("State") == "completed"
                and sorted(t["Slot"] for t in ts) == [1, 2, 3, 4]
                and all_running(ts)
                and all(t["Spec"]["ContainerSpec"]["Image"] == "nginx:2" for t in ts)
            )

        wait_for(done, 45, "the update completed with slots 1-4 each filled once by nginx:2")


def test_autolock_a_restarted_manager_is_locked_until_unlocked(tmp_path: Path) -> None:
    with running_swarm(tmp_path / "c", managers=3, autolock=True) as (sup, desc):
        key = sup.unlock_key
        assert key and key.startswith("SWMKEY-1-")
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        url = url_of(desc, leader)
        request("POST", f"{url}/secrets/create", {"Name": "s", "Data": "aGVsbG8="})
        for m in desc.members:  # only a fingerprint on disk, never the key or the KEK
            keys_dir = sup.cdir.node_dir(m.name) / "keys"
            # The TLS key is sealed too (`cluster.security.node_keys`), openable only
            # through the DEK, itself wrapped by the KEK of the unlock key.
            wait_for(
                lambda d=keys_dir: (
                    (d / "node.key")
                    .read_bytes()
                    .startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
                ),
                10,
                f"{m.name}'s TLS key sealed",
            )
            keys = sorted(p.name for p in keys_dir.iterdir())
            assert keys == ["ca.crt", "dek.wrapped", "kek.fingerprint", "node.crt", "node.key"]

        followers = [m.name for m in desc.members if m.name != leader]
        victim = followers[0]
        sup.restart(victim)
        vurl = url_of(desc, victim)
        wait_for(
            lambda: request("GET", f"{vurl}/raft/status", timeout=1).get("role") == "locked",
            10,
            "the restarted manager locked",
        )
        assert request("GET", f"{vurl}/info")["Swarm"]["LocalNodeState"] == "locked"
        with pytest.raises(ApiError) as locked:
            request("GET", f"{vurl}/services")
        assert locked.value.status == 503 and "locked" in locked.value.message
        # A locked manager cannot open its TLS key: its swarm port is not even open.
        vm = next(m for m in sup.cdir.load().members if m.name == victim)
        assert not _listening(vm.swarm_port)
        st = collect(sup, sup.cdir.load())
        assert {n["name"]: n["role"] for n in st["nodes"]}[victim] == "locked"
        assert st["reachable"] == 2

        with pytest.raises(ApiError) as wrong:
            request("POST", f"{vurl}/swarm/unlock", {"UnlockKey": "SWMKEY-1-" + "A" * 43})
        assert wrong.value.status == 400 and "invalid key" in wrong.value.message
        request("POST", f"{vurl}/swarm/unlock", {"UnlockKey": key})
        wait_for(
            lambda: collect(sup, sup.cdir.load())["reachable"] == 3, 10, "the manager rejoined"
        )
        wait_for(lambda: _listening(vm.swarm_port), 10, "its swarm port open once unlocked")
        # It serves linearizable reads once it has heard from the leader.
        wait_for(lambda: request("GET", f"{vurl}/secrets/s"), 10, "a read on the unlocked manager")

        # Rotation: the leader rewraps the DEK; every manager learns the new
        # fingerprint through the log, so after a restart only the new key works.
        swarm = request("GET", f"{url}/swarm")
        new_key = request(
            "POST",
            f"{url}/swarm/update?version={swarm['Version']['Index']}&rotateManagerUnlockKey=true",
            swarm["Spec"],
        )["UnlockKey"]
        assert new_key != key
        assert request("GET", f"{url}/swarm/unlockkey")["UnlockKey"] == new_key
        other = followers[1]
        ourl = url_of(desc, other)
        fingerprint = sup.cdir.node_dir(other) / "keys" / "kek.fingerprint"
        from cluster.security.crypto import kek_from_unlock_key

        want = kek_from_unlock_key(new_key).key_id
        wait_for(lambda: fingerprint.read_text() == want, 10, "the new fingerprint replicated")
        sup.restart(other)
        wait_for(
            lambda: request("GET", f"{ourl}/raft/status", timeout=1).get("locked"),
            10,
            "the second manager locked",
        )
        with pytest.raises(ApiError):
            request("POST", f"{ourl}/swarm/unlock", {"UnlockKey": key})
        request("POST", f"{ourl}/swarm/unlock", {"UnlockKey": new_key})
        wait_for(lambda: collect(sup, sup.cdir.load())["reachable"] == 3, 10, "it rejoined too")
        wait_for(
            lambda: request("POST", f"{ourl}/secrets/create", {"Name": "t", "Data": "aGk="}),
            10,
            "a secret written through the manager unlocked with the new key",
        )


def _listening(port: int) -> bool:
    """Does anything accept connections on 127.0.0.1:port?"""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
