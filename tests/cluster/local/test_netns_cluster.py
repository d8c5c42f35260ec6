"""Netns mode on real processes: packets dropped by the kernel, nothing left behind.

Root and ``ip``/``nft`` only (skipped with the reason elsewhere, a failure
under ``REQUIRE_NETNS=1``).  Every test runs inside the `netns_clean` fixture (tests/conftest.py),
which checks that the namespaces, links and nftables tables carrying a
cluster prefix after the test are those before it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_run import cli, ok, one_line_error, status, wait_until
from cluster_procs import running_cluster
from netns_env import kernel_names

from cluster.client.http import ApiError, Unreachable, request
from cluster.local.layout import ClusterDir, ClusterError, Description, Member
from cluster.local.supervisor import Supervisor

pytestmark = pytest.mark.integration


def _raft(m: Member) -> dict[str, Any] | None:
    try:
        return request("GET", f"{m.api_url}/raft/status", timeout=0.5)
    except (Unreachable, ApiError):
        return None


def _leader_among(members: list[Member]) -> str | None:
    for m in members:
        st = _raft(m)
        if st and st["role"] == "leader":
            return m.name
    return None


def _drops(prefix: str, addr: str) -> int:
    """Packets dropped so far by the rules of the cluster's table that name ``addr``."""
    out = subprocess.run(
        ["nft", "list", "table", "bridge", prefix], capture_output=True, text=True, check=True
    ).stdout
    return sum(
        int(line.split("counter packets ")[1].split()[0])
        for line in out.splitlines()
        if addr in line and "counter packets" in line
    )


def _can_connect(ns: str | None, host: str, port: int) -> bool:
    """A TCP connect to host:port from namespace ``ns`` (None: ours), within 1 s."""
    probe = (
        "import socket,sys\n"
        "try:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()\n"
        "except OSError: sys.exit(1)\n"
    )
    cmd = [sys.executable, "-c", probe, host, str(port)]
    if ns:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    return subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0


def _execed(pid: int) -> bytes | None:
    """The process's command line once it is no longer ``ip`` (it has exec'd)."""
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    return None if Path(cmdline.split(b"\0")[0].decode()).name == "ip" else cmdline


def test_up_isolate_heal_down_drops_in_the_kernel_and_leaves_nothing(
    netns_clean: list[str], tmp_path: Path
) -> None:
    with running_cluster(tmp_path / "c", managers=3, workers=1, netns=True) as (sup, desc):
        assert desc.netns is not None
        our_net = os.readlink("/proc/self/ns/net")
        for m in desc.members:
            # The PID we keep is the node's own process (ip netns exec execs
            # in place), in a namespace of its own, serving on its address.
            assert m.netns and m.pid and m.host.startswith(desc.netns.subnet + ".")
            # `ip netns exec` enters the namespace, then execs: until then the
            # PID is `ip` itself, still in ours (a worker may have just started).
            cmdline = wait_until(
                lambda pid=m.pid: _execed(pid), 10, f"{m.name}'s ip netns exec to exec"
            )
            assert f"cluster.{m.role}".encode() in cmdline
            assert os.readlink(f"/proc/{m.pid}/ns/net") != our_net
        managers = [m for m in desc.members if m.role == "manager"]
        old = wait_until(lambda: _leader_among(managers), 15, "a leader")
        old_m = next(m for m in managers if m.name == old)
        sup.isolate(old)
        others = [m for m in managers if m.name != old]
        new = wait_until(lambda: _leader_among(others), 15, "a leader among the other two")
        assert new != old
        assert _drops(desc.netns.prefix, old_m.host) > 0  # the kernel dropped them
        # The transport filter stays empty: the cut is the kernel's alone.
        assert '"drop": true' not in (tmp_path / "c" / old / "raft" / "faults.json").read_text()
        # The operator still reaches the isolated node from the root namespace.
        assert _raft(old_m) is not None
        sup.heal()

        def agreed() -> bool:
            sts = [_raft(m) for m in managers]
            return all(s and s["leader"] == sts[0]["leader"] and s["leader"] for s in sts)

        wait_until(agreed, 15, "all three to follow one leader after heal")
        # The cluster's namespaces exist while it runs.
        assert any(desc.netns.prefix in n for n in kernel_names())
    desc = ClusterDir(tmp_path / "c").load()
    assert all(m.pid is None for m in desc.members)


