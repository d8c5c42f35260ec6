"""Real processes: `up` on a cluster that partly runs starts only what is down;
kill then restart at once.

Marked ``integration``; the cluster is stopped whatever happens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_run import cli, ok
from cluster_procs import leader_name, running_cluster, wait_for

from cluster.local.layout import ClusterDir

pytestmark = pytest.mark.integration


def test_up_starts_what_is_down_and_leaves_the_rest(tmp_path: Path) -> None:
    cdir = tmp_path / "c"
    with running_cluster(cdir, managers=3, workers=1) as (sup, desc):
        wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        before = {m.name: m.pid for m in ClusterDir(cdir).load().members}
        ok(cdir, "kill", "manager2")

        again = cli(cdir, "up", "-d")
        assert again.returncode == 0, again.stderr
        assert "manager1 is already running" in again.stderr
        after = {m.name: m.pid for m in ClusterDir(cdir).load().members}
        assert after["manager2"] != before["manager2"]  # restarted on its data
        assert {n: p for n, p in after.items() if n != "manager2"} == {
            n: p for n, p in before.items() if n != "manager2"
        }
        assert all(sup.process_state(m) == "running" for m in ClusterDir(cdir).load().members)

        # Twice is harmless: nothing to start, nothing stopped.
        twice = cli(cdir, "up", "-d")
        assert twice.returncode == 0, twice.stderr
        assert {m.name: m.pid for m in ClusterDir(cdir).load().members} == after

        # A restart right after a kill waits for the dead process's sockets
        # to close instead of calling its ports "in use by another program".
        for _ in range(3):
            ok(cdir, "kill", "manager3")
            ok(cdir, "restart", "manager3")

        # Only a manager can lead: a worker is named as such, not "not found".
        refused = cli(cdir, "transfer-leadership", "worker1")
        assert refused.returncode == 1
        assert "worker1 is not a manager" in refused.stderr and "Traceback" not in refused.stderr


def test_demoting_the_leader_hands_leadership_over_first(tmp_path: Path) -> None:
    # §3.10: a transfer instead of an election timeout without a leader.
    cdir = tmp_path / "c"
    with running_cluster(cdir, managers=3) as (sup, desc):
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        ok(cdir, "node", "demote", leader)

        def demoted_by_another() -> bool:
            found = sup.find_leader(desc)
            return bool(found) and found[0].name != leader and leader in found[1]["learners"]

        wait_for(demoted_by_another, 20, f"{leader} demoted by the next leader")
        log = (cdir / leader / "node.log").read_text()
        assert "demoted: leadership handed to" in log
        ok(cdir, "service", "create", "--name", "after", "nginx")  # writes go on
