"""Ports on 127.0.0.1: picking free ones for a new cluster, checking them before a start.

Apart from the processes because a port is chosen once, when a node is
provisioned, and checked every time its process starts: two different
moments, one rule (a busy port is a clear one-line error, never a manager
that dies at start with a traceback in its log).
"""

from __future__ import annotations

import random
import socket

from cluster.client.wait import attempts
from cluster.local.layout import ClusterError, Description

__all__ = ["LOW", "PORT_GRACE", "check_ports", "ephemeral_start", "pick_ports", "port_free"]

#: How long a port of a node that just died may stay busy (`check_ports`).
PORT_GRACE = 2.0
#: The lowest port `pick_ports` draws (above the well-known and most registered ones).
LOW = 20000


def port_free(port: int) -> bool:
    """Whether ``port`` can be bound on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(n: int, base: int | None) -> list[int]:
    """``n`` ports: ``base``, ``base + 1``, ... or free ones below the ephemeral range.

    A cluster's ports are chosen once and kept for every restart, so they must
    not come from the kernel's ephemeral range: while a manager is down, any
    outgoing connection on the machine (a client, a load generator, a test)
    may be given its port as a local port, and the manager could not start
    again ("in use by another program").  So they are drawn at random from
    [`LOW`, the start of ``ip_local_port_range``), where the kernel never
    hands out ports on its own.
    """
    if base is not None:
        ports = list(range(base, base + n))
        busy = [p for p in ports if not port_free(p)]
        if busy:
            listed = ", ".join(map(str, busy))
            raise ClusterError(f"ports in use: {listed} (try another --base-port)")
        return ports
    high = ephemeral_start()
    rng = random.Random()  # seeded from the OS: concurrent clusters draw apart
    ports: list[int] = []
    for _ in range(100 * n):
        port = rng.randrange(LOW, high)
        if port not in ports and port_free(port):
            ports.append(port)
            if len(ports) == n:
                return ports
    raise ClusterError(f"no {n} free ports between {LOW} and {high} (try --base-port)")


def ephemeral_start(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    """The first port the kernel may pick on its own (32768 when unknown)."""
    try:
        with open(path) as f:
            start = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return start if start > LOW + 1000 else 32768


def check_ports(desc: Description, grace: float = PORT_GRACE) -> None:
    """Every port of these members is free, or a one-line error.

    A manager killed a moment ago may still hold its sockets for a few
    tens of milliseconds (the kernel closes them as its threads exit,
    after /proc already says it is dead), so a busy port gets ``grace``
    seconds to come free before it counts as another program's.
    """
    # A node in its own network namespace (netns mode) has its ports to itself.
    wanted = [
        (m, p)
        for m in desc.members
        if m.netns is None
        for p in (m.raft_port, m.api_port, m.swarm_port)
        if p
    ]
    for _ in attempts(grace, every=0.02):
        if all(port_free(p) for _, p in wanted):
            return
    for m, port in wanted:
        if not port_free(port):
            raise ClusterError(
                f"port {port} of {m.name} is in use by another program; "
                "pick other ports with --base-port (new cluster) or free it"
            )
