"""Provisioning: everything a node needs on disk before its process first runs.

A new cluster gets its description (names, IDs, ports), the key-encryption
key each manager keeps (or, with autolock, only its fingerprint), the root
CA and one certificate per founding manager; every start of a node then
gets its ``config.json`` rewritten from the description, so a changed
timing or a learnt peer reaches it at its next start.  A node that joins
later gets the swarm's KEK as the others hold it and the certificate the
swarm signed for it.

Apart from the processes because none of this needs a process: it is the
part to read to know what a node's directory holds and why (`layout` draws
the tree), and the only part that writes key material.
"""

from __future__ import annotations

import json
import os
import secrets
import time

from cluster.local.join import Joined
from cluster.local.layout import ClusterDir, ClusterError, Description, Member, Timing
from cluster.local.ports import pick_ports
from cluster.security import node_keys
from cluster.security.crypto import (
    generate_dek,
    generate_kek,
    generate_unlock_key,
    kek_from_unlock_key,
    wrap_dek,
)
from cluster.security.pki import MANAGER_ROLE, CertificateAuthority, write_node_files
from cluster.state.commands import new_id
from raft.runtime.tls import TLSFiles

__all__ = ["Provisioner"]


class Provisioner:
    """Writes the files of the nodes in one cluster directory."""

    def __init__(self, cdir: ClusterDir) -> None:
        self.cdir = cdir

    def create(
        self,
        managers: int,
        base_port: int | None,
        timing: Timing,
        election_ticks: dict[str, int],
        workers: int = 0,
        autolock: bool = False,
    ) -> tuple[Description, str | None]:
        """A new cluster's description and files; with ``autolock``, its unlock key
        (held in memory only by the caller, never written)."""
        if not 1 <= managers <= 9:
            raise ClusterError("--managers must be between 1 and 9")
        if not 0 <= workers <= 20:
            raise ClusterError("--workers must be between 0 and 20")
        ports = pick_ports(3 * managers + workers, base_port)
        desc = Description(cluster_id=new_id(), created=time.time(), timing=timing)
        for i in range(managers):
            name = f"manager{i + 1}"
            desc.members.append(
                Member(
                    name=name,
                    node_id=new_id(),
                    role="manager",
                    raft_port=ports[3 * i],
                    api_port=ports[3 * i + 1],
                    swarm_port=ports[3 * i + 2],
                    election_ticks=election_ticks.get(name),
                )
            )
        for i in range(workers):
            # Its node ID comes from the swarm when it joins (`newcomers.Newcomers`).
            desc.members.append(
                Member(
                    name=f"worker{i + 1}",
                    node_id="",
                    role="worker",
                    api_port=ports[3 * managers + i],
                )
            )
        unlock_key = None
        kek = generate_kek(secrets.token_bytes)
        if autolock:
            # The KEK is derived from the unlock key and never stored: each
            # manager keeps only its fingerprint, to check a key it is given.
            unlock_key = generate_unlock_key(secrets.token_bytes)
            kek = kek_from_unlock_key(unlock_key)
            desc.autolock = True
        for m in desc.members:
            if m.role != "manager":
                continue
            keys = self.cdir.node_dir(m.name) / "keys"
            keys.mkdir(parents=True, exist_ok=True)
            path = keys / ("kek.fingerprint" if autolock else "kek")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(kek.key_id.encode() if autolock else kek.secret_bytes())
        # The cluster's root CA and one certificate per manager, for mutual TLS
        # on Raft traffic (`cluster.security.pki`): CN = name = Raft id, OU = role.
        ca = CertificateAuthority.create(desc.cluster_id)
        ca.save(self.cdir.path / "ca")
        # With autolock, the swarm's data key is made here rather than by the
        # first leader, so that each founding manager's TLS key is sealed from
        # the start (`cluster.security.node_keys`): it gets the data key wrapped
        # by the unlock key's KEK, and the first leader adopts that data key.
        dek = generate_dek() if autolock else None
        for m in desc.members:
            if m.role == "manager":
                keys = self.cdir.node_dir(m.name) / "keys"
                files = ca.issue_files(keys, m.name, MANAGER_ROLE, desc.cluster_id)
                if dek is not None:
                    node_keys.write_private(keys / "dek.wrapped", wrap_dek(dek, kek))
                    node_keys.seal_key(files.key, node_keys.key_password(dek))
        self.cdir.save(desc)
        return desc, unlock_key

    def starts_locked(self, m: Member) -> bool:
        """Will this manager start locked?  (Autolock: a fingerprint, no KEK file.)"""
        keys = self.cdir.node_dir(m.name) / "keys"
        return (
            m.role == "manager"
            and (keys / "kek.fingerprint").exists()
            and not (keys / "kek").exists()
        )

    def give_kek(self, desc: Description, m: Member) -> None:
        """A new manager gets the swarm's key-encryption key as the others hold it.

        Without autolock that is the ``kek`` file; with it only the
        fingerprint, so the new manager starts locked until ``swarm unlock``.
        """
        keys = self.cdir.node_dir(m.name) / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        for other in desc.members:
            src = self.cdir.node_dir(other.name) / "keys"
            for name in ("kek", "kek.fingerprint"):
                if other.role == "manager" and (src / name).exists():
                    data = (src / name).read_bytes()
                    fd = os.open(keys / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                    with os.fdopen(fd, "wb") as f:
                        f.write(data)
                    return

    def keep_certificate(self, m: Member, joined: Joined) -> None:
        """The identity the swarm gave a node that joined: its ID and certificate."""
        m.node_id = joined.node_id
        keys = self.cdir.node_dir(m.name) / "keys"
        write_node_files(keys, joined.ca_pem, joined.certificate, joined.key)

    # ------------------------------------------------------------ config.json

    def write_config(self, desc: Description, m: Member) -> None:
        """``m``'s ``config.json`` from the description (rewritten at every start)."""
        if m.role == "worker":
            self._write_worker_config(desc, m)
            return
        t = desc.timing
        peers = {
            p.name: {
                "node_id": p.node_id,
                "raft": [p.host, p.raft_port],
                "api_url": p.api_url,
                "swarm_url": p.swarm_url if p.swarm_port else None,
            }
            for p in desc.members
            if p.role == "manager"
        }
        config = {
            "name": m.name,
            "node_id": m.node_id,
            "cluster_id": desc.cluster_id,
            "data_dir": str(self.cdir.node_dir(m.name)),
            "api_host": m.host,
            "api_port": m.api_port,
            "peers": peers,
            "tick_interval": t.tick_interval,
            "heartbeat_ticks": t.heartbeat_ticks,
            "election_ticks": m.election_ticks or t.election_ticks,
            "snapshot_entries": t.snapshot_entries,
            "request_timeout": t.request_timeout,
            "fsync": t.fsync,
            "autolock": desc.autolock,
            "swarm_port": m.swarm_port or None,
        }
        if m.joiner:
            config["voters"] = []
        tls = TLSFiles.in_dir(self.cdir.node_dir(m.name) / "keys")
        if tls.cert.exists():  # clusters made before certificates stay on plain TCP
            config["tls"] = tls.config()
            ca_key = self.cdir.path / "ca" / "ca.key"
            if ca_key.exists():
                # Read once, by the first leader, to seal the root CA into the store.
                config["tls"]["ca_key"] = str(ca_key)
        d = self.cdir.node_dir(m.name)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(config, indent=2))

    def _write_worker_config(self, desc: Description, m: Member) -> None:
        """A worker's config: the managers' swarm URLs and its certificate's files."""
        d = self.cdir.node_dir(m.name)
        d.mkdir(parents=True, exist_ok=True)
        tls = TLSFiles.in_dir(d / "keys")
        config = {
            "name": m.name,
            "node_id": m.node_id,
            "data_dir": str(d),
            "api_host": m.host,
            "api_port": m.api_port,
            "managers": {p.name: p.swarm_url for p in desc.members if p.role == "manager"},
            "tls": tls.config(),
            "request_timeout": desc.timing.request_timeout,
        }
        (d / "config.json").write_text(json.dumps(config, indent=2))
