"""The operator's side of a real swarm: what ``docker node``/``service``/``secret``
and ``swarm join``/``update``/``unlock`` do, over the managers' HTTP API.

`SwarmOperator` is half of `scenarios.drivers.real.RealDriver` (which mixes
it in): the other half starts, stops and breaks the processes.  It needs
from that half a manager to talk to (`_target`), the managers' Raft status
and the supervisor, to start a node that joins.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from cluster.client.http import ApiError, Unreachable, request
from cluster.client.wait import attempts
from cluster.local.layout import ClusterError
from cluster.local.supervisor import Supervisor
from scenarios.steps import ClusterSpec

__all__ = ["SwarmOperator", "b64", "service_spec"]


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class SwarmOperator:
    """Operator actions and Swarm reads for a cluster of real managers."""

    spec: ClusterSpec
    sup: Supervisor
    names: list[str]
    _urls: dict[str, str]

    # What the process half provides.
    def _target(self, via: str | None) -> str | None:
        raise NotImplementedError

    def raft_status(self, timeout: float = 0.5) -> dict[str, dict[str, Any]]:
        raise NotImplementedError

    def running(self) -> list[str]:
        raise NotImplementedError

    def _api(self, method: str, path: str, body: Any = None) -> Any:
        node = self._target(None)
        if node is None:
            raise ClusterError("no manager is running")
        return request(method, f"{self._urls[node]}{path}", body, timeout=10.0)

    def _operate(self, change: Callable[[], None]) -> None:
        """Run an operator's read-modify-write, riding out an election in progress.

        A scenario that says "demote manager5" right after a leader was
        killed means it, as a user retrying the command would: a 503 (no
        leader yet, no quorum yet) is retried, bounded, from a fresh read,
        so a change that did commit is seen and not made twice.  Client
        *writes* are not retried here: their failures are what scenarios
        measure.
        """
        within = max(10.0, 4 * self.spec.request_timeout_ms / 1000)
        for _ in attempts(within):
            try:
                change()
                return
            except (ApiError, Unreachable) as e:
                if isinstance(e, ApiError) and e.status != 503:
                    raise
                last = e
        raise last

    def drain(self, node: str, availability: str) -> None:
        def change() -> None:
            n = self._api("GET", f"/nodes/{node}")
            if n["Spec"].get("Availability") == availability:
                return  # already so (a retried change that had committed)
            version = n["Version"]["Index"]
            self._api(
                "POST",
                f"/nodes/{n['ID']}/update?version={version}",
                {"Availability": availability},
            )

        self._operate(change)

    def create_service(self, name: str, replicas: int, image: str) -> None:
        self._api("POST", "/services/create", service_spec(name, replicas, image))

    def scale(self, service: str, replicas: int) -> None:
        s = self._api("GET", f"/services/{service}")
        spec = s["Spec"]
        spec["Mode"] = {"Replicated": {"Replicas": replicas}}
        self._api("POST", f"/services/{s['ID']}/update?version={s['Version']['Index']}", spec)

    def create_secret(self, name: str, data: str) -> None:
        self._api("POST", "/secrets/create", {"Name": name, "Labels": {}, "Data": b64(data)})

    def create_config(self, name: str, data: str) -> None:
        self._api("POST", "/configs/create", {"Name": name, "Labels": {}, "Data": b64(data)})

    def tasks(self) -> list[dict[str, Any]]:
        return self._api("GET", "/tasks")

    def service_tasks(self, service: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The service (``docker service inspect``) and its tasks (``docker service ps``)."""
        svc = self._api("GET", f"/services/{service}")
        tasks = self._api("GET", "/tasks")
        return svc, [t for t in tasks if t.get("ServiceID") == svc["ID"]]

    def update_service(self, service: str, image: str, parallelism: int, delay: float) -> str:
        """``docker service update --image IMAGE --update-parallelism P --update-delay Ds``;
        the image it replaces."""
        s = self._api("GET", f"/services/{service}")
        spec = s["Spec"]
        previous = spec["TaskTemplate"]["ContainerSpec"]["Image"]
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = image
        config = dict(spec.get("UpdateConfig") or {})
        config.update(Parallelism=parallelism, Delay=round(delay * 1e9))
        spec["UpdateConfig"] = config
        self._api("POST", f"/services/{s['ID']}/update?version={s['Version']['Index']}", spec)
        return previous

    def rollback_service(self, service: str) -> tuple[str, str]:
        """``docker service rollback``: the previous spec back; (image now, image back)."""
        s = self._api("GET", f"/services/{service}")
        if "PreviousSpec" not in s:
            raise ClusterError(f"service {service} has no previous spec to roll back to")
        current = s["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        back = s["PreviousSpec"]["TaskTemplate"]["ContainerSpec"]["Image"]
        version = s["Version"]["Index"]
        self._api("POST", f"/services/{s['ID']}/update?version={version}&rollback=previous")
        return current, back

    def nodes(self) -> list[dict[str, Any]]:
        return self._api("GET", "/nodes")

    def services(self) -> list[dict[str, Any]]:
        return self._api("GET", "/services")

    def tasks_running(self) -> bool:
        try:
            services = self._api("GET", "/services?status=true")
        except (ApiError, Unreachable, ClusterError):
            return False
        return bool(services) and all(
            s["ServiceStatus"]["RunningTasks"] == s["ServiceStatus"]["DesiredTasks"]
            for s in services
        )

    def promote(self, node: str) -> None:
        """``docker node promote``: the leader then makes it a Raft voter (§4)."""
        self._set_role(node, "manager")

    def demote(self, node: str) -> None:
        """``docker node demote``: the leader makes it a learner (no vote)."""
        self._set_role(node, "worker")

    def _set_role(self, node: str, role: str, timeout: float = 20.0) -> None:
        def change() -> None:
            n = self._api("GET", f"/nodes/{node}")
            if n["Spec"].get("Role") == role:
                return  # already so (a retried change that had committed)
            version = n["Version"]["Index"]
            self._api("POST", f"/nodes/{n['ID']}/update?version={version}", {"Role": role})

        self._operate(change)
        # The store changes at once; Raft's configuration follows one server
        # at a time (a promoted learner first catches up).  Wait for it.
        for _ in attempts(timeout):
            for st in self.raft_status().values():
                is_voter = node in st.get("voters", [])
                if st.get("role") == "leader" and is_voter == (role == "manager"):
                    return
        raise ClusterError(f"{node} did not become a {role} in Raft within {timeout:g}s")

    def join(self, role: str) -> str:
        """``docker swarm join --token ...``: the token comes from the swarm itself
        (``GET /swarm``, as ``swarm join-token`` shows it) and decides the role.
        Returns the new node's name once the leader has taken a manager into
        its configuration as a learner (it adds one as soon as the store lists
        it; the process may still be starting), and promotes it once it has
        caught up -- ``wait for = "voters"``.  A worker: once it is started."""
        swarm = self._api("GET", "/swarm")
        token = swarm.get("JoinTokens", {}).get(role.capitalize())
        if not token:
            raise ClusterError(f"the swarm gave no {role} join token")
        m = self.sup.join(token)
        self._urls[m.name] = m.api_url
        if m.role != role:
            raise ClusterError(f"{m.name} joined as a {m.role}, not a {role}")
        if role == "manager":
            self.names.append(m.name)
            for _ in attempts(10.0, every=0.02):
                if self._in_configuration(m.name):
                    break
            else:
                raise ClusterError(f"the leader did not add {m.name} to Raft within 10 s")
        return m.name

    def _in_configuration(self, node: str) -> bool:
        for st in self.raft_status().values():
            if st.get("role") == "leader":
                return node in st.get("learners", []) or node in st.get("voters", [])
        return False

    def voters(self) -> list[str]:
        """The voters in the leader's configuration (empty without a leader)."""
        for st in self.raft_status().values():
            if st.get("role") == "leader":
                return list(st.get("voters", []))
        return []

    def nodes_ready(self, names: list[str]) -> bool:
        """Does the swarm list every one of ``names`` as ready (``docker node ls``)?"""
        try:
            nodes = self.nodes()
        except (ApiError, Unreachable, ClusterError):
            return False
        state = {n["Description"]["Hostname"]: n.get("Status", {}).get("State") for n in nodes}
        return all(state.get(n) == "ready" for n in names)

    def lock(self) -> None:
        """``docker swarm update --autolock=true``: keep the unlock key it shows once."""
        swarm = self._api("GET", "/swarm")
        spec = swarm["Spec"]
        spec["EncryptionConfig"] = {"AutoLockManagers": True}
        out = self._api("POST", f"/swarm/update?version={swarm['Version']['Index']}", spec)
        self._unlock_key = out.get("UnlockKey")
        if not self._unlock_key:
            raise ClusterError("swarm update --autolock=true returned no unlock key")
        # Every manager must have applied the change before a restart can show
        # it locked: each says so in its /raft/status.
        for _ in attempts(10.0, every=0.05):
            st = self.raft_status()
            if len(st) == len(self.running()) and all(s.get("autolock") for s in st.values()):
                return
        raise ClusterError("autolock did not reach every manager within 10 s")

    def unlock(self, key: str) -> None:
        """``docker swarm unlock`` on every manager that restarted locked, with the
        ``current`` key, the ``previous`` one (a rotation replaced it) or a
        ``wrong`` one (well-formed, never issued): the swarm's refusal is raised."""
        current = getattr(self, "_unlock_key", None)
        if current is None:
            raise ClusterError("unlock: no unlock key (lock the swarm first)")
        given = {
            "current": current,
            "previous": getattr(self, "_previous_unlock_key", None),
            "wrong": "SWMKEY-1-" + "x" * len(current.removeprefix("SWMKEY-1-")),
        }[key]
        if given is None:
            raise ClusterError("unlock: no previous key (rotate_unlock_key first)")
        locked = [n for n, st in self.raft_status().items() if st.get("role") == "locked"]
        if not locked:
            raise ClusterError("unlock: no manager is locked (autolock did not take effect)")
        for node in locked:
            request("POST", f"{self._urls[node]}/swarm/unlock", {"UnlockKey": given}, timeout=10.0)


def service_spec(name: str, replicas: int, image: str) -> dict[str, Any]:
    return {
        "Name": name,
        "Labels": {},
        "TaskTemplate": {"ContainerSpec": {"Image": image}},
        "Mode": {"Replicated": {"Replicas": replicas}},
    }
