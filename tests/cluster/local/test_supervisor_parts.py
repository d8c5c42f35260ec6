"""The supervisor's parts without a cluster: PIDs, ports, partitions, configs, lookup."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from cluster.local.faults import apply_partition
from cluster.local.layout import ClusterDir, ClusterError, Description, Member
from cluster.local.lookup import resolve
from cluster.local.ports import LOW, check_ports, ephemeral_start, pick_ports
from cluster.local.processes import Processes, proc_stat
from cluster.local.provision import Provisioner


def _managers(n: int) -> list[Member]:
    return [
        Member(f"manager{i}", f"id{i}abc", "manager", 7000 + i, 8000 + i, 9000 + i)
        for i in range(1, n + 1)
    ]


def test_a_pid_counts_only_with_its_start_time(tmp_path: Path) -> None:
    """A PID the kernel gave to another program reads as "down", so it is never signalled."""
    processes = Processes(ClusterDir(tmp_path))
    st = proc_stat(os.getpid())
    assert st is not None
    me = Member("manager1", "id1", "manager", pid=os.getpid(), pid_start=st[1])
    assert processes.state(me) == "running"
    reused = Member("manager1", "id1", "manager", pid=os.getpid(), pid_start=st[1] + 1)
    assert processes.state(reused) == "down"
    assert processes.signal(reused, 0) is False
    assert processes.state(Member("manager1", "id1", "manager")) == "down"


def test_ports_picked_are_distinct_and_a_busy_one_is_a_one_line_error() -> None:
    ports = pick_ports(5, None)
    assert len(set(ports)) == 5
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        busy = held.getsockname()[1]
        with pytest.raises(ClusterError, match=f"ports in use: {busy}"):
            pick_ports(1, busy)
        m = Member("manager2", "id2", "manager", raft_port=busy)
        with pytest.raises(ClusterError, match=f"port {busy} of manager2 is in use") as e:
            check_ports(Description("c", 0.0, members=[m]), grace=0.0)
        assert "\n" not in str(e.value)


def test_ports_are_picked_below_the_ephemeral_range(tmp_path: Path) -> None:
    """A down manager's port must not be handed to some client's outgoing connection."""
    start = ephemeral_start()
    ports = pick_ports(30, None)
    assert all(LOW <= p < start for p in ports), (ports, start)
    custom = tmp_path / "range"
    custom.write_text("40000\t60999\n")
    assert ephemeral_start(str(custom)) == 40000
    for bad in ("", "x y", "1024 2000"):  # unreadable, or no room below it: the default
        custom.write_text(bad)
        assert ephemeral_start(str(custom)) == 32768
    assert ephemeral_start(str(tmp_path / "missing")) == 32768


def test_a_partition_cuts_each_manager_from_the_other_sides_only(tmp_path: Path) -> None:
    cdir = ClusterDir(tmp_path)
    desc = Description("c", 0.0, members=_managers(3), partition=[["manager1"]])
    desc.partition.append(["manager2", "manager3"])
    apply_partition(cdir, Processes(cdir), desc)  # no PIDs: nothing is signalled

    def cut(name: str) -> tuple[set[str], set[str]]:
        rules = json.loads((tmp_path / name / "raft" / "faults.json").read_text())
        return set(rules["outbound"]), set(rules["inbound"])

    assert cut("manager1") == ({"manager2", "manager3"}, {"manager2", "manager3"})
    assert cut("manager2") == ({"manager1"}, {"manager1"})
    desc.partition = []
    apply_partition(cdir, Processes(cdir), desc)
    assert cut("manager1") == (set(), set())


def test_a_joiner_starts_with_no_voters_and_a_fingerprint_means_locked(tmp_path: Path) -> None:
    cdir = ClusterDir(tmp_path)
    provisioner = Provisioner(cdir)
    members = _managers(2)
    members[1].joiner = True
    desc = Description("c", 0.0, members=members)
    for m in members:
        provisioner.write_config(desc, m)
    first = json.loads((tmp_path / "manager1" / "config.json").read_text())
    second = json.loads((tmp_path / "manager2" / "config.json").read_text())
    assert "voters" not in first and second["voters"] == []
    assert set(first["peers"]) == {"manager1", "manager2"}
    assert first["peers"]["manager2"]["raft"] == ["127.0.0.1", 7002]
    assert not provisioner.starts_locked(members[0])
    (tmp_path / "manager1" / "keys").mkdir(parents=True)
    (tmp_path / "manager1" / "keys" / "kek.fingerprint").write_text("x")
    assert provisioner.starts_locked(members[0])


def test_a_member_by_name_or_id_prefix_else_a_one_line_error(tmp_path: Path) -> None:
    processes = Processes(ClusterDir(tmp_path))
    members = _managers(2)
    members[1].node_id = "id1xyz"  # shares the prefix "id1" with manager1
    desc = Description("c", 0.0, members=members)
    assert resolve(processes, desc, "manager2") is members[1]
    assert resolve(processes, desc, "id1x") is members[1]
    with pytest.raises(ClusterError, match="ambiguous"):
        resolve(processes, desc, "id1")
    with pytest.raises(ClusterError, match=r"no node 'x' in this cluster \(nodes: manager1, "):
        resolve(processes, desc, "x")


def test_up_with_autolock_seals_every_founding_managers_key_from_the_start(
    tmp_path: Path,
) -> None:
    """No leader, no process: the key is sealed on disk by provisioning itself, and
    opens with the unlock key's KEK -> the wrapped data key -> the password."""
    from cluster.local.layout import Timing
    from cluster.security import crypto, node_keys

    cdir = ClusterDir(tmp_path)
    desc, unlock_key = Provisioner(cdir).create(3, None, Timing(), {}, autolock=True)
    assert unlock_key is not None
    kek = crypto.kek_from_unlock_key(unlock_key)
    deks = set()
    for m in desc.members:
        keys = tmp_path / m.name / "keys"
        assert node_keys.is_sealed(keys / "node.key")
        assert (keys / "dek.wrapped").stat().st_mode & 0o777 == 0o600
        dek = crypto.unwrap_dek((keys / "dek.wrapped").read_bytes(), kek)
        deks.add(dek.secret_bytes())
        node_keys.open_key(keys / "node.key", node_keys.key_password(dek))  # the right password
        assert not node_keys.is_sealed(keys / "node.key")
    assert len(deks) == 1  # one data key for the swarm, which the first leader adopts

    plain = Provisioner(ClusterDir(tmp_path / "plain")).create(1, None, Timing(), {})[0]
    keys = tmp_path / "plain" / plain.members[0].name / "keys"
    assert not node_keys.is_sealed(keys / "node.key") and not (keys / "dek.wrapped").exists()


def test_sighup_goes_only_to_a_process_that_set_it_aside() -> None:
    """A manager started a moment ago would die of SIGHUP (its default action);
    the supervisor tells only processes that ignore or catch it."""
    import subprocess
    import sys

    from cluster.local.faults import _handles_sighup

    fresh = subprocess.Popen(["sleep", "30"])
    ready = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time\n"
         "signal.signal(signal.SIGHUP, signal.SIG_IGN)\nprint('ok', flush=True)\ntime.sleep(30)"],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert ready.stdout is not None and ready.stdout.readline() == b"ok\n"
        assert _handles_sighup(ready.pid) and not _handles_sighup(fresh.pid)
    finally:
        for p in (fresh, ready):
            p.kill()
            p.wait(timeout=10)
