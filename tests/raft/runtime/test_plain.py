"""`raft.runtime.plain`: one way from JSON to the settings dataclasses, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cluster.local.layout import Description, Member, Timing
from cluster.manager.peers import Peer
from cluster.manager.settings import ManagerSettings
from raft.runtime.plain import from_plain, to_plain
from raft.runtime.settings import NodeSettings


def test_a_description_survives_the_round_trip() -> None:
    desc = Description(
        "c1",
        1.5,
        Timing(tick_interval=0.02),
        [Member("manager1", "id1", "manager", 7000, 7001, pid=12)],
        [["manager1"], ["manager2"]],
    )
    again = from_plain(Description, json.loads(json.dumps(to_plain(desc))), "cluster.json")
    assert again == desc


def test_nested_records_tuples_and_paths_follow_the_type_hints(tmp_path: Path) -> None:
    raw = {
        "name": "manager1",
        "node_id": "n1",
        "cluster_id": "c",
        "data_dir": str(tmp_path),
        "api_port": 1,
        "peers": {"manager2": {"node_id": "n2", "raft": ["127.0.0.1", 7100], "api_url": "u"}},
        "from_a_newer_supervisor": 1,
    }
    s = from_plain(ManagerSettings, raw, "config.json", unknown_into="extra")
    assert s.data_dir == tmp_path and isinstance(s.data_dir, Path)
    assert s.peers["manager2"] == Peer("n2", ("127.0.0.1", 7100), "u")
    assert s.extra == {"from_a_newer_supervisor": 1}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"id": "a", "bogus": 1}, "unknown keys ['bogus']"),
        ({"id": "a", "peers": {}, "data_dir": "/x", "election_ticks": "ten"}, "$.election_ticks"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_what_does_not_fit_is_one_line_naming_where(raw: object, says: str) -> None:
    with pytest.raises(ValueError, match=r"^node settings: ") as e:
        NodeSettings.from_dict(raw)  # type: ignore[arg-type]
    assert says in str(e.value) and "\n" not in str(e.value)


def test_an_unknown_key_deep_inside_is_refused_too() -> None:
    raw = {"cluster_id": "c", "created": 0.0, "members": [{"name": "m", "node_id": "i",
           "role": "manager", "colour": "red"}]}  # fmt: skip
    with pytest.raises(ValueError, match=r"\$\.members\[0\]\.colour"):
        from_plain(Description, raw, "cluster.json")
