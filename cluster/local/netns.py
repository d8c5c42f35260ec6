"""Packet-level network mode: each node in its own network namespace.

``up --netns`` (root only) gives every node -- managers and workers -- a
network namespace with one interface, ``eth0``, the inner end of a veth pair
whose outer end is plugged into a Linux bridge the supervisor creates::

    root namespace                        namespace <prefix>-manager1
    bridge <prefix>br 10.A.B.1/24 ---veth--- eth0 10.A.B.2/24  (manager1)
                                  ---veth--- eth0 10.A.B.3/24  (manager2) ...

Each node binds its Raft, API and swarm ports to its own address only.  The
bridge's address lets the operator's CLI, the web view and the scenario
runner (all in the root namespace) reach every node's API.  Nothing more is
opened: the nodes get no default route, the supervisor turns on no IP
forwarding and no NAT, and a second table (family ``inet``) drops anything
routed into or out of the bridge, so the namespaces reach the bridge and each
other and nothing beyond, even on a host that forwards for others.

Faults are packets dropped by the kernel, in an nftables table per cluster
(family ``bridge``, hook ``forward``: it sees exactly the frames one node
sends another across the bridge, never the operator's traffic, which leaves
the root namespace through the bridge's own port).  One rule per direction
and pair -- ``ip saddr A ip daddr B drop`` -- so a one-way cut is one rule;
``net loss`` is ``numgen random mod 100 < PCT drop`` on a node's packets.
The table is rewritten whole in one ``nft -f`` transaction at every change,
so a reader never sees half a partition.

Delay: ``tc ... netem`` where the kernel has it (probed once, at ``up``);
otherwise the managers' transport delays its own outbound Raft messages
(`raft.runtime.faults.LinkFault.delay`), which `faults` writes to each
manager's ``faults.json``.  ``net delay`` says which one it used.

Every name made here starts with the cluster's prefix (``sr`` and five hex
digits of its ID), recorded in ``cluster.json``: `Network.teardown` removes
every namespace, link and table carrying it -- also those of a crashed run.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterable

from cluster.client.wait import attempts
from cluster.local.layout import ClusterError, Description, Member, NetnsConfig

__all__ = ["Network", "check_available", "cut_pairs", "new_config", "node_rules"]

#: Interface names are at most 15 bytes; with a prefix of 7 the longest we
#: make, a veth end like "sr1a2b3-w20", has 11.
PREFIX_LEN = 7


def check_available() -> None:
    """Netns mode's requirements, or a one-line error: root, ``ip``, ``nft``."""
    if os.geteuid() != 0:
        raise ClusterError("--netns needs root (it creates network namespaces and nftables rules)")
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        pkgs = {"ip": "iproute2", "nft": "nftables"}
        names = ", ".join(f"`{t}` ({pkgs[t]})" for t in missing)
        raise ClusterError(f"--netns needs {names}: install it with apt-get")


def new_config(cluster_id: str) -> NetnsConfig:
    """A prefix and a /24 for a new cluster: 10.A.B.0/24 not in use on this machine."""
    digest = int(hashlib.sha256(cluster_id.encode()).hexdigest()[:8], 16)
    prefix = "sr" + f"{digest & 0xFFFFF:05x}"
    used = _networks_in_use()
    for i in range(50):
        subnet = f"10.{200 + (digest + i) % 50}.{(digest >> 8) % 256}"
        if not any(ipaddress.ip_network(f"{subnet}.0/24").overlaps(n) for n in used):
            return NetnsConfig(prefix=prefix, subnet=subnet)
    raise ClusterError("no free 10.x.y.0/24 for the cluster's bridge")


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks of this machine's addresses and routes (default route aside)."""
    out = _run(["ip", "-o", "-4", "addr", "show"], check=False)
    out += _run(["ip", "-4", "route", "show"], check=False)
    found = []
    for word in out.split():
        if word.count(".") == 3:
            try:
                found.append(ipaddress.ip_interface(word).network)
            except ValueError:
                continue
    return [n for n in found if n.prefixlen > 0]


def node_rules(cfg: NetnsConfig, desc: Description) -> list[str]:
    """The nftables rules (in order) for the cuts and losses in ``desc``.

    Only managers are cut (as the transport-level mode does: a partition
    cuts the managers' Raft network); loss applies to any node's packets.
    """
    addr = {m.name: m.host for m in desc.members}
    managers = [m.name for m in desc.members if m.role == "manager"]
    rules = []
    for src, dst in cut_pairs(desc, managers):
        rules.append(f"ip saddr {addr[src]} ip daddr {addr[dst]} counter drop")
    for name, pct in sorted(cfg.loss.items()):
        if pct > 0 and name in addr:
            for way in ("saddr", "daddr"):
                rules.append(f"ip {way} {addr[name]} numgen random mod 100 < {pct} counter drop")
    return rules


