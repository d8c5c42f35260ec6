"""Start, stop and break the processes of a local cluster.

The supervisor is not a daemon: every CLI command loads ``cluster.json``,
acts on the processes it names, saves it back and exits.  Processes are
identified by PID *and* start time (``/proc/PID/stat``), so a PID that the
kernel gave to another program after a manager died is never signalled.

Faults are real: ``kill`` is SIGKILL, ``pause`` is SIGSTOP.  Partitions are
rules in each manager's ``raft/faults.json`` that its transport applies
(drop traffic to and from the other side); the supervisor rewrites the file
and sends SIGHUP.  A stopped manager reads the rules when it starts, a
paused one when it resumes, so a partition holds until ``heal``.  Every
fault is appended to ``DIR/faults.jsonl`` so figures can shade it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cluster.client.http import ApiError, Unreachable, request
from cluster.local.join import Joined, join_swarm
from cluster.local.layout import ClusterDir, ClusterError, Description, Member, Timing
from cluster.security.crypto import generate_kek, generate_unlock_key, kek_from_unlock_key
from cluster.security.pki import MANAGER_ROLE, CertificateAuthority, write_node_files
from cluster.state.commands import new_id
from raft.runtime.tls import TLSFiles

__all__ = ["Supervisor"]

#: How long a manager gets to stop after SIGTERM before SIGKILL.
STOP_GRACE = 8.0
#: How long a port of a node that just died may stay busy (`_check_ports`).
PORT_GRACE = 2.0
Progress = Callable[[str], None]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest[0], int(rest[19])


class Supervisor:
    """The processes of the cluster in one directory."""

    def __init__(self, cdir: ClusterDir) -> None:
        self.cdir = cdir
        #: With ``up(autolock=True)`` on a new cluster: the unlock key, held in
        #: memory only, handed to each manager on its stdin at its first start
        #: and shown once to the user.
        self.unlock_key: str | None = None
        self._start_key: str | None = None

    # ------------------------------------------------------------ process state

    def process_state(self, m: Member) -> str:
        """ "running", "paused" or "down" -- checked against PID reuse."""
        if m.pid is None:
            return "down"
        st = _proc_stat(m.pid)
        if st is None or st[1] != m.pid_start or st[0] in ("Z", "X"):
            return "down"
        return "paused" if st[0] in ("T", "t") else "running"

    def _signal(self, m: Member, sig: signal.Signals) -> bool:
        if self.process_state(m) == "down":
            return False
        assert m.pid is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(m.pid, sig)
        return True

    def _wait_down(self, members: Iterable[Member], timeout: float) -> list[Member]:
        """Wait until every member's process is gone; return those still alive."""
        pending = [m for m in members if self.process_state(m) != "down"]
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            time.sleep(0.05)
            pending = [m for m in pending if self.process_state(m) != "down"]
        return pending

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
    ) -> Description:
        """Create and start a cluster, or restart an existing one on its data
        (only the processes that are down: running ones are left as they are).

        Managers start first; worker agents once a leader has initialised
        the swarm, since they join with its worker token.
        """
        if self.cdir.exists():
            desc = self.cdir.load()
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
                    m.swarm_port = _pick_ports(1, None)[0]
            if len(running) < len(desc.members):
                progress(f"restarting the cluster in {self.cdir.path} on its data")
            new = False
        else:
            desc = self._create(
                managers or 3,
                base_port,
                timing or Timing(),
                election_ticks or {},
                workers or 0,
                autolock,
            )
            extra = f" and {workers} workers" if workers else ""
            progress(f"created a cluster of {managers or 3} managers{extra} in {self.cdir.path}")
            new = True
        to_start = [m for m in desc.members if new or self.process_state(m) == "down"]
        self._check_ports(Description(desc.cluster_id, desc.created, members=to_start))
        started: list[Member] = []
        self._start_key = self.unlock_key if new else None
        try:
            for m in to_start:
                if m.role == "manager":
                    self._write_config(desc, m)
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
                    self._join_worker(desc, m, progress)
                    self._write_config(desc, m)
                    self._start(m)
                    started.append(m)
                    progress(f"started {m.name} (pid {m.pid}, status {m.api_url}/status)")
            self.cdir.save(desc)
            self._start_key = None
        except BaseException:
            self._start_key = None
            # Nothing half-started: stop what this call started.
            self._stop(started)
            self.cdir.save(desc)
            if new:
                shutil.rmtree(self.cdir.path, ignore_errors=True)
            raise
        return desc

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
        self._stop(live)
        for m in desc.members:
            m.pid = m.pid_start = None
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
        killed = [m.pid for m in desc.members if m.pid and self._signal(m, signal.SIGKILL)]
        self._wait_down(desc.members, 5.0)
        return killed

    def _stop(self, members: list[Member]) -> None:
        for m in members:
            self._signal(m, signal.SIGTERM)
            self._signal(m, signal.SIGCONT)  # a paused process must run to exit
        stuck = self._wait_down(members, STOP_GRACE)
        for m in stuck:
            self._signal(m, signal.SIGKILL)
        still = self._wait_down(stuck, 5.0)
        if still:
            raise ClusterError(f"could not stop {', '.join(m.name for m in still)}")

    def _manager_count(self, desc: Description) -> int:
        return sum(1 for m in desc.members if m.role == "manager")

    def _create(
        self,
        managers: int,
        base_port: int | None,
        timing: Timing,
        election_ticks: dict[str, int],
        workers: int = 0,
        autolock: bool = False,
    ) -> Description:
        if not 1 <= managers <= 9:
            raise ClusterError("--managers must be between 1 and 9")
        if not 0 <= workers <= 20:
            raise ClusterError("--workers must be between 0 and 20")
        ports = _pick_ports(3 * managers + workers, base_port)
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
            # Its node ID comes from the swarm when it joins (`_join_worker`).
            desc.members.append(
                Member(
                    name=f"worker{i + 1}",
                    node_id="",
                    role="worker",
                    api_port=ports[3 * managers + i],
                )
            )
        kek = generate_kek(secrets.token_bytes)
        if autolock:
            # The KEK is derived from the unlock key and never stored: each
            # manager keeps only its fingerprint, to check a key it is given.
            self.unlock_key = generate_unlock_key(secrets.token_bytes)
            kek = kek_from_unlock_key(self.unlock_key)
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
        for m in desc.members:
            if m.role == "manager":
                keys = self.cdir.node_dir(m.name) / "keys"
                ca.issue_files(keys, m.name, MANAGER_ROLE, desc.cluster_id)
        self.cdir.save(desc)
        return desc

    def _check_ports(self, desc: Description, grace: float = PORT_GRACE) -> None:
        """Every port of these members is free, or a one-line error.

        A manager killed a moment ago may still hold its sockets for a few
        tens of milliseconds (the kernel closes them as its threads exit,
        after /proc already says it is dead), so a busy port gets ``grace``
        seconds to come free before it counts as another program's.
        """
        deadline = time.monotonic() + grace
        for m in desc.members:
            for port in (m.raft_port, m.api_port, m.swarm_port):
                while port and not _port_free(port) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if port and not _port_free(port):
                    raise ClusterError(
                        f"port {port} of {m.name} is in use by another program; "
                        "pick other ports with --base-port (new cluster) or free it"
                    )

    def _write_config(self, desc: Description, m: Member) -> None:
        if m.role == "worker":
            self._write_worker_config(desc, m)
            return
        t = desc.timing
        peers = {
            p.name: {
                "node_id": p.node_id,
                "raft": ["127.0.0.1", p.raft_port],
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

    def starts_locked(self, m: Member) -> bool:
        """Will this manager start locked?  (Autolock: a fingerprint, no KEK file.)"""
        keys = self.cdir.node_dir(m.name) / "keys"
        return (
            m.role == "manager"
            and (keys / "kek.fingerprint").exists()
            and not (keys / "kek").exists()
        )

    def _write_worker_config(self, desc: Description, m: Member) -> None:
        """A worker's config: the managers' swarm URLs and its certificate's files."""
        d = self.cdir.node_dir(m.name)
        d.mkdir(parents=True, exist_ok=True)
        tls = TLSFiles.in_dir(d / "keys")
        config = {
            "name": m.name,
            "node_id": m.node_id,
            "data_dir": str(d),
            "api_port": m.api_port,
            "managers": {p.name: p.swarm_url for p in desc.members if p.role == "manager"},
            "tls": tls.config(),
            "request_timeout": desc.timing.request_timeout,
        }
        (d / "config.json").write_text(json.dumps(config, indent=2))

    def _join_worker(self, desc: Description, m: Member, progress: Progress) -> None:
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
        self._keep_certificate(m, joined)
        progress(f"{m.name} joined the swarm as a worker (node {joined.node_id[:12]})")

    def _keep_certificate(self, m: Member, joined: Joined) -> None:
        m.node_id = joined.node_id
        keys = self.cdir.node_dir(m.name) / "keys"
        write_node_files(keys, joined.ca_pem, joined.certificate, joined.key)

    def _swarm_urls(self, desc: Description) -> list[str]:
        """The swarm URLs of the managers running now."""
        return [
            m.swarm_url
            for m in desc.members
            if m.role == "manager" and m.swarm_port and self.process_state(m) == "running"
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
        raft_port, api_port, swarm_port = _pick_ports(3, None)
        endpoints = {
            "Raft": f"127.0.0.1:{raft_port}",
            "API": f"http://127.0.0.1:{api_port}",
            "Swarm": f"https://127.0.0.1:{swarm_port}",
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
            self._stop([old])
            desc.members.remove(old)
            shutil.rmtree(self.cdir.node_dir(old.name), ignore_errors=True)
        m = Member(
            name=joined.hostname, node_id=joined.node_id, role=joined.role, api_port=api_port
        )
        if joined.role == "manager":
            m.raft_port, m.swarm_port, m.joiner = raft_port, swarm_port, True
            self._give_kek(desc, m)
        self._keep_certificate(m, joined)
        desc.members.append(m)
        self.cdir.save(desc)
        self._write_config(desc, m)
        self._start(m)
        self.cdir.save(desc)
        progress(f"started {m.name} (pid {m.pid}, api {m.api_url})")
        return m

    def _give_kek(self, desc: Description, m: Member) -> None:
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

    def _worker_token(self, desc: Description) -> str:
        """The swarm's worker join token (``docker swarm join-token worker``)."""
        for m in desc.members:
            if m.role != "manager" or self.process_state(m) != "running":
                continue
            with contextlib.suppress(Unreachable, ApiError):
                cluster = request("GET", f"{m.api_url}/swarm", timeout=desc.timing.request_timeout)
                token = (cluster or {}).get("JoinTokens", {}).get("Worker")
                if token:
                    return str(token)
        raise ClusterError("no manager could give the worker join token (is there a leader?)")

    def _start(self, m: Member) -> None:
        d = self.cdir.node_dir(m.name)
        module = "cluster.worker" if m.role == "worker" else "cluster.manager"
        # An autolocked manager's first start gets the unlock key on its stdin
        # (never on its command line, environment or disk); later starts none.
        key = self._start_key if m.role == "manager" and self.starts_locked(m) else None
        log = (d / "node.log").open("ab")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", module, "--config", str(d / "config.json")],
                stdin=subprocess.PIPE if key else subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                # Its own session: Ctrl-C in the user's terminal reaches the CLI,
                # which then stops the managers in order.
                start_new_session=True,
            )
        finally:
            log.close()
        if key and proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(key.encode() + b"\n")
            proc.stdin.close()
        st = _proc_stat(proc.pid)
        m.pid, m.pid_start = proc.pid, st[1] if st else None

    # ------------------------------------------------------------ leader

    def find_leader(
        self, desc: Description, initialised: bool = False
    ) -> tuple[Member, dict[str, Any]] | None:
        """The running manager that says it leads, with its ``/raft/status``.

        With ``initialised``, only once it has also set up the swarm (its first
        act as leader), so the user's very next command can write.
        """
        for m in desc.members:
            if m.role != "manager" or self.process_state(m) != "running":
                continue
            try:
                st = request("GET", f"{m.api_url}/raft/status", timeout=0.5)
            except (Unreachable, ApiError):
                continue
            if st.get("role") == "leader" and (not initialised or st.get("initialised", True)):
                return m, st
        return None

    def wait_for_leader(
        self, desc: Description, timeout: float, progress: Progress = lambda _: None
    ) -> str | None:
        """Poll the managers until one leads an initialised swarm; its name, or None."""
        deadline = time.monotonic() + timeout
        said = False
        while time.monotonic() < deadline:
            found = self.find_leader(desc, initialised=True)
            if found is not None:
                m, st = found
                progress(f"{m.name} is the leader (term {st.get('term')})")
                return m.name
            if not said:
                progress("waiting for an election...")
                said = True
            time.sleep(0.1)
        return None

    # ------------------------------------------------------------ faults

    def resolve(self, desc: Description, ref: str) -> Member:
        """A member by name, node-ID prefix, or the word ``leader``."""
        if ref == "leader":
            found = self.find_leader(desc)
            if found is None:
                raise ClusterError("there is no leader right now")
            return found[0]
        for m in desc.members:
            if m.name == ref:
                return m
        matches = [m for m in desc.members if m.node_id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise ClusterError(f"node ID prefix {ref!r} is ambiguous")
        names = ", ".join(m.name for m in desc.members)
        raise ClusterError(f"no node {ref!r} in this cluster (nodes: {names})")

    def kill(self, ref: str) -> Member:
        desc = self.cdir.load()
        m = self.resolve(desc, ref)
        if not self._signal(m, signal.SIGKILL):
            raise ClusterError(f"{m.name} is not running")
        self.cdir.record_fault("kill", time.time(), target=m.name)
        if self._wait_down([m], 5.0):
            raise ClusterError(f"{m.name} did not die after SIGKILL")
        return m

    def pause(self, ref: str) -> Member:
        desc = self.cdir.load()
        m = self.resolve(desc, ref)
        if self.process_state(m) != "running":
            raise ClusterError(f"{m.name} is {self.process_state(m)}, not running")
        self._signal(m, signal.SIGSTOP)
        self.cdir.record_fault("pause", time.time(), target=m.name)
        return m

    def unpause(self, ref: str) -> Member:
        desc = self.cdir.load()
        m = self.resolve(desc, ref)
        if self.process_state(m) != "paused":
            raise ClusterError(f"{m.name} is {self.process_state(m)}, not paused")
        self._signal(m, signal.SIGCONT)
        self.cdir.record_fault("unpause", time.time(), target=m.name)
        return m

    def restart(self, ref: str) -> Member:
        """Start a manager again on its data (stopping it first if it runs)."""
        desc = self.cdir.load()
        m = self.resolve(desc, ref)
        if self.process_state(m) != "down":
            self._stop([m])
        self._check_ports(Description(desc.cluster_id, desc.created, members=[m]))
        self._write_config(desc, m)
        self._start(m)
        self.cdir.save(desc)
        self.cdir.record_fault("restart", time.time(), target=m.name)
        return m

    def force_new_cluster(self, ref: str, progress: Progress = lambda _: None) -> Member:
        """``docker swarm init --force-new-cluster`` on a surviving manager.

        For when a majority of managers is lost for good: quorum can never
        come back, so no write can commit.  Every process is stopped; the
        survivor's log loses its uncommitted entries and gains a
        configuration naming only itself (`raft.core.protocol.force_new_cluster`),
        keeping every committed entry; it restarts as a one-manager swarm.
        The other managers' Raft data is wiped: restarting one later makes it
        *join* the new swarm (as a learner, promoted once caught up) rather
        than revive the old configuration and elect a second leader.
        """
        from raft.core.protocol import force_new_cluster
        from raft.runtime.disk import DiskStorage

        desc = self.cdir.load()
        survivor = self.resolve(desc, ref)
        live = [m for m in desc.members if self.process_state(m) != "down"]
        self._stop(live)
        path = self.cdir.node_dir(survivor.name) / "raft" / "raft"
        with DiskStorage(path) as storage:
            state = storage.load()
            new, entry = force_new_cluster(state, survivor.name)
            storage.append([entry])
            storage.set_hard_state(new.hard_state)
            storage.sync()
        progress(
            f"{survivor.name}: kept {new.hard_state.commit} committed entries, dropped "
            f"{len(state.entries) - len(new.entries) + 1} uncommitted; now the only voter"
        )
        for m in desc.members:
            if m is survivor:
                continue
            if m.role != "manager":
                m.pid = m.pid_start = None  # stopped above; `restart` brings it back
                continue
            shutil.rmtree(self.cdir.node_dir(m.name) / "raft", ignore_errors=True)
            m.joiner = True
            m.pid = m.pid_start = None
        desc.partition = []
        self._apply_partition(desc)
        self._write_config(desc, survivor)
        self._start(survivor)
        self.cdir.save(desc)
        self.cdir.record_fault("force-new-cluster", time.time(), target=survivor.name)
        if self.wait_for_leader(desc, 30.0, progress) is None:
            raise ClusterError(f"{survivor.name} did not become leader after the recovery")
        return survivor

    def partition(self, groups: list[list[str]]) -> list[list[str]]:
        """Cut the network between groups of managers (names, ID prefixes or ``leader``).

        Managers named in no group form one more group together.
        """
        desc = self.cdir.load()
        members = [[self.resolve(desc, ref) for ref in g] for g in groups]
        workers = [m.name for g in members for m in g if m.role != "manager"]
        if workers:
            raise ClusterError(
                f"partitions cut the managers' Raft network; {', '.join(workers)} is a worker"
            )
        resolved = [[m.name for m in g] for g in members]
        flat = [n for g in resolved for n in g]
        if len(flat) != len(set(flat)):
            raise ClusterError("a node appears in two groups")
        rest = [m.name for m in desc.members if m.role == "manager" and m.name not in flat]
        if rest:
            resolved.append(rest)
        if len(resolved) < 2:
            raise ClusterError("a partition needs at least two groups")
        desc.partition = resolved
        self._apply_partition(desc)
        self.cdir.save(desc)
        self.cdir.record_fault("partition", time.time(), groups=resolved)
        return resolved

    def isolate(self, ref: str) -> list[list[str]]:
        desc = self.cdir.load()
        m = self.resolve(desc, ref)
        return self.partition([[m.name]])

    def heal(self) -> None:
        desc = self.cdir.load()
        desc.partition = []
        self._apply_partition(desc)
        self.cdir.save(desc)
        self.cdir.record_fault("heal", time.time())

    def _apply_partition(self, desc: Description) -> None:
        group_of = {n: i for i, g in enumerate(desc.partition) for n in g}
        managers = [m for m in desc.members if m.role == "manager"]
        for m in managers:
            others = [
                p.name
                for p in managers
                if p.name != m.name and group_of.get(p.name) != group_of.get(m.name)
            ]
            cut = {"drop": True, "loss": 0.0, "delay": 0.0}
            rules: dict[str, Any] = {
                "outbound": {p: cut for p in others},
                "inbound": {p: cut for p in others},
            }
            path = self.cdir.node_dir(m.name) / "raft" / "faults.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".sup")
            tmp.write_text(json.dumps(rules, indent=1))
            os.replace(tmp, path)
            self._signal(m, signal.SIGHUP)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_ports(n: int, base: int | None) -> list[int]:
    """``n`` ports: ``base``, ``base + 1``, ... or free ones the kernel picks."""
    if base is not None:
        ports = list(range(base, base + n))
        busy = [p for p in ports if not _port_free(p)]
        if busy:
            listed = ", ".join(map(str, busy))
            raise ClusterError(f"ports in use: {listed} (try another --base-port)")
        return ports
    ports: list[int] = []
    while len(ports) < n:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in ports:
            ports.append(port)
    return ports
