"""The CLI contract (docs/cli.md), checked the way an outside reviewer would.

Fast tests: the ``status --json`` object (keys, value types, every role
value) from `cluster.local.status.collect` with the managers' answers faked; the
MANAGER STATUS column during a partition; one-line errors for mistakes that
argparse or the operating system catch.

One integration test: a foreground ``up`` stopped by a signal stops every
process of the cluster.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cli_run import ROOT, LineReader, described_pids, is_manager_process
from cluster_procs import kill_leftovers

from cluster.cli.main import main
from cluster.cli.nodes import manager_status
from cluster.local import status as status_mod
from cluster.local.layout import ClusterDir, Description, Member
from cluster.local.status import collect, reachability

ROLES = {"leader", "follower", "candidate", "learner", "down", "paused", "locked"}
NODE_KEYS = {
    "name": str,
    "id": str,
    "role": str,
    "term": int,
    "commit_index": int,
    "applied_index": int,
    "last_log_index": int,
    "availability": str,
    "raft_addr": str,
    "api_url": str,
}


def raft(role: str, term: int = 4, **extra: Any) -> dict[str, Any]:
    """What a manager's ``/raft/status`` answers."""
    return {
        "role": role,
        "term": term,
        "commit_index": 9,
        "applied_index": 9,
        "last_log_index": 9,
        "voters": ["manager1", "manager2", "manager3", "manager4", "manager5", "manager6"],
        **extra,
    }


class FakeSupervisor:
    def __init__(self, states: dict[str, str], reasons: dict[str, str] | None = None) -> None:
        self.states = states
        self.reasons = reasons or {}

    def process_state(self, m: Member) -> str:
        return self.states.get(m.name, "running")

    def exit_reason(self, m: Member) -> str | None:
        return self.reasons.get(m.name)


