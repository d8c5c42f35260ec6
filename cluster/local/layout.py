"""Where a local cluster lives on disk, and its description file.

One directory holds one cluster (``--dir DIR``, else ``$CLUSTER_DIR``, else
``./.cluster``)::

    DIR/cluster.json        the description: ids, ports, timing, processes
    DIR/faults.jsonl        every fault the supervisor injected (for figures)
    DIR/client.jsonl        client operations recorded by scenarios
    DIR/manager1/           one manager: config.json, node.log, trace.jsonl,
        raft/               its Raft data (log segments, hard state, snapshot,
                            faults.json: its network fault rules)
        keys/kek            the key-encryption key (absent with autolock)
        keys/node.crt, node.key, ca.crt
                            its certificate (`cluster.security.pki`)
    DIR/worker1/keys/       a worker's certificate, from joining
    DIR/ca/                 the root CA (`up` issues the founding managers')

`cluster.json` is rewritten whole (write a temp file, rename) so a reader
never sees half of it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.runtime.plain import from_plain, to_plain

__all__ = [
    "ClusterDir",
    "ClusterError",
    "Description",
    "Member",
    "NetnsConfig",
    "Timing",
    "resolve_dir",
]

DEFAULT_DIR = ".cluster"


class ClusterError(Exception):
    """A user-facing problem with the cluster: printed as one line, exit 1."""


def resolve_dir(arg: str | None) -> Path:
    """``--dir``, else ``$CLUSTER_DIR``, else ``./.cluster`` (docs/cli.md)."""
    return Path(arg or os.environ.get("CLUSTER_DIR") or DEFAULT_DIR).resolve()


@dataclass(slots=True)
class Timing:
    """Raft timing for every manager; ``election_ticks`` may be overridden per node."""

    tick_interval: float = 0.05
    heartbeat_ticks: int = 1
    #: T = 0.3 s: followers wait for 6 missed heartbeats, drawn from [T, 2T)
    #: (§5.2).  10 (0.5 s) gave a new leader 0.73 s after a leader's death on
    #: 5 managers; with 6 no election happened without a fault under the
    #: benchmark's heaviest load (see `python -m cluster bench`).
    election_ticks: int = 6
    snapshot_entries: int = 10_000
    request_timeout: float = 3.0
    fsync: bool = True

    @property
    def election_timeout(self) -> float:
        return self.tick_interval * self.election_ticks


@dataclass(slots=True)
class Member:
    """One manager (or worker) of the cluster and the process that runs it."""

    name: str
    node_id: str
    role: str  # "manager" or "worker"
    raft_port: int = 0
    api_port: int = 0
    #: A manager's swarm port: HTTPS with mutual TLS for workers and
    #: newcomers (`cluster.api.swarm`).
    swarm_port: int = 0
    #: Override of the election timeout for this node (ticks), so a scenario
    #: can decide which node times out first.
    election_ticks: int | None = None
    #: Joins an existing cluster (after a forced recovery) instead of founding
    #: one: it starts with no voters and learns the configuration (§4.2.1).
    joiner: bool = False
    pid: int | None = None
    #: The process's start time (clock ticks since boot, /proc/PID/stat field
    #: 22): with the PID it identifies the process, so a PID reused by another
    #: program is never signalled.
    pid_start: int | None = None
    #: The address it serves on: 127.0.0.1, or in netns mode its own address
    #: on the cluster's bridge (`cluster.local.netns`).
    host: str = "127.0.0.1"
    #: Netns mode: the network namespace its process runs in.
    netns: str | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def swarm_url(self) -> str:
        return f"https://{self.host}:{self.swarm_port}"

    @property
    def raft_addr(self) -> str:
        return f"{self.host}:{self.raft_port}"


@dataclass(slots=True)
class NetnsConfig:
    """Netns mode (`cluster.local.netns`): the names it made, the faults in force.

    Every name the supervisor creates in the kernel starts with ``prefix``
    (derived from the cluster ID), so ``down`` can find and remove exactly
    them -- also what a crashed run left behind.
    """

    prefix: str
    #: The first three octets of the cluster's /24 (the bridge is ``.1``).
    subnet: str
    #: How ``net delay`` is realised: "netem" (the kernel) or "transport"
    #: (the managers' own delay, `raft.runtime.faults`), probed at ``up``.
    delay_via: str = "transport"
    #: Node name -> percent of its packets (to and from other nodes) dropped.
    loss: dict[str, int] = field(default_factory=dict)
    #: Node name -> milliseconds its packets (or Raft messages) are delayed.
    delay: dict[str, int] = field(default_factory=dict)

    @property
    def bridge_addr(self) -> str:
        return f"{self.subnet}.1"


@dataclass(slots=True)
class Description:
    cluster_id: str
    created: float
    timing: Timing = field(default_factory=Timing)
    members: list[Member] = field(default_factory=list)
    #: The groups of the current partition (empty: healed).
    partition: list[list[str]] = field(default_factory=list)
    #: A one-way cut in force, ``[FROM, TO]``: FROM's packets to TO are
    #: dropped while TO's still reach FROM (empty: none).
    oneway: list[list[str]] = field(default_factory=list)
    autolock: bool = False
    #: Packet-level network mode (``up --netns``); None: everything on 127.0.0.1.
    netns: NetnsConfig | None = None


class ClusterDir:
    """A cluster directory and its ``cluster.json``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def description_file(self) -> Path:
        return self.path / "cluster.json"

    @property
    def faults_file(self) -> Path:
        return self.path / "faults.jsonl"

    def exists(self) -> bool:
        return self.description_file.exists()

    def node_dir(self, name: str) -> Path:
        return self.path / name

    def load(self) -> Description:
        try:
            raw = json.loads(self.description_file.read_text())
        except FileNotFoundError:
            raise ClusterError(
                f"no cluster in {self.path} (start one with: python -m cluster up --managers 3)"
            ) from None
        except ValueError as e:
            raise ClusterError(f"{self.description_file} is damaged: {e}") from None
        try:
            return from_plain(Description, raw, str(self.description_file))
        except ValueError as e:
            raise ClusterError(f"{self.description_file} is damaged: {e}") from None

    def save(self, desc: Description) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.description_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(to_plain(desc), indent=2))
        os.replace(tmp, self.description_file)

    def record_fault(self, kind: str, t: float, **fields: Any) -> None:
        """One ``fault`` line in DIR/faults.jsonl (docs/traces.md)."""
        line = {"t": t, "node": "supervisor", "type": "fault", "kind": kind, **fields}
        with self.faults_file.open("a") as f:
            f.write(json.dumps(line) + "\n")
