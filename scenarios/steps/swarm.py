"""Actions on the swarm as an operator sees it: nodes' availability and role,
services, secrets, joining, leadership, autolock.

On the simulator most of these have no meaning (no services, no tasks): its
driver raises `scenarios.steps.driver.NotApplicable` and the step is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

from scenarios.steps.actions import Action
from scenarios.steps.admin import answered
from scenarios.steps.driver import Stage, StepFailed
from scenarios.steps.fields import ParseContext, toml_name

__all__ = [
    "CreateConfig",
    "CreateSecret",
    "CreateService",
    "Drain",
    "Join",
    "Lock",
    "Scale",
    "TransferLeadership",
    "Unlock",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Drain(Action):
    """``docker node update --availability``: drain moves the node's tasks away."""

    action: ClassVar[str] = "drain"
    node: str
    availability: str = "drain"  # drain | pause | active
    alias: str | None = toml_name("as")

    def validate(self, ctx: ParseContext) -> Self:
        ctx.node_ref("node", self.node)
        if self.availability not in ("drain", "pause", "active"):
            ctx.fail("field 'availability' must be drain, pause or active")
        return self

    def apply(self, stage: Stage) -> str | None:
        node = stage.node(self.node)
        stage.record_placement()  # "before", for the figure
        stage.driver.drain(node, self.availability)
        stage.remember(self.alias, node)
        return f"{node} availability {self.availability}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TransferLeadership(Action):
    """The leader hands over (§3.10 of the dissertation): to ``to``, or to the
    most up-to-date follower."""

    action: ClassVar[str] = "transfer_leadership"
    to: str | None = None
    alias: str | None = toml_name("as")

    def validate(self, ctx: ParseContext) -> Self:
        if self.to is not None:
            ctx.node_ref("to", self.to)
        return self

    def apply(self, stage: Stage) -> str | None:
        to = stage.node(self.to) if self.to else None
        if to is not None and to == stage.driver.leader():
            stage.remember(self.alias, to)
            return f"{to} already leads: nothing to transfer"
        chosen = stage.driver.transfer_leadership(to)
        if chosen:
            stage.remember(self.alias, chosen)
        return f"leadership handed to {chosen}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock(Action):
    """``docker swarm update --autolock=true``: a restarted manager starts locked."""

    action: ClassVar[str] = "lock"

    def apply(self, stage: Stage) -> str | None:
        stage.driver.lock()
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Unlock(Action):
    """``docker swarm unlock`` on every manager that restarted locked, with the
    current unlock key, or (``key``) the one a rotation replaced, or a wrong one.

    With another key than the current one the swarm's answer is recorded, not
    obeyed: the check ``refused`` says whether it was refused."""

    action: ClassVar[str] = "unlock"
    key: str = "current"  # current | previous | wrong

    def validate(self, ctx: ParseContext) -> Self:
        if self.key not in ("current", "previous", "wrong"):
            ctx.fail("field 'key' must be current, previous or wrong")
        return self

    def apply(self, stage: Stage) -> str | None:
        ok, answer = answered(stage, self.number, lambda: stage.driver.unlock(self.key))
        if not ok and self.key == "current":
            raise StepFailed(f"unlock refused: {answer['message']}")
        if ok:
            return None if self.key == "current" else f"the {self.key} key unlocked it"
        return f"refused ({answer.get('status') or ''} {answer['message']})".replace("( ", "(")


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateService(Action):
    action: ClassVar[str] = "create_service"
    name: str
    replicas: int = 1
    image: str = "nginx:alpine"
    #: ``--secret NAME`` / ``--config NAME`` for each (by name, target = the name).
    secrets: list[str] | None = None
    configs: list[str] | None = None

    def validate(self, ctx: ParseContext) -> Self:
        if self.replicas < 0:
            ctx.fail("field 'replicas' must not be negative")
        return self

    def apply(self, stage: Stage) -> str | None:
        if self.secrets or self.configs:
            stage.driver.create_service_with_files(
                self.name, self.replicas, self.image, self.secrets or [], self.configs or []
            )
        else:
            stage.driver.create_service(self.name, self.replicas, self.image)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Scale(Action):
    action: ClassVar[str] = "scale"
    service: str
    replicas: int

    def validate(self, ctx: ParseContext) -> Self:
        if self.replicas < 0:
            ctx.fail("field 'replicas' must not be negative")
        return self

    def apply(self, stage: Stage) -> str | None:
        stage.driver.scale(self.service, self.replicas)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSecret(Action):
    """A secret whose plaintext must never reach a manager's disk (encrypted at rest)."""

    action: ClassVar[str] = "create_secret"
    name: str
    data: str

    def describe(self) -> str:
        # The step's words reach the progress lines, the note and the replay:
        # a secret's plaintext must not (only how long it is).
        return f"{self.action} name={self.name} data=<{len(self.data)} bytes, not shown>"

    def apply(self, stage: Stage) -> str | None:
        stage.driver.create_secret(self.name, self.data)
        stage.record_named(self.name, self.data)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateConfig(Action):
    action: ClassVar[str] = "create_config"
    name: str
    data: str

    def apply(self, stage: Stage) -> str | None:
        stage.driver.create_config(self.name, self.data)
        stage.record_named(self.name, self.data)
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Join(Action):
    """``docker swarm join`` with the swarm's own manager or worker token."""

    action: ClassVar[str] = "join"
    role: str  # manager | worker
    alias: str | None = toml_name("as")

    def validate(self, ctx: ParseContext) -> Self:
        if self.role not in ("manager", "worker"):
            ctx.fail("field 'role' must be manager or worker")
        # The swarm names a newcomer after the others of its role (the first
        # free number); later steps may use that name, or the step's 'as'.
        taken = {n for n in ctx.names if n.startswith(self.role)}
        k = 1
        while f"{self.role}{k}" in taken:
            k += 1
        ctx.names.append(f"{self.role}{k}")
        return self

    def apply(self, stage: Stage) -> str | None:
        name = stage.driver.join(self.role)
        stage.record_joined(name, self.role, self.number)
        stage.remember(self.alias, name)
        if self.role == "manager":
            return f"{name} joined with the manager token: a learner until it catches up"
        return f"{name} joined with the worker token: an agent, no part of Raft"
