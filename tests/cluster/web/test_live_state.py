"""The live view without a browser: frames, trace tailing, actions, the app's answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cluster.local.layout import ClusterDir, Description, Member
from cluster.local.supervisor import Supervisor
from cluster.web.actions import ActionError, command_for
from cluster.web.server import make_app
from cluster.web.state import LEG, LiveState


def _cluster(tmp_path: Path, n: int = 3) -> ClusterDir:
    cdir = ClusterDir(tmp_path)
    members = [
        Member(name=f"manager{i}", node_id=f"id{i}", role="manager", api_port=1000 + i)
        for i in range(1, n + 1)
    ]
    cdir.save(Description(cluster_id="c1", created=0.0, members=members))
    for m in members:
        cdir.node_dir(m.name).mkdir(parents=True, exist_ok=True)
    return cdir


def _status(name: str, role: str, term: int, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "role": role,
        "term": term,
        "commit_index": 7,
        "applied_index": 7,
        "last_log_index": 8,
        "voters": ["manager1", "manager2", "manager3"],
        "learners": [],
        "election_elapsed": 2,
        "election_timeout": 8,
        "tick_interval": 0.05,
        "log_tail": [[7, term], [8, term]],
        **extra,
    }


def test_frame_shows_roles_terms_timers_and_quorum(tmp_path: Path) -> None:
    cdir = _cluster(tmp_path)
    live = LiveState(cdir, Supervisor(cdir))
    live.desc = cdir.load()
    live.process = {"manager1": "running", "manager2": "running", "manager3": "paused"}
    live.raft = {
        "manager1": _status("manager1", "leader", 4),
        "manager2": _status("manager2", "pre-candidate", 4),
    }
    live.last_term = {"manager3": 3}
    f = live.frame(now=100.0)
    roles = {n["name"]: (n["role"], n["term"]) for n in f["nodes"]}
    assert roles == {
        "manager1": ("leader", 4),
        "manager2": ("pre-candidate", 4),
        "manager3": ("paused", 3),  # the last term it reported, kept while frozen
    }
    assert f["leader"] == "manager1"
    assert f["quorum"] == {"managers": 3, "needed": 2, "reachable": 2}
    m2 = next(n for n in f["nodes"] if n["name"] == "manager2")
    assert m2["timer"] == {"elapsed": pytest.approx(0.1), "timeout": pytest.approx(0.4)}
    assert m2["log"] == [[7, 4], [8, 4]] and m2["commit"] == 7


def test_a_partition_counts_only_the_leaders_side(tmp_path: Path) -> None:
    cdir = _cluster(tmp_path)
    desc = cdir.load()
    desc.partition = [["manager1"], ["manager2", "manager3"]]
    cdir.save(desc)
    live = LiveState(cdir, Supervisor(cdir))
    live.desc = cdir.load()
    live.process = dict.fromkeys(("manager1", "manager2", "manager3"), "running")
    live.raft = {n: _status(n, "follower", 2) for n in ("manager1", "manager2", "manager3")}
    live.raft["manager1"] = _status("manager1", "leader", 2)  # a stale leader, alone
    assert live.frame()["quorum"]["reachable"] == 1


def test_votes_in_the_trace_become_a_request_and_an_answer(tmp_path: Path) -> None:
    cdir = _cluster(tmp_path)
    live = LiveState(cdir, Supervisor(cdir))
    live.desc = cdir.load()
    trace = cdir.node_dir("manager2") / "trace.jsonl"
    trace.write_text('{"t": 1, "node": "manager2", "type": "start"}\n')
    live.tail(now=10.0)  # first sight: only what comes after
    assert list(live.messages) == []
    refusal = {
        "t": 11.0,
        "node": "manager2",
        "type": "vote",
        "candidate": "manager3",
        "granted": False,
        "term": 5,
        "pre_vote": False,
        "reason": "candidate log (term 4, index 9) is behind mine (term 4, index 12)",
    }
    with trace.open("a") as f:
        f.write(json.dumps(refusal) + "\n")
        f.write('{"t": 11.1, "node": "manager2", "type": "vo')  # a line still being written
    live.tail(now=11.2)
    request, answer = live.messages
    assert (request["kind"], request["from"], request["to"]) == ("vote", "manager3", "manager2")
    assert (answer["kind"], answer["from"], answer["to"]) == ("refuse", "manager2", "manager3")
    assert answer["t"] == pytest.approx(11.2 + LEG) and "behind mine" in answer["reason"]
    assert "refused its vote to manager3" in live.events[-1]["text"]


def test_each_button_is_the_cli_verb_it_names(tmp_path: Path) -> None:
    assert command_for("kill", "manager2", None, tmp_path)[0] == ["kill", "manager2"]
    args, docker = command_for("drain", "manager3", None, tmp_path)
    assert args == ["node", "update", "--availability", "drain", "manager3"]
    assert docker == "docker node update --availability drain manager3"
    assert command_for("transfer", "manager1", None, tmp_path)[0] == [
        "transfer-leadership",
        "manager1",
    ]
    args, _ = command_for("partition", None, [["manager1"], ["manager2", "manager3"]], tmp_path)
    assert args == ["partition", "manager1", "manager2,manager3"]
    args, docker = command_for("write", None, None, tmp_path)
    assert args[:2] == ["config", "create"] and Path(args[3]).exists()
    assert docker.startswith("docker config create ")
    with pytest.raises(ActionError, match="needs a target"):
        command_for("kill", None, None, tmp_path)
    with pytest.raises(ActionError, match="two non-empty groups"):
        command_for("partition", None, [["manager1"]], tmp_path)


async def test_the_app_refuses_bad_bodies_and_serves_the_page(tmp_path: Path) -> None:
    _cluster(tmp_path)
    async with TestClient(TestServer(make_app(tmp_path))) as client:
        page = await client.get("/")
        assert page.status == 200 and 'data-action="write"' in await page.text()
        for body in (b"nope", b"[1]", b'{"action": "explode"}', b'{"action": "kill"}'):
            r = await client.post("/action", data=body)
            assert r.status == 400, body
            assert (await r.json())["message"]
        r = await client.post("/action", json={"action": "heal", "groups": "manager1"})
        assert r.status == 400
        frame = await (await client.get("/frame")).json()
        assert "nodes" in frame