def fake_cluster(
    monkeypatch: pytest.MonkeyPatch,
    answers: dict[str, dict[str, Any] | None],
    states: dict[str, str],
    partition: list[list[str]] | None = None,
    reasons: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``collect`` over seven managers whose answers are ``answers`` (by name)."""
    names = [f"manager{i}" for i in range(1, 8)]
    members = [
        Member(n, f"id{i}xxxxxxxx", "manager", 7000 + i, 8000 + i, pid=100 + i)
        for i, n in enumerate(names, 1)
    ]
    desc = Description("cid", 0.0, members=members, partition=partition or [])
    by_port = {f"http://127.0.0.1:{m.api_port}": m.name for m in members}

    def fetch(url: str, timeout: float) -> Any:
        if url.endswith("/raft/status"):
            return answers.get(by_port[url.removesuffix("/raft/status")])
        # GET /nodes: the store's view of availability (manager1 is drained).
        return [{"ID": members[0].node_id, "Spec": {"Availability": "drain"}}]

    monkeypatch.setattr(status_mod, "_fetch", fetch)
    return collect(FakeSupervisor(states, reasons), desc)  # type: ignore[arg-type]


def test_status_json_has_the_contract_keys_types_and_every_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {
        "manager1": raft("leader", 5),
        "manager2": raft("follower", 5),
        "manager3": raft("pre-candidate", 5),  # the core's pre-vote phase
        "manager4": raft("follower", 5, voters=["manager1"]),  # the leader's voters count
        "manager5": {"role": "locked", "locked": True, "term": 0},
        "manager6": None,  # running, not answering
    }
    st = fake_cluster(monkeypatch, answers, {"manager7": "paused"})
    assert st["leader"] == "manager1" and st["term"] == 5
    for key, kind in (("term", int), ("managers", int), ("quorum", int), ("reachable", int)):
        assert type(st[key]) is kind, key
    assert st["quorum"] == st["managers"] // 2 + 1
    roles = {n["name"]: n["role"] for n in st["nodes"]}
    assert roles == {
        "manager1": "leader",
        "manager2": "follower",
        "manager3": "candidate",
        "manager4": "follower",
        "manager5": "locked",
        "manager6": "down",
        "manager7": "paused",
    }
    for n in st["nodes"]:
        assert n["role"] in ROLES
        for key, kind in NODE_KEYS.items():
            assert type(n[key]) is kind, (n["name"], key)
        assert n["pid"] is None or type(n["pid"]) is int
    assert st["nodes"][0]["availability"] == "drain"
    json.dumps(st)  # what `status --json` prints


def test_a_manager_that_stopped_on_its_own_shows_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18: a manager that exited on a failed fsync (status 3) or a damaged
    log is "down" with the one line it left; a running one shows no old reason."""
    reason = "fsync of /c/manager2/raft/log-0000000001.seg failed: Input/output error"
    answers = {n: raft("follower") for n in ("manager1", "manager3")}
    st = fake_cluster(
        monkeypatch,
        answers,
        {"manager2": "down", "manager4": "down"},
        reasons={"manager2": reason, "manager3": "an old reason"},
    )
    nodes = {n["name"]: n for n in st["nodes"]}
    assert nodes["manager2"]["role"] == "down" and nodes["manager2"]["exit_reason"] == reason
    assert nodes["manager4"]["exit_reason"] is None  # stopped by us, or killed: nothing said
    assert nodes["manager3"]["exit_reason"] is None  # running again
    json.dumps(st)


@pytest.mark.parametrize("verb", [["status"], ["node", "ls"]])
def test_status_and_node_ls_show_the_exit_reason_the_manager_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: list[str]
) -> None:
    path = tmp_path / "c"
    cdir = ClusterDir(path)
    members = [Member(f"manager{i}", f"id{i}", "manager", 1, 40000 + i) for i in (1, 2)]
    cdir.save(Description("cid", 0.0, members=members))  # all down: no HTTP
    cdir.node_dir("manager1").mkdir(parents=True)
    # What the manager writes (`leave_exit_reason`), where its config says.
    cdir.exit_reason_file("manager1").write_text("fsync of /x/log.seg failed: Input/output error\n")
    assert main(["--dir", str(path), *verb]) == 0
    rows = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()[1:3]}
    assert "down (fsync of /x/log.seg failed: Input/output error)" in rows["manager1"]
    assert rows["manager2"].split()[-4:] == ["down", "0", "0", "0"]


def test_a_learner_and_a_down_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    voters = ["manager1", "manager2", "manager3"]
    answers = {n: raft("follower", voters=voters) for n in ("manager2", "manager3", "manager4")}
    answers["manager1"] = raft("leader", voters=voters)
    st = fake_cluster(monkeypatch, answers, {n: "down" for n in ("manager5", "manager6")})
    roles = {n["name"]: n["role"] for n in st["nodes"]}
    assert roles["manager4"] == "learner" and roles["manager5"] == "down"
    assert next(n for n in st["nodes"] if n["name"] == "manager5")["pid"] is None
    assert (st["managers"], st["quorum"], st["reachable"]) == (3, 2, 3)


def test_a_stale_leader_cut_off_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """MANAGER STATUS agrees with the quorum line: what is cut off is Unreachable,
    even the old leader, which has not stepped down yet, and its followers."""
    voters = ["manager1", "manager2", "manager3", "manager4", "manager5"]
    answers = {
        "manager1": raft("leader", 4, voters=voters),  # old leader, minority side
        "manager2": raft("follower", 4, voters=voters),  # its follower, also cut off
        "manager3": raft("leader", 5, voters=voters),
        "manager4": raft("follower", 5, voters=voters),
        "manager5": raft("follower", 5, voters=voters),
    }
    groups = [["manager1", "manager2"], ["manager3", "manager4", "manager5"]]
    st = fake_cluster(
        monkeypatch, answers, {"manager6": "down", "manager7": "down"}, partition=groups
    )
    assert st["leader"] == "manager3" and st["reachable"] == 3
    shown = {n["name"]: manager_status(st, n) for n in st["nodes"]}
    assert shown == {
        "manager1": "Unreachable",
        "manager2": "Unreachable",
        "manager3": "Leader",
        "manager4": "Reachable",
        "manager5": "Reachable",
        "manager6": "Unreachable",
        "manager7": "Unreachable",
    }
    # The watch view says the same thing in its REACHABLE column.
    assert [reachability(st, n) for n in st["nodes"]][:3] == ["cut off", "cut off", "yes"]


