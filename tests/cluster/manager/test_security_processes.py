"""Real managers: certificates from ``up``, Raft over mutual TLS, join-token rotation.

Marked ``integration``.  Clusters are stopped whatever happens
(`cluster_procs.running_cluster`); waits are bounded polls.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cli_run import ok
from cluster_procs import leader_name, running_cluster, wait_for
from cryptography import x509
from cryptography.x509.oid import NameOID

from cluster.client.http import request
from cluster.local.join import join_swarm
from cluster.local.layout import ClusterError, Description
from cluster.security.pki import MANAGER_ROLE

pytestmark = pytest.mark.integration


def join_status(desc: Description, token: str, role: str | None = None) -> int | str:
    """Ask the swarm port to join with ``token``: the role granted, or the refusal's status."""
    urls = [m.swarm_url for m in desc.members if m.role == "manager"]
    ends = {"Raft": "127.0.0.1:9", "API": "http://127.0.0.1:9", "Swarm": "https://127.0.0.1:9"}
    try:
        return join_swarm(urls, token, role=role, endpoints=ends).role
    except ClusterError as e:
        return 403 if "refused" in str(e) else str(e)


def tokens(url: str) -> dict[str, str]:
    return request("GET", f"{url}/swarm")["JoinTokens"]


def test_up_issues_certificates_and_raft_runs_over_tls(tmp_path: Path) -> None:
    cdir = tmp_path / "c"
    with running_cluster(cdir, managers=3) as (sup, desc):
        wait_for(lambda: leader_name(desc, sup), 20, "a leader over TLS")
        assert (cdir / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
        for m in desc.members:
            keys = cdir / m.name / "keys"
            config = json.loads((cdir / m.name / "config.json").read_text())
            assert config["tls"] == {
                "ca": str(keys / "ca.crt"),
                "cert": str(keys / "node.crt"),
                "key": str(keys / "node.key"),
                "ca_key": str(cdir / "ca" / "ca.key"),  # sealed into the store by the first leader
            }
            assert (keys / "node.key").stat().st_mode & 0o777 == 0o600
            cert = x509.load_pem_x509_certificate((keys / "node.crt").read_bytes())
            subject = {a.oid: a.value for a in cert.subject}
            assert subject[NameOID.COMMON_NAME] == m.name
            assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == MANAGER_ROLE
            assert subject[NameOID.ORGANIZATION_NAME] == desc.cluster_id
        # A write commits: the managers replicate over TLS.
        leader = leader_name(desc, sup)
        url = next(m.api_url for m in desc.members if m.name == leader)
        request("POST", f"{url}/configs/create", {"Name": "c1", "Data": "aGk="})

    # A cluster made before certificates (no node.crt) restarts on plain TCP.
    for m in desc.members:
        (cdir / m.name / "keys" / "node.crt").unlink()
    shutil.rmtree(cdir / "ca")
    with running_cluster(cdir, managers=3) as (sup, desc2):
        wait_for(lambda: leader_name(desc2, sup), 20, "a leader over plain TCP")
        assert "tls" not in json.loads((cdir / "manager1" / "config.json").read_text())
        leader = leader_name(desc2, sup)
        url = next(m.api_url for m in desc2.members if m.name == leader)
        assert [c["Spec"]["Name"] for c in request("GET", f"{url}/configs")] == ["c1"]


def _leader_url(desc: Description, sup) -> str:
    leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
    return next(m.api_url for m in desc.members if m.name == leader)


def test_rotated_join_tokens_are_refused(tmp_path: Path) -> None:
    cdir = tmp_path / "c"
    with running_cluster(cdir, managers=1) as (sup, desc):
        url = _leader_url(desc, sup)
        wait_for(lambda: tokens(url)["Worker"], 20, "the swarm initialised")
        before = tokens(url)
        assert ok(cdir, "swarm", "join-token", "-q", "worker").strip() == before["Worker"]

        # The token decides the role: a worker token cannot join as a manager.
        assert join_status(desc, before["Worker"], role="manager") == 403
        assert join_status(desc, before["Manager"], role="worker") == 403

        out = ok(cdir, "swarm", "join-token", "-q", "--rotate", "worker").strip()
        after = tokens(url)
        assert out == after["Worker"] != before["Worker"]
        assert after["Manager"] == before["Manager"]
        assert join_status(desc, before["Worker"]) == 403
        assert join_status(desc, after["Worker"]) == "worker"

        ok(cdir, "swarm", "join-token", "--rotate", "manager")
        rotated = tokens(url)
        assert rotated["Manager"] != after["Manager"]
        assert rotated["Worker"] == after["Worker"]
