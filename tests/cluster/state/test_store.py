"""The Swarm state machine: rules, compare-and-set, snapshots, determinism.

Every test drives a `Store` the way Raft does: committed command bytes in log
order, through `apply` only.  `Feed` numbers the entries.
"""

from __future__ import annotations

import base64
import copy
import random

import msgpack
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from cluster.security import crypto
from cluster.state import commands as c
from cluster.state import objects as o
from cluster.state.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    SnapshotError,
    Unimplemented,
    VersionConflict,
)
from cluster.state.store import Result, Store, _canonical

NOW = "2024-05-01T12:00:00Z"
LATER = "2024-05-01T12:00:05.5Z"


class Feed:
    """A store and the next log index: ``feed(cmd)`` applies at index+1."""

    def __init__(self, store: Store | None = None) -> None:
        self.store = store or Store()
        self.log: list[bytes] = []

    def __call__(self, command: bytes) -> Result:
        self.log.append(command)
        return self.store.apply(self.store.applied_index + 1, command)

    def ok(self, command: bytes) -> dict:
        result = self(command)
        assert result.ok, result.error
        return result.value


def svc_spec(name: str = "web", replicas: int = 2, **container: object) -> dict:
    return {
        "Name": name,
        "Mode": {"Replicated": {"Replicas": replicas}},
        "TaskTemplate": {"ContainerSpec": {"Image": "nginx:alpine", **container}},
    }


def state(store: Store) -> dict:
    """Everything a reader can see, for "nothing changed" comparisons."""
    return {kind: store.list(kind) for kind in o.KINDS}


@pytest.fixture
def feed() -> Feed:
    return Feed()


@pytest.fixture
def dek() -> crypto.DataKey:
    return crypto.generate_dek()


def make_cluster(feed: Feed, dek: crypto.DataKey) -> None:
    """The commands `swarm init` proposes: cluster, wrapped DEK, the first manager."""
    rng = random.Random(7)
    kek = crypto.generate_kek()
    feed.ok(c.init_cluster(c.new_id(rng), NOW, c.new_join_token(rng), c.new_join_token(rng)))
    feed.ok(c.put_data_key(crypto.wrap_dek(dek, kek), NOW))
    feed.ok(c.create_node("m1", NOW, "manager1", role="manager", manager_addr="127.0.0.1:4001"))


# -- basics ------------------------------------------------------------------


def test_version_index_is_the_raft_index_of_the_last_change(feed: Feed) -> None:
    feed(b"")  # a leader's no-op entry
    svc = feed.ok(c.create_service(svc_spec(), "s" * 25, NOW))
    assert svc["Version"] == {"Index": 2}
    assert svc["CreatedAt"] == svc["UpdatedAt"] == NOW
    updated = feed.ok(c.update_service(svc["ID"], 2, svc_spec(replicas=5), LATER))
    assert updated["Version"] == {"Index": 3}
    assert updated["UpdatedAt"] == LATER and updated["CreatedAt"] == NOW
    assert updated["PreviousSpec"]["Mode"]["Replicated"]["Replicas"] == 2
    assert o.replicas(feed.store.get(o.SERVICE, svc["ID"])["Spec"]) == 5


def test_stale_version_is_refused_and_changes_nothing(feed: Feed) -> None:
    """Compare-and-set: two clients read version 1; the second writer loses (409)."""
    svc = feed.ok(c.create_service(svc_spec(), "a1", NOW))
    feed.ok(c.update_service("a1", svc["Version"]["Index"], svc_spec(replicas=3), NOW))
    before = state(feed.store)
    result = feed(c.update_service("a1", svc["Version"]["Index"], svc_spec(replicas=9), NOW))
    assert isinstance(result.error, VersionConflict)
    assert result.error.http_status == 409
    assert "update out of sequence" in str(result.error)
    assert state(feed.store) == before
    with pytest.raises(VersionConflict):
        result.unwrap()


def test_cas_on_nodes_secrets_and_configs(feed: Feed, dek: crypto.DataKey) -> None:
    make_cluster(feed, dek)
    node = feed.store.lookup(o.NODE, "manager1")
    spec = {**node["Spec"], "Availability": "drain"}
    stale = node["Version"]["Index"] - 1
    assert isinstance(feed(c.update_node("m1", stale, spec, NOW)).error, VersionConflict)
    drained = feed.ok(c.update_node("m1", node["Version"]["Index"], spec, NOW))
    assert drained["Spec"]["Availability"] == "drain"

    feed.ok(c.create_config({"Name": "cfg"}, b"x=1", "c1", NOW))
    feed.ok(c.create_secret({"Name": "pw"}, b"hunter2", "k1", NOW, dek))
    for update in (c.update_config, c.update_secret):
        obj_id = "c1" if update is c.update_config else "k1"
        result = feed(update(obj_id, 1, {"Name": "cfg" if obj_id == "c1" else "pw"}, NOW))
        assert isinstance(result.error, VersionConflict)


