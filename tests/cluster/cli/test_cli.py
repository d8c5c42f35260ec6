"""``python -m cluster``, tested as a user runs it.

Fast tests (no processes): argument parsing into specs, table formatting,
following traces, the plain-text watch snapshot, error handling of the
docker verbs against a fake API.

Integration tests (``-m integration``): one 5-manager cluster shared by the
module, driven only through the CLI in subprocesses.  Each test starts from
a healthy cluster (the ``healthy`` fixture restarts, resumes and heals what
an earlier test may have left broken) and waits on conditions with bounded
timeouts.  The module fixture stops the cluster whatever happens: ``down``,
then SIGKILL for any PID from DIR/cluster.json that still runs a manager.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cli_run import (
    cli,
    described_pids,
    is_manager_process,
    kill_leftovers,
    ok,
    one_line_error,
    status,
    wait_until,
)

from cluster.cli import docker as cli_docker
from cluster.cli.format import print_table
from cluster.cli.main import build_parser, main
from cluster.cli.watch import Event, TraceTail, describe, plain_snapshot
from cluster.client.http import ApiError
from cluster.local.layout import ClusterDir, ClusterError, Description, Member

MANAGERS = 5

# ============================================================ fast tests


def parse(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


def fake_resolve(kind: str, ref: str) -> dict[str, Any]:
    return {"ID": f"{kind}-id-{ref}", "Spec": {"Name": ref}}


def test_service_create_arguments_become_a_docker_service_spec() -> None:
    args = parse(
        "service", "create", "--name", "web", "--replicas", "3",
        "--publish", "8080:80", "--publish", "53:53/udp,mode=host",
        "--secret", "db_pass,target=pw", "--config", "nginx_conf",
        "--update-parallelism", "2", "--update-delay", "1m30s",
        "--update-failure-action", "rollback", "--env", "A=1",
        "nginx:1.25", "nginx", "-g", "daemon off;",
    )  # fmt: skip
    spec = cli_docker.service_spec(args, fake_resolve)
    assert spec["Name"] == "web"
    assert spec["Mode"] == {"Replicated": {"Replicas": 3}}
    cs = spec["TaskTemplate"]["ContainerSpec"]
    assert cs["Image"] == "nginx:1.25"
    assert cs["Args"] == ["nginx", "-g", "daemon off;"]
    assert cs["Env"] == ["A=1"]
    assert cs["Secrets"][0]["SecretID"] == "secret-id-db_pass"
    assert cs["Secrets"][0]["File"]["Name"] == "pw"
    assert cs["Configs"][0]["File"]["Name"] == "/nginx_conf"
    assert spec["EndpointSpec"]["Ports"] == [
        {"Protocol": "tcp", "PublishMode": "ingress", "TargetPort": 80, "PublishedPort": 8080},
        {"Protocol": "udp", "PublishMode": "host", "TargetPort": 53, "PublishedPort": 53},
    ]
    assert spec["UpdateConfig"] == {
        "Parallelism": 2,
        "Delay": 90 * 10**9,
        "FailureAction": "rollback",
    }


def test_global_mode_refuses_replicas() -> None:
    args = parse("service", "create", "--mode", "global", "--replicas", "2", "nginx")
    with pytest.raises(ClusterError, match="replicated mode"):
        cli_docker.service_spec(args, fake_resolve)
    spec = cli_docker.service_spec(
        parse("service", "create", "--mode", "global", "x"), fake_resolve
    )
    assert spec["Mode"] == {"Global": {}}


@pytest.mark.parametrize(
    ("text", "ns"),
    [("10s", 10**10), ("500ms", 5 * 10**8), ("1m30s", 9 * 10**10), ("1h", 3600 * 10**9), ("0", 0)],
)
def test_parse_duration(text: str, ns: int) -> None:
    assert cli_docker.parse_duration(text) == ns


@pytest.mark.parametrize("bad", ["10", "s", "1x", "10s5", ""])
def test_parse_duration_refuses(bad: str) -> None:
    with pytest.raises(ClusterError):
        cli_docker.parse_duration(bad)


def test_parse_publish_long_form_and_errors() -> None:
    assert cli_docker.parse_publish("published=8080,target=80,protocol=udp") == {
        "Protocol": "udp",
        "PublishMode": "ingress",
        "PublishedPort": 8080,
        "TargetPort": 80,
    }
    assert cli_docker.parse_publish("80")["PublishedPort"] == 0
    for bad in ("8080:http", "8080:80/icmp", "8080:80,mode=bridge", "published=1"):
        with pytest.raises(ClusterError):
            cli_docker.parse_publish(bad)


def test_service_update_applies_flags_to_the_current_spec() -> None:
    current = {
        "Name": "web",
        "Labels": {},
        "TaskTemplate": {"ContainerSpec": {"Image": "nginx", "Env": ["A=1", "B=2"]}},
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {"Parallelism": 1, "FailureAction": "pause"},
    }
    args = parse(
        "service", "update", "--image", "nginx:2", "--replicas", "4", "--env-add", "A=9",
        "--env-rm", "B", "--update-delay", "5s", "--force", "web",
    )  # fmt: skip
    spec = cli_docker.updated_spec(current, args, fake_resolve)
    assert spec["TaskTemplate"]["ContainerSpec"] == {"Image": "nginx:2", "Env": ["A=9"]}
    assert spec["Mode"]["Replicated"]["Replicas"] == 4
    assert spec["UpdateConfig"] == {"Parallelism": 1, "FailureAction": "pause", "Delay": 5 * 10**9}
    assert spec["TaskTemplate"]["ForceUpdate"] == 1
    assert current["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx"  # not changed in place


def test_service_rollback_is_update_rollback() -> None:
    a = parse("service", "rollback", "web")
    b = parse("service", "update", "--rollback", "web")
    assert (a.func, a.rollback, a.service) == (b.func, b.rollback, b.service)
    assert a.func is cli_docker.cmd_service_update and a.rollback is True


def test_node_verbs_parse() -> None:
    a = parse("node", "update", "--availability", "drain", "leader")
    assert (a.availability, a.ref, a.func) == ("drain", "leader", cli_docker.cmd_node_update)
    a = parse("node", "promote", "--node", "manager2", "manager4")
    assert (a.via, a.refs) == ("manager2", ["manager4"])
    for argv in (("service", "ls"), ("service", "ps", "web"), ("secret", "ls"), ("config", "ls")):
        assert parse(*argv, "--json").json


def service(name: str, running: int, desired: int, ports: list[dict[str, Any]]) -> dict:
    return {
        "ID": f"{name}0123456789abcdefghijk",
        "Spec": {
            "Name": name,
            "Mode": {"Replicated": {"Replicas": desired}},
            "TaskTemplate": {"ContainerSpec": {"Image": "nginx:1.25"}},
            "EndpointSpec": {"Ports": ports},
        },
        "ServiceStatus": {"RunningTasks": running, "DesiredTasks": desired},
    }


def test_service_ls_table(capsys: pytest.CaptureFixture[str]) -> None:
    port = {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "ingress"}
    rows = cli_docker.service_rows([service("web", 2, 3, [port]), service("api", 1, 1, [])])
    print_table(cli_docker.SERVICE_COLUMNS, rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
    assert lines[1].split() == ["api012345678", "api", "replicated", "1/1", "nginx:1.25"]
    assert lines[2].split() == [
        "web012345678",
        "web",
        "replicated",
        "2/3",
        "nginx:1.25",
        "*:8080->80/tcp",
    ]
    # Columns are aligned: every header starts where its values start.
    assert lines[0].index("REPLICAS") == lines[2].index("2/3")


def test_service_rows_count_tasks_when_given() -> None:
    s = service("web", 0, 2, [])
    tasks = [
        {"ServiceID": s["ID"], "DesiredState": "running", "Status": {"State": "running"}},
        {"ServiceID": s["ID"], "DesiredState": "running", "Status": {"State": "pending"}},
        {"ServiceID": s["ID"], "DesiredState": "shutdown", "Status": {"State": "running"}},
    ]
    assert cli_docker.service_rows([s], tasks)[0][3] == "1/2"


def test_service_ps_rows_name_slots_and_history() -> None:
    svc = service("web", 1, 1, [])
    now = 1_000_000.0
    stamp = "1970-01-12T13:46:10Z"  # 30 s before `now`

    def task(tid: str, index: int, state: str, desired: str, err: str = "") -> dict:
        status = {"State": state, "Timestamp": stamp, **({"Err": err} if err else {})}
        return {
            "ID": tid * 25,
            "Version": {"Index": index},
            "ServiceID": svc["ID"],
            "Slot": 1,
            "NodeID": "n1",
            "DesiredState": desired,
            "Status": status,
            "Spec": {"ContainerSpec": {"Image": "nginx"}},
        }

    rows = cli_docker.task_rows(
        [task("a", 5, "failed", "shutdown", "boom"), task("b", 9, "running", "running")],
        {svc["ID"]: svc},
        {"n1": "manager1"},
        now,
    )
    assert rows[0] == (
        "b" * 12,
        "web.1",
        "nginx",
        "manager1",
        "Running",
        "Running 30 seconds ago",
        "",
        "",
    )
    assert rows[1][1] == " \\_ web.1"
    assert rows[1][5] == "Failed 30 seconds ago"
    assert rows[1][6] == '"boom"'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "Less than a second"), (1, "1 second"), (45, "45 seconds"), (70, "About a minute"),
     (600, "10 minutes"), (4000, "About an hour"), (7200, "2 hours"), (3 * 86400, "3 days")],
)  # fmt: skip
def test_human_duration(seconds: float, text: str) -> None:
    assert cli_docker.human_duration(seconds) == text


def test_trace_tail_reads_only_new_complete_lines(tmp_path: Path) -> None:
    f = tmp_path / "trace.jsonl"
    f.write_text('{"t": 1, "type": "a"}\n')
    tail = TraceTail()
    assert [r["type"] for r in tail.poll([f, tmp_path / "missing"])] == ["a"]
    assert tail.poll([f]) == []
    with f.open("a") as out:
        out.write('{"t": 2, "type": "b"}\n{"t": 3, "ty')
    assert [r["type"] for r in tail.poll([f])] == ["b"]
    with f.open("a") as out:
        out.write('pe": "c"}\n')
    assert [r["type"] for r in tail.poll([f])] == ["c"]
    f.write_text('{"t": 9, "type": "new file"}\n')  # replaced: shorter than the offset
    assert [r["type"] for r in tail.poll([f])] == ["new file"]


def test_trace_tail_starts_at_the_end_of_a_long_file(tmp_path: Path) -> None:
    f = tmp_path / "trace.jsonl"
    f.write_text(
        "".join(json.dumps({"t": i, "type": "x", "pad": "y" * 50}) + "\n" for i in range(500))
    )
    records = TraceTail(backlog=1000).poll([f])
    assert 0 < len(records) < 20
    assert records[-1]["t"] == 499
    assert all(r["type"] == "x" for r in records)  # no half line from the cut


def test_describe_keeps_what_a_learner_wants_to_see() -> None:
    refused = describe(
        {"t": 1.0, "node": "manager2", "type": "vote", "candidate": "manager3",
         "granted": False, "term": 4, "reason": "candidate's log is behind (term 2 < 3)"}
    )  # fmt: skip
    assert refused is not None and refused.kind == "refused"
    assert "manager3" in refused.text and "log is behind" in refused.text
    role = describe(
        {"t": 1, "node": "m", "type": "role", "from": "candidate", "to": "leader", "term": 4}
    )
    assert role is not None and "candidate -> leader" in role.text
    fault = describe({"t": 1, "node": "supervisor", "type": "fault", "kind": "partition",
                      "groups": [["manager1"], ["manager2", "manager3"]]})  # fmt: skip
    assert fault is not None and "manager1 | manager2,manager3" in fault.text
    assert describe({"t": 1, "node": "m", "type": "vote", "granted": True}) is None
    assert describe({"t": 1, "node": "m", "type": "commit", "index": 3}) is None


def test_plain_snapshot_flags_a_lost_quorum() -> None:
    node = {
        "name": "manager1",
        "role": "follower",
        "term": 3,
        "commit_index": 7,
        "applied_index": 7,
    }
    st = {"leader": None, "term": 3, "managers": 3, "quorum": 2, "reachable": 1,
          "partition": [], "nodes": [node]}  # fmt: skip
    text = plain_snapshot(st, {"manager1": "running"}, [Event(0.5, "manager2", "x", "fault")], 0.0)
    first, second = text.splitlines()
    assert "leader=none" in first and "quorum=1/2 LOST" in first and "manager1=F/t3/c7/a7" in first
    assert second.endswith("manager2: x")


def fake_cluster(tmp_path: Path) -> Path:
    cdir = ClusterDir(tmp_path / "c")
    members = [Member(f"manager{i}", f"id{i}", "manager", 1, 40000 + i, pid=1) for i in (1, 2)]
    cdir.save(Description("cid", 0.0, members=members))
    return cdir.path


def test_stale_version_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``service update`` sends the Version.Index it read; a 409 is one line, exit 1."""
    sent: list[tuple[str, str, Any]] = []
    current = service("web", 1, 1, [])
    current["Version"] = {"Index": 41}

    def fake_request(method: str, url: str, body: Any = None, **kw: Any) -> Any:
        sent.append((method, url, body))
        if url.endswith("/raft/status"):
            return {"role": "follower"}
        if method == "GET":
            return current
        raise ApiError(409, "update out of sequence")

    monkeypatch.setattr("cluster.cli.api.request", fake_request)  # where Api sends
    monkeypatch.setattr(
        "cluster.local.supervisor.Supervisor.process_state", lambda self, m: "running"
    )
    rc = main(["--dir", str(fake_cluster(tmp_path)), "service", "update", "--image", "x", "web"])
    err = capsys.readouterr().err
    assert rc == 1 and err == "error: update out of sequence\n"
    method, url, body = sent[-1]
    assert method == "POST" and url.endswith(f"/services/{current['ID']}/update?version=41")
    assert body["TaskTemplate"]["ContainerSpec"]["Image"] == "x"


