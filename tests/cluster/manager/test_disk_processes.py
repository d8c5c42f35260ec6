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
            for i in range(200):  # the pages already held fill up within a few writes
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
        sup.up(None)  # starts what is down, on its data

        def caught_up() -> bool:
            try:
                request("GET", f"{victim.api_url}/configs/acked?consistency=local")
            except (ApiError, Unreachable):
                return False
            return True

        wait_for(caught_up, 30, f"{victim.name} back with the acknowledged write")