def test_lookup_by_id_name_and_prefix(feed: Feed) -> None:
    feed.ok(c.create_service(svc_spec("web"), "abc111", NOW))
    feed.ok(c.create_service(svc_spec("db"), "abc222", NOW))
    assert feed.store.lookup(o.SERVICE, "abc111")["Spec"]["Name"] == "web"
    assert feed.store.lookup(o.SERVICE, "db")["ID"] == "abc222"
    assert feed.store.lookup(o.SERVICE, "abc2")["ID"] == "abc222"
    with pytest.raises(InvalidArgument, match="ambiguous"):
        feed.store.lookup(o.SERVICE, "abc")
    with pytest.raises(NotFound, match="service nope not found"):
        feed.store.lookup(o.SERVICE, "nope")
    with pytest.raises(NotFound):
        feed.store.get(o.SERVICE, "abc")


def test_reads_cannot_change_the_state(feed: Feed) -> None:
    """Reads hand out the stored objects themselves, frozen: an edit fails loudly."""
    feed.ok(c.create_service(svc_spec(), "s1", NOW))
    with pytest.raises(TypeError):
        feed.store.get(o.SERVICE, "s1")["Spec"]["Name"] = "mutated"
    with pytest.raises(TypeError):
        feed.store.list(o.SERVICE)[0]["Version"]["Index"] = 99
    with pytest.raises(TypeError):
        feed.store.lookup(o.SERVICE, "web")["Spec"]["EndpointSpec"]["Ports"].append({})
    editable = copy.deepcopy(feed.store.get(o.SERVICE, "s1"))
    editable["Spec"]["Name"] = "mutated"
    assert feed.store.get(o.SERVICE, "s1")["Spec"]["Name"] == "web"
    assert feed.store.get(o.SERVICE, "s1")["Version"]["Index"] == 1


# -- names, references, in-use ------------------------------------------------


def test_names_are_unique_per_kind_with_dockers_wording(feed: Feed, dek: crypto.DataKey) -> None:
    feed.ok(c.create_service(svc_spec("web"), "s1", NOW))
    feed.ok(c.create_secret({"Name": "foo"}, b"a", "k1", NOW, dek))
    feed.ok(c.create_config({"Name": "foo"}, b"a", "c1", NOW))  # another kind: fine

    dup_svc = feed(c.create_service(svc_spec("web"), "s2", NOW)).error
    dup_secret = feed(c.create_secret({"Name": "foo"}, b"b", "k2", NOW, dek)).error
    dup_config = feed(c.create_config({"Name": "foo"}, b"b", "c2", NOW)).error
    assert isinstance(dup_svc, AlreadyExists) and dup_svc.http_status == 409
    assert str(dup_svc) == (
        "rpc error: code = AlreadyExists desc = "
        "name conflicts with an existing object: service web already exists"
    )
    assert str(dup_secret) == "rpc error: code = AlreadyExists desc = secret foo already exists"
    assert str(dup_config) == "rpc error: code = AlreadyExists desc = config foo already exists"
    assert feed.store.count(o.SECRET) == 1 and feed.store.count(o.CONFIG) == 1


def test_invalid_names_are_refused(feed: Feed, dek: crypto.DataKey) -> None:
    with pytest.raises(InvalidArgument, match="only 64"):
        c.create_secret({"Name": "-bad"}, b"x", "k1", NOW, dek)
    bad = c.encode("config.create", id="c1", at=NOW, spec={"Name": "a b", "Data": b"x"})
    assert isinstance(feed(bad).error, InvalidArgument)
    bad_svc = c.encode("service.create", id="s1", at=NOW, spec=svc_spec("web_1"))
    assert "DNS name" in str(feed(bad_svc).error)
    assert feed.store.count(o.CONFIG) == feed.store.count(o.SERVICE) == 0


