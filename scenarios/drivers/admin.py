"""The operator's administrative verbs on a real swarm, and their absence on the simulator.

`AdminOperator` is mixed into `scenarios.drivers.real.RealDriver` next to
`scenarios.drivers.operator.SwarmOperator`: ``node rm``, ``node ls``, join
tokens and unlock keys rotated (keeping the replaced one, so a scenario can
show it no longer works), a secret's data changed (refused), a service's
secrets swapped, and what each node's agent holds.  Each method lets the
swarm's refusal through as `cluster.client.http.ApiError` or
`cluster.local.layout.ClusterError`: the step records it
(`scenarios.steps.admin`).

`AdminNotSimulated` is the simulator's side: none of this is Raft, all of
it raises `NotApplicable`.
"""

from __future__ import annotations

import concurrent.futures
import json
from typing import Any

from cluster.client.http import ApiError, Unreachable, request
from cluster.client.wait import attempts
from cluster.local.layout import ClusterError
from cluster.local.status import collect
from scenarios.drivers.operator import b64, service_spec
from scenarios.steps import NotApplicable

__all__ = ["AdminNotSimulated", "AdminOperator", "file_refs"]


def file_refs(kind: str, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``--secret NAME`` / ``--config NAME`` references in the Engine API's shape:
    each file named after its source, read-only (0444), as Docker's default."""
    title = kind.capitalize()
    return [
        {
            f"{title}ID": obj["ID"],
            f"{title}Name": obj["Spec"]["Name"],
            "File": {"Name": obj["Spec"]["Name"], "UID": "0", "GID": "0", "Mode": 0o444},
        }
        for obj in objs
    ]


class AdminOperator:
    """``node rm``/``ls``, token and key rotation, secrets' immutability, files held."""

    # What the rest of the real driver provides (see `SwarmOperator`).
    _urls: dict[str, str]
    _unlock_key: str | None
    _api: Any
    sup: Any
    cdir: Any
    raft_status: Any
    running: Any
    _operate: Any

    def node_rm(self, node: str, force: bool) -> None:
        """``docker node rm [--force]``: the store refuses a manager and a node that is up."""
        n = self._api("GET", f"/nodes/{node}")
        self._api("DELETE", f"/nodes/{n['ID']}" + ("?force=true" if force else ""))

    def node_ls(self) -> list[dict[str, Any]]:
        """``docker node ls`` as the leader's store says it (MANAGER STATUS is what the
        leader last saw of each manager), with the ROLE column of ``python -m cluster
        node ls`` (``locked``, ``learner``, ...) from each process's own status."""
        nodes: list[dict[str, Any]] = []

        def read() -> None:
            nodes[:] = self._api("GET", "/nodes")

        self._operate(read)  # a user retries `node ls` through an election, bounded
        roles = {n["name"]: n["role"] for n in collect(self.sup, self.cdir.load())["nodes"]}
        rows = []
        for n in sorted(nodes, key=lambda n: n["Description"]["Hostname"]):
            name = n["Description"]["Hostname"]
            ms = n.get("ManagerStatus")
            if ms is None:
                status = ""
            elif ms.get("Leader"):
                status = "Leader"
            else:
                status = str(ms.get("Reachability", "")).capitalize()
            role = "worker" if n["Spec"]["Role"] == "worker" else roles.get(name, "manager")
            rows.append({
                "name": name,
                "status": str(n.get("Status", {}).get("State", "")).capitalize(),
                "availability": str(n["Spec"].get("Availability", "")).capitalize(),
                "manager_status": status,
                "role": role,
            })  # fmt: skip
        return rows

    def _swarm_update(self, query: str) -> dict[str, Any]:
        swarm = self._api("GET", "/swarm")
        version = swarm["Version"]["Index"]
        return self._api("POST", f"/swarm/update?version={version}&{query}", swarm["Spec"])

    def rotate_join_token(self, role: str) -> None:
        """``docker swarm join-token --rotate ROLE``, keeping the replaced token."""
        title = role.capitalize()
        old = self._api("GET", "/swarm")["JoinTokens"][title]
        answer = self._swarm_update(f"rotate{title}Token=true")
        if answer["Cluster"]["JoinTokens"][title] == old:
            raise ClusterError(f"the {role} token did not change")
        self._old_tokens = {**getattr(self, "_old_tokens", {}), role: old}

    def join_old_token(self, role: str) -> str:
        """``docker swarm join --token OLD``: a newcomer with the replaced token."""
        old = getattr(self, "_old_tokens", {}).get(role)
        if old is None:
            raise ClusterError(f"no {role} token was rotated before (rotate_join_token first)")
        m = self.sup.join(old)
        self._urls[m.name] = m.api_url
        return m.name

    def rotate_unlock_key(self) -> None:
        """``docker swarm unlock-key --rotate``, keeping the replaced key."""
        previous = getattr(self, "_unlock_key", None)
        if previous is None:
            raise ClusterError("no unlock key yet (lock the swarm first)")
        before = {st.get("unlock_key_id") for st in self.raft_status().values()}
        key = self._swarm_update("rotateManagerUnlockKey=true").get("UnlockKey")
        if not key or key == previous:
            raise ClusterError("swarm unlock-key --rotate returned no new key")
        self._previous_unlock_key, self._unlock_key = previous, key
        # Each manager takes the new key when it follows the keyring (a duty tick
        # after it applied the rotation): one restarted before that still wants the
        # old key, as Docker warns.  Wait until every running manager has it.
        for _ in attempts(10.0, every=0.05):
            st = self.raft_status()
            ids = {s.get("unlock_key_id") for s in st.values()}
            if len(st) == len(self.running()) and len(ids) == 1 and not ids & before:
                return
        raise ClusterError("the rotated unlock key did not reach every manager within 10 s")

    def probe_api(self, node: str, path: str) -> int:
        """``GET path`` on ``node`` itself (no other manager): its HTTP status."""
        request("GET", f"{self._urls[node]}{path}", timeout=10.0)
        return 200

    def update_secret(self, name: str, data: str) -> None:
        """A new value for a secret's data: the swarm refuses (secrets are immutable)."""
        s = self._api("GET", f"/secrets/{name}")
        body = {"Name": name, "Labels": {}, "Data": b64(data)}
        self._api("POST", f"/secrets/{s['ID']}/update?version={s['Version']['Index']}", body)

    def service_update(self, service: str, secret_add: list[str], secret_rm: list[str]) -> None:
        """``docker service update --secret-rm OLD --secret-add NEW``: a rolling update."""
        s = self._api("GET", f"/services/{service}")
        spec = s["Spec"]
        cs = spec["TaskTemplate"]["ContainerSpec"]
        kept = [r for r in cs.get("Secrets") or [] if r["SecretName"] not in secret_rm]
        added = file_refs("secret", [self._api("GET", f"/secrets/{n}") for n in secret_add])
        cs["Secrets"] = kept + added
        self._api("POST", f"/services/{s['ID']}/update?version={s['Version']['Index']}", spec)
        # The rolling update replaces every task: wait (bounded) until it says so.
        for _ in attempts(30.0, every=0.1):
            state = self._api("GET", f"/services/{s['ID']}").get("UpdateStatus", {}).get("State")
            if state == "completed":
                return
            if state in ("paused", "rollback_started", "rollback_completed"):
                raise ClusterError(f"the rolling update of {service} stopped: {state}")
        raise ClusterError(f"the rolling update of {service} did not complete within 30 s")

    def create_service_with_files(
        self, name: str, replicas: int, image: str, secrets: list[str], configs: list[str]
    ) -> None:
        """``docker service create --secret S --config C``: each mounted under its name."""
        spec = service_spec(name, replicas, image)
        cs = spec["TaskTemplate"]["ContainerSpec"]
        for kind, names in (("secret", secrets), ("config", configs)):
            if names:
                objs = [self._api("GET", f"/{kind}s/{n}") for n in names]
                cs[f"{kind.capitalize()}s"] = file_refs(kind, objs)
        self._api("POST", "/services/create", spec)

    def files_held(self) -> dict[str, dict[str, list[str]]]:
        """node name -> {"secrets": [...], "configs": [...]}: the file names each node's
        agent holds for its running tasks, asked of each node itself (a manager's
        own agent on ``/agent/files``, a worker's on its ``/files``)."""
        desc = self.cdir.load()
        members = [m for m in desc.members if self.sup.process_state(m) == "running"]

        def ask(m: Any) -> dict[str, list[str]] | None:
            path = "/agent/files" if m.role == "manager" else "/files"
            try:
                held = request("GET", f"{m.api_url}{path}", timeout=3.0)
            except (ApiError, Unreachable):
                return None
            return {
                kind.lower(): sorted({f for files in held.get(kind, {}).values() for f in files})
                for kind in ("Secrets", "Configs")
            }

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(members))) as pool:
            answers = list(pool.map(ask, members))
        return {m.name: a for m, a in zip(members, answers, strict=True) if a is not None}

    def api_answers(self) -> dict[str, bytes]:
        """ "NODE GET PATH" -> the body every running node's API answers to each read
        (`_MANAGER_READS`, `_WORKER_READS`), error messages included."""
        desc = self.cdir.load()
        members = [m for m in desc.members if self.sup.process_state(m) == "running"]
        secrets = [s["Spec"]["Name"] for s in self._api("GET", "/secrets")]
        out: dict[str, bytes] = {}
        for m in members:
            out.update(_read_all(m, secrets))
        return out


