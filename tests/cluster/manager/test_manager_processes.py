"""Three real managers: the Swarm state survives a leader's death, secrets never touch a disk.

Marked ``integration``: each test starts manager processes through the
supervisor and stops them whatever happens (`cluster_procs.running_cluster`).
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from cluster_procs import leader_name, running_cluster, wait_for

from cluster.client.http import request
from cluster.local.layout import Timing

pytestmark = pytest.mark.integration


def api(desc, name: str) -> str:
    return next(m.api_url for m in desc.members if m.name == name)


def test_create_on_one_read_on_another_survive_the_leader(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "c", managers=3) as (sup, desc):
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        follower = next(m.name for m in desc.members if m.name != leader)
        other = next(m.name for m in desc.members if m.name not in (leader, follower))

        # Written through a follower (forwarded to the leader) ...
        created = request(
            "POST",
            f"{api(desc, follower)}/services/create",
            {
                "Name": "web",
                "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.27"}},
                "Mode": {"Replicated": {"Replicas": 2}},
            },
        )
        cfg = request(
            "POST",
            f"{api(desc, follower)}/configs/create",
            {"Name": "site", "Data": base64.b64encode(b"listen 80;").decode()},
        )
        # ... read linearizably through the third manager: no stale read.
        svc = request("GET", f"{api(desc, other)}/services/web")
        assert svc["ID"] == created["ID"]
        assert svc["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx:1.27"
        assert request("GET", f"{api(desc, other)}/configs/site")["ID"] == cfg["ID"]

        # Compare-and-set: a stale version is refused with 409.
        v = svc["Version"]["Index"]
        spec = svc["Spec"]
        spec["Mode"]["Replicated"]["Replicas"] = 3
        request("POST", f"{api(desc, other)}/services/web/update?version={v}", spec)
        with pytest.raises(Exception) as stale:
            request("POST", f"{api(desc, other)}/services/web/update?version={v}", spec)
        assert getattr(stale.value, "status", None) == 409

        sup.kill(leader)
        new = wait_for(
            lambda: (n := leader_name(desc, sup)) and n != leader and n, 20, "a new leader"
        )
        svc = request("GET", f"{api(desc, new)}/services/web")
        assert svc["Spec"]["Mode"]["Replicated"]["Replicas"] == 3
        assert request("GET", f"{api(desc, new)}/configs/site")["ID"] == cfg["ID"]
        # The new leader's orchestrator keeps 3 tasks running on live nodes:
        # those of the dead node are replaced once it is down past the grace.
        dead = next(m.node_id for m in desc.members if m.name == leader)
        wait_for(
            lambda: (
                sum(
                    t["Status"]["State"] == "running"
                    and t["DesiredState"] == "running"
                    and t.get("NodeID") != dead
                    for t in request("GET", f"{api(desc, new)}/tasks")
                )
                == 3
            ),
            60,
            "3 running tasks on live nodes under the new leader",
        )


def _grep_dirs(root: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {n!r}" for n in needles if n in data]
    return hits


def test_secret_plaintext_never_reaches_a_disk(tmp_path: Path) -> None:
    root = tmp_path / "c"
    plaintext = f"s3cr3t-{uuid.uuid4().hex}".encode()
    secret_needles = [plaintext, base64.b64encode(plaintext)]
    config_data = f"cfg-{uuid.uuid4().hex}".encode()
    # Snapshots every 20 entries, so the secret also goes through compaction (§7).
    timing = Timing(snapshot_entries=20)
    with running_cluster(root, managers=3, timing=timing) as (sup, desc):
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        url = api(desc, leader)
        request(
            "POST",
            f"{url}/secrets/create",
            {"Name": "db-password", "Data": base64.b64encode(plaintext).decode()},
        )
        request(
            "POST",
            f"{url}/configs/create",
            {"Name": "app-config", "Data": base64.b64encode(config_data).decode()},
        )
        inspected = request("GET", f"{url}/secrets/db-password")
        assert "Data" not in inspected.get("Spec", {})
        for i in range(40):  # enough writes for every manager to snapshot
            request("POST", f"{url}/configs/create", {"Name": f"filler-{i}", "Data": "eA=="})
        wait_for(
            lambda: all(
                request("GET", f"{m.api_url}/raft/status")["snapshot_index"] > 0
                for m in desc.members
            ),
            20,
            "a snapshot on every manager",
        )
        sup.down()
        desc = sup.up(None)  # every manager restarts from its snapshot and log
        wait_for(lambda: leader_name(desc, sup), 20, "a leader after restart")
        for m in desc.members:
            assert request("GET", f"{m.api_url}/secrets/db-password?consistency=local")
    # Zero hits for the secret anywhere; the config's plain data is on disk.
    assert _grep_dirs(root, secret_needles) == []
    assert _grep_dirs(root, [config_data]), "configs are stored in plain"
