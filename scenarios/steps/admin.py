"""The operator's administrative verbs, whose *answer* is the point.

``node rm`` of a manager, a join with a token that was rotated away, a wrong
unlock key, a change to a secret's data: the swarm refuses each, and a
student should see the refusal, word for word.  So these steps never stop a
run when the swarm says no: they record what it answered
(`scenarios.steps.driver.Stage.record_answer`) and the checks
``refused`` / ``accepted`` (`scenarios.checks.admin`) decide whether that
was the expected answer -- a step that was meant to work and was refused
fails its ``accepted`` check, one meant to be refused that worked fails
``refused``.

``files_held`` records, side by side, which secret and config files each
node's agent holds and which its running tasks reference.

``node_ls`` records the ``docker node ls`` table as it was at that moment
(MANAGER STATUS: Leader / Reachable / Unreachable, and the role column that
says ``locked``), for the check ``manager_status`` and for the note.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from scenarios.steps.actions import Action
from scenarios.steps.driver import NotApplicable, Stage
from scenarios.steps.fields import ParseContext

__all__ = [
    "FilesHeld",
    "JoinOldToken",
    "NodeLs",
    "NodeRm",
    "ProbeApi",
    "RotateJoinToken",
    "RotateUnlockKey",
    "ServiceUpdate",
    "UpdateSecret",
    "answered",
    "files_used",
]

#: What the swarm's refusals are raised as (an HTTP error or a CLI-level one).
#: Read by name so this package keeps importing nothing of the project.
_REFUSALS = ("ApiError", "ClusterError")


def answered(stage: Stage, number: int, call: Callable[[], Any]) -> tuple[bool, Any]:
    """Call ``call``; record the swarm's answer for step ``number``: (ok, result)."""
    try:
        result = call()
    except NotApplicable:
        raise
    except Exception as e:
        if type(e).__name__ not in _REFUSALS:
            raise
        message = str(getattr(e, "message", None) or e)
        answer = {"ok": False, "status": getattr(e, "status", None), "message": message}
        stage.record_answer(number, answer)
        return False, answer
    stage.record_answer(number, {"ok": True, "status": None, "message": ""})
    return True, result


def _said(ok: bool, answer: Any, done: str) -> str:
    if ok:
        return done
    status = f"{answer['status']} " if answer.get("status") else ""
    return f"refused ({status}{answer['message']})"


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRm(Action):
    """``docker node rm [--force] NODE``: refused for a manager (demote it first)
    and for a node that is up, unless ``--force``."""

    action: ClassVar[str] = "node_rm"
    node: str
    force: bool = False

    def validate(self, ctx: ParseContext) -> Self:
        ctx.node_ref("node", self.node)
        return self

    def apply(self, stage: Stage) -> str | None:
        node = stage.node(self.node)
        ok, answer = answered(stage, self.number, lambda: stage.driver.node_rm(node, self.force))
        return _said(ok, answer, f"{node} removed from the swarm")


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeLs(Action):
    """``docker node ls``: the table, recorded for the note and the checks.

    With ``node`` and ``until``, it first waits (up to ``timeout`` s) for that
    node's MANAGER STATUS to read ``until`` -- the leader marks a silent manager
    Unreachable only after a while -- and records the last table either way."""

    action: ClassVar[str] = "node_ls"
    node: str | None = None
    until: str | None = None
    timeout: float = 10.0

    def validate(self, ctx: ParseContext) -> Self:
        if (self.node is None) != (self.until is None):
            ctx.fail("give both 'node' and 'until', or neither")
        if self.node is not None:
            ctx.node_ref("node", self.node)
        return self

    def apply(self, stage: Stage) -> str | None:
        d = stage.driver
        node = stage.node(self.node) if self.node else None
        waited = 0.0
        while True:
            rows = d.node_ls()
            shown = {r["name"]: r["manager_status"] for r in rows}
            if node is None or shown.get(node) == self.until or waited >= self.timeout:
                break
            d.wait(0.2)
            waited += 0.2
        stage.record_answer(self.number, {"ok": True, "status": None, "message": "",
                                          "table": rows})  # fmt: skip
        return "; ".join(f"{r['name']} {r['manager_status'] or r['role']}" for r in rows)


@dataclass(frozen=True, slots=True, kw_only=True)
class RotateJoinToken(Action):
    """``docker swarm join-token --rotate ROLE``: the old token stops working."""

    action: ClassVar[str] = "rotate_join_token"
    role: str

    def validate(self, ctx: ParseContext) -> Self:
        if self.role not in ("manager", "worker"):
            ctx.fail("field 'role' must be manager or worker")
        return self

    def apply(self, stage: Stage) -> str | None:
        driver = stage.driver
        ok, answer = answered(stage, self.number, lambda: driver.rotate_join_token(self.role))
        return _said(ok, answer, f"new {self.role} token; the previous one is kept to try it")


