"""A local etcd cluster for ``bench --against etcd``: the side-by-side peer.

etcd is the reference Raft service; measuring swarmraft next to it on the
same machine, with the same load generator, turns drifting absolute numbers
into ratios that mean something.  `EtcdCluster` starts ``n`` members of
Debian's ``etcd`` (package ``etcd-server``) on 127.0.0.1 with free ports and
data directories under the benchmark's, waits until every member is healthy,
and stops them by PID on the way out, whatever happened.  etcd fsyncs its
log before it acknowledges (as swarmraft does), so the comparison is fair.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

from cluster.client.http import ApiError, Unreachable, request
from cluster.client.wait import attempts
from cluster.local.ports import pick_ports

__all__ = ["EtcdCluster", "EtcdMissing", "etcd_binary", "etcd_version"]

INSTALL_HINT = "install Debian's etcd-server package (apt-get install etcd-server)"


class EtcdMissing(RuntimeError):
    """No ``etcd`` binary on PATH."""


def etcd_binary() -> str | None:
    return shutil.which("etcd")


def etcd_version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    first = out.stdout.splitlines()[0] if out.stdout else ""
    return first.split(":", 1)[1].strip() if ":" in first else first.strip()


class EtcdCluster:
    """``with EtcdCluster(3, root) as etcd: etcd.client_urls`` -- healthy on entry."""

    def __init__(self, members: int, root: Path, start_timeout: float = 30.0) -> None:
        binary = etcd_binary()
        if binary is None:
            raise EtcdMissing(f"no etcd binary on PATH: {INSTALL_HINT}")
        self.binary = binary
        self.members = members
        self.root = root
        self.start_timeout = start_timeout
        self.procs: list[subprocess.Popen[bytes]] = []
        ports = pick_ports(2 * members, None)
        self.client_urls = [f"http://127.0.0.1:{p}" for p in ports[:members]]
        self.peer_urls = [f"http://127.0.0.1:{p}" for p in ports[members:]]

    @property
    def version(self) -> str:
        return etcd_version(self.binary)

    def leader_url(self) -> str:
        """The client URL of etcd's current leader (its maintenance status says who leads)."""
        for _ in attempts(within=10.0, every=0.1):
            for url in self.client_urls:
                st = _post_json(f"{url}/v3/maintenance/status", {})
                if (
                    st
                    and st.get("leader")
                    and st.get("header", {}).get("member_id") == st["leader"]
                ):
                    return url
        raise RuntimeError("etcd has no leader")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def __enter__(self) -> EtcdCluster:
        names = [f"etcd{i + 1}" for i in range(self.members)]
        initial = ",".join(f"{n}={u}" for n, u in zip(names, self.peer_urls, strict=True))
        try:
            for name, client, peer in zip(names, self.client_urls, self.peer_urls, strict=True):
                data = self.root / name
                shutil.rmtree(data, ignore_errors=True)
                data.mkdir(parents=True)
                argv = [
                    self.binary,
                    "--name", name,
                    "--data-dir", str(data),
                    "--listen-client-urls", client,
                    "--advertise-client-urls", client,
                    "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", initial,
                    "--initial-cluster-state", "new",
                    "--initial-cluster-token", f"bench-{os.getpid()}",
                ]  # fmt: skip
                with (self.root / f"{name}.log").open("wb") as log:
                    proc = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        start_new_session=True,
                    )
                self.procs.append(proc)
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        for _ in attempts(within=self.start_timeout, every=0.2):
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"an etcd member exited; see {self.root}/etcd*.log")
            if all(_healthy(u) for u in self.client_urls):
                return
        raise RuntimeError(f"etcd was not healthy within {self.start_timeout:g} s")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM every member, SIGKILL what is left after 10 s, and reap them."""
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs = []


def _post_json(url: str, body: object) -> dict | None:
    try:
        doc = request("POST", url, body, timeout=1.0)
    except (Unreachable, ApiError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _healthy(url: str) -> bool:
    try:
        return request("GET", f"{url}/health", timeout=1.0).get("health") == "true"
    except (Unreachable, ApiError, ValueError, AttributeError):
        return False
