"""What real links need, on managers in netns mode (issue 18): packets the kernel drops.

Root and ``ip``/``nft`` only (skipped with the reason elsewhere, a failure
under ``REQUIRE_NETNS=1``); every test runs inside the `netns_clean` fixture
(tests/conftest.py), which
checks that nothing with a cluster prefix is left in the kernel.  The same
behaviours on a user-level relay, without root: tests/raft/runtime/
test_node_links.py; asymmetric cuts and loss with delay, as scenarios:
tests/scenarios/test_builtins_netns.py.
"""

from __future__ import annotations

import base64
import statistics
import time
from pathlib import Path
from typing import Any

import pytest
from cli_run import wait_until
from cluster_procs import running_cluster

from cluster.client.http import ApiError, Unreachable, request
from cluster.local.layout import Member, Timing

pytestmark = pytest.mark.integration

#: The managers' default election timeout T (6 ticks of 50 ms).
ELECTION = Timing().election_ticks * Timing().tick_interval


def _raft(m: Member) -> dict[str, Any] | None:
    try:
        return request("GET", f"{m.api_url}/raft/status", timeout=0.5)
    except (Unreachable, ApiError):
        return None


def _timed_write(m: Member, key: str) -> float:
    body = {"Name": key, "Labels": {}, "Data": base64.b64encode(b"v").decode()}
    start = time.monotonic()
    request("POST", f"{m.api_url}/configs/create", body, timeout=5.0)
    return time.monotonic() - start


def test_a_vanished_follower_is_noticed_and_slows_no_commit(
    netns_clean: list[str], tmp_path: Path
) -> None:
    """The kernel drops every packet to and from one follower (no RST: the
    leader's connection to it hangs half-open).  The leader's transport closes
    that link within about an election timeout and says so in its log; the
    other follower keeps writes committing at their usual latency; once the
    path is back the follower catches up."""
    with running_cluster(tmp_path / "c", managers=3, netns=True) as (sup, desc):
        managers = [m for m in desc.members if m.role == "manager"]
        name = wait_until(
            lambda: next(
                (m.name for m in managers if (_raft(m) or {}).get("role") == "leader"), None
            ),
            15,
            "a leader",
        )
        leader = next(m for m in managers if m.name == name)
        victim = next(m for m in managers if m.name != name)
        term = _raft(leader)["term"]  # type: ignore[index]
        before = [_timed_write(leader, f"a{i}") for i in range(20)]

        sup.isolate(victim.name)
        cut_at = time.monotonic()
        log = tmp_path / "c" / leader.name / "node.log"
        wait_until(
            lambda: f"no word from {victim.name}" in log.read_text(), 10, "the leader's notice"
        )
        noticed = time.monotonic() - cut_at
        during = [_timed_write(leader, f"b{i}") for i in range(20)]
        # One election timeout of silence, a watchdog period, a heartbeat; and
        # the log's own flush and our polling on a shared machine.
        assert noticed < 2 * ELECTION + 1.0, noticed
        assert statistics.median(during) <= 2 * statistics.median(before) + 0.02, (before, during)
        assert max(during) < 2 * ELECTION, during
        assert _raft(leader)["term"] == term  # type: ignore[index]

        sup.heal()
        commit = _raft(leader)["commit_index"]  # type: ignore[index]
        wait_until(
            lambda: (_raft(victim) or {}).get("applied_index", 0) >= commit,
            15,
            "the follower to catch up",
        )


def test_a_one_way_cut_costs_at_most_one_new_term(netns_clean: list[str], tmp_path: Path) -> None:
    """The kernel drops the leader's packets to the two followers, not theirs to
    it.  (At the packet level TCP then fails both ways, as on a real link.)  A
    new leader is elected, and over the next several election timeouts the
    highest term does not move again: pre-vote and check-quorum hold."""
    with running_cluster(tmp_path / "c", managers=3, netns=True) as (sup, desc):
        managers = [m for m in desc.members if m.role == "manager"]

        def leader() -> Member | None:
            return next((m for m in managers if (_raft(m) or {}).get("role") == "leader"), None)

        def max_term() -> int:
            return max((_raft(m) or {}).get("term", 0) for m in managers)

        old = wait_until(leader, 15, "a leader")
        term = max_term()
        others = [m for m in managers if m is not old]
        sup.partition([[old.name], [m.name for m in others]], oneway=True)
        new = wait_until(
            lambda: next((m for m in others if (_raft(m) or {}).get("role") == "leader"), None),
            15,
            "a leader among the others",
        )
        settled = max_term()
        assert term < settled <= term + 2
        end = time.monotonic() + 10 * ELECTION
        while time.monotonic() < end:  # writes keep committing, terms stay put
            _timed_write(new, f"k{time.monotonic()}")
            assert max_term() == settled
        sup.heal()