def test_without_a_leader_the_side_with_most_voters_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    voters = ["manager1", "manager2", "manager3"]
    answers = {n: raft("candidate", voters=voters) for n in voters}
    st = fake_cluster(
        monkeypatch,
        answers,
        {f"manager{i}": "down" for i in range(4, 8)},
        partition=[["manager1"], ["manager2", "manager3"]],
    )
    assert st["leader"] is None and st["reachable"] == 2
    shown = [manager_status(st, n) for n in st["nodes"][:3]]
    assert shown == ["Unreachable", "Reachable", "Reachable"]


# -- one-line errors ------------------------------------------------------------


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["kill"],
        ["up", "--managers", "0"],
        ["up", "--managers", "-1"],
        ["up", "--managers", "three"],
        ["up", "--workers", "-2"],
        ["up", "--base-port", "70000"],
        ["up", "--heartbeat", "0"],
        ["node", "update", "--availability", "sleepy", "manager1"],
        ["service", "create"],
    ],
)
def test_usage_mistakes_are_one_line(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--dir", str(tmp_path / "c"), *argv])
    assert exc.value.code == 2
    assert "--help" in one_line(capsys)
    assert not (tmp_path / "c").exists()  # nothing was started


def test_a_dir_that_is_a_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    for argv in (["status"], ["up", "--managers", "1", "-d"]):
        assert main(["--dir", str(afile), *argv]) == 1
        assert str(afile) in one_line(capsys)


# -- foreground up ----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_foreground_up_stops_every_process_on_a_signal(tmp_path: Path, sig: int) -> None:
    path = tmp_path / "c"
    errors = tmp_path / "up.stderr"  # a file: a full stderr pipe could stall the child
    with errors.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cluster", "--dir", str(path), "up", "--managers", "3"],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=ROOT,
            # Ctrl-C's SIGINT as a terminal delivers it (a shell may have ignored it).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        assert proc.stdout is not None
        out = LineReader(proc.stdout)
        deadline = time.monotonic() + 60
        line, seen = "", []
        while "leader=manager" not in line:  # the live view, once a leader is elected
            line = out.next_line(deadline)  # bounded: a silent child fails the test
            seen.append(line)
            assert line, f"up ended early: {errors.read_text()}"
        # docs/cli.md: a foreground up starts the web view too and prints its URL.
        assert any(s.startswith("web view: http://127.0.0.1:") for s in seen), seen
        web_pid = json.loads((path / "web.json").read_text())["pid"]
        pids = described_pids(path)
        assert len(pids) == 3 and all(is_manager_process(p) for p in pids)
        proc.send_signal(sig)
        proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert not [p for p in pids if is_manager_process(p)]
        assert not Path(f"/proc/{web_pid}").exists() or "Z" in _state(web_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        kill_leftovers(path)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    """``status --json | head -1``: no traceback, no error line, when the reader goes."""
    path = tmp_path / "c"
    members = [Member(f"manager{i}", f"id{i}", "manager", 1, 40000 + i) for i in (1, 2, 3)]
    ClusterDir(path).save(Description("cid", 0.0, members=members))  # all down: no HTTP
    proc = subprocess.Popen(
        [sys.executable, "-m", "cluster", "--dir", str(path), "status", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before it prints: its write meets a closed pipe
    try:
        _, err = proc.communicate(timeout=30)  # bounded, unlike a read of stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode != 0
    assert err.decode() == ""