def test_secret_in_use_cannot_be_removed(feed: Feed, dek: crypto.DataKey) -> None:
    feed.ok(c.create_secret({"Name": "x"}, b"pw", "k1", NOW, dek))
    ref = [{"SecretID": "k1", "SecretName": "x"}]
    feed.ok(c.create_service(svc_spec("y", Secrets=ref), "s1", NOW))
    err = feed(c.remove_secret("k1")).error
    assert str(err) == (
        "rpc error: code = InvalidArgument desc = secret 'x' is in use by the following service: y"
    )
    feed.ok(c.create_service(svc_spec("a", Secrets=ref), "s2", NOW))
    err = feed(c.remove_secret("k1")).error
    assert err.desc == "secret 'x' is in use by the following services: a, y"
    assert [s["ID"] for s in feed.store.services_using(o.SECRET, "k1")] == ["s1", "s2"]

    feed.ok(c.remove_service("s1"))
    feed.ok(c.remove_service("s2"))
    assert feed.ok(c.remove_secret("k1")) == {"ID": "k1"}
    with pytest.raises(NotFound):
        feed.store.sealed_secret("k1")


def test_config_in_use_cannot_be_removed(feed: Feed) -> None:
    feed.ok(c.create_config({"Name": "nginx.conf"}, b"worker_processes 1;", "c1", NOW))
    ref = [{"ConfigID": "c1", "ConfigName": "nginx.conf"}]
    feed.ok(c.create_service(svc_spec("web", Configs=ref), "s1", NOW))
    err = feed(c.remove_config("c1")).error
    assert err.desc == "config 'nginx.conf' is in use by the following service: web"


def test_service_must_reference_existing_secrets(feed: Feed) -> None:
    ref = [{"SecretID": "nope", "SecretName": "missing"}]
    err = feed(c.create_service(svc_spec(Secrets=ref), "s1", NOW)).error
    assert err.desc == "secret not found: missing"
    assert feed.store.count(o.SERVICE) == 0


def test_not_found_errors(feed: Feed) -> None:
    for command in (
        c.remove_service("zz"),
        c.remove_secret("zz"),
        c.remove_config("zz"),
        c.update_service("zz", 1, svc_spec(), NOW),
        c.update_task("zz", NOW, state="running"),
    ):
        err = feed(command).error
        assert isinstance(err, NotFound) and err.http_status == 404
        assert err.desc.endswith("zz not found")


# -- secrets and configs: size limits, immutability ----------------------------


def test_config_size_limit_is_dockers_500_kib(feed: Feed) -> None:
    limit = 500 * 1024
    feed.ok(c.create_config({"Name": "big"}, b"x" * (limit - 1), "c1", NOW))
    too_big = c.encode("config.create", id="c2", at=NOW, spec={"Name": "b2", "Data": b"x" * limit})
    err = feed(too_big).error
    assert err.desc == "config data must be larger than 0 and less than 512000 bytes"
    empty = c.encode("config.create", id="c3", at=NOW, spec={"Name": "b3", "Data": b""})
    assert isinstance(feed(empty).error, InvalidArgument)
    with pytest.raises(InvalidArgument):
        c.create_config({"Name": "b4"}, b"x" * limit, "c4", NOW)
    assert feed.store.count(o.CONFIG) == 1


def test_secret_size_limit_is_checked_through_the_ciphertext(
    feed: Feed, dek: crypto.DataKey
) -> None:
    """The store never sees plaintext, yet GCM's length tells it the exact size."""
    limit = 500 * 1024
    with pytest.raises(InvalidArgument, match="less than 512000 bytes"):
        c.create_secret({"Name": "big"}, b"x" * limit, "k1", NOW, dek)
    # A proposer that skipped the check: the store still refuses the entry.
    sealed = crypto.encrypt_secret(dek, "k1", b"x" * limit)
    cmd = c.encode("secret.create", id="k1", at=NOW, spec={"Name": "big"}, sealed=sealed)
    assert "less than 512000 bytes" in str(feed(cmd).error)
    feed.ok(c.create_secret({"Name": "ok"}, b"x" * (limit - 1), "k2", NOW, dek))
    assert [s["Spec"]["Name"] for s in feed.store.list(o.SECRET)] == ["ok"]


def test_secrets_change_only_their_labels(feed: Feed, dek: crypto.DataKey) -> None:
    feed.ok(c.create_secret({"Name": "pw", "Labels": {"a": "1"}}, b"s3cret", "k1", NOW, dek))
    sealed = feed.store.sealed_secret("k1")
    relabeled = feed.ok(c.update_secret("k1", 1, {"Name": "pw", "Labels": {"b": "2"}}, LATER))
    assert relabeled["Spec"]["Labels"] == {"b": "2"} and relabeled["Version"]["Index"] == 2

    rename = feed(c.update_secret("k1", 2, {"Name": "pw2"}, NOW)).error
    assert str(rename) == (
        "rpc error: code = InvalidArgument desc = only updates to Labels are allowed"
    )
    new_data = c.encode(
        "secret.update", id="k1", version=2, at=NOW, spec={"Name": "pw", "Data": b"x"}
    )
    assert feed(new_data).error.desc == "only updates to Labels are allowed"
    assert feed.store.sealed_secret("k1") == sealed
    assert feed.store.get(o.SECRET, "k1")["Version"]["Index"] == 2