def _datagram_arrives(src: Member, dst: Member) -> bool:
    """Whether a UDP datagram from ``src``'s namespace reaches ``dst``'s address.

    UDP, because it needs nothing back: a TCP connection across a one-way
    cut fails both ways (the handshake's answer is lost), which is what a
    one-way cut does to a real TCP link, but it hides which way was cut.
    """
    port = dst.api_port + 1 if dst.api_port < 65535 else dst.api_port - 1
    listen = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "s.bind((sys.argv[1],int(sys.argv[2])))\n"
        "s.settimeout(3); print('ready',flush=True)\n"
        "try:\n s.recv(64)\nexcept OSError: sys.exit(1)\n"
    )
    send = (
        "import socket,sys,time\n"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
        "for _ in range(5): s.sendto(b'x',(sys.argv[1],int(sys.argv[2]))); time.sleep(0.05)\n"
    )
    assert dst.netns and src.netns
    rx = subprocess.Popen(
        ["ip", "netns", "exec", dst.netns, sys.executable, "-c", listen, dst.host, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert rx.stdout is not None and rx.stdout.readline() == "ready\n"
        subprocess.run(
            ["ip", "netns", "exec", src.netns, sys.executable, "-c", send, dst.host, str(port)],
            check=True,
            timeout=10,
        )
        return rx.wait(timeout=10) == 0
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()


def test_a_one_way_cut_drops_one_direction_only(netns_clean: list[str], tmp_path: Path) -> None:
    with running_cluster(tmp_path / "c", managers=3, netns=True) as (_sup, desc):
        m1, m2, m3 = desc.members[:3]
        out = cli(tmp_path / "c", "partition", "--oneway", "manager1", "manager2")
        assert out.returncode == 0 and "manager1 -> manager2" in out.stderr, out.stderr
        assert not _datagram_arrives(m1, m2)  # manager1 -> manager2: cut
        assert _datagram_arrives(m2, m1)  # manager2 -> manager1: flows
        assert _datagram_arrives(m1, m3)  # others untouched
        assert _can_connect(None, m2.host, m2.api_port)  # the operator, always
        # TCP needs answers: across a one-way cut no connection opens either way.
        assert not _can_connect(m2.netns, m1.host, m1.api_port)
        st = status(tmp_path / "c")
        assert st["network"]["mode"] == "netns"
        assert st["network"]["oneway"] == [["manager1"], ["manager2"]]
        assert "one-way cut: manager1 -> manager2" in ok(tmp_path / "c", "status")
        ok(tmp_path / "c", "heal")
        assert _datagram_arrives(m1, m2)
        assert _can_connect(m1.netns, m2.host, m2.api_port)


def test_loss_drops_at_random_and_clear_removes_it(netns_clean: list[str], tmp_path: Path) -> None:
    c = tmp_path / "c"
    with running_cluster(c, managers=3, netns=True) as (sup, desc):
        assert desc.netns is not None
        follower = next(m for m in desc.members if m.name != sup.resolve(desc, "leader").name)
        ok(c, "net", "loss", follower.name, "30")
        # Heartbeats flow every tick: some of the follower's packets are dropped soon.
        wait_until(lambda: _drops(desc.netns.prefix, follower.host) > 0, 10, "random drops")
        st = status(c)
        assert st["network"]["loss"] == {follower.name: 30}
        assert st["leader"] is not None
        r = cli(c, "net", "delay", follower.name, "40")
        assert r.returncode == 0, r.stderr
        assert ("netem" if desc.netns.delay_via == "netem" else "transport") in r.stderr
        assert status(c)["network"]["delay"] == {follower.name: 40}
        ok(c, "net", "clear")
        assert _drops(desc.netns.prefix, follower.host) == 0  # no rule names it any more
        assert status(c)["network"]["loss"] == {}
        assert "works in netns mode only" not in r.stderr
        assert one_line_error(cli(c, "net", "loss", "nosuchnode", "5"))


def test_down_removes_what_a_crashed_run_left(netns_clean: list[str], tmp_path: Path) -> None:
    c = tmp_path / "c"
    with running_cluster(c, managers=3, netns=True) as (sup, desc):
        assert desc.netns is not None
        for m in desc.members:  # the supervisor and its nodes die at once
            sup.processes.signal(m, signal.SIGKILL)
        assert sup.processes.wait_down(desc.members, 5.0) == []
        prefix = desc.netns.prefix
        assert any(prefix in n for n in kernel_names())
        assert Supervisor(ClusterDir(c)).down() == 0
        assert not any(prefix in n for n in kernel_names())
        # And `up` makes it all again on the same data.
        again: Description = Supervisor(ClusterDir(c)).up(None, netns=True)
        assert again.netns is not None and again.netns.prefix == prefix
        assert all(m.pid for m in again.members)


def test_restart_after_down_and_a_join_get_namespaces(
    netns_clean: list[str], tmp_path: Path
) -> None:
    c = tmp_path / "c"
    with running_cluster(c, managers=3, netns=True) as (sup, desc):
        assert desc.netns is not None
        sup.down()
        assert not any(desc.netns.prefix in n for n in kernel_names())
        # `restart` after `down` makes the node's namespace again (and the table).
        for name in ("manager1", "manager2"):
            ok(c, "restart", name)
        now = ClusterDir(c).load()
        managers = [m for m in now.members if m.name in ("manager1", "manager2")]
        wait_until(lambda: _leader_among(managers), 15, "a leader of the two restarted")
        token = ok(c, "swarm", "join-token", "-q", "worker").strip()
        ok(c, "swarm", "join", "--token", token)
        joined = next(m for m in ClusterDir(c).load().members if m.role == "worker")
        assert joined.netns == f"{desc.netns.prefix}-{joined.name}"
        assert joined.host.startswith(desc.netns.subnet + ".")
        assert f"netns {joined.netns}" in kernel_names()


def test_a_failed_up_removes_what_it_made(netns_clean: list[str], tmp_path: Path) -> None:
    c = tmp_path / "c"
    with pytest.raises(ClusterError, match="no leader was elected"):
        # Too short to elect anyone: `up` fails after making the namespaces.
        Supervisor(ClusterDir(c)).up(3, netns=True, leader_timeout=0.001)
    assert not c.exists()  # the fixture checks the kernel
