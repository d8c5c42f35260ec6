"""Where tasks run on a real swarm, and management attempts: the driver half
behind `scenarios.steps.tasks`.

`TaskObserver` is mixed into `scenarios.drivers.real.RealDriver`.  A
snapshot reads the store through *local* reads (``?consistency=local``): a
scenario that shows tasks surviving a lost quorum must still see them when
no linearizable read can be served.  Each node's agent is asked too -- a
worker's own ``/status``, a manager's own replica -- because "the task keeps
running" is the agent's claim, not the store's.
"""

from __future__ import annotations

import time
from typing import Any

from cluster.client.http import ApiError, Unreachable, request
from cluster.local.layout import ClusterDir, ClusterError
from cluster.local.supervisor import Supervisor
from scenarios.drivers.operator import service_spec
from scenarios.steps import ClusterSpec

__all__ = ["TaskObserver"]


class TaskObserver:
    """Task snapshots and one-shot management attempts on real processes."""

    spec: ClusterSpec
    sup: Supervisor
    cdir: ClusterDir
    _urls: dict[str, str]

    # What the process half provides.
    def _target(self, via: str | None) -> str | None:
        raise NotImplementedError

    def running(self) -> list[str]:
        raise NotImplementedError

    def _api(self, method: str, path: str, body: Any = None) -> Any:
        raise NotImplementedError

    def _local(self, node: str, path: str) -> Any:
        sep = "&" if "?" in path else "?"
        return request("GET", f"{self._urls[node]}{path}{sep}consistency=local", timeout=3.0)

    # ------------------------------------------------------------ snapshots

    def snapshot_tasks(self) -> dict[str, Any]:
        t = time.time()
        reader = self._target(None)
        if reader is None:
            raise ClusterError("no manager is running to read the tasks from")
        nodes = self._local(reader, "/nodes")
        services = self._local(reader, "/services")
        tasks = self._local(reader, "/tasks")
        name_of = {n["ID"]: n["Description"]["Hostname"] for n in nodes}
        svc_of = {s["ID"]: s for s in services}
        rows = []
        for task in tasks:
            svc = svc_of.get(task.get("ServiceID", ""))
            sname = svc["Spec"]["Name"] if svc else task.get("ServiceID", "")[:8]
            node = name_of.get(task.get("NodeID") or "", "")
            slot = task.get("Slot") or node
            rows.append({
                "id": task["ID"],
                "service": sname,
                "label": f"{sname}.{slot}",
                "node": node,
                "desired": task.get("DesiredState", ""),
                "state": task.get("Status", {}).get("State", ""),
                "current": svc is not None and task.get("Spec") == svc["Spec"]["TaskTemplate"],
            })  # fmt: skip
        return {
            "t": t,
            "reader": reader,
            "nodes": {
                n["Description"]["Hostname"]: {
                    "state": n.get("Status", {}).get("State", ""),
                    "availability": n["Spec"].get("Availability", ""),
                    "role": n["Spec"].get("Role", ""),
                }
                for n in nodes
            },
            "services": {
                s["Spec"]["Name"]: {
                    "replicas": None
                    if "Global" in s["Spec"].get("Mode", {})
                    else s["Spec"]["Mode"]["Replicated"]["Replicas"]
                }
                for s in services
            },
            "tasks": rows,
            "agents": self._agents(),
        }

    def _agents(self) -> dict[str, dict[str, Any]]:
        """What each live node's agent holds: a worker's ``/status``, a manager's
        own replica (its agent plays the tasks its replica assigns it)."""
        out: dict[str, dict[str, Any]] = {}
        desc = self.cdir.load()
        for m in desc.members:
            if self.sup.process_state(m) != "running" or m.name not in self._urls:
                continue
            try:
                if m.role == "worker":
                    st = request("GET", f"{self._urls[m.name]}/status", timeout=2.0)
                    out[m.name] = {"tasks": dict(st.get("Tasks") or {}),
                                   "last_contact": st.get("LastContact")}  # fmt: skip
                else:
                    mine = [
                        x for x in self._local(m.name, "/tasks") if x.get("NodeID") == m.node_id
                    ]
                    out[m.name] = {
                        "tasks": {
                            x["ID"]: x.get("Status", {}).get("State", "")
                            for x in mine
                            if x.get("DesiredState") == "running"
                        },
                        "last_contact": None,
                    }
            except (ApiError, Unreachable):
                continue  # a node that does not answer holds nothing we can show
        return out

    # ------------------------------------------------------------ management

    def manage(self, verb: str, target: str, value: str) -> dict[str, Any]:
        """One attempt, no retry: the answer is what the scenario shows."""
        node = self._target(None)
        if node is None:
            return {"outcome": "unreachable", "node": None, "status": None,
                    "error": "no manager is running"}  # fmt: skip
        url = self._urls[node]
        wait = self.spec.request_timeout_ms / 1000 + 2.0
        try:
            if verb == "service_create":
                request("POST", f"{url}/services/create",
                        service_spec(target, int(value), "nginx:alpine"), timeout=wait)  # fmt: skip
            elif verb == "service_scale":
                s = self._local(node, f"/services/{target}")
                spec = s["Spec"]
                spec["Mode"] = {"Replicated": {"Replicas": int(value)}}
                path = f"/services/{s['ID']}/update?version={s['Version']['Index']}"
                request("POST", f"{url}{path}", spec, timeout=wait)
            elif verb == "node_update":
                n = self._local(node, f"/nodes/{target}")
                path = f"/nodes/{n['ID']}/update?version={n['Version']['Index']}"
                request("POST", f"{url}{path}", {"Availability": value}, timeout=wait)
            else:
                raise ClusterError(f"unknown management verb {verb!r}")
        except ApiError as e:
            return {"outcome": "refused", "node": node, "status": e.status, "error": e.message}
        except Unreachable as e:
            return {"outcome": "unreachable", "node": node, "status": None, "error": str(e)}
        return {"outcome": "ok", "node": node, "status": 200, "error": None}

    def create_global_service(self, name: str, image: str) -> None:
        spec = service_spec(name, 0, image)
        spec["Mode"] = {"Global": {}}
        self._api("POST", "/services/create", spec)

    def force_update(self, service: str) -> None:
        """``docker service update --force``: bump ``TaskTemplate.ForceUpdate``."""
        s = self._api("GET", f"/services/{service}")
        spec = s["Spec"]
        template = spec["TaskTemplate"]
        template["ForceUpdate"] = int(template.get("ForceUpdate", 0)) + 1
        self._api("POST", f"/services/{s['ID']}/update?version={s['Version']['Index']}", spec)