@dataclass(frozen=True, slots=True, kw_only=True)
class JoinOldToken(Action):
    """``docker swarm join --token OLD``: a node tries the token a rotation replaced."""

    action: ClassVar[str] = "join_old_token"
    role: str

    def validate(self, ctx: ParseContext) -> Self:
        if self.role not in ("manager", "worker"):
            ctx.fail("field 'role' must be manager or worker")
        return self

    def apply(self, stage: Stage) -> str | None:
        driver = stage.driver
        ok, answer = answered(stage, self.number, lambda: driver.join_old_token(self.role))
        if ok:
            stage.record_joined(answer, self.role, self.number)
        return _said(ok, answer, f"{answer} joined with the old token")


@dataclass(frozen=True, slots=True, kw_only=True)
class RotateUnlockKey(Action):
    """``docker swarm unlock-key --rotate``: a new key; the old one is kept to try it."""

    action: ClassVar[str] = "rotate_unlock_key"

    def apply(self, stage: Stage) -> str | None:
        ok, answer = answered(stage, self.number, stage.driver.rotate_unlock_key)
        return _said(ok, answer, "new unlock key (the previous one kept to try it)")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeApi(Action):
    """An API call to one manager (``GET path``): what it answers, e.g. 503 while locked."""

    action: ClassVar[str] = "probe_api"
    node: str
    path: str = "/nodes"

    def validate(self, ctx: ParseContext) -> Self:
        ctx.node_ref("node", self.node)
        if not self.path.startswith("/"):
            ctx.fail("field 'path' must start with /")
        return self

    def apply(self, stage: Stage) -> str | None:
        node = stage.node(self.node)
        ok, answer = answered(stage, self.number, lambda: stage.driver.probe_api(node, self.path))
        return _said(ok, answer, f"GET {self.path} on {node}: {answer}")


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSecret(Action):
    """Try to change a secret's data (``POST /secrets/ID/update``): secrets are immutable."""

    action: ClassVar[str] = "update_secret"
    name: str
    data: str

    def describe(self) -> str:
        return f"{self.action} name={self.name} data=<{len(self.data)} bytes, not shown>"

    def apply(self, stage: Stage) -> str | None:
        # The plaintext must be searched for too: it must not land anywhere.
        stage.record_named(f"{self.name}:update", self.data)
        call = lambda: stage.driver.update_secret(self.name, self.data)  # noqa: E731
        ok, answer = answered(stage, self.number, call)
        return _said(ok, answer, f"the data of secret {self.name} changed")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceUpdate(Action):
    """``docker service update --secret-rm OLD --secret-add NEW SERVICE``: the
    way to rotate a secret (a new secret, then a rolling update of the tasks)."""

    action: ClassVar[str] = "service_update"
    service: str
    secret_add: list[str] | None = None
    secret_rm: list[str] | None = None

    def validate(self, ctx: ParseContext) -> Self:
        if not (self.secret_add or self.secret_rm):
            ctx.fail("give secret_add or secret_rm")
        return self

    def apply(self, stage: Stage) -> str | None:
        add, rm = self.secret_add or [], self.secret_rm or []
        call = lambda: stage.driver.service_update(self.service, add, rm)  # noqa: E731
        ok, answer = answered(stage, self.number, call)
        return _said(ok, answer, f"{self.service} updated")


def files_used(tasks: list[dict[str, Any]], nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """node name -> {"secrets": [...], "configs": [...]}: the files the node's running
    tasks reference (by target file name), i.e. what it should hold -- and nothing else."""
    names = {n["ID"]: n.get("Description", {}).get("Hostname", n["ID"]) for n in nodes}
    out: dict[str, dict[str, set[str]]] = {
        name: {"secrets": set(), "configs": set()} for name in names.values()
    }
    for t in tasks:
        if t.get("DesiredState") != "running" or t.get("Status", {}).get("State") != "running":
            continue
        node = names.get(t.get("NodeID", ""))
        if node is None:
            continue
        cs = t.get("Spec", {}).get("ContainerSpec", {})
        for kind, field, source in (("secrets", "Secrets", "SecretName"),
                                    ("configs", "Configs", "ConfigName")):  # fmt: skip
            for ref in cs.get(field) or []:
                out[node][kind].add((ref.get("File") or {}).get("Name") or ref.get(source, ""))
    return {n: {k: sorted(v) for k, v in kinds.items()} for n, kinds in out.items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class FilesHeld(Action):
    """What every node's agent holds (file names only) next to what its running tasks
    use, recorded for ``files_only_where_used``.  An agent mounts a task's files on
    its next round after the task runs, so this waits (up to ``timeout``) until the
    two agree, and records the last look either way: the check decides."""

    action: ClassVar[str] = "files_held"
    timeout: float = 10.0

    def apply(self, stage: Stage) -> str | None:
        d = stage.driver
        held: dict[str, Any] = {}
        used: dict[str, Any] = {}
        waited = 0.0
        while True:
            used = files_used(d.tasks(), d.nodes())
            held = d.files_held()
            if held == {n: used.get(n, {"secrets": [], "configs": []}) for n in held} or (
                waited >= self.timeout
            ):
                break
            d.wait(0.2)
            waited += 0.2
        stage.record_answer(self.number, {"ok": True, "status": None, "message": "",
                                          "held": held, "used": used})  # fmt: skip
        return "; ".join(
            f"{n}: {', '.join(h['secrets'] + h['configs']) or 'nothing'}"
            for n, h in sorted(held.items())
        )