def test_configs_change_only_their_labels(feed: Feed) -> None:
    feed.ok(c.create_config({"Name": "app"}, b"debug=0", "c1", NOW))
    same = {"Name": "app", "Labels": {"env": "prod"}, "Data": b"debug=0"}
    assert feed.ok(c.update_config("c1", 1, same, NOW))["Spec"]["Labels"] == {"env": "prod"}
    changed = {"Name": "app", "Data": b"debug=1"}
    assert feed(c.update_config("c1", 2, changed, NOW)).error.desc == (
        "only updates to Labels are allowed"
    )
    assert feed.store.get(o.CONFIG, "c1")["Spec"]["Data"] == b"debug=0"


def test_secret_objects_hold_no_data_and_configs_render_base64(
    feed: Feed, dek: crypto.DataKey
) -> None:
    feed.ok(c.create_secret({"Name": "pw"}, b"s3cret", "k1", NOW, dek))
    feed.ok(c.create_config({"Name": "cfg"}, b"plain text", "c1", NOW))
    secret = feed.store.get(o.SECRET, "k1")
    assert set(secret) == {"ID", "Version", "CreatedAt", "UpdatedAt", "Spec"}
    assert secret["Spec"] == {"Name": "pw", "Labels": {}}
    rendered = o.render(feed.store.get(o.CONFIG, "c1"))
    assert rendered["Spec"]["Data"] == base64.b64encode(b"plain text").decode()
    sealed = feed.store.sealed_secret("k1")
    assert crypto.decrypt_secret(dek, "k1", sealed) == b"s3cret"


# -- nodes, tasks, ports ---------------------------------------------------------


def test_node_rules(feed: Feed, dek: crypto.DataKey) -> None:
    make_cluster(feed, dek)
    node = feed.store.get(o.NODE, "m1")
    assert node["Description"]["Hostname"] == "manager1"
    assert node["ManagerStatus"] == {
        "Leader": False,
        "Reachability": "reachable",
        "Addr": "127.0.0.1:4001",
    }
    demote = {**node["Spec"], "Role": "worker"}
    err = feed(c.update_node("m1", node["Version"]["Index"], demote, NOW)).error
    assert err.desc == "attempting to demote the last manager of the swarm"
    assert "must be demoted" in feed(c.remove_node("m1")).error.desc

    feed.ok(c.create_node("w1", NOW, "worker1"))
    assert feed(c.remove_node("w1")).error.desc == "node w1 is not down and can't be removed"
    leader = {"Leader": True, "Reachability": "reachable", "Addr": "127.0.0.1:4001"}
    feed.ok(c.set_node_status("m1", NOW, manager=leader))
    assert feed.store.get(o.NODE, "m1")["ManagerStatus"]["Leader"] is True
    feed.ok(c.set_node_status("w1", LATER, state="down"))
    feed.ok(c.remove_node("w1"))
    assert feed.store.count(o.NODE) == 1
    version = feed.store.get(o.NODE, "m1")["Version"]["Index"]
    sleepy = {"Role": "manager", "Availability": "sleepy"}
    bad = c.encode("node.update", id="m1", version=version, spec=sleepy, at=NOW)
    assert feed(bad).error.desc == "invalid availability 'sleepy'"


def test_update_node_builder_refuses_bad_availability() -> None:
    with pytest.raises(InvalidArgument, match="invalid availability"):
        c.update_node("m1", 1, {"Role": "manager", "Availability": "sleepy"}, NOW)


def test_task_lifecycle_only_moves_forward(feed: Feed, dek: crypto.DataKey) -> None:
    make_cluster(feed, dek)
    feed.ok(c.create_service(svc_spec(), "s1", NOW))
    task = feed.ok(c.create_task("t1", NOW, "s1", slot=1))
    assert task["Status"]["State"] == "new" and task["DesiredState"] == "running"
    assert task["Spec"]["ContainerSpec"]["Image"] == "nginx:alpine"
    assert o.task_name(feed.store.get(o.SERVICE, "s1"), task) == "web.1"

    feed.ok(c.update_task("t1", NOW, state="pending"))
    feed.ok(c.update_task("t1", NOW, node_id="m1", state="assigned"))
    feed.ok(c.update_task("t1", LATER, state="running", message="started"))
    back = feed(c.update_task("t1", NOW, state="pending")).error
    assert isinstance(back, FailedPrecondition)
    feed.ok(c.update_task("t1", LATER, state="failed", err="exit code 1"))
    done = feed.store.get(o.TASK, "t1")
    assert done["Status"] == {
        "Timestamp": LATER,
        "State": "failed",
        "Message": "",
        "Err": "exit code 1",
    }
    assert feed.store.tasks(service_id="s1", node_id="m1") == [done]
    assert isinstance(feed(c.create_task("t2", NOW, "s1")).error, InvalidArgument)  # no slot
    assert isinstance(feed(c.create_task("t3", NOW, "nope", slot=1)).error, NotFound)
    again = feed(c.update_task("t1", NOW, node_id="other")).error
    assert isinstance(again, FailedPrecondition)


