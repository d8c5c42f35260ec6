"""Real processes: nodes join with tokens and talk to the swarm port over mutual TLS.

Marked ``integration``.  One cluster (3 managers, 1 worker) serves every
check; it is stopped whatever happens (`cluster_procs.running_cluster`).
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import pytest
from cli_run import cli, ok
from cluster_procs import leader_name, running_cluster, wait_for
from cryptography import x509
from cryptography.x509.oid import NameOID

from cluster.client.http import ApiError, Unreachable, request
from cluster.local.join import join_swarm
from cluster.local.layout import ClusterDir, ClusterError, Description
from cluster.security.pki import MANAGER_ROLE, WORKER_ROLE, CertificateAuthority
from raft.runtime.tls import TLSFiles

pytestmark = pytest.mark.integration


def _subject(path: Path) -> dict[x509.ObjectIdentifier, str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    return {a.oid: str(a.value) for a in cert.subject}


def _context(ca: Path, files: TLSFiles | None) -> ssl.SSLContext:
    """A client context trusting ``ca``, showing ``files``' certificate if given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    ctx.check_hostname = False
    if files is not None:
        ctx.load_cert_chain(str(files.cert), str(files.key))
    return ctx


def _status(call) -> int:
    try:
        call()
    except ApiError as e:
        return e.status
    return 200


def _nodes(desc: Description, sup) -> dict[str, dict]:
    leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
    url = next(m.api_url for m in desc.members if m.name == leader)
    return {n["Description"]["Hostname"]: n for n in request("GET", f"{url}/nodes")}


