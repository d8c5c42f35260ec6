"""The live view lists worker agents too, with what the leader hears from them."""

from __future__ import annotations

from cluster.cli.watch import _rows, plain_snapshot

STATUS = {
    "leader": "manager1",
    "term": 3,
    "managers": 1,
    "quorum": 1,
    "reachable": 1,
    "partition": [],
    "nodes": [
        {
            "name": "manager1",
            "role": "leader",
            "term": 3,
            "commit_index": 9,
            "applied_index": 9,
            "availability": "active",
        }
    ],
    "workers": [
        {"name": "worker1", "state": "ready", "availability": "active"},
        {"name": "worker2", "state": "down", "availability": "drain"},
    ],
}


def test_worker_rows_follow_the_managers() -> None:
    procs = {"manager1": "running", "worker1": "running", "worker2": "running"}
    rows = _rows(STATUS, procs)
    assert [r[0] for r in rows] == ["manager1", "worker1", "worker2"]
    assert rows[1] == ("worker1", "worker", "-", "-", "-", "active", "running", "yes")
    assert rows[2][5:] == ("drain", "running", "no")


def test_plain_snapshot_names_workers_and_their_state() -> None:
    text = plain_snapshot(STATUS, {}, [], now=0.0)
    assert "worker1=worker/ready" in text and "worker2=worker/down" in text
