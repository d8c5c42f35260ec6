"""Real manager processes: the driver behind ``python -m scenarios run``.

`RealDriver` runs managers through `cluster.local.supervisor.Supervisor` (each
a process with its own data directory and free ports on 127.0.0.1, or with
``netns`` in its own network namespace, where partitions drop packets in the
kernel: `cluster.local.netns`) and talks to their HTTP API.  It implements
`scenarios.steps.driver.Driver`, one method per action; the steps resolve
``leader`` and aliases before calling it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from cluster.client.http import ApiError, Unreachable, request
from cluster.client.wait import attempts
from cluster.local.layout import ClusterDir, ClusterError, Timing
from cluster.local.supervisor import Supervisor
from scenarios.drivers.admin import AdminOperator
from scenarios.drivers.costs import measure_costs
from scenarios.drivers.operator import SwarmOperator, b64, service_spec
from scenarios.drivers.sim import SimDriver
from scenarios.drivers.tasks import TaskObserver
from scenarios.drivers.tolerance import tolerance
from scenarios.steps import ClientOp, ClusterSpec

__all__ = ["RealDriver", "kill_leftovers"]


def kill_leftovers(cluster_dir: Path) -> list[int]:
    """Last resort: SIGKILL every live process DIR/cluster.json records
    (PID and start time checked, so a reused PID is left alone)."""
    return Supervisor(ClusterDir(cluster_dir)).kill_all()


class RealDriver(SwarmOperator, TaskObserver, AdminOperator):
    """Real manager processes in ``cluster_dir``."""

    mode = "real"

    def __init__(self, spec: ClusterSpec, cluster_dir: Path, netns: bool = False) -> None:
        self.spec = spec
        self.netns = netns
        #: Where partitions happen: in the managers' transport, or the kernel.
        self.network = "netns" if netns else "transport"
        self.dir = cluster_dir
        self.cdir = ClusterDir(cluster_dir)
        self.sup = Supervisor(self.cdir)
        self.names = spec.names
        self._urls: dict[str, str] = {}

    # ------------------------------------------------------------ lifecycle

    def now(self) -> float:
        return time.time()

    def _ticks(self, ms: int) -> int:
        return max(2, round(ms / self.spec.heartbeat_ms))

    def start(self) -> None:
        s = self.spec
        timing = Timing(
            tick_interval=s.heartbeat_ms / 1000,
            heartbeat_ticks=1,
            election_ticks=self._ticks(s.election_timeout_ms),
            request_timeout=s.request_timeout_ms / 1000,
        )
        overrides = {n: self._ticks(ms) for n, ms in s.election_timeout_overrides.items()}
        if self.dir.exists() and any(self.dir.iterdir()):
            raise ClusterError(f"{self.dir} is not empty: a scenario wants a fresh cluster dir")
        desc = self.sup.up(
            s.managers, None, timing, overrides, leader_timeout=30.0, netns=self.netns
        )
        self._urls = {m.name: m.api_url for m in desc.members}

    def stop(self) -> None:
        """Stop every process; never raises (it runs in ``finally``)."""
        with contextlib.suppress(Exception):  # the last resort below handles the rest
            self.sup.down(purge=False)
        kill_leftovers(self.dir)

    def collect_traces(self, dest: Path) -> None:
        """Copy every ``*.jsonl`` of the cluster dir into ``dest`` (same relative paths)."""
        for path in self.dir.rglob("*.jsonl"):
            target = dest / path.relative_to(self.dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)

    def write_client_lines(self, ops: list[ClientOp]) -> None:
        with (self.dir / "client.jsonl").open("a") as f:
            for op in ops:
                f.write(json.dumps(op.line()) + "\n")

    # ------------------------------------------------------------ state

    def _state(self, name: str) -> str:
        desc = self.cdir.load()
        m = next(m for m in desc.members if m.name == name)
        return self.sup.process_state(m)

    def running(self) -> list[str]:
        """Manager processes that run (workers that joined are not Raft members)."""
        desc = self.cdir.load()
        return [
            m.name
            for m in desc.members
            if m.role == "manager" and self.sup.process_state(m) == "running"
        ]

    def cpu_seconds(self) -> float:
        """CPU time the running managers have used so far, summed over them and
        their threads: what the cluster spent, whatever else the machine did.
        (``/proc/PID/task/*/schedstat``: nanoseconds on a CPU, finer than the
        10 ms ticks of ``/proc/PID/stat``.)"""
        total = 0
        for m in self.cdir.load().members:
            if m.role != "manager" or m.pid is None or self.sup.process_state(m) != "running":
                continue
            for stat in Path(f"/proc/{m.pid}/task").glob("*/schedstat"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    total += int(stat.read_text().split()[0])  # a thread may just exit
        return total / 1e9

    def raft_status(self, timeout: float = 0.5) -> dict[str, dict[str, Any]]:
        """``/raft/status`` of every running manager that answers."""
        names = self.running()

        def fetch(name: str) -> dict[str, Any] | None:
            try:
                return request("GET", f"{self._urls[name]}/raft/status", timeout=timeout)
            except (Unreachable, ApiError):
                return None

        if not names:
            return {}
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(names)) as pool:
            answers = list(pool.map(fetch, names))
        return {n: a for n, a in zip(names, answers, strict=True) if a}

    def leader(self) -> str | None:
        """The leader of the highest term any running manager reports."""
        leaders = [
            (st.get("term", 0), n)
            for n, st in self.raft_status().items()
            if st.get("role") == "leader"
        ]
        return max(leaders)[1] if leaders else None

    def max_term(self) -> int:
        return max((st.get("term", 0) for st in self.raft_status().values()), default=0)

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def poll(self) -> None:
        time.sleep(0.1)

    # ------------------------------------------------------------ faults

    def kill(self, node: str) -> None:
        # A restart right after waits for the dead process's ports itself
        # (`cluster.local.ports.check_ports`).
        self.sup.kill(node)

    def restart(self, node: str) -> None:
        self.sup.restart(node)
        self._wait_answering(node)

    def _wait_answering(self, node: str, timeout: float = 15.0) -> None:
        """A restarted manager counts as back once its API answers."""
        for _ in attempts(timeout, every=0.05):
            try:
                request("GET", f"{self._urls[node]}/raft/status", timeout=0.5)
                return
            except (Unreachable, ApiError):
                continue
        raise ClusterError(f"{node} did not answer within {timeout:g} s of its restart")

    def pause(self, node: str) -> None:
        self.sup.pause(node)

    def unpause(self, node: str) -> None:
        self.sup.unpause(node)

    def isolate(self, node: str) -> None:
        self.sup.isolate(node)

    def partition(self, groups: list[list[str]], oneway: bool = False) -> None:
        self.sup.partition(groups, oneway=oneway)

    def set_links(self, loss: int, delay_ms: int) -> None:
        """``net loss`` and ``net delay`` on every manager (``net clear`` for zeros)."""
        if not (loss or delay_ms):
            self.sup.net_clear()
            return
        for name in self.running():
            self.sup.net_loss(name, loss)
            self.sup.net_delay(name, delay_ms)

    def heal(self) -> None:
        self.sup.heal()

    def set_election_timeout(self, node: str, ms: int) -> None:
        """Give ``node`` its own election timeout: rewrite its config and restart it."""
        desc = self.cdir.load()
        for m in desc.members:
            if m.name == node:
                m.election_ticks = self._ticks(ms)
        self.cdir.save(desc)
        self.restart(node)

    def trace_log(self) -> None:
        for name in self.running():
            with contextlib.suppress(Unreachable, ApiError):
                request("POST", f"{self._urls[name]}/raft/trace-log", {}, timeout=0.5)

    def transfer_leadership(self, to: str | None) -> str | None:
        leader = self.leader()
        if leader is None:
            raise ClusterError("there is no leader to transfer leadership from")
        body = {"target": to} if to else None
        timeout = self.spec.request_timeout_ms / 1000 + 2
        try:
            answer = request(
                "POST", f"{self._urls[leader]}/raft/transfer-leadership", body, timeout=timeout
            )
        except ApiError as e:
            raise ClusterError(f"leadership transfer refused: {e.message}") from None
        return (answer or {}).get("target")

    # ------------------------------------------------------------ writes

    def _target(self, via: str | None) -> str | None:
        if via:
            return via
        leader = self.leader()
        if leader:
            return leader
        running = self.running()
        return running[0] if running else None

    def write(
        self, step: int, key: str, kind: str, via: str | None, timeout: float | None
    ) -> ClientOp:
        node = self._target(via)
        value = f"{key}-value"
        start = time.time()
        if node is None:
            return ClientOp("write", key, value, start, time.time(), "fail", step, None,
                            error="no manager is running")  # fmt: skip
        if kind == "service":
            path, body = "/services/create", service_spec(key, 1, "nginx:alpine")
        else:
            path, body = f"/{kind}s/create", {"Name": key, "Labels": {}, "Data": b64(value)}
        wait = timeout if timeout is not None else self.spec.request_timeout_ms / 1000 + 2.0
        op = ClientOp("write", key, value, start, start, "ok", step, node, kind=kind)
        try:
            request("POST", f"{self._urls[node]}{path}", body, timeout=wait)
        except ApiError as e:
            op.outcome, op.status, op.error = "fail", e.status, e.message
        except Unreachable as e:
            op.outcome, op.error = "timeout", str(e)
        op.end = time.time()
        return op

    def fill_indexes(self, ops: list[ClientOp]) -> None:
        """The Raft index each acknowledged config write committed at (its Version.Index)."""
        found: dict[str, int] = {}
        for name in self.running():
            for kind in ("config", "secret", "service"):
                try:
                    objs = request(
                        "GET", f"{self._urls[name]}/{kind}s?consistency=local", timeout=2.0
                    )
                except (Unreachable, ApiError):
                    continue
                for o in objs or []:
                    found.setdefault(o["Spec"]["Name"], o.get("Version", {}).get("Index"))
            if found:
                break
        for op in ops:
            if op.outcome == "ok" and op.key in found:
                op.index = found[op.key]

    # ------------------------------------------------------------ whole clusters

    def measure_tolerance(self, managers: int, real: list[int]) -> tuple[int, str]:
        """How many of ``managers`` may fail with writes still committing: on real
        processes if ``managers`` is in ``real`` (slow), else on the simulator."""
        s = self.spec
        spec = ClusterSpec(managers, s.election_timeout_ms, s.heartbeat_ms, s.request_timeout_ms)
        if managers not in real:
            measured = tolerance(SimDriver(spec, 1 + managers), managers, s.election_timeout_ms)
            return measured, "simulated"
        where = Path(tempfile.mkdtemp(prefix="swarmraft-qt-"))
        try:
            return tolerance(RealDriver(spec, where / "c"), managers, s.election_timeout_ms), "real"
        finally:
            shutil.rmtree(where, ignore_errors=True)

    def measure_costs(self, managers: int, settings: dict[str, int]) -> dict[str, Any]:
        """Write latency and election time on a fresh cluster of ``managers`` real
        managers (`scenarios.drivers.costs`), with this run's timing."""
        s = self.spec
        spec = ClusterSpec(managers, s.election_timeout_ms, s.heartbeat_ms, s.request_timeout_ms)
        where = Path(tempfile.mkdtemp(prefix="swarmraft-mc-"))
        try:
            return measure_costs(RealDriver(spec, where / "c"), managers, settings)
        finally:
            shutil.rmtree(where, ignore_errors=True)

    def force_new_cluster(self, node: str) -> None:
        """``docker swarm init --force-new-cluster`` on the survivor ``node``."""
        self.sup.force_new_cluster(node)

    # ------------------------------------------------------------ for checks

    def converge(self, timeout: float) -> bool:
        """Wait until every running manager has applied the same, committed index."""
        for _ in attempts(timeout, every=0.2):
            st = self.raft_status(timeout=1.0)
            running = self.running()
            applied = {s.get("applied_index") for s in st.values()}
            commits = {s.get("commit_index") for s in st.values()}
            if len(st) == len(running) and len(applied) == 1 and applied == commits:
                return True
        return False

    def keys_on(self, node: str, kind: str = "config") -> set[str] | None:
        """Names of objects in ``node``'s own replica (``?consistency=local``)."""
        try:
            objs = request("GET", f"{self._urls[node]}/{kind}s?consistency=local", timeout=3.0)
        except (Unreachable, ApiError):
            return None
        return {o["Spec"]["Name"] for o in objs or []}

    def keys_via_leader(self, kind: str = "config") -> tuple[str | None, set[str] | None]:
        leader = self.leader()
        if leader is None:
            return None, None
        try:
            objs = request("GET", f"{self._urls[leader]}/{kind}s", timeout=5.0)
        except (Unreachable, ApiError):
            return leader, None
        return leader, {o["Spec"]["Name"] for o in objs or []}

    def present_on(self, node: str, ops: list[ClientOp]) -> dict[str, bool] | None:
        """For each op's key: is it in ``node``'s own replica?  None if it does not answer."""
        found: dict[str, set[str]] = {}
        for kind in sorted({op.kind for op in ops}):
            keys = self.keys_on(node, kind)
            if keys is None:
                return None
            found[kind] = keys
        return {op.key: op.key in found.get(op.kind, set()) for op in ops}

    def present_via_leader(self, ops: list[ClientOp]) -> tuple[str | None, dict[str, bool] | None]:
        """For each op's key: can a linearizable read through the leader see it?"""
        leader = None
        found: dict[str, set[str]] = {}
        for kind in sorted({op.kind for op in ops}):
            leader, keys = self.keys_via_leader(kind)
            if keys is None:
                return leader, None
            found[kind] = keys
        return leader, {op.key: op.key in found.get(op.kind, set()) for op in ops}

    def data_dirs(self) -> dict[str, Path]:
        return {n: self.dir / n for n in self.names}