def test_batch_is_all_or_nothing(feed: Feed) -> None:
    feed.ok(c.create_service(svc_spec(), "s1", NOW))
    before = state(feed.store)
    bad = c.batch(
        c.create_task("t1", NOW, "s1", slot=1),
        c.create_task("t2", NOW, "s1", slot=2),
        c.create_task("t1", NOW, "s1", slot=3),  # duplicate ID: the whole batch fails
    )
    assert isinstance(feed(bad).error, AlreadyExists)
    assert state(feed.store) == before
    good = c.batch(*(c.create_task(f"t{i}", NOW, "s1", slot=i) for i in (1, 2)))
    values = feed.ok(good)
    assert [t["ID"] for t in values] == ["t1", "t2"]
    assert {t["Version"]["Index"] for t in feed.store.tasks()} == {feed.store.applied_index}


def test_ingress_ports_conflict_and_dynamic_ports_are_deterministic(feed: Feed) -> None:
    ports = {"Ports": [{"TargetPort": 80, "PublishedPort": 8080}]}
    feed.ok(c.create_service({**svc_spec("web"), "EndpointSpec": ports}, "s1", NOW))
    err = feed(c.create_service({**svc_spec("api"), "EndpointSpec": ports}, "s2", NOW)).error
    assert err.desc == "port '8080' is already in use by service 'web' (s1) as an ingress port"
    dyn = {"Ports": [{"TargetPort": 80}, {"TargetPort": 443}]}
    svc = feed.ok(c.create_service({**svc_spec("api"), "EndpointSpec": dyn}, "s2", NOW))
    assert [p["PublishedPort"] for p in svc["Endpoint"]["Ports"]] == [30000, 30001]
    again = feed.ok(
        c.update_service(
            "s2", svc["Version"]["Index"], {**svc_spec("api", 4), "EndpointSpec": dyn}, NOW
        )
    )
    assert [p["PublishedPort"] for p in again["Endpoint"]["Ports"]] == [30000, 30001]


def test_service_rename_and_mode_change_are_refused(feed: Feed) -> None:
    svc = feed.ok(c.create_service(svc_spec("web"), "s1", NOW))
    err = feed(c.update_service("s1", 1, svc_spec("web2"), NOW)).error
    assert isinstance(err, Unimplemented)
    glob = {**svc_spec("web"), "Mode": {"Global": {}}}
    assert isinstance(feed(c.update_service("s1", 1, glob, NOW)).error, Unimplemented)
    assert feed.store.get(o.SERVICE, "s1") == svc


# -- bad commands: an error result, never an exception, never a change ----------


GARBAGE = [
    b"\x00\x01garbage",
    b"\xc1",
    msgpack.packb([1, 2, 3]),
    msgpack.packb({"op": 5}),
    msgpack.packb({"op": "service.create", "args": []}),
    msgpack.packb({"op": "no.such.op", "args": {}}),
    msgpack.packb({"op": "service.create", "args": {"id": "x"}}),
    msgpack.packb({"op": "service.create", "args": {"id": 1, "at": NOW, "spec": svc_spec()}}),
    msgpack.packb({"op": "service.remove", "args": {"id": True}}),
    msgpack.packb({"op": "service.create", "args": {"id": "x", "at": NOW, "spec": {"Name": 1}}}),
    msgpack.packb({"op": "batch", "args": {"commands": [{"op": "batch", "args": {}}]}}),
    msgpack.packb({"op": "task.update", "args": {"id": "t", "at": NOW}}),
    msgpack.packb(msgpack.ExtType(5, b"xx")),
    msgpack.packb({"op": "config.create", "args": {"id": "c", "at": NOW, "spec": None}}),
]


@pytest.mark.parametrize("command", GARBAGE)
def test_garbage_gives_an_error_result_and_changes_nothing(
    feed: Feed, dek: crypto.DataKey, command: bytes
) -> None:
    make_cluster(feed, dek)
    feed.ok(c.create_service(svc_spec(), "s1", NOW))
    before = state(feed.store)
    result = feed(command)
    assert not result.ok and isinstance(result.error, InvalidArgument | NotFound)
    assert state(feed.store) == before
    assert feed.store.applied_index == result.index  # the entry is consumed all the same


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_apply_never_raises_on_random_bytes(data: bytes) -> None:
    feed = Feed()
    feed.ok(c.create_service(svc_spec(), "s1", NOW))
    before = state(feed.store)
    feed(data)
    assert state(feed.store) == before


