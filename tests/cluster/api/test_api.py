"""The HTTP API against a fake manager: every route, every error code, forwarding.

`tests.api_fakes.FakeBackend` stands in for RaftNode + Store.  Each test
talks HTTP to a real aiohttp server on 127.0.0.1 (port 0) through
`aiohttp.test_utils.TestClient`.  `Api` records every response's bytes so
the secret tests can search all of them for the plaintext.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from api_fakes import NODE_IDS, NOW, FakeBackend, bootstrap

from cluster.api.backend import Backend
from cluster.api.server import FORWARDED_HEADER, SERVED_BY_HEADER, bound_port, make_app, run_api
from cluster.state import commands as c


class Api:
    """A test client that keeps every response and checks Docker's error shape."""

    def __init__(self, client: TestClient, backend: FakeBackend) -> None:
        self.client = client
        self.backend = backend
        self.seen: list[bytes] = []

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | io.BytesIO | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        async with self.client.request(
            method, path, data=data, headers=headers, params=params
        ) as resp:
            payload = await resp.read()
            self.seen.append(payload)
            doc = json.loads(payload) if resp.content_type == "application/json" else payload
            if resp.status >= 400:
                assert isinstance(doc, dict) and set(doc) == {"message"}, doc
                assert isinstance(doc["message"], str) and doc["message"]
            return resp.status, doc, dict(resp.headers)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, doc, _ = await self.call(method, path, body, **kw)
        assert status in (200, 201), (status, doc)
        return doc

    async def fails(self, status: int, method: str, path: str, body: Any = None, **kw: Any) -> str:
        got, doc, _ = await self.call(method, path, body, **kw)
        assert got == status, (got, doc)
        return doc["message"]


async def serve(backend: FakeBackend) -> AsyncIterator[Api]:
    async with TestClient(TestServer(make_app(backend))) as client:
        yield Api(client, backend)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async for a in serve(bootstrap(FakeBackend())):
        yield a