def cut_pairs(desc: Description, managers: Iterable[str]) -> list[tuple[str, str]]:
    """Every (from, to) pair of managers whose traffic is cut, one direction each.

    A partition cuts both directions between groups; a one-way cut
    ``[FROM, TO]`` only FROM -> TO.
    """
    group_of = {n: i for i, g in enumerate(desc.partition) for n in g}
    names = list(managers)
    pairs = []
    if desc.partition:
        for a in names:
            for b in names:
                if a != b and group_of.get(a) != group_of.get(b):
                    pairs.append((a, b))
    if desc.oneway:
        src, dst = desc.oneway
        pairs += [(a, b) for a in src for b in dst if (a, b) not in pairs]
    return pairs


class Network:
    """The namespaces, links, bridge and nftables table of one cluster."""

    def __init__(self, cfg: NetnsConfig) -> None:
        self.cfg = cfg
        self.prefix = cfg.prefix

    # ------------------------------------------------------------ names

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    def namespace(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def veth(self, name: str) -> str:
        """The outer end's name: prefix, "-", the role's letter and the number."""
        return f"{self.prefix}-{name[0]}{name.lstrip('abcdefghijklmnopqrstuvwxyz')}"

    def address(self, index: int) -> str:
        """The address of the ``index``-th node (0-based): .2, .3, ..."""
        if not 0 <= index < 250:
            raise ClusterError("netns mode has room for 250 nodes")
        return f"{self.cfg.subnet}.{index + 2}"

    # ------------------------------------------------------------ create

    def create_bridge(self) -> None:
        """The bridge with its address in the root namespace (idempotent)."""
        if not self._link_exists(self.bridge):
            # Frames between nodes skip the host's IP firewall (br_netfilter
            # would hand them to it, and a Docker host's FORWARD policy is
            # DROP): only our `bridge` table judges them.
            nf_off = ["nf_call_iptables", "0", "nf_call_ip6tables", "0", "nf_call_arptables", "0"]
            _run(["ip", "link", "add", self.bridge, "type", "bridge", *nf_off])
            _run(["ip", "addr", "add", f"{self.cfg.bridge_addr}/24", "dev", self.bridge])
        _run(["ip", "link", "set", self.bridge, "up"])

    def free_address(self, members: Iterable[Member]) -> str:
        """The lowest node address no member holds."""
        held = {m.host for m in members}
        for i in range(250):
            if self.address(i) not in held:
                return self.address(i)
        raise ClusterError("netns mode has room for 250 nodes")

    def place(self, m: Member, host: str) -> None:
        """Give ``m`` its namespace, its address ``host`` and a veth pair (idempotent)."""
        ns, veth = self.namespace(m.name), self.veth(m.name)
        m.host, m.netns = host, ns
        if ns in self._namespaces() and self._link_exists(veth):
            return
        self._remove_node(ns, veth)
        _run(["ip", "netns", "add", ns])
        _run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
        _run(["ip", "link", "set", veth, "master", self.bridge, "up"])
        _run(["ip", "-n", ns, "addr", "add", f"{m.host}/24", "dev", "eth0"])
        _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        _run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def probe_netem(self, m: Member) -> bool:
        """Whether this kernel has netem (tried once, on ``m``'s interface, then removed)."""
        if shutil.which("tc") is None or m.netns is None:
            return False
        tc = ["ip", "netns", "exec", m.netns, "tc", "qdisc"]
        probe = [*tc, "add", "dev", "eth0", "root", "netem", "delay", "1ms"]
        ok = subprocess.run(probe, capture_output=True, timeout=30).returncode == 0
        if ok:
            _run([*tc, "del", "dev", "eth0", "root"], check=False)
        return ok

    # ------------------------------------------------------------ faults

    @property
    def tables(self) -> tuple[str, str]:
        """The cluster's two nftables tables, as ``nft list tables`` names them."""
        return f"bridge {self.prefix}", f"inet {self.prefix}"

    def write_rules(self, rules: list[str]) -> None:
        """Replace the cluster's tables with ``rules`` (and the fence), in one transaction.

        ``bridge`` table: the faults, on frames between nodes.  ``inet``
        table: the fence -- nothing is routed between the bridge and another
        interface, even on a host that forwards IP for others (a Docker host
        does), so the nodes reach each other and the root namespace, never
        beyond.  (Frames bridged between two nodes never reach this hook: the
        bridge is made with ``nf_call_iptables 0``.)
        """
        faults, fence = self.tables
        body = "\n".join(f"    {r}" for r in rules)
        script = (
            f"table {faults}\ndelete table {faults}\n"
            f"table {faults} {{\n  chain forward {{\n"
            f"    type filter hook forward priority 0; policy accept;\n{body}\n  }}\n}}\n"
            f"table {fence}\ndelete table {fence}\n"
            f"table {fence} {{\n  chain forward {{\n"
            f"    type filter hook forward priority 0; policy accept;\n"
            f'    iifname "{self.bridge}" oifname != "{self.bridge}" drop\n'
            f'    oifname "{self.bridge}" iifname != "{self.bridge}" drop\n  }}\n}}\n'
        )
        _run(["nft", "-f", "-"], stdin=script)

    def set_delay(self, m: Member, ms: int) -> None:
        """netem on ``m``'s interface: its outgoing packets wait ``ms`` (0: removed)."""
        assert m.netns is not None
        tc = ["ip", "netns", "exec", m.netns, "tc", "qdisc"]
        if ms:
            _run([*tc, "replace", "dev", "eth0", "root", "netem", "delay", f"{ms}ms"])
        else:
            _run([*tc, "del", "dev", "eth0", "root"], check=False)

    # ------------------------------------------------------------ teardown

    def leftovers(self) -> list[str]:
        """Everything in the kernel carrying this cluster's prefix (empty: clean)."""
        links = [n for n in self._links() if n.startswith(self.prefix)]
        spaces = [n for n in self._namespaces() if n.startswith(self.prefix + "-")]
        tables = [t for t in _tables() if t in self.tables]
        return [*(f"link {n}" for n in links), *(f"netns {n}" for n in spaces), *tables]

    def teardown(self, timeout: float = 5.0) -> None:
        """Remove every link, namespace and table with the prefix; wait until gone.

        Outer veth ends go first (that removes both ends at once; a deleted
        namespace would free its end only later, asynchronously), then the
        namespaces, the bridge and the table.
        """
        for name in self._links():
            if name.startswith(self.prefix) and name != self.bridge:
                _run(["ip", "link", "del", name], check=False)
        for ns in self._namespaces():
            if ns.startswith(self.prefix + "-"):
                _run(["ip", "netns", "del", ns], check=False)
        if self._link_exists(self.bridge):
            _run(["ip", "link", "del", self.bridge], check=False)
        for table in _tables():
            if table in self.tables:
                _run(["nft", "delete", "table", *table.split()], check=False)
        left: list[str] = []
        for _ in attempts(timeout, every=0.05):
            left = self.leftovers()
            if not left:
                return
        raise ClusterError(f"could not remove {', '.join(left)}")

    def abort_sockets(self, m: Member) -> None:
        """After ``m``'s process was killed: abort the TCP sockets it left (``ss -K``).

        A killed process's sockets outlive it in the kernel: an orphaned
        socket keeps retransmitting what the process had queued, so after a
        heal a dead leader's AppendEntries could still arrive, minutes later.
        In the transport mode those messages die with the process (they were
        in its memory); aborting the orphans gives the kernel mode the same
        outcome, and each peer a reset, as when a process dies with data unread.
        """
        if m.netns is not None:
            _run(["ip", "netns", "exec", m.netns, "ss", "-K", "-t"], check=False)

    def remove(self, m: Member) -> None:
        """Remove ``m``'s namespace and veth pair (a node the swarm removed)."""
        self._remove_node(self.namespace(m.name), self.veth(m.name))
        m.netns = None

    def _remove_node(self, ns: str, veth: str) -> None:
        if self._link_exists(veth):
            _run(["ip", "link", "del", veth], check=False)
        if ns in self._namespaces():
            _run(["ip", "netns", "del", ns], check=False)

    # ------------------------------------------------------------ reading

    @staticmethod
    def _links() -> list[str]:
        out = _run(["ip", "-o", "link", "show"], check=False)
        # "7: name@if2: <...>": the name ends at "@" or ":".
        return [line.split(": ")[1].split("@")[0] for line in out.splitlines() if ": " in line]

    def _link_exists(self, name: str) -> bool:
        return name in self._links()

    @staticmethod
    def _namespaces() -> list[str]:
        out = _run(["ip", "netns", "list"], check=False)
        return [line.split()[0] for line in out.splitlines() if line.strip()]


def _tables() -> list[str]:
    """``nft list tables`` as "family name" strings."""
    out = _run(["nft", "list", "tables"], check=False)
    return [line.removeprefix("table ").strip() for line in out.splitlines() if line.strip()]


def _run(cmd: list[str], check: bool = True, stdin: str | None = None) -> str:
    """Run one ``ip``/``nft``/``tc`` command; its failure is a one-line ClusterError."""
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=30)
    if check and proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or ["failed"])[0]
        raise ClusterError(f"{' '.join(cmd[:4])}: {why}")
    return proc.stdout
