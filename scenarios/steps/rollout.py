"""Rolling updates and rollbacks of a service: ``docker service update --image``
and ``docker service rollback``.

Each step issues the change and then watches the rollout until it ends, as
``docker service update`` does without ``--detach``: every poll of the
service's tasks becomes a sample (how many tasks run each image, and what
``UpdateStatus`` says), which the figure "tasks by image over time" and the
checks read.  The tasks themselves are the evidence: the checks compare the
new tasks' creation times with the update's parallelism and delay.

On the simulator there are no services: its driver raises
`scenarios.steps.driver.NotApplicable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from scenarios.steps.actions import Action
from scenarios.steps.driver import Stage, StepFailed
from scenarios.steps.fields import ParseContext

__all__ = ["ROLLOUT_TABLE", "TASKS_TABLE", "RollbackService", "UpdateService", "watch_rollout"]

#: The `Stage.record` table the samples go to.
ROLLOUT_TABLE = "rollout"
#: ... and the one for the service's tasks once the rollout ended (one row per step).
TASKS_TABLE = "rollout_tasks"


def _task_row(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "image": t.get("Spec", {}).get("ContainerSpec", {}).get("Image", "?"),
        "created": t.get("CreatedAt", ""),
        "slot": t.get("Slot"),
        "state": t.get("Status", {}).get("State", ""),
        "desired": t.get("DesiredState", ""),
    }


def _images(tasks: list[dict[str, Any]]) -> dict[str, int]:
    """Running tasks per image (desired and actual state both ``running``)."""
    out: dict[str, int] = {}
    for t in tasks:
        if t.get("DesiredState") != "running" or t.get("Status", {}).get("State") != "running":
            continue
        image = t.get("Spec", {}).get("ContainerSpec", {}).get("Image", "?")
        out[image] = out.get(image, 0) + 1
    return out


def watch_rollout(
    stage: Stage, step: int, service: str, change: tuple[str, str], timeout: float
) -> str:
    """Poll until every task of ``service`` runs the image ``change`` leads to (from,
    to) and the updater says it is done; record a sample per poll, and the tasks
    at the end.  Returns the final ``UpdateStatus.State``."""
    image = change[1]
    d = stage.driver
    start = d.now()
    while True:
        svc, tasks = d.service_tasks(service)
        status = (svc.get("UpdateStatus") or {}).get("State", "")
        images = _images(tasks)
        spec_image = svc["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image", "?")
        stage.record(ROLLOUT_TABLE, {"t": d.now(), "step": step, "images": images,
                                         "state": status, "spec": spec_image})  # fmt: skip
        replicas = svc["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0)
        done = status in ("completed", "rollback_completed")
        if done and images == {image: replicas}:
            stage.record(TASKS_TABLE, {"step": step, "replicas": replicas, "from": change[0],
                                           "to": image,
                                           "tasks": [_task_row(t) for t in tasks]})  # fmt: skip
            return status
        if d.now() - start > timeout:
            raise StepFailed(
                f"the rollout to {image} did not finish within {timeout:g} s "
                f"(state {status or 'none'}, running {images})"
            )
        d.poll()


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateService(Action):
    """``docker service update --image IMAGE --update-parallelism P --update-delay D``,
    then watch the tasks being replaced, ``parallelism`` at a time."""

    action: ClassVar[str] = "update_service"
    service: str
    image: str
    parallelism: int = 1
    #: Seconds between batches (``--update-delay``).
    delay: float = 0.0
    #: Bound on the whole rollout.
    timeout: float = 60.0

    def validate(self, ctx: ParseContext) -> Self:
        if self.parallelism < 0:
            ctx.fail("field 'parallelism' must not be negative (0: all at once)")
        if self.delay < 0:
            ctx.fail("field 'delay' must not be negative")
        return self

    def apply(self, stage: Stage) -> str | None:
        previous = stage.driver.update_service(
            self.service, self.image, self.parallelism, self.delay
        )
        change = (previous, self.image)
        state = watch_rollout(stage, self.number, self.service, change, self.timeout)
        return f"{previous} -> {self.image}: {state}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackService(Action):
    """``docker service rollback``: back to the spec before the last update."""

    action: ClassVar[str] = "rollback_service"
    service: str
    timeout: float = 60.0

    def apply(self, stage: Stage) -> str | None:
        current, previous = stage.driver.rollback_service(self.service)
        change = (current, previous)
        state = watch_rollout(stage, self.number, self.service, change, self.timeout)
        return f"{current} -> {previous}: {state}"
