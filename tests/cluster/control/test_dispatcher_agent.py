"""Worker agents without processes: the dispatcher's pure rules and the agent's secrets."""

from __future__ import annotations

import base64

from cluster.control.dispatcher import (
    Dispatcher,
    assigned_tasks,
    configs_to_deliver,
    is_worker_node,
    join_role,
    liveness_changes,
    secrets_to_deliver,
)
from cluster.security.pki import WORKER_ROLE, CertificateAuthority
from cluster.worker.process import Worker, WorkerSettings


def task(tid: str, node: str, state: str, desired: str = "running", secrets=()) -> dict:
    refs = [{"SecretID": sid, "SecretName": name, "File": {"Name": name}} for sid, name in secrets]
    return {
        "ID": tid,
        "NodeID": node,
        "Status": {"State": state},
        "DesiredState": desired,
        "Spec": {"ContainerSpec": {"Image": "nginx", "Secrets": refs}},
    }


def node(nid: str, name: str, role: str = "worker", state: str = "ready") -> dict:
    return {
        "ID": nid,
        "Spec": {"Role": role},
        "Description": {"Hostname": name},
        "Status": {"State": state},
    }


def test_the_token_decides_the_role() -> None:
    cluster = {"JoinTokens": {"Worker": "SWMTKN-1-w", "Manager": "SWMTKN-1-m"}}
    assert join_role(cluster, "SWMTKN-1-w") == "worker"
    assert join_role(cluster, "SWMTKN-1-m") == "manager"
    assert join_role(cluster, "SWMTKN-1-x") is None
    assert join_role(cluster, "") is None
    assert join_role(cluster, None) is None
    assert join_role(None, "SWMTKN-1-w") is None
    assert join_role({"JoinTokens": {"Worker": "", "Manager": ""}}, "") is None


def test_assigned_tasks_are_this_nodes_live_ones() -> None:
    tasks = [task("a", "n1", "running"), task("b", "n2", "running"), task("c", "n1", "shutdown")]
    assert [t["ID"] for t in assigned_tasks(tasks, "n1")] == ["a"]


def test_secrets_go_only_with_running_tasks_that_want_them() -> None:
    tasks = [
        task("a", "n1", "running", secrets=[("s1", "pw")]),
        task("b", "n1", "starting", secrets=[("s1", "pw")]),
        task("c", "n1", "running", desired="shutdown", secrets=[("s1", "pw")]),
        task("d", "n1", "running"),
    ]
    assert secrets_to_deliver(tasks) == {"a": [("s1", "pw")]}


def test_liveness_marks_silent_workers_down_and_heard_ones_ready() -> None:
    workers = [node("w1", "worker1"), node("w2", "worker2", state="down"), node("w3", "worker3")]
    changes = liveness_changes(workers, {"w1": 0.0, "w2": 9.0}, now=10.0, down_after=3.0)
    assert changes == [("w1", "down"), ("w2", "ready"), ("w3", "down")]


def test_a_new_leader_gives_workers_time_to_check_in() -> None:
    now = [100.0]
    d = Dispatcher(clock=lambda: now[0], down_after=3.0)
    d.reset()
    workers = [node("w1", "worker1")]
    assert d.node_updates(workers) == []  # just became leader: no verdict yet
    now[0] = 104.0
    assert d.node_updates(workers) == [("w1", "down")]
    session = d.open_session("w1")
    assert d.node_updates([node("w1", "worker1", state="down")]) == [("w1", "ready")]
    assert d.check_session("w1", session)
    assert not d.check_session("w1", "nope")
    assert not d.check_session("w2", session)


def test_sessions_die_with_the_leadership() -> None:
    d = Dispatcher(clock=lambda: 0.0)
    s = d.open_session("w1")
    d.heartbeat("w1", {"t1": ["pw"]})
    assert d.secrets_held() == {"w1": {"t1": ["pw"]}}
    d.reset()
    assert not d.check_session("w1", s)
    assert d.secrets_held() == {}


def test_worker_nodes_are_not_manager_processes() -> None:
    assert is_worker_node(node("w", "worker1"), ["manager1"])
    assert not is_worker_node(node("m", "manager1", role="manager"), ["manager1"])
    # A demoted manager process still has no worker agent: the dispatcher leaves it alone.
    assert not is_worker_node(node("m", "manager2"), ["manager1", "manager2"])


def _worker(tmp_path) -> Worker:
    ca = CertificateAuthority.create("c1")
    files = ca.issue_files(tmp_path / "keys", "w1", WORKER_ROLE, "c1")
    settings = WorkerSettings(
        name="worker1",
        node_id="w1",
        data_dir=tmp_path,
        api_port=0,
        managers={"manager1": "https://127.0.0.1:1"},
        tls={"ca": str(files.ca), "cert": str(files.cert), "key": str(files.key)},
    )
    worker = Worker(settings)
    assert worker.cluster_id == "c1"  # read from its certificate
    return worker


def test_worker_holds_secrets_while_the_task_runs_and_drops_them_after(tmp_path) -> None:
    w = _worker(tmp_path)
    data = base64.b64encode(b"hunter2").decode()
    running = [task("t1", "w1", "running", secrets=[("s1", "pw")])]
    w.mount(running, {"t1": {"pw": data}})
    assert w.secrets_held() == {"t1": ["pw"]}
    assert "hunter2" not in repr(w.status())  # names only, never the data
    w.mount([task("t1", "w1", "running", desired="shutdown")], {})
    assert w.secrets_held() == {}


def _with_config(t: dict, cid: str, name: str) -> dict:
    t["Spec"]["ContainerSpec"]["Configs"] = [
        {"ConfigID": cid, "ConfigName": name, "File": {"Name": f"/{name}"}}
    ]
    return t


def test_configs_go_only_with_running_tasks_that_want_them() -> None:
    tasks = [
        _with_config(task("a", "n1", "running"), "c1", "app"),
        _with_config(task("b", "n1", "running", desired="shutdown"), "c1", "app"),
        task("c", "n1", "running", secrets=[("s1", "pw")]),
    ]
    assert configs_to_deliver(tasks) == {"a": [("c1", "/app")]}
    assert secrets_to_deliver(tasks) == {"c": [("s1", "pw")]}


def test_worker_holds_configs_beside_secrets_and_drops_both_with_the_task(tmp_path) -> None:
    w = _worker(tmp_path)
    conf = base64.b64encode(b"port=80").decode()
    running = [_with_config(task("t1", "w1", "running"), "c1", "app")]
    w.mount(running, {}, {"t1": {"/app": conf}})
    assert w.files_held() == {"Secrets": {}, "Configs": {"t1": ["/app"]}}
    w.mount([task("t1", "w1", "running", desired="shutdown")], {}, {})
    assert w.files_held() == {"Secrets": {}, "Configs": {}}
