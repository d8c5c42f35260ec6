"""Netns mode without the kernel: requirements, rules, and the refusals.

What `cluster.local.netns` would ask the kernel for is plain data; these
tests check it (and that a missing requirement creates nothing) on any
machine.  The kernel side is in ``test_netns_cluster.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.local import netns
from cluster.local.faults import transport_rules
from cluster.local.layout import ClusterDir, ClusterError, Description, Member, NetnsConfig
from cluster.local.netns import Network, check_available, cut_pairs, node_rules
from cluster.local.supervisor import Supervisor


def _desc(n: int = 3) -> Description:
    d = Description("c1", 0.0)
    for i in range(1, n + 1):
        d.members.append(Member(f"manager{i}", f"id{i}", "manager", host=f"10.9.9.{i + 1}"))
    d.members.append(Member("worker1", "w1", "worker", host="10.9.9.9"))
    return d


def test_not_root_is_one_line_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    with pytest.raises(ClusterError, match=r"^--netns needs root"):
        Supervisor(ClusterDir(tmp_path / "c")).up(3, netns=True)
    assert not (tmp_path / "c").exists()


def test_missing_tools_are_named_with_their_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda t: None if t == "nft" else "/x")
    with pytest.raises(ClusterError, match=r"needs `nft` \(nftables\)"):
        check_available()


def test_a_partition_is_one_rule_per_direction_and_pair() -> None:
    d = _desc()
    d.partition = [["manager1"], ["manager2", "manager3"]]
    pairs = cut_pairs(d, ["manager1", "manager2", "manager3"])
    assert sorted(pairs) == [
        ("manager1", "manager2"),
        ("manager1", "manager3"),
        ("manager2", "manager1"),
        ("manager3", "manager1"),
    ]
    rules = node_rules(NetnsConfig("sr00000", "10.9.9"), d)
    assert "ip saddr 10.9.9.2 ip daddr 10.9.9.3 counter drop" in rules
    assert "ip saddr 10.9.9.3 ip daddr 10.9.9.2 counter drop" in rules
    assert len(rules) == 4  # manager2 <-> manager3 untouched, the worker too


def test_a_one_way_cut_drops_one_direction_only() -> None:
    d = _desc()
    d.oneway = [["manager1"], ["manager2", "manager3"]]
    assert cut_pairs(d, ["manager1", "manager2", "manager3"]) == [
        ("manager1", "manager2"),
        ("manager1", "manager3"),
    ]
    # The transport-level mode expresses it too: manager1 drops what it sends
    # to the others, each of them drops what arrives from manager1.
    assert transport_rules(d, "manager1")["outbound"].keys() == {"manager2", "manager3"}
    assert transport_rules(d, "manager1")["inbound"] == {}
    assert transport_rules(d, "manager2") == {
        "outbound": {},
        "inbound": {"manager1": {"drop": True, "loss": 0.0, "delay": 0.0}},
    }


def test_loss_is_a_random_drop_each_way_and_delay_goes_to_the_transport_without_netem() -> None:
    d = _desc()
    d.netns = NetnsConfig("sr00000", "10.9.9", loss={"manager2": 10}, delay={"manager3": 50})
    rules = node_rules(d.netns, d)
    assert rules == [
        "ip saddr 10.9.9.3 numgen random mod 100 < 10 counter drop",
        "ip daddr 10.9.9.3 numgen random mod 100 < 10 counter drop",
    ]
    # In netns mode the transport never cuts (the kernel does); it only delays.
    d.partition = [["manager1"], ["manager2", "manager3"]]
    assert transport_rules(d, "manager1") == {"outbound": {}, "inbound": {}}
    assert transport_rules(d, "manager3")["outbound"] == {
        "*": {"drop": False, "loss": 0.0, "delay": 0.05}
    }
    d.netns.delay_via = "netem"
    assert transport_rules(d, "manager3")["outbound"] == {}


def test_names_fit_the_kernels_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netns, "_networks_in_use", lambda: [])  # no `ip` needed here
    cfg = netns.new_config("k2l8x0a1b2c3d4e5f6g7h8i9j")
    net = Network(cfg)
    assert len(cfg.prefix) == netns.PREFIX_LEN and cfg.prefix.startswith("sr")
    for name in ("manager1", "manager9", "worker20"):
        assert len(net.veth(name)) <= 15  # IFNAMSIZ - 1
    assert net.veth("worker20") == f"{cfg.prefix}-w20"
    assert net.address(0) == f"{cfg.subnet}.2"


@pytest.mark.parametrize("verb", ["net_loss", "net_delay"])
def test_net_verbs_want_netns_mode(tmp_path: Path, verb: str) -> None:
    cdir = ClusterDir(tmp_path)
    cdir.save(_desc())
    with pytest.raises(ClusterError, match="works in netns mode only"):
        getattr(Supervisor(cdir), verb)("manager1", 10)


def test_a_subnet_in_use_on_this_machine_is_never_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    import ipaddress

    monkeypatch.setattr(netns, "_networks_in_use", lambda: [])  # no `ip` needed here
    first = netns.new_config("c1").subnet
    taken = ipaddress.ip_network(f"{first}.0/24").supernet(new_prefix=16)  # e.g. a VPN's /16
    monkeypatch.setattr(netns, "_networks_in_use", lambda: [taken])
    again = netns.new_config("c1")
    assert again.prefix == netns.new_config("c1").prefix  # the prefix is the cluster's
    assert not ipaddress.ip_network(f"{again.subnet}.0/24").overlaps(taken)