#: What a manager's API shows of the swarm's objects and of itself (every GET that
#: could carry a secret's data by mistake); ``{secret}`` is each secret's name.
_MANAGER_READS = ("/secrets", "/secrets/{secret}", "/configs", "/services", "/tasks", "/nodes",
                  "/swarm", "/info", "/raft/status", "/agent/files",
                  "/dispatcher/secrets-held")  # fmt: skip
_WORKER_READS = ("/status", "/files", "/secrets-held")


def _read_all(m: Any, secrets: list[str]) -> dict[str, bytes]:
    paths = _MANAGER_READS if m.role == "manager" else _WORKER_READS
    out = {}
    for path in paths:
        for p in [path.format(secret=s) for s in secrets] if "{" in path else [path]:
            try:
                out[f"{m.name} GET {p}"] = json.dumps(request("GET", f"{m.api_url}{p}")).encode()
            except (ApiError, Unreachable) as e:
                out[f"{m.name} GET {p}"] = str(e).encode()
    return out


class AdminNotSimulated:
    """The simulator runs Raft alone: no swarm to administer."""

    def _not_raft(self) -> Any:
        raise NotApplicable("a swarm's nodes, tokens, keys and files are not simulated")

    def node_rm(self, node: str, force: bool) -> None:
        self._not_raft()

    def node_ls(self) -> list[dict[str, Any]]:
        return self._not_raft()

    def rotate_join_token(self, role: str) -> None:
        self._not_raft()

    def join_old_token(self, role: str) -> str:
        return self._not_raft()

    def rotate_unlock_key(self) -> None:
        self._not_raft()

    def probe_api(self, node: str, path: str) -> int:
        return self._not_raft()

    def update_secret(self, name: str, data: str) -> None:
        self._not_raft()

    def service_update(self, service: str, secret_add: list[str], secret_rm: list[str]) -> None:
        self._not_raft()

    def create_service_with_files(
        self, name: str, replicas: int, image: str, secrets: list[str], configs: list[str]
    ) -> None:
        self._not_raft()

    def files_held(self) -> dict[str, dict[str, list[str]]]:
        return self._not_raft()

    def api_answers(self) -> dict[str, bytes]:
        return self._not_raft()