def test_nodes_join_with_tokens_and_workers_use_mutual_tls(tmp_path: Path) -> None:
    cdir = tmp_path / "c"
    with running_cluster(cdir, managers=3, workers=1) as (sup, desc):
        # -- a worker from `up`: joined with the worker token, holds a worker certificate
        worker = next(m for m in desc.members if m.role == "worker")
        keys = cdir / worker.name / "keys"
        subject = _subject(keys / "node.crt")
        assert subject[NameOID.COMMON_NAME] == worker.node_id
        assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == WORKER_ROLE
        assert subject[NameOID.ORGANIZATION_NAME] == desc.cluster_id
        assert (keys / "node.key").stat().st_mode & 0o777 == 0o600
        config = json.loads((cdir / worker.name / "config.json").read_text())
        assert "join_token" not in config  # the certificate is who it is now
        wait_for(
            lambda: _nodes(desc, sup)[worker.name]["Status"]["State"] == "ready",
            20,
            "the worker registered over mutual TLS",
        )

        # -- the swarm port asks for a certificate of this swarm, and of the right role
        manager = next(m for m in desc.members if m.role == "manager")
        ca = cdir / "ca" / "ca.crt"
        register = f"{manager.swarm_url}/dispatcher/register"
        mine = TLSFiles.in_dir(cdir / manager.name / "keys")
        assert _status(lambda: request("POST", register, {}, context=_context(ca, None))) == 401
        assert _status(lambda: request("POST", register, {}, context=_context(ca, mine))) == 403
        foreign = CertificateAuthority.create("another-swarm")
        stranger = foreign.issue_files(tmp_path / "stranger", worker.node_id, WORKER_ROLE, "x")
        with pytest.raises(Unreachable):  # the TLS handshake itself fails
            request("POST", register, {}, context=_context(ca, stranger))
        # The users' API no longer serves the dispatcher at all.
        assert _status(lambda: request("POST", f"{manager.api_url}/dispatcher/register", {})) == 404

        # -- a manager token adds a manager: learner first, then a voter (§4.2.1)
        token = ok(cdir, "swarm", "join-token", "-q", "manager").strip()
        joined = cli(cdir, "swarm", "join", "--token", token)
        assert joined.returncode == 0, joined.stderr
        assert "joined a swarm as a manager (manager4)" in joined.stdout
        # The CLI follows the promotion: learner first, then a voter.
        assert "manager4 is a voter: 4 managers, quorum 3, tolerates 1 failure" in joined.stderr
        desc = ClusterDir(cdir).load()
        new = next(m for m in desc.members if m.name == "manager4")
        subject = _subject(cdir / "manager4" / "keys" / "node.crt")
        assert subject[NameOID.COMMON_NAME] == "manager4"
        assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == MANAGER_ROLE

        def voters() -> list[str]:
            found = sup.find_leader(desc)
            return found[1].get("voters", []) if found else []

        wait_for(lambda: "manager4" in voters(), 30, "manager4 promoted to voter")
        created = request("POST", f"{new.api_url}/configs/create", {"Name": "via4", "Data": "aGk="})
        assert request("GET", f"{new.api_url}/configs/{created['ID']}")["Spec"]["Name"] == "via4"
        assert _nodes(desc, sup)["manager4"]["ManagerStatus"]["Reachability"] == "reachable"

        # -- a manager leaves the way it came: demoted to a learner, then removed
        ok(cdir, "node", "demote", "manager4")

        def membership() -> tuple[list[str], list[str]]:
            found = sup.find_leader(desc)
            st = found[1] if found else {}
            return st.get("voters", []), st.get("learners", [])

        wait_for(lambda: "manager4" in membership()[1], 30, "manager4 demoted to a learner")
        ok(cdir, "node", "rm", "--force", "manager4")
        wait_for(
            lambda: found_none("manager4", membership()), 30, "manager4 out of the configuration"
        )

        # The name is free again: a new manager4 (new ports, new key) takes it,
        # and every manager learns its new address from its node object.
        again = cli(cdir, "swarm", "join", "--token", token)
        assert again.returncode == 0, again.stderr
        assert "joined a swarm as a manager (manager4)" in again.stdout
        assert "manager4 is a voter" in again.stderr
        desc = ClusterDir(cdir).load()
        assert [m.name for m in desc.members].count("manager4") == 1
        new4 = next(m for m in desc.members if m.name == "manager4")
        assert new4.raft_port != new.raft_port
        request("POST", f"{new4.api_url}/configs/create", {"Name": "via-new4", "Data": "aGk="})

        # -- the token decides the role; a worker token never makes a manager
        worker_token = ok(cdir, "swarm", "join-token", "-q", "worker").strip()
        urls = [m.swarm_url for m in desc.members if m.role == "manager"]
        ends = {"Raft": "127.0.0.1:9", "API": "http://127.0.0.1:9", "Swarm": "https://127.0.0.1:9"}
        with pytest.raises(ClusterError, match="worker join token cannot join as a manager"):
            join_swarm(urls, worker_token, role="manager", endpoints=ends)
        out = ok(cdir, "swarm", "join", "--token", worker_token)
        assert "joined a swarm as a worker (worker2)" in out
        wait_for(
            lambda: _nodes(desc, sup)["worker2"]["Status"]["State"] == "ready",
            20,
            "worker2 registered",
        )
        # A token whose digest names another CA is refused by the newcomer itself.
        alien = "SWMTKN-1-" + "0" * 50 + "-" + worker_token.rsplit("-", 1)[1]
        bad = cli(cdir, "swarm", "join", "--token", alien)
        assert bad.returncode == 1 and "does not match the token" in bad.stderr
        assert "Traceback" not in bad.stderr

        # -- removing a node revokes its certificate: its agent is refused and stops
        desc = ClusterDir(cdir).load()
        w2 = next(m for m in desc.members if m.name == "worker2")
        ok(cdir, "node", "rm", "--force", "worker2")
        wait_for(lambda: sup.process_state(w2) == "down", 20, "the removed worker to exit")
        w2_files = TLSFiles.in_dir(cdir / "worker2" / "keys")
        leader = next(m for m in desc.members if m.name == leader_name(desc, sup))
        status = _status(
            lambda: request(
                "POST",
                f"{leader.swarm_url}/dispatcher/register",
                {},
                context=_context(ca, w2_files),
            )
        )
        assert status == 403


def found_none(name: str, membership: tuple[list[str], list[str]]) -> bool:
    voters, learners = membership
    return bool(voters) and name not in voters and name not in learners