def test_no_running_manager_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkey_dir = fake_cluster(tmp_path)  # PID 1 is not a manager: reads as "down"
    assert main(["--dir", str(monkey_dir), "service", "ls"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no manager is running") and err.count("\n") == 1


# ============================================================ integration tests


class Cluster:
    """The shared cluster: its directory and every manager PID it ever had."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pids: set[int] = set()

    def run(self, *args: str, **kw: Any) -> Any:
        return cli(self.path, *args, **kw)

    def ok(self, *args: str, **kw: Any) -> str:
        out = ok(self.path, *args, **kw)
        self.pids |= described_pids(self.path)
        return out

    def status(self) -> dict[str, Any]:
        return status(self.path)


def healthy_status(st: dict[str, Any]) -> dict[str, Any] | None:
    """The status if it shows one leader and every manager following it in one term."""
    nodes = st["nodes"]
    roles = sorted(n["role"] for n in nodes)
    if (
        st["leader"]
        and st["managers"] == MANAGERS
        and st["reachable"] == MANAGERS
        and roles == ["follower"] * (MANAGERS - 1) + ["leader"]
        and len({n["term"] for n in nodes}) == 1
    ):
        return st
    return None


def swarm_ready(c: Cluster) -> bool:
    """The first leader has written the swarm (its nodes) into the store."""
    r = c.run("node", "ls", "--json")
    return r.returncode == 0 and len(json.loads(r.stdout)) == MANAGERS


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Any:
    c = Cluster(tmp_path_factory.mktemp("cli") / "cluster")
    try:
        c.ok("up", "--managers", str(MANAGERS), "-d", timeout=90)
        yield c
    finally:
        c.pids |= described_pids(c.path)
        try:
            c.run("down", timeout=90)
        finally:  # even when `down` timed out: no manager outlives the tests
            leftovers = kill_leftovers(c.pids)
        assert not leftovers, f"down left managers running: {leftovers}"


@pytest.fixture
def cluster(shared: Cluster) -> Cluster:
    """The shared cluster, healthy: all running and reachable, one leader, swarm ready."""
    if not any(is_manager_process(p) for p in described_pids(shared.path)):
        shared.ok("up", "-d", timeout=90)
    st = shared.status()
    if st["partition"]:
        shared.ok("heal")
    for n in st["nodes"]:
        if n["role"] == "paused":
            shared.ok("unpause", n["name"])
        elif n["role"] == "down":
            shared.ok("restart", n["name"])
    wait_until(lambda: healthy_status(shared.status()), 30, "a healthy cluster")
    wait_until(lambda: swarm_ready(shared), 15, "the swarm to be initialised")
    return shared


@pytest.mark.integration
def test_up_shows_one_leader_five_managers_one_term(cluster: Cluster) -> None:
    st = cluster.status()
    assert healthy_status(st), st
    assert st["quorum"] == 3
    assert {n["name"] for n in st["nodes"]} == {f"manager{i}" for i in range(1, 6)}
    assert all(n["pid"] for n in st["nodes"])
    table = cluster.ok("node", "ls")
    assert table.splitlines()[0].split()[:3] == ["ID", "HOSTNAME", "STATUS"]
    assert table.count("Leader") == 1 and table.count("Reachable") == MANAGERS - 1


@pytest.mark.integration
def test_kill_leader_elects_a_new_one(cluster: Cluster) -> None:
    before = cluster.status()
    old = before["leader"]
    cluster.ok("kill", "leader")
    after = wait_until(
        lambda: (st := cluster.status())["leader"] not in (None, old) and st,
        15,
        "a new leader",
    )
    assert after["term"] > before["term"]
    assert next(n for n in after["nodes"] if n["name"] == old)["role"] == "down"
    assert after["reachable"] == MANAGERS - 1 >= after["quorum"]
    cluster.ok("restart", old)
    wait_until(lambda: healthy_status(cluster.status()), 20, f"{old} to rejoin")


@pytest.mark.integration
def test_pause_a_follower_and_unpause_it(cluster: Cluster) -> None:
    st = cluster.status()
    follower = next(n["name"] for n in st["nodes"] if n["role"] == "follower")
    cluster.ok("pause", follower)
    try:
        paused = cluster.status()
        assert next(n for n in paused["nodes"] if n["name"] == follower)["role"] == "paused"
        # The others still have a leader and still take writes.
        assert paused["leader"] and paused["reachable"] == MANAGERS - 1
        name = f"while-paused-{uuid.uuid4().hex[:6]}"
        cluster.ok("config", "create", name, "-", input="x")
    finally:
        cluster.ok("unpause", follower)
    back = wait_until(lambda: healthy_status(cluster.status()), 20, f"{follower} to resume")
    assert next(n for n in back["nodes"] if n["name"] == follower)["role"] == "follower"
    cluster.ok("config", "rm", name)


@pytest.mark.integration
def test_a_one_way_cut_in_the_transport_drops_one_direction(cluster: Cluster) -> None:
    st = cluster.status()
    a, b = (n["name"] for n in st["nodes"][:2])
    r = cluster.run("partition", "--oneway", a, b)
    try:
        assert r.returncode == 0 and f"{a} -> {b}" in r.stderr, r.stderr

        def rules(name: str) -> dict[str, Any]:
            return json.loads((cluster.path / name / "raft" / "faults.json").read_text())

        # A drops what it sends to B; B drops what arrives from A; nothing else.
        assert list(rules(a)["outbound"]) == [b] and rules(a)["inbound"] == {}
        assert list(rules(b)["inbound"]) == [a] and rules(b)["outbound"] == {}
        s = cluster.status()
        assert s["network"] == {
            "mode": "transport",
            "oneway": [[a], [b]],
            "loss": {},
            "delay": {},
            "delay_via": "transport",
        }
        assert s["partition"] == []
        assert f"one-way cut: {a} -> {b}" in cluster.ok("status")
    finally:
        cluster.ok("heal")
    assert rules(a) == rules(b) == {"outbound": {}, "inbound": {}}
    wait_until(lambda: healthy_status(cluster.status()), 20, "the cluster to heal")


@pytest.mark.integration
def test_partition_a_minority_then_heal(cluster: Cluster) -> None:
    st = cluster.status()
    old = st["leader"]
    other = next(n["name"] for n in st["nodes"] if n["role"] == "follower")
    minority = {old, other}
    cluster.ok("partition", f"{old},{other}")
    try:

        def settled() -> dict[str, Any] | None:
            s = cluster.status()
            roles = {n["name"]: n["role"] for n in s["nodes"]}
            ok = s["leader"] not in (None, *minority) and all(
                roles[n] != "leader" for n in minority
            )
            return s if ok else None

        after = wait_until(settled, 20, "a leader on the majority side only")
        assert after["reachable"] == MANAGERS - 2 >= after["quorum"]
        # A write through a minority manager fails fast, in one line.
        started = time.monotonic()
        r = cluster.run("secret", "create", "--node", old, "nope", "-", input="x", timeout=30)
        assert time.monotonic() - started < 15
        one_line_error(r)
        # Without --node the CLI picks a manager on the majority side.
        name = f"majority-{uuid.uuid4().hex[:6]}"
        cluster.ok("config", "create", name, "-", input="x")
    finally:
        cluster.ok("heal")
    wait_until(lambda: healthy_status(cluster.status()), 20, "the cluster to heal")
    assert name in cluster.ok("config", "ls", "--node", old)
    cluster.ok("config", "rm", name)


@pytest.mark.integration
def test_service_create_ls_ps_scale_update_rm(cluster: Cluster) -> None:
    name = f"web{uuid.uuid4().hex[:6]}"
    sid = cluster.ok(
        "service", "create", "--name", name, "--replicas", "2", "-p", "8080:80", "nginx:1.25"
    ).strip()
    assert len(sid) == 25 and sid.isalnum()
    try:
        rows = [ln.split() for ln in cluster.ok("service", "ls").splitlines()]
        assert rows[0] == ["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"]
        mine = next(r for r in rows if r[1] == name)
        assert mine[0] == sid[:12] and mine[2] == "replicated" and mine[3].endswith("/2")
        assert mine[4:] == ["nginx:1.25", "*:8080->80/tcp"]
        listed = json.loads(cluster.ok("service", "ls", "--json"))
        assert any(s["ID"] == sid and s["Spec"]["Name"] == name for s in listed)

        def running(n: int) -> list[dict[str, Any]] | None:
            tasks = json.loads(cluster.ok("service", "ps", name, "--json"))
            up = [t for t in tasks if t["DesiredState"] == "running"]
            if len(up) == n and all(t["Status"]["State"] == "running" for t in up):
                return up
            return None

        ps = cluster.ok("service", "ps", name).splitlines()
        assert ps[0].split()[:4] == ["ID", "NAME", "IMAGE", "NODE"]
        tasks = wait_until(lambda: running(2), 20, "2 running tasks")
        assert sorted(t["Slot"] for t in tasks) == [1, 2]
        table = cluster.ok("service", "ps", name)
        assert f"{name}.1" in table and f"{name}.2" in table and "Running" in table

        assert cluster.ok("service", "scale", f"{name}=3").strip() == f"{name} scaled to 3"
        spec = json.loads(cluster.ok("service", "inspect", name))[0]["Spec"]
        assert spec["Mode"]["Replicated"]["Replicas"] == 3
        wait_until(lambda: running(3), 20, "3 running tasks")
        ls = cluster.ok("service", "ls")
        assert next(r for r in map(str.split, ls.splitlines()) if r[1] == name)[3] == "3/3"

        cluster.ok("service", "update", "--image", "nginx:1.26", "--update-delay", "1s", name)
        inspected = json.loads(cluster.ok("service", "inspect", sid[:8]))[0]
        assert inspected["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx:1.26"
        assert inspected["Spec"]["UpdateConfig"]["Delay"] == 10**9
        pretty = cluster.ok("service", "inspect", "--pretty", name)
        assert "Replicas:" in pretty and "nginx:1.26" in pretty
    finally:
        assert cluster.ok("service", "rm", name).strip() == name
    assert name not in cluster.ok("service", "ls")
    one_line_error(cluster.run("service", "inspect", name))


def _runs(cluster: Cluster, name: str, image: str) -> bool:
    tasks = json.loads(cluster.ok("service", "ps", name, "--json"))
    running = [t for t in tasks if t["Status"]["State"] == "running"]
    return len(running) == 1 and running[0]["Spec"]["ContainerSpec"]["Image"] == image


@pytest.mark.integration
def test_task_history_limit_bounds_what_service_ps_keeps(cluster: Cluster) -> None:
    """``swarm update --task-history-limit 2``: each slot keeps two tasks, the
    running one and the last one it replaced; older ones are reaped."""
    name = f"hist{uuid.uuid4().hex[:6]}"
    cluster.ok("swarm", "update", "--task-history-limit", "2")
    cluster.ok("service", "create", "--name", name, "--replicas", "1", "nginx:1.0")
    try:
        for image in ("nginx:1.1", "nginx:1.2", "nginx:1.3"):
            cluster.ok("service", "update", "--image", image, name)
            # Each update runs before the next (one sent while the last is under
            # way may replace a task that never ran, and history is by creation).
            wait_until(lambda image=image: _runs(cluster, name, image), 30, f"{name} on {image}")

        def reaped() -> list[dict[str, Any]] | None:
            tasks = json.loads(cluster.ok("service", "ps", name, "--json"))
            images = sorted(t["Spec"]["ContainerSpec"]["Image"] for t in tasks)
            running = [t for t in tasks if t["Status"]["State"] == "running"]
            if images == ["nginx:1.2", "nginx:1.3"] and len(running) == 1:
                return tasks
            return None

        tasks = wait_until(reaped, 30, "slot 1 down to its last two tasks")
        assert {t["Slot"] for t in tasks} == {1}
    finally:
        cluster.ok("service", "rm", name)
        cluster.ok("swarm", "update", "--task-history-limit", "5")


@pytest.mark.integration
def test_secret_from_stdin_is_never_printed(cluster: Cluster, tmp_path: Path) -> None:
    plaintext = f"hunter2-{uuid.uuid4().hex}"
    encoded = base64.b64encode(plaintext.encode()).decode()
    name = f"pw{uuid.uuid4().hex[:6]}"
    outputs = []

    def run(*args: str, **kw: Any) -> str:
        r = cluster.run(*args, **kw)
        outputs.extend([r.stdout, r.stderr])
        assert r.returncode == 0, r.stderr
        return r.stdout

    sid = run("secret", "create", name, "-", input=plaintext).strip()
    assert len(sid) == 25
    rows = [ln.split() for ln in run("secret", "ls").splitlines()]
    assert rows[0] == ["ID", "NAME", "CREATED", "UPDATED"]
    assert any(r[:2] == [sid, name] for r in rows[1:])
    inspected = json.loads(run("secret", "inspect", name))
    assert inspected[0]["ID"] == sid and "Data" not in inspected[0]["Spec"]
    run("secret", "inspect", "--pretty", sid[:6])
    assert any(s["ID"] == sid for s in json.loads(run("secret", "ls", "--json")))
    svc = f"uses{uuid.uuid4().hex[:6]}"
    run("service", "create", "--name", svc, "--secret", f"{name},target=db", "alpine")
    refs = json.loads(run("service", "inspect", svc))[0]["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert refs["Secrets"][0]["SecretID"] == sid and refs["Secrets"][0]["File"]["Name"] == "db"
    run("service", "rm", svc)
    run("secret", "rm", name)
    for text in outputs:
        assert plaintext not in text and encoded not in text

    # A config is plaintext: inspect shows its data, in base64 as docker does.
    conf = tmp_path / "app.conf"
    conf.write_text("listen 80;\n")
    cname = f"conf{uuid.uuid4().hex[:6]}"
    cluster.ok("config", "create", cname, str(conf))
    shown = json.loads(cluster.ok("config", "inspect", cname))[0]
    assert base64.b64decode(shown["Spec"]["Data"]) == b"listen 80;\n"
    assert "listen 80;" in cluster.ok("config", "inspect", "--pretty", cname)
    cluster.ok("config", "rm", cname)


@pytest.mark.integration
def test_node_inspect_and_drain(cluster: Cluster) -> None:
    leader = json.loads(cluster.ok("node", "inspect", "leader"))[0]
    assert leader["ManagerStatus"]["Leader"] is True
    target = "manager3"
    assert cluster.ok("node", "update", "--availability", "drain", target).strip() == target
    try:
        node = json.loads(cluster.ok("node", "inspect", target))[0]
        assert node["Spec"]["Availability"] == "drain"
        row = next(ln for ln in cluster.ok("node", "ls").splitlines() if target in ln)
        assert "Drain" in row.split()
        assert "Availability:" in cluster.ok("node", "inspect", "--pretty", node["ID"][:10])
    finally:
        cluster.ok("node", "update", "--availability", "active", target)
    assert json.loads(cluster.ok("node", "ls", "--json"))[0]["Spec"]["Role"] == "manager"


@pytest.mark.integration
def test_promote_and_demote_reach_the_api(cluster: Cluster) -> None:
    """The CLI sends the role change; whatever the manager answers is one clear line."""
    follower = next(n["name"] for n in cluster.status()["nodes"] if n["role"] == "follower")
    r = cluster.run("node", "demote", follower)
    try:
        assert "Traceback" not in r.stderr
        if r.returncode == 0:
            assert f"Manager {follower} demoted" in r.stdout
        else:
            one_line_error(r)
    finally:
        r = cluster.run("node", "promote", follower)
        assert "Traceback" not in r.stderr
    node = json.loads(cluster.ok("node", "inspect", follower))[0]
    assert node["Spec"]["Role"] == "manager"
    assert "already a manager" in cluster.ok("node", "promote", follower)


@pytest.mark.integration
def test_user_mistakes_are_one_line(cluster: Cluster, tmp_path: Path) -> None:
    assert "nosuch" in one_line_error(cluster.run("kill", "nosuch"))
    one_line_error(cluster.run("node", "inspect", "nosuch"))
    one_line_error(cluster.run("service", "ps", "nosuch"))
    one_line_error(cluster.run("service", "scale", "web"))
    one_line_error(cluster.run("secret", "create", "x", str(tmp_path / "missing")))
    one_line_error(cluster.run("service", "ls", "--node", "manager9"))
    empty = tmp_path / "empty"
    for args in (("status",), ("service", "ls"), ("node", "ls"), ("watch", "--count", "1")):
        assert "no cluster in" in one_line_error(cli(empty, *args))


@pytest.mark.integration
def test_watch_prints_plain_snapshots_when_piped(cluster: Cluster) -> None:
    r = cluster.run("watch", "--count", "2", timeout=30)
    assert r.returncode == 0, r.stderr
    snapshots = [ln for ln in r.stdout.splitlines() if not ln.startswith(" ")]
    assert len(snapshots) == 2
    assert all("leader=manager" in s and "quorum=5/3 ok" in s for s in snapshots)


@pytest.mark.integration
def test_down_leaves_no_process_behind(cluster: Cluster) -> None:
    pids = described_pids(cluster.path)
    assert len(pids) == MANAGERS and all(is_manager_process(p) for p in pids)
    cluster.ok("down")
    assert not [p for p in pids if is_manager_process(p)]
    st = cluster.status()
    assert st["leader"] is None and {n["role"] for n in st["nodes"]} == {"down"}
