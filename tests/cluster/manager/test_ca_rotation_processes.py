"""Real processes: ``swarm ca --rotate`` replaces the root CA while the swarm runs.

Marked ``integration``.  Three managers and a worker; a writer commits a
config every 100 ms from before the rotation until after it, and every
write must succeed.  Afterwards every node trusts the new root only and
holds a certificate it issued, the join tokens name the new root, and a
restarted manager (new connections all round) rejoins.  The cluster is
stopped whatever happens (`cluster_procs.running_cluster`); the writer
thread is bounded and joined.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from cli_run import cli
from cluster_procs import leader_name, running_cluster, wait_for
from cryptography import x509

from cluster.client.http import ApiError, Unreachable, request
from cluster.security.pki import root_digest, token_digest

pytestmark = pytest.mark.integration


class Writer(threading.Thread):
    """Creates configs on the leader until stopped (at most ``limit`` seconds)."""

    def __init__(self, url: str, limit: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.url, self.limit = url, limit
        self.stop = threading.Event()
        self.ok = 0
        self.failures: list[str] = []

    def run(self) -> None:
        end = time.monotonic() + self.limit
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                request(
                    "POST", f"{self.url}/configs/create", {"Name": f"c{self.ok}", "Data": "aA=="}
                )
                self.ok += 1
            except (ApiError, Unreachable) as e:
                self.failures.append(str(e))
            self.stop.wait(0.1)


def _roots(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_swarm_ca_rotate_replaces_the_root_while_writes_go_on(tmp_path: Path) -> None:
    cdir = tmp_path / "c"
    with running_cluster(cdir, managers=3, workers=1) as (sup, desc):
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        url = next(m.api_url for m in desc.members if m.name == leader)
        worker = next(m for m in desc.members if m.role == "worker")
        wait_for(lambda: request("GET", f"{worker.api_url}/status")["Registered"], 20, "the worker")
        [old_root] = _roots(cdir / "ca" / "ca.crt")
        writer = Writer(url)
        writer.start()
        try:
            wait_for(lambda: writer.ok >= 5, 10, "writes before the rotation")
            r = cli(cdir, "swarm", "ca", "--rotate", "--timeout", "90", timeout=120)
            at_end = writer.ok
            wait_for(lambda: writer.ok >= at_end + 5, 10, "writes after the rotation")
        finally:
            writer.stop.set()
            writer.join(timeout=15)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "rotation in progress: " in r.stderr and "/4 nodes" in r.stderr
        assert "Root CA rotation complete" in r.stderr
        assert writer.failures == [], writer.failures[:3]

        swarm = request("GET", f"{url}/swarm")
        new_pem = swarm["TLSInfo"]["TrustRoot"]
        new_root = x509.load_pem_x509_certificate(new_pem.encode())
        assert new_root != old_root and not swarm["RootRotationInProgress"]
        assert new_pem.strip() in r.stdout
        for token in swarm["JoinTokens"].values():
            assert token_digest(token) == root_digest(new_root)

        def on_new_root(name: str) -> bool:
            keys = cdir / name / "keys"
            leaf = x509.load_pem_x509_certificates((keys / "node.crt").read_bytes())[0]
            return _roots(keys / "ca.crt") == [new_root] and leaf.issuer == new_root.subject

        names = [m.name for m in desc.members]
        wait_for(lambda: all(on_new_root(n) for n in names), 15, "every node on the new root")
        for name in names:
            leaf = x509.load_pem_x509_certificates((cdir / name / "keys" / "node.crt").read_bytes())
            leaf[0].verify_directly_issued_by(new_root)

        # New connections everywhere, checked against the new root only.
        follower = next(m for m in desc.members if m.role == "manager" and m.name != leader)
        sup.restart(follower.name)
        request("POST", f"{url}/configs/create", {"Name": "after-rotation", "Data": "aA=="})
        wait_for(
            lambda: any(
                c["Spec"]["Name"] == "after-rotation"
                for c in request("GET", f"{follower.api_url}/configs")
            ),
            30,
            "the restarted manager caught up",
        )