def svc(name: str = "web", replicas: int = 2, **extra: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {"ContainerSpec": {"Image": "nginx:alpine"}},
        **extra,
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- basics ----------------------------------------------------------------------


def test_fake_backend_implements_the_protocol() -> None:
    assert isinstance(FakeBackend(), Backend)


async def test_ping_and_served_by_header(api: Api) -> None:
    status, doc, headers = await api.call("GET", "/_ping")
    assert (status, doc) == (200, b"OK")
    assert headers[SERVED_BY_HEADER] == "manager1"


async def test_info_has_dockers_swarm_section(api: Api) -> None:
    doc = await api.ok("GET", "/info")
    swarm = doc["Swarm"]
    assert doc["Name"] == "manager1"
    assert swarm["NodeID"] == NODE_IDS["manager1"]
    assert swarm["LocalNodeState"] == "active"
    assert swarm["ControlAvailable"] is True
    assert (swarm["Managers"], swarm["Nodes"]) == (3, 4)
    assert len(swarm["RemoteManagers"]) == 3
    raft = swarm["Cluster"]["Spec"]["Raft"]
    assert (raft["HeartbeatTick"], raft["ElectionTick"], raft["SnapshotInterval"]) == (1, 10, 1000)
    assert swarm["RaftStatus"]["role"] == "leader"


async def test_unknown_route_and_method_are_json_errors(api: Api) -> None:
    assert "Not Found" in await api.fails(404, "GET", "/nope")
    assert "Method Not Allowed" in await api.fails(405, "PUT", "/services")


async def test_bad_consistency_is_400(api: Api) -> None:
    msg = await api.fails(400, "GET", "/nodes", params={"consistency": "eventual"})
    assert "consistency" in msg


# -- nodes -----------------------------------------------------------------------


async def test_nodes_list_and_lookup_by_id_name_prefix_and_aliases(api: Api) -> None:
    nodes = await api.ok("GET", "/nodes")
    assert [n["ID"] for n in nodes] == sorted(NODE_IDS.values())
    m2 = NODE_IDS["manager2"]
    for ref in (m2, "manager2", m2[:3]):
        assert (await api.ok("GET", f"/nodes/{ref}"))["ID"] == m2
    assert (await api.ok("GET", "/nodes/leader"))["ID"] == NODE_IDS["manager1"]
    assert (await api.ok("GET", "/nodes/self"))["ID"] == NODE_IDS["manager1"]
    assert (await api.ok("GET", "/nodes/bb"))["Description"]["Hostname"] == "worker1"


async def test_node_not_found_and_ambiguous_prefix(api: Api) -> None:
    assert "not found" in await api.fails(404, "GET", "/nodes/zzz")
    assert "ambiguous" in await api.fails(400, "GET", "/nodes/aa")


async def test_leader_alias_without_a_leader_is_404(api: Api) -> None:
    api.backend.mode = "no-quorum"
    api.backend.ok(
        c.set_node_status(NODE_IDS["manager1"], NOW, manager={"Leader": False, "Addr": ""})
    )
    await api.fails(404, "GET", "/nodes/leader", params={"consistency": "local"})


async def test_node_filters(api: Api) -> None:
    async def ids(filters: dict[str, Any]) -> list[str]:
        nodes = await api.ok("GET", "/nodes", params={"filters": json.dumps(filters)})
        return sorted(n["Description"]["Hostname"] for n in nodes)

    assert await ids({"name": ["manager"]}) == ["manager1", "manager2", "manager3"]
    assert await ids({"name": {"worker1": True}}) == ["worker1"]
    assert await ids({"role": ["worker"]}) == ["worker1"]
    assert await ids({"label": ["zone=1"]}) == ["manager1", "worker1"]
    assert await ids({"label": ["zone=1"], "role": ["manager"]}) == ["manager1"]
    assert await ids({"id": [NODE_IDS["manager3"][:4]]}) == ["manager3"]
    assert "invalid filter" in await api.fails(
        400, "GET", "/nodes", params={"filters": json.dumps({"color": ["red"]})}
    )
    assert "invalid filters" in await api.fails(
        400, "GET", "/nodes", params={"filters": "{not json"}
    )


async def test_node_update_drains_with_cas(api: Api) -> None:
    node = await api.ok("GET", "/nodes/manager2")
    version = node["Version"]["Index"]
    updated = await api.ok(
        "POST", "/nodes/manager2/update", {"Availability": "drain"}, params={"version": version}
    )
    assert updated["Spec"]["Availability"] == "drain"
    assert updated["Spec"]["Role"] == "manager"  # left out, so kept
    assert updated["Version"]["Index"] > version
    msg = await api.fails(
        409, "POST", "/nodes/manager2/update", {"Labels": {}}, params={"version": version}
    )
    assert "update out of sequence" in msg


async def test_node_update_bad_requests(api: Api) -> None:
    path, v = "/nodes/worker1/update", {"version": "1"}
    assert "version" in await api.fails(400, "POST", path, {"Availability": "drain"})
    assert "version" in await api.fails(400, "POST", path, {}, params={"version": "x"})
    assert "'Color'" in await api.fails(400, "POST", path, {"Color": "red"}, params=v)
    msg = await api.fails(400, "POST", path, {"Availability": 3}, params=v)
    assert "Spec.Availability" in msg and "string" in msg
    assert "invalid availability" in await api.fails(
        400, "POST", path, {"Availability": "nap"}, params=v
    )
    assert "invalid JSON" in await api.fails(400, "POST", path, raw=b"{oops", params=v)
    assert "JSON object" in await api.fails(400, "POST", path, raw=b"[1]", params=v)
    assert "required" in await api.fails(400, "POST", path, raw=b"", params=v)
    await api.fails(404, "POST", "/nodes/nobody/update", {}, params=v)


async def test_node_remove(api: Api) -> None:
    assert "not down" in await api.fails(400, "DELETE", "/nodes/worker1")
    assert "demoted" in await api.fails(400, "DELETE", "/nodes/manager3", params={"force": "1"})
    done = await api.ok("DELETE", "/nodes/worker1", params={"force": "true"})
    assert done == {"ID": NODE_IDS["worker1"]}
    await api.fails(404, "GET", "/nodes/worker1")


# -- services --------------------------------------------------------------------


async def test_service_create_inspect_list_update_remove(api: Api) -> None:
    created = await api.ok("POST", "/services/create", svc("web"))
    sid = created["ID"]
    assert set(created) == {"ID"} and len(sid) == 25
    for ref in (sid, "web", sid[:6]):
        got = await api.ok("GET", f"/services/{ref}")
        assert got["ID"] == sid
    assert got["Spec"]["Mode"] == {"Replicated": {"Replicas": 2}}
    assert got["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == "nginx:alpine"
    assert got["CreatedAt"].endswith("Z")

    version = got["Version"]["Index"]
    updated = await api.ok(
        "POST", "/services/web/update", svc("web", replicas=5), params={"version": version}
    )
    assert updated["Spec"]["Mode"]["Replicated"]["Replicas"] == 5
    assert updated["PreviousSpec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert "out of sequence" in await api.fails(
        409, "POST", "/services/web/update", svc("web", 3), params={"version": version}
    )
    back = await api.ok(
        "POST",
        "/services/web/update",
        params={"version": updated["Version"]["Index"], "rollback": "previous"},
    )
    assert back["Spec"]["Mode"]["Replicated"]["Replicas"] == 2

    assert await api.ok("DELETE", "/services/web") == {"ID": sid}
    await api.fails(404, "GET", f"/services/{sid}")
    await api.fails(404, "DELETE", "/services/web")
    assert await api.ok("GET", "/services") == []


async def test_service_list_filters_and_status(api: Api) -> None:
    for name in ("web", "webapp", "db"):
        await api.ok("POST", "/services/create", svc(name, Labels={"tier": name[:2]}))
    glob = svc("agent")
    glob["Mode"] = {"Global": {}}
    await api.ok("POST", "/services/create", glob)

    async def names(filters: dict[str, Any]) -> list[str]:
        found = await api.ok("GET", "/services", params={"filters": json.dumps(filters)})
        return sorted(s["Spec"]["Name"] for s in found)

    assert await names({}) == ["agent", "db", "web", "webapp"]
    assert await names({"name": ["web"]}) == ["web", "webapp"]
    assert await names({"name": ["db", "agent"]}) == ["agent", "db"]
    assert await names({"label": ["tier=we"]}) == ["web", "webapp"]
    assert await names({"mode": ["global"]}) == ["agent"]

    listed = await api.ok("GET", "/services", params={"status": "true"})
    web_ = next(s for s in listed if s["Spec"]["Name"] == "web")
    assert web_["ServiceStatus"] == {"RunningTasks": 0, "DesiredTasks": 2}


async def test_service_create_conflicts_and_validation(api: Api) -> None:
    await api.ok("POST", "/services/create", svc("web"))
    version = (await api.ok("GET", "/services/web"))["Version"]["Index"]
    assert "already exists" in await api.fails(409, "POST", "/services/create", svc("web"))
    msg = await api.fails(400, "POST", "/services/create", svc("x", Replica=3))
    assert "'Replica'" in msg and "Spec" in msg
    bad = svc("x")
    bad["TaskTemplate"]["ContainerSpec"]["Imag"] = "nginx"
    assert "Spec.TaskTemplate.ContainerSpec" in await api.fails(
        400, "POST", "/services/create", bad
    )
    bad = svc("x")
    bad["Mode"]["Replicated"]["Replicas"] = "3"
    msg = await api.fails(400, "POST", "/services/create", bad)
    assert "Spec.Mode.Replicated.Replicas" in msg and "integer" in msg
    assert "Spec.Name" in await api.fails(400, "POST", "/services/create", {"Name": 5})
    assert "image reference" in await api.fails(
        400, "POST", "/services/create", {"Name": "x", "TaskTemplate": {"ContainerSpec": {}}}
    )
    assert "invalid JSON" in await api.fails(400, "POST", "/services/create", raw=b'{"Name":')
    assert "invalid JSON" in await api.fails(400, "POST", "/services/create", raw=b'{"Name": NaN}')
    assert "renaming" in await api.fails(
        501, "POST", "/services/web/update", svc("other"), params={"version": version}
    )


async def test_bodies_orjson_refuses_get_the_standard_decoders_verdict(api: Api) -> None:
    """orjson reads bodies first; what it refuses, the standard decoder decides as before:
    an integer beyond 64 bits is still a number (refused by the schema, not the parser),
    and a syntax error still names its line and column."""
    too_big = b'{"Name": "c", "Data": "eA==", "Labels": {"a": "b"}, "Extra": 18446744073709551616}'
    assert "Extra" in await api.fails(400, "POST", "/configs/create", raw=too_big)
    msg = await api.fails(400, "POST", "/configs/create", raw=b'{"Name":\n "c",}')
    assert msg.startswith("invalid JSON body: ") and msg.endswith(" at line 2 column 6")
    assert "not UTF-8" in await api.fails(400, "POST", "/configs/create", raw=b'{"Name": "\xff"}')
    created = await api.ok("POST", "/configs/create", {"Name": "c", "Data": "eA=="})
    status, doc, headers = await api.call("GET", f"/configs/{created['ID']}")
    assert status == 200 and doc["Spec"]["Data"] == "eA=="  # bytes, as base64
    assert headers["Content-Type"] == "application/json; charset=utf-8"


async def test_ambiguous_service_prefix_is_400(api: Api) -> None:
    api.backend.ok(c.create_service(svc("a"), "abc111", NOW))
    api.backend.ok(c.create_service(svc("b"), "abc222", NOW))
    assert "ambiguous" in await api.fails(400, "GET", "/services/abc")
    assert (await api.ok("GET", "/services/abc1"))["ID"] == "abc111"


async def test_request_id_makes_a_retry_apply_once(api: Api) -> None:
    headers = {"X-Request-ID": "req-42"}
    first = await api.ok("POST", "/services/create", svc("web"), headers=headers)
    again = await api.ok("POST", "/services/create", svc("web"), headers=headers)
    assert first == again
    assert len(await api.ok("GET", "/services")) == 1
    assert api.backend.request_ids[-2:] == ["req-42", "req-42"]
    await api.fails(400, "POST", "/services/create", svc("x"), headers={"X-Request-ID": "x" * 300})


async def test_oversized_body_is_413(api: Api) -> None:
    body = io.BytesIO(b"{" + b" " * (1024 * 1024 + 10))
    msg = await api.fails(413, "POST", "/services/create", raw=body)
    assert "Maximum request body size" in msg


# -- tasks -----------------------------------------------------------------------


async def test_tasks_list_filters_and_inspect(api: Api) -> None:
    web_id = (await api.ok("POST", "/services/create", svc("web", 2)))["ID"]
    db_id = (await api.ok("POST", "/services/create", svc("db", 1)))["ID"]
    b = api.backend
    b.ok(c.create_task("t1web", NOW, web_id, slot=1, node_id=NODE_IDS["worker1"]))
    b.ok(c.create_task("t2web", NOW, web_id, slot=2, node_id=NODE_IDS["manager2"]))
    b.ok(c.create_task("t3db", NOW, db_id, slot=1, node_id=NODE_IDS["worker1"]))
    b.ok(c.update_task("t2web", NOW, desired_state="shutdown"))

    async def ids(filters: dict[str, Any]) -> list[str]:
        found = await api.ok("GET", "/tasks", params={"filters": json.dumps(filters)})
        return [t["ID"] for t in found]

    assert await ids({}) == ["t1web", "t2web", "t3db"]
    assert await ids({"service": ["web"]}) == ["t1web", "t2web"]
    assert await ids({"service": [db_id]}) == ["t3db"]
    assert await ids({"node": ["worker1"]}) == ["t1web", "t3db"]
    assert await ids({"desired-state": ["running"]}) == ["t1web", "t3db"]
    assert await ids({"service": ["web"], "desired-state": ["running"]}) == ["t1web"]
    assert await ids({"name": ["web.2"]}) == ["t2web"]
    assert await ids({"service": ["nosuch"]}) == []
    await api.fails(400, "GET", "/tasks", params={"filters": json.dumps({"bogus": ["x"]})})

    assert (await api.ok("GET", "/tasks/t3db"))["ServiceID"] == db_id
    assert (await api.ok("GET", "/tasks/t3"))["ID"] == "t3db"
    assert "ambiguous" in await api.fails(400, "GET", "/tasks/t")
    await api.fails(404, "GET", "/tasks/nosuch")


async def test_a_round_of_task_reports_is_one_entry_and_a_refused_one_spares_the_rest(
    api: Api,
) -> None:
    web_id = (await api.ok("POST", "/services/create", svc("web", 2)))["ID"]
    b = api.backend
    for slot in (1, 2):
        b.ok(c.create_task(f"t{slot}", NOW, web_id, slot=slot, node_id=NODE_IDS["manager2"]))
        b.ok(c.update_task(f"t{slot}", NOW, state="assigned"))
    before = b.store.applied_index
    reports = [{"ID": "t1", "State": "accepted"}, {"ID": "t2", "State": "accepted", "Message": "m"}]
    assert await api.ok("POST", "/tasks/status", {"Reports": reports}) == {"Errors": [None, None]}
    assert b.store.applied_index == before + 1  # both in one entry
    assert [t["Status"]["State"] for t in b.store.tasks()] == ["accepted", "accepted"]
    # t1 cannot move back: the batch is refused, then each report goes alone.
    reports = [{"ID": "t1", "State": "assigned"}, {"ID": "t2", "State": "running"}]
    errors = (await api.ok("POST", "/tasks/status", {"Reports": reports}))["Errors"]
    assert errors[0] and errors[1] is None
    assert [t["Status"]["State"] for t in b.store.tasks()] == ["accepted", "running"]
    applied = b.store.applied_index
    for bad in (
        {},
        {"Reports": []},
        {"Reports": [{"State": "running"}]},
        {"Reports": [{"ID": "t1", "State": 3}]},
        {"Reports": [{"ID": "t1", "State": "running"}], "x": 1},
        {"Reports": [{"ID": "t1", "State": "running", "Bogus": ""}]},
    ):
        await api.fails(400, "POST", "/tasks/status", bad)
    assert b.store.applied_index == applied  # a bad request changes nothing


# -- secrets ---------------------------------------------------------------------

PLAINTEXT = b"correct horse battery staple"


async def test_secret_lifecycle_never_shows_the_data(api: Api, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    spec = {"Name": "db-pass", "Labels": {"app": "db"}, "Data": b64(PLAINTEXT)}
    sid = (await api.ok("POST", "/secrets/create", spec))["ID"]
    got = await api.ok("GET", "/secrets/db-pass")
    assert got["ID"] == sid and "Data" not in got["Spec"]
    assert got["Spec"]["Labels"] == {"app": "db"}
    listed = await api.ok("GET", "/secrets")
    assert [s["ID"] for s in listed] == [sid]
    assert await api.ok("GET", "/secrets", params={"filters": '{"name": ["nope"]}'}) == []
    assert len(await api.ok("GET", "/secrets", params={"filters": '{"label": ["app"]}'})) == 1

    # A second create with the same data but a taken name, and one with a bad label.
    assert "already exists" in await api.fails(409, "POST", "/secrets/create", spec)
    await api.fails(400, "POST", "/secrets/create", {**spec, "Name": "x", "Labels": {"a": 1}})

    version = got["Version"]["Index"]
    updated = await api.ok(
        "POST",
        f"/secrets/{sid[:5]}/update",
        {"Labels": {"app": "db2"}},
        params={"version": version},
    )
    assert updated["Spec"] == {"Name": "db-pass", "Labels": {"app": "db2"}}
    assert "out of sequence" in await api.fails(
        409, "POST", "/secrets/db-pass/update", {"Labels": {}}, params={"version": version}
    )
    assert "only updates to Labels" in await api.fails(
        400,
        "POST",
        "/secrets/db-pass/update",
        {"Data": b64(PLAINTEXT + b"!")},
        params={"version": updated["Version"]["Index"]},
    )
    await api.ok("GET", "/info")
    await api.ok("GET", "/raft/status")
    assert await api.ok("DELETE", "/secrets/db-pass") == {"ID": sid}
    await api.fails(404, "GET", f"/secrets/{sid}")

    assert "POST /secrets/create -> 201" in caplog.text  # the log was captured
    # Not one byte of any response, command or log line holds the secret.
    forms = (PLAINTEXT, b64(PLAINTEXT).encode(), b64(PLAINTEXT + b"!").encode())
    for blob in [*api.seen, *api.backend.commands, caplog.text.encode()]:
        for form in forms:
            assert form not in blob
    # ... and the sealed data really is the secret (so the test above means something).
    from cluster.security import crypto

    sealed_cmd = next(cmd for cmd in api.backend.commands if c.decode(cmd)[0] == "secret.create")
    sealed = c.decode(sealed_cmd)[1]["sealed"]
    assert crypto.decrypt_secret(api.backend.dek, sid, sealed) == PLAINTEXT


async def test_secret_create_validation(api: Api) -> None:
    big = b64(b"x" * (500 * 1024))
    assert "less than 512000 bytes" in await api.fails(
        400, "POST", "/secrets/create", {"Name": "big", "Data": big}
    )
    assert "larger than 0" in await api.fails(400, "POST", "/secrets/create", {"Name": "empty"})
    assert "base64" in await api.fails(
        400, "POST", "/secrets/create", {"Name": "s", "Data": "%%%not base64"}
    )
    assert "'Driver'" in await api.fails(
        400, "POST", "/secrets/create", {"Name": "s", "Data": b64(b"x"), "Driver": {}}
    )
    assert "Spec.Data" in await api.fails(400, "POST", "/secrets/create", {"Name": "s", "Data": 1})
    assert "invalid name" in await api.fails(
        400, "POST", "/secrets/create", {"Name": "-bad", "Data": b64(b"x")}
    )


async def test_secret_in_use_cannot_be_removed(api: Api) -> None:
    sid = (await api.ok("POST", "/secrets/create", {"Name": "pw", "Data": b64(b"s3")}))["ID"]
    spec = svc("web")
    spec["TaskTemplate"]["ContainerSpec"]["Secrets"] = [{"SecretID": sid, "SecretName": "pw"}]
    await api.ok("POST", "/services/create", spec)
    assert "in use" in await api.fails(400, "DELETE", "/secrets/pw")


# -- configs ---------------------------------------------------------------------


async def test_config_lifecycle_returns_the_data(api: Api) -> None:
    data = b"server { listen 80; }"
    cid = (await api.ok("POST", "/configs/create", {"Name": "nginx.conf", "Data": b64(data)}))["ID"]
    got = await api.ok("GET", "/configs/nginx.conf")
    assert got["ID"] == cid
    assert base64.b64decode(got["Spec"]["Data"]) == data
    listed = await api.ok("GET", "/configs", params={"filters": '{"name": ["nginx"]}'})
    assert [x["Spec"]["Data"] for x in listed] == [b64(data)]

    v = {"version": str(got["Version"]["Index"])}
    same = {"Labels": {"v": "1"}, "Data": b64(data)}
    updated = await api.ok("POST", f"/configs/{cid}/update", same, params=v)
    assert updated["Spec"]["Labels"] == {"v": "1"}
    assert base64.b64decode(updated["Spec"]["Data"]) == data
    v = {"version": str(updated["Version"]["Index"])}
    assert "only updates to Labels" in await api.fails(
        400, "POST", f"/configs/{cid}/update", {"Data": b64(b"other")}, params=v
    )
    assert "only updates to Labels" in await api.fails(
        400, "POST", f"/configs/{cid}/update", {"Name": "renamed"}, params=v
    )
    assert "already exists" in await api.fails(
        409, "POST", "/configs/create", {"Name": "nginx.conf", "Data": b64(b"x")}
    )
    assert await api.ok("DELETE", "/configs/nginx.conf") == {"ID": cid}
    await api.fails(404, "DELETE", "/configs/nginx.conf")


# -- raft ------------------------------------------------------------------------


async def test_raft_status_and_transfer(api: Api) -> None:
    status = await api.ok("GET", "/raft/status")
    assert status["name"] == "manager1" and status["role"] == "leader"
    assert status["commit_index"] == api.backend.store.applied_index
    assert await api.ok("POST", "/raft/transfer-leadership", {"target": "manager3"}) == {
        "from": "manager1",
        "target": "manager3",
    }
    assert (await api.ok("POST", "/raft/transfer-leadership"))["target"] == "manager2"
    assert (await api.ok("POST", "/raft/transfer-leadership", {"target": None}))["target"]
    assert api.backend.transfers == ["manager3", None, None]
    await api.fails(404, "POST", "/raft/transfer-leadership", {"target": "manager9"})
    assert "'Target'" in await api.fails(
        400, "POST", "/raft/transfer-leadership", {"Target": "manager2"}
    )
    assert "string" in await api.fails(400, "POST", "/raft/transfer-leadership", {"target": 2})


# -- no quorum, slowness -----------------------------------------------------------


async def test_no_quorum_is_a_fast_503_and_local_reads_still_work(api: Api) -> None:
    await api.ok("POST", "/services/create", svc("web"))
    api.backend.mode = "no-quorum"
    started = time.monotonic()
    msg = await api.fails(503, "POST", "/services/create", svc("db"))
    assert "quorum" in msg
    assert "quorum" in await api.fails(503, "GET", "/services")
    assert "quorum" in await api.fails(503, "GET", "/nodes/manager1")
    await api.fails(503, "POST", "/raft/transfer-leadership")
    assert time.monotonic() - started < 1.0
    local = await api.ok("GET", "/services", params={"consistency": "local"})
    assert [s["Spec"]["Name"] for s in local] == ["web"]
    header = {"X-Swarmraft-Consistency": "local"}
    assert (await api.ok("GET", "/nodes/manager2", headers=header))["ID"] == NODE_IDS["manager2"]
    assert (await api.ok("GET", "/info"))["Swarm"]["RaftStatus"]["leader"] is None
    assert (await api.ok("GET", "/raft/status"))["role"] == "follower"


async def test_a_hanging_backend_still_answers_503_in_bounded_time(api: Api) -> None:
    api.backend.mode = "slow"  # request_timeout 0.3s
    for method, path, body in (
        ("POST", "/services/create", svc("web")),
        ("GET", "/services", None),
        ("POST", "/raft/transfer-leadership", None),
    ):
        started = time.monotonic()
        msg = await api.fails(503, method, path, body)
        assert "timed out" in msg
        assert time.monotonic() - started < 1.5
    assert "may still be committed" in await api.fails(503, "DELETE", "/nodes/worker1")


async def test_write_lookup_catches_up_with_a_barrier_before_404(api: Api) -> None:
    """A name this lagging replica does not know yet is looked up again after a barrier."""
    api.backend.lagging.append(c.create_service(svc("late"), "late1", NOW))
    assert await api.ok("DELETE", "/services/late") == {"ID": "late1"}
    # Without a quorum that barrier cannot pass: 503, not a misleading 404.
    api.backend.mode = "no-quorum"
    await api.fails(503, "DELETE", "/services/not-yet-here")


async def test_reads_catch_up_before_answering(api: Api) -> None:
    api.backend.lagging.append(c.create_service(svc("fresh"), "fresh1", NOW))
    assert (await api.ok("GET", "/services/fresh"))["ID"] == "fresh1"
    api.backend.lagging.append(c.create_service(svc("later"), "later1", NOW))
    await api.fails(404, "GET", "/services/later", params={"consistency": "local"})


# -- forwarding ------------------------------------------------------------------


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Api, Api]]:
    """A leader and a follower sharing one replica; the follower points at the leader."""
    leader = bootstrap(FakeBackend("manager1"))
    follower = FakeBackend("manager2", leader.store, mode="follower", dek=leader.dek)
    async for lead in serve(leader):
        server = lead.client.server
        follower.leader_url = f"http://{server.host}:{server.port}"
        async for fol in serve(follower):
            yield lead, fol


async def test_follower_forwards_writes_to_the_leader(pair: tuple[Api, Api]) -> None:
    lead, fol = pair
    status, doc, headers = await fol.call(
        "POST", "/services/create", svc("web"), headers={"X-Request-ID": "fwd-1"}
    )
    assert status == 201
    assert headers[SERVED_BY_HEADER] == "manager1"
    assert lead.backend.request_ids == ["fwd-1"]
    assert fol.backend.commands == []
    got = await lead.ok("GET", f"/services/{doc['ID']}")
    assert got["Spec"]["Name"] == "web"

    # Errors come back from the leader unchanged, query string included.
    v = {"version": "1"}
    assert "out of sequence" in await fol.fails(
        409, "POST", "/services/web/update", svc("web", 3), params=v
    )
    secret = {"Name": "pw", "Data": b64(PLAINTEXT)}
    assert (await fol.ok("POST", "/secrets/create", secret))["ID"]
    assert (await fol.ok("POST", "/raft/transfer-leadership", {"target": "manager3"}))[
        "from"
    ] == "manager1"
    # Reads are served by the follower itself.
    _, _, headers = await fol.call("GET", "/services")
    assert headers[SERVED_BY_HEADER] == "manager2"
    for blob in [*fol.seen, *lead.seen, *lead.backend.commands]:
        assert PLAINTEXT not in blob and b64(PLAINTEXT).encode() not in blob


async def test_follower_that_cannot_serve_reads_forwards_them(pair: tuple[Api, Api]) -> None:
    _, fol = pair
    fol.backend.reads_need_leader = True
    _, nodes, headers = await fol.call("GET", "/nodes", params={"filters": '{"role": ["worker"]}'})
    assert headers[SERVED_BY_HEADER] == "manager1"
    assert [n["Description"]["Hostname"] for n in nodes] == ["worker1"]
    _, _, headers = await fol.call("GET", "/nodes", params={"consistency": "local"})
    assert headers[SERVED_BY_HEADER] == "manager2"


async def test_forwarded_request_is_never_forwarded_again(pair: tuple[Api, Api]) -> None:
    _, fol = pair
    msg = await fol.fails(
        503, "POST", "/services/create", svc("web"), headers={FORWARDED_HEADER: "manager3"}
    )
    assert "not the leader either" in msg and "manager3" in msg


async def test_follower_without_a_leader_answers_503(pair: tuple[Api, Api]) -> None:
    _, fol = pair
    fol.backend.leader_name = fol.backend.leader_url = None
    assert "no leader" in await fol.fails(503, "POST", "/services/create", svc("web"))


async def test_unreachable_leader_is_a_503(pair: tuple[Api, Api]) -> None:
    _, fol = pair
    runner = await run_api(FakeBackend("ghost"), "127.0.0.1", 0)
    port = bound_port(runner)
    await runner.cleanup()
    fol.backend.leader_url = f"http://127.0.0.1:{port}"
    msg = await fol.fails(503, "POST", "/services/create", svc("web"))
    assert "could not be reached" in msg and "manager1" in msg


# -- run_api -----------------------------------------------------------------------


async def test_run_api_serves_on_a_real_port_and_stops() -> None:
    import aiohttp

    runner = await run_api(bootstrap(FakeBackend()), "127.0.0.1", 0)
    try:
        port = bound_port(runner)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/nodes/leader") as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["Description"]["Hostname"] == "manager1"
    finally:
        await runner.cleanup()


def test_make_app_returns_an_application() -> None:
    assert isinstance(make_app(FakeBackend()), web.Application)


async def test_a_bug_is_a_500_with_dockers_error_shape(api: Api, monkeypatch: Any) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(api.backend, "info", broken)
    assert "internal error" in await api.fails(500, "GET", "/info")
