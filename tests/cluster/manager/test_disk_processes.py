"""Real managers on a disk that fills or fails (docs/architecture.md, "Disks that fill or fail").

Issue 18, item 3: three managers on a small file system written until it
filled all died with an exception repr and stayed down.  Here they stay up,
refuse writes with a one-line reason, keep answering status and local
reads, and take writes again once there is room, with no restart.  A manager
whose fsync fails exits with a one-line reason and status 3, and ``up``
brings it back on its data.  Every process is stopped by PID.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cluster_procs import leader_name, running_cluster, wait_for
from repo import HELPERS, ROOT
from small_fs import fill, small_fs

from cluster.client.http import ApiError, Unreachable, request
from cluster.local.layout import Timing
from cluster.local.status import collect
from cluster.manager.process import EXIT_STORAGE_FAILED

pytestmark = pytest.mark.integration


def api(desc, name: str) -> str:
    return next(m.api_url for m in desc.members if m.name == name)


def create_config(url: str, name: str, size: int = 16) -> None:
    data = base64.b64encode(name.encode() * (size // len(name) + 1)).decode()
    request("POST", f"{url}/configs/create", {"Name": name, "Data": data}, timeout=10)


def test_a_full_disk_refuses_writes_then_resumes_without_a_restart(tmp_path: Path) -> None:
    with small_fs(tmp_path / "fs", "48m") as fs:
        timing = Timing(request_timeout=2.0)
        with running_cluster(fs / "c", managers=3, timing=timing) as (sup, desc):
            leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
            url = api(desc, leader)
            acked = []
            for i in range(3):
                create_config(url, f"before{i}")
                acked.append(f"before{i}")
            pids = {m.name: m.pid for m in sup.cdir.load().members}
            fill(fs / "ballast")
            refusal = None
            # Segments are laid out a MiB of zeros ahead (raft.runtime.disk), so the
            # disk shows full once that room and the pages already held are used.
            for i in range(3000):
                try:
                    create_config(url, f"full{i}", size=3000)
                    acked.append(f"full{i}")
                except ApiError as e:
                    if e.status == 507:
                        refusal = e
                        break
                    assert e.status == 503, e  # timed out: the outcome is unknown
                    assert "\n" not in e.message and "Error(" not in e.message, e.message
            assert refusal is not None, "no manager said its disk was full"
            assert "cannot write its Raft log: no space left on device (" in refusal.message
            assert "\n" not in refusal.message and "OSError" not in refusal.message
            # Everyone still up, answering status and local reads.
            st = collect(sup, sup.cdir.load())
            assert any(n["disk"] == "full" for n in st["nodes"]), st["nodes"]
            assert {m.name: m.pid for m in sup.cdir.load().members} == pids
            for m in desc.members:
                request("GET", f"{m.api_url}/raft/status")
                request("GET", f"{m.api_url}/configs/before0?consistency=local")
            (fs / "ballast").unlink()

            def writes_again() -> bool:
                create_config(api(desc, leader_name(desc, sup) or leader), "after")
                return True

            wait_for(writes_again, 30, "writes to succeed again")
            acked.append("after")
            new = leader_name(desc, sup)
            assert new is not None
            for name in acked:  # nothing acknowledged was lost
                request("GET", f"{api(desc, new)}/configs/{name}")
            assert {m.name: m.pid for m in sup.cdir.load().members} == pids  # no restart
            st = collect(sup, sup.cdir.load())
            assert all(n["disk"] == "ok" for n in st["nodes"]), st["nodes"]


def test_a_failed_fsync_stops_the_manager_and_up_brings_it_back(tmp_path: Path) -> None:
    root = tmp_path / "c"
    with running_cluster(root, managers=3) as (sup, desc):
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        victim = next(m for m in desc.members if m.name != leader)
        sup.kill(victim.name)
        config = root / victim.name / "config.json"
        assert config.exists(), config
        log = root / victim.name / "faulty.log"
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, str(HELPERS / "faulty_manager.py"), "--config", str(config)],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=ROOT,
            )
        try:
            # It fails at its first fsync of a command: catching up, or this one.
            create_config(api(desc, leader), "acked")
            status = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        assert status == EXIT_STORAGE_FAILED, log.read_text()
        lines = [ln for ln in log.read_text().splitlines() if "stopping: its Raft storage" in ln]
        assert len(lines) == 1, log.read_text()
        assert "fsync of" in lines[0] and "Input/output error" in lines[0]
        assert "Traceback" not in log.read_text()
        # `status` and `node ls` show why it is down: the line it left.
        st = collect(sup, sup.cdir.load())
        down = next(n for n in st["nodes"] if n["name"] == victim.name)
        assert down["role"] == "down", down
        assert down["exit_reason"].startswith("fsync of "), down
        assert down["exit_reason"].endswith("failed: Input/output error"), down
        sup.up(None)  # starts what is down, on its data

        def caught_up() -> bool:
            try:
                request("GET", f"{victim.api_url}/configs/acked?consistency=local")
            except (ApiError, Unreachable):
                return False
            return True

        wait_for(caught_up, 30, f"{victim.name} back with the acknowledged write")
        again = collect(sup, sup.cdir.load())
        assert next(n for n in again["nodes"] if n["name"] == victim.name)["exit_reason"] is None


def test_a_lost_hard_state_refuses_to_start_and_status_says_why(tmp_path: Path) -> None:
    """Issue 18: a stopped manager whose raft/hardstate was deleted restarted
    with no log line and rejoined, its vote and term forgotten (it could vote
    twice in a term, §5.2).  Now it refuses to start, in one line."""
    root = tmp_path / "c"
    with running_cluster(root, managers=3) as (sup, desc):
        leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
        create_config(api(desc, leader), "acked")
        victim = next(m for m in desc.members if m.name != leader)
        sup.kill(victim.name)
        (hardstate,) = (root / victim.name).rglob("hardstate")
        hardstate.unlink()
        sup.up(None)  # the other two still have a leader: up returns

        def refused() -> dict | None:
            member = next(m for m in sup.cdir.load().members if m.name == victim.name)
            if sup.process_state(member) != "down":
                return None
            st = collect(sup, sup.cdir.load())
            return next(n for n in st["nodes"] if n["name"] == victim.name)

        node = wait_for(refused, 30, f"{victim.name} to refuse to start")
        assert node["role"] == "down"
        assert node["exit_reason"].startswith("corrupt Raft storage: "), node
        assert str(hardstate) in node["exit_reason"] and "term and vote" in node["exit_reason"]
        log = (root / victim.name / "node.log").read_text()
        assert "Traceback" not in log, log[-3000:]
        assert sum("cannot run" in ln and "hardstate" in ln for ln in log.splitlines()) == 1


def start_by_hand(config: Path, log: Path) -> subprocess.Popen:
    """``python -m cluster.manager`` on ``config``, as the supervisor starts it; the
    caller stops it (`stop_by_hand`).  Its output goes to ``log``."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cluster.manager", "--config", str(config)],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=ROOT,
        )


