"""Real processes: node certificates expire and are renewed while the swarm runs.

Marked ``integration``.  The test-only override
``SWARMRAFT_TEST_CERT_EXPIRY_SECONDS`` (`cluster.security.expiry`) makes every
certificate live 20 s -- those ``up`` issues and every renewal -- so a few
lifetimes pass in a minute.  The cluster is stopped whatever happens
(`cluster_procs.running_cluster`).
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cluster_procs import leader_name, running_cluster, wait_for
from cryptography import x509

from cluster.client.http import request
from cluster.security.expiry import TEST_EXPIRY_ENV

pytestmark = pytest.mark.integration

LIFETIME = 20.0


def _cert(cdir: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((cdir / name / "keys" / "node.crt").read_bytes())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def test_every_node_renews_its_certificate_before_it_expires(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TEST_EXPIRY_ENV, str(LIFETIME))
    cdir = tmp_path / "c"
    with running_cluster(cdir, managers=3, workers=1) as (sup, desc):
        names = [m.name for m in desc.members]
        first = {name: _cert(cdir, name) for name in names}
        for cert in first.values():  # what `up` issued follows the override too
            life = cert.not_valid_after_utc - cert.not_valid_before_utc
            assert life <= datetime.timedelta(seconds=LIFETIME * 1.1 + 1)
        pids = {m.name: m.pid for m in desc.members}

        # Every node renews before its first certificate runs out ...
        def renewed() -> bool:
            return all(_cert(cdir, n).serial_number != first[n].serial_number for n in names)

        wait_for(renewed, LIFETIME + 10, "every node renewed its certificate")
        for name in names:
            assert _now() < first[name].not_valid_after_utc or (
                _cert(cdir, name).not_valid_before_utc < first[name].not_valid_after_utc
            ), f"{name} renewed only after its certificate expired"

        # ... and once all the first certificates have expired, the swarm still works:
        # a write commits, the worker still reports, a restarted manager (new
        # connections all round, checked against the renewed certificates) rejoins.
        latest = max(c.not_valid_after_utc for c in first.values())
        wait_for(lambda: _now() > latest + datetime.timedelta(seconds=1), LIFETIME + 5, "expiry")
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        url = next(m.api_url for m in desc.members if m.name == leader)
        request("POST", f"{url}/configs/create", {"Name": "after-expiry", "Data": "aGk="})
        worker = next(m for m in desc.members if m.role == "worker")
        wait_for(
            lambda: request("GET", f"{worker.api_url}/status")["LastContact"] > latest.timestamp(),
            15,
            "the worker reached the leader after its first certificate expired",
        )
        follower = next(m for m in desc.members if m.role == "manager" and m.name != leader)
        sup.restart(follower.name)
        wait_for(
            lambda: any(
                c["Spec"]["Name"] == "after-expiry"
                for c in request("GET", f"{follower.api_url}/configs")
            ),
            30,
            "the restarted manager caught up over new TLS connections",
        )
        # No other process was restarted to pick up its new certificate.
        now = {m.name: m.pid for m in sup.cdir.load().members}
        assert {n: p for n, p in now.items() if n != follower.name} == {
            n: p for n, p in pids.items() if n != follower.name
        }