# Real commands, from the builders the managers use, over a few ids and
# names, so that they hit one another: a create then an update at a right
# or wrong version, a task for a service that exists or was removed, a
# secret a service uses, a name taken twice.  Random bytes (above) almost
# never decode as a command, so they only test the decoder.
SERVICES = st.sampled_from(["s1", "s2"])
TASKS = st.sampled_from(["t1", "t2"])
SECRETS = st.sampled_from(["x1", "x2"])
CONFIGS = st.sampled_from(["g1", "g2"])
NAMES = st.sampled_from(["web", "db", "pw", "app"])
VERSIONS = st.integers(3, 20)  # a version is the Raft index of the last change
TIMES = st.sampled_from([NOW, LATER])
LABELS = st.dictionaries(st.sampled_from(["a", "b"]), st.sampled_from(["1", "2"]), max_size=2)
PROPERTY_DEK = crypto.generate_dek()


def _spec(name: str, replicas: int, secret: str | None) -> dict:
    spec = svc_spec(name, replicas)
    if secret is not None:
        spec["TaskTemplate"]["ContainerSpec"]["Secrets"] = [
            {"SecretID": secret, "SecretName": "pw"}
        ]
    return spec


SERVICE_SPECS = st.builds(_spec, NAMES, st.integers(0, 3), st.none() | SECRETS)
COMMANDS = st.one_of(
    st.builds(c.create_service, SERVICE_SPECS, SERVICES, TIMES),
    st.builds(c.update_service, SERVICES, VERSIONS, SERVICE_SPECS, TIMES),
    st.builds(c.remove_service, SERVICES),
    st.builds(c.create_task, TASKS, TIMES, SERVICES, slot=st.integers(1, 3)),
    st.builds(
        c.update_task,
        TASKS,
        TIMES,
        state=st.none() | st.sampled_from(o.TASK_STATES),
        desired_state=st.none() | st.sampled_from(["running", "shutdown"]),
        node_id=st.none() | st.just("m1"),
    ),
    st.builds(c.remove_task, TASKS),
    st.builds(
        lambda name, data, id, at: c.create_secret({"Name": name}, data, id, at, PROPERTY_DEK),
        NAMES,
        st.binary(min_size=1, max_size=8),
        SECRETS,
        TIMES,
    ),
    st.builds(
        lambda id, v, name, labels: c.update_secret(id, v, {"Name": name, "Labels": labels}, NOW),
        SECRETS,
        VERSIONS,
        NAMES,
        LABELS,
    ),
    st.builds(c.remove_secret, SECRETS),
    st.builds(
        lambda name, data, id: c.create_config({"Name": name}, data, id, NOW),
        NAMES,
        st.binary(min_size=1, max_size=8),
        CONFIGS,
    ),
    st.builds(c.remove_config, CONFIGS),
    st.builds(
        lambda id, v, avail: c.update_node(id, v, {"Role": "worker", "Availability": avail}, NOW),
        st.sampled_from(["m1", "w1"]),
        VERSIONS,
        st.sampled_from(o.NODE_AVAILABILITY),
    ),
    st.builds(lambda id: c.create_node(id, NOW, id), st.sampled_from(["w1", "w2"])),
    st.builds(c.remove_node, st.sampled_from(["m1", "w1", "w2"]), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(COMMANDS, min_size=1, max_size=12))
def test_real_commands_apply_all_or_nothing_and_deterministically(commands: list[bytes]) -> None:
    feed = Feed()  # fresh per example: Hypothesis can replay and shrink
    make_cluster(feed, PROPERTY_DEK)
    # One of each object, so that updates and removes have something to hit.
    feed.ok(c.create_secret({"Name": "pw"}, b"secret", "x1", NOW, PROPERTY_DEK))
    feed.ok(c.create_config({"Name": "app"}, b"port=80", "g1", NOW))
    feed.ok(c.create_service(_spec("web", 2, "x1"), "s1", NOW))
    feed.ok(c.create_task("t1", NOW, "s1", slot=1))
    feed.ok(c.create_node("w1", NOW, "w1"))
    for command in commands:
        before = state(feed.store)
        result = feed(command)  # never raises
        op = c.decode(command)[0]
        event(f"{op} {'ok' if result.ok else type(result.error).__name__}")
        if not result.ok:
            assert state(feed.store) == before, (op, result.error)
    # The same log gives the same store on another replica, and through a snapshot (§7).
    again = Feed()
    for command in feed.log:
        again(command)
    assert again.store.snapshot() == feed.store.snapshot()
    assert Store.from_snapshot(feed.store.snapshot()).snapshot() == feed.store.snapshot()


def test_replayed_index_is_refused(feed: Feed) -> None:
    feed.ok(c.create_service(svc_spec(), "s1", NOW))
    result = feed.store.apply(1, c.remove_service("s1"))
    assert not result.ok and feed.store.count(o.SERVICE) == 1


# -- snapshots and determinism (§7) -------------------------------------------------


def scenario_commands(dek: crypto.DataKey) -> list[bytes]:
    rng = random.Random(42)
    ids = [c.new_id(rng) for _ in range(6)]
    return [
        c.init_cluster(ids[0], NOW, c.new_join_token(rng), c.new_join_token(rng)),
        c.put_data_key(crypto.wrap_dek(dek, crypto.generate_kek()), NOW),
        c.create_node(ids[1], NOW, "manager1", role="manager", manager_addr="127.0.0.1:4001"),
        c.create_secret({"Name": "db_pw", "Labels": {"z": "1", "a": "2"}}, b"pw", ids[2], NOW, dek),
        c.create_config({"Name": "app.conf"}, b"port=80\n", ids[3], NOW),
        c.create_service(
            svc_spec(
                "web",
                Secrets=[{"SecretID": ids[2], "SecretName": "db_pw"}],
                Env=["B=2", "A=1"],
            ),
            ids[4],
            NOW,
        ),
        b"\xffbad entry",
        c.create_task(ids[5], NOW, ids[4], slot=1),
        c.update_task(ids[5], LATER, state="running", node_id=ids[1]),
    ]


def test_snapshot_round_trip_gives_the_identical_store(dek: crypto.DataKey) -> None:
    feed = Feed()
    for command in scenario_commands(dek):
        feed(command)
    data = feed.store.snapshot()
    restored = Store.from_snapshot(data)
    assert restored.applied_index == feed.store.applied_index == 9
    assert state(restored) == state(feed.store)
    assert restored.data_keys() == feed.store.data_keys()
    secret_id = feed.store.lookup(o.SECRET, "db_pw")["ID"]
    assert restored.sealed_secret(secret_id) == feed.store.sealed_secret(secret_id)
    assert restored.snapshot() == data
    # And the restored replica keeps applying like the original.
    more = c.update_task(feed.store.tasks()[0]["ID"], LATER, desired_state="shutdown")
    assert restored.apply(10, more).value == feed.store.apply(10, more).value
    assert restored.snapshot() == feed.store.snapshot()


def _reference_bytes(store: Store) -> bytes:
    """The snapshot encoded in one go, keys sorted everywhere: what the pieces must equal."""
    return msgpack.packb(_canonical(store.snapshot_document()), use_bin_type=True)


def test_snapshot_reuses_unchanged_rows_and_still_gives_the_reference_bytes(
    dek: crypto.DataKey,
) -> None:
    """Snapshots taken between writes (each reusing the rows it packed before)
    equal the one-go encoding: after creates, an update, a refusal and a removal."""
    feed = Feed()
    assert feed.store.snapshot() == _reference_bytes(feed.store)  # empty tables
    for command in scenario_commands(dek):
        feed(command)
        assert feed.store.snapshot() == _reference_bytes(feed.store)
    config = feed.store.list(o.CONFIG)[0]
    version = config["Version"]["Index"]
    feed.ok(c.update_config(config["ID"], version, {"Name": "app.conf", "Labels": {"b": "1"}}, NOW))
    assert feed.store.snapshot() == _reference_bytes(feed.store)
    feed.ok(c.remove_config(config["ID"]))
    assert feed.store.snapshot() == _reference_bytes(feed.store)
    assert Store.from_snapshot(feed.store.snapshot()).snapshot() == feed.store.snapshot()


def test_two_replicas_fed_the_same_log_have_identical_snapshots(dek: crypto.DataKey) -> None:
    log = scenario_commands(dek)
    a, b = Store(), Store()
    for index, command in enumerate(log, start=1):
        assert a.apply(index, command).ok == b.apply(index, command).ok
    assert a.snapshot() == b.snapshot()


def test_a_replica_restored_at_any_point_converges(dek: crypto.DataKey) -> None:
    """Install a snapshot after k entries, apply the rest: same bytes as the leader (§7)."""
    log = scenario_commands(dek)
    leader = Store()
    for index, command in enumerate(log, start=1):
        leader.apply(index, command)
    for k in range(len(log) + 1):
        donor = Store()
        for index, command in enumerate(log[:k], start=1):
            donor.apply(index, command)
        follower = Store.from_snapshot(donor.snapshot())
        for index, command in enumerate(log[k:], start=k + 1):
            follower.apply(index, command)
        assert follower.snapshot() == leader.snapshot()


def test_restore_refuses_what_is_not_a_snapshot() -> None:
    store = Store()
    for data in (b"", b"junk", msgpack.packb({"Format": "other"})):
        with pytest.raises(SnapshotError):
            store.restore(data)


def test_secret_plaintext_never_reaches_log_or_snapshot(dek: crypto.DataKey) -> None:
    plaintext = b"correct-horse-battery-staple-0123456789"
    config_data = b"this config is plain for everyone to read"
    feed = Feed()
    make_cluster(feed, dek)
    feed.ok(c.create_secret({"Name": "pw"}, plaintext, "k1", NOW, dek))
    feed.ok(c.create_config({"Name": "cfg"}, config_data, "c1", NOW))
    ref = [{"SecretID": "k1", "SecretName": "pw"}]
    feed.ok(c.create_service(svc_spec(Secrets=ref), "s1", NOW))
    err = feed(c.remove_secret("k1")).error
    snapshot = feed.store.snapshot()
    everything = b"".join(feed.log) + snapshot + repr(feed.store).encode() + str(err).encode()
    for form in (plaintext, base64.b64encode(plaintext), base64.urlsafe_b64encode(plaintext)):
        assert form not in everything
        assert form.hex().encode() not in everything
    assert config_data in snapshot and config_data in b"".join(feed.log)


# -- the command builders ---------------------------------------------------------


def test_ids_are_docker_shaped_and_reproducible_with_a_seed() -> None:
    first = c.new_id(random.Random(1))
    assert first == c.new_id(random.Random(1))
    assert len(first) == 25 and set(first) <= set("0123456789abcdefghijklmnopqrstuvwxyz")
    assert len({c.new_id() for _ in range(100)}) == 100
    token = c.new_join_token(random.Random(1))
    assert token.startswith("SWMTKN-1-") and len(token.split("-")[2]) == 50


def test_time_format_is_rfc3339_utc_like_dockers() -> None:
    assert c.format_time(0.0) == "1970-01-01T00:00:00Z"
    assert c.format_time(1714564800.25) == "2024-05-01T12:00:00.25Z"
    assert c.format_time(NOW) == NOW


def test_commands_round_trip_through_decode() -> None:
    op, args = c.decode(c.create_service(svc_spec(), "s1", NOW))
    assert op == "service.create" and args["id"] == "s1" and args["at"] == NOW
    with pytest.raises(InvalidArgument):
        c.decode(b"junk")


def test_name_index_follows_puts_deletes_rollbacks_and_restores(
    feed: Feed, dek: crypto.DataKey
) -> None:
    from cluster.state.txn import NameIndex

    def consistent(store: Store) -> None:
        assert store._names == NameIndex(store._tables)

    make_cluster(feed, dek)
    for i in range(5):
        feed.ok(c.create_config({"Name": f"cfg{i}"}, b"x", f"c{i}", NOW))
    feed.ok(c.create_service(svc_spec("web"), "s1", NOW))
    consistent(feed.store)
    assert feed.store.find_by_name(o.CONFIG, "cfg3")["ID"] == "c3"
    assert feed.store.lookup(o.NODE, "manager1")["ID"] == "m1"  # the hostname is a name too
    # A refused create and a failed batch leave the index as the tables are.
    assert isinstance(feed(c.create_config({"Name": "cfg1"}, b"y", "c9", NOW)).error, AlreadyExists)
    bad = c.batch(
        c.remove_config("c2"),
        c.create_config({"Name": "cfg2"}, b"z", "c7", NOW),
        c.create_config({"Name": "cfg0"}, b"z", "c8", NOW),  # taken: the whole batch fails
    )
    assert isinstance(feed(bad).error, AlreadyExists)
    consistent(feed.store)
    assert feed.store.find_by_name(o.CONFIG, "cfg2")["ID"] == "c2"
    # A removed name is free again.
    feed.ok(c.remove_config("c4"))
    assert feed.store.find_by_name(o.CONFIG, "cfg4") is None
    feed.ok(c.create_config({"Name": "cfg4"}, b"x", "c5", NOW))
    consistent(feed.store)
    # A restored replica rebuilds it.
    replica = Store.from_snapshot(feed.store.snapshot())
    consistent(replica)
    assert replica.find_by_name(o.CONFIG, "cfg4")["ID"] == "c5"