def stop_by_hand(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_a_manager_restarted_on_a_full_disk_serves_reads_and_holds_writes(tmp_path: Path) -> None:
    """Issue 18: started again while its file system is still full, a manager
    does what a running one does -- serves status and local reads, answers
    writes with 507 -- instead of dying at start (and again at every restart),
    and takes writes once there is room, with no restart.  It is started by
    hand: the supervisor itself needs room for its cluster.json."""
    with small_fs(tmp_path / "fs", "48m") as fs:
        timing = Timing(request_timeout=2.0)
        with running_cluster(fs / "c", managers=3, timing=timing) as (sup, desc):
            leader = wait_for(lambda: leader_name(desc, sup), 20, "a leader")
            create_config(api(desc, leader), "before")
            victim = next(m for m in desc.members if m.name != leader)

            def applied_before() -> bool:  # so that its restart applies it too
                request("GET", f"{victim.api_url}/configs/before?consistency=local")
                return True

            wait_for(applied_before, 20, f"{victim.name} to apply the write")
            sup.kill(victim.name)
            fill(fs / "ballast")
            log = tmp_path / "restarted.log"  # off the full file system
            proc = start_by_hand(fs / "c" / victim.name / "config.json", log)
            try:
                url = victim.api_url

                def serving() -> bool:
                    # Reads answer from what it has applied: after a restart,
                    # maybe less than before, as the leader (its disk full too)
                    # may not be able to tell it the commit index yet.
                    assert proc.poll() is None, log.read_text()[-3000:]
                    request("GET", f"{url}/raft/status")
                    request("GET", f"{url}/configs?consistency=local")
                    return True

                try:
                    wait_for(serving, 30, f"{victim.name} to serve reads on a full disk")
                except AssertionError as e:
                    raise AssertionError(f"{e}\n{log.read_text()[-3000:]}") from None

                # A write is refused in one line: 507 from a manager that met
                # the full disk (this one, or the leader it forwards to), or
                # 503 while no leader can be elected (every disk is full).
                # Writes land in the room segments already laid out (a MiB of
                # zeros ahead, raft.runtime.disk) until that is used up.
                refusal = None
                for i in range(3000):
                    try:
                        create_config(url, f"while-full{i}", size=3000)
                    except ApiError as e:
                        refusal = e
                        break
                assert refusal is not None, "no write was refused on the full disk"
                assert refusal.status in (503, 507), refusal
                assert "\n" not in refusal.message and "Error(" not in refusal.message
                if refusal.status == 507:
                    assert "no space left on device" in refusal.message
                assert proc.poll() is None, log.read_text()[-3000:]
                (fs / "ballast").unlink()

                def writes_again() -> bool:
                    create_config(url, "after")  # through the restarted manager
                    return True

                wait_for(writes_again, 30, "writes to succeed again")

                def caught_up() -> bool:
                    for name in ("before", "after"):  # nothing acknowledged was lost
                        request("GET", f"{url}/configs/{name}?consistency=local")
                    return True

                wait_for(caught_up, 30, f"{victim.name} to apply the write")
                assert proc.poll() is None  # the same process all along
            finally:
                stop_by_hand(proc)
            assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
