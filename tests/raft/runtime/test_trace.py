"""The trace writer's per-link ``message`` lines: counted per link, one line per window."""

from __future__ import annotations

import json
from pathlib import Path

from small_fs import fill, small_fs

from raft.runtime.trace import TraceSettings, TraceWriter


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_appends_are_summed_per_link_and_window(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    w = TraceWriter(path, "n1", TraceSettings(link_interval=60.0))
    for _ in range(3):
        w.sent("append", "n2", 4, entries=5)
    w.sent("heartbeat", "n2", 4)
    w.sent("append", "n3", 5, entries=1)
    w.summarize()  # the window (60 s) is not over: nothing yet
    w.flush_now()
    assert not path.exists() or _lines(path) == []
    w.close()  # a forced summary on the way out
    got = {(x["kind"], x["to"]): x for x in _lines(path) if x["type"] == "message"}
    assert set(got) == {("append", "n2"), ("heartbeat", "n2"), ("append", "n3")}
    a = got[("append", "n2")]
    assert (a["from"], a["count"], a["entries"], a["term"]) == ("n1", 3, 15, 4)
    assert got[("append", "n3")]["term"] == 5 and a["window"] >= 0


def test_a_quiet_link_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    w = TraceWriter(path, "n1", TraceSettings(link_interval=0.0))
    w.summarize()
    w.sent("append_reply", "n2", 2)
    w.summarize()
    w.summarize()
    w.close()
    lines = [x for x in _lines(path) if x["type"] == "message"]
    assert len(lines) == 1 and lines[0]["count"] == 1


def test_a_full_disk_drops_lines_instead_of_failing(tmp_path: Path) -> None:
    """The trace is for people: on a full disk its lines are dropped and counted
    (a ``trace_overflow`` line says how many), never an error that stops the node."""
    with small_fs(tmp_path / "fs", "1m") as fs:
        path = fs / "trace.jsonl"
        w = TraceWriter(path, "n1")
        w.emit("start")
        w.flush_now()
        fill(fs / "ballast")
        for i in range(200):  # more than the last page the file holds
            w.emit("role", term=i, text="x" * 100)
        w.flush_now()  # no exception
        assert w.dropped == 200
        (fs / "ballast").unlink()
        w.emit("stop")
        w.close()
        types = [x["type"] for x in _lines(path)]
        assert types == ["start", "trace_overflow", "stop"], types
        assert _lines(path)[1]["dropped"] == 200
