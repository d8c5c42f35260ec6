"""Every action reaches a driver method, and both drivers have every method.

Adding a verb is one class in `scenarios.steps` plus one method per driver:
these tests fail when a driver lacks the method, when its parameters differ
from the protocol's, or when an action calls another method than it declares.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from scenarios.checks import CHECKS
from scenarios.drivers.real import RealDriver
from scenarios.drivers.sim import SimDriver
from scenarios.steps import ACTIONS, EXPECTATIONS, Action, ClientOp, Driver

#: The protocol's methods (what `typing.Protocol` records as its members).
PROTOCOL = sorted(
    name for name, v in vars(Driver).items() if inspect.isfunction(v) and not name.startswith("_")
)


def missing_methods(cls: type) -> list[str]:
    """Protocol methods ``cls`` lacks, or has with other parameter names."""
    bad = []
    for name in PROTOCOL:
        impl = getattr(cls, name, None)
        if not callable(impl):
            bad.append(name)
            continue
        want = list(inspect.signature(getattr(Driver, name)).parameters)
        if list(inspect.signature(impl).parameters) != want:
            bad.append(f"{name} (parameters differ)")
    return bad


@pytest.mark.parametrize("driver", [RealDriver, SimDriver], ids=lambda c: c.__name__)
def test_each_driver_has_every_protocol_method(driver: type) -> None:
    assert missing_methods(driver) == []


def test_a_driver_without_a_method_is_caught() -> None:
    class Lacking(SimDriver):
        kill = None  # type: ignore[assignment]

        def heal(self, everyone: bool) -> None:  # type: ignore[override]
            pass

    assert missing_methods(Lacking) == ["heal (parameters differ)", "kill"]


@pytest.mark.parametrize("action", sorted(ACTIONS), ids=str)
def test_each_action_names_a_driver_method(action: str) -> None:
    assert ACTIONS[action].driver_method in PROTOCOL


def test_every_expectation_has_a_check() -> None:
    assert set(CHECKS) == set(EXPECTATIONS.values())


# ---------------------------------------------------------------- apply reaches the driver

_SAMPLE: dict[Any, Any] = {
    str: "manager1",
    int: 1,
    float: 1.0,
    bool: True,
    "list[str]": ["manager1"],
    "list[int]": [1],
    "list[list[str]]": [["manager1"]],
}
_SPECIAL = {"role": "manager", "availability": "drain", "kind": "config"}


def _sample(cls: type[Action]) -> Action:
    """An instance with every required field filled (``wait``: a number of seconds)."""
    values = {"seconds": 1.0} if cls.action == "wait" else {}
    for key, (attr, kind, required) in cls.schema().items():
        if required:
            values[attr] = _SPECIAL.get(key, _SAMPLE[kind])
    return cls(number=1, **values)


class Recorder:
    """A driver that records which methods were called, answering plausibly."""

    mode = "simulated"
    ANSWERS: dict[str, Any] = {
        "write": ClientOp("write", "k", "v", 0.0, 0.0, "ok", 1),
        "transfer_leadership": "manager2",
        "join": "manager4",
        "measure_tolerance": (1, "simulated"),
        "measure_costs": {
            "seq_ms": [1.0],
            "conc_ms": [1.0],
            "elections_s": [0.5],
            "failed": 0,
            "cpu_ms_per_write": 0.1,
        },
        "update_service": "nginx:1",
        "rollback_service": ("nginx:1", "manager1"),
        # A service whose rollout to the sample image ("manager1") is over.
        "service_tasks": (
            {
                "Spec": {
                    "Mode": {"Replicated": {"Replicas": 1}},
                    "TaskTemplate": {"ContainerSpec": {"Image": "manager1"}},
                },
                "UpdateStatus": {"State": "completed"},
            },
            [
                {
                    "DesiredState": "running",
                    "Status": {"State": "running"},
                    "Spec": {"ContainerSpec": {"Image": "manager1"}},
                }
            ],
        ),
        "files_held": {},
        "leader": "manager1",
        "now": 0.0,
        "snapshot_tasks": {"t": 0.0, "nodes": {}, "services": {}, "tasks": [], "agents": {}},
        "manage": {"outcome": "ok", "node": "manager1", "status": 200, "error": None},
    }

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> Any:
            self.calls.append(name)
            return self.ANSWERS.get(
                name, [] if name in ("nodes", "services", "tasks", "node_ls") else None
            )

        return call


class FakeStage:
    def __init__(self) -> None:
        self.driver = Recorder()
        self.scenario_name = "t"
        self.write_count = 0

    def node(self, ref: str) -> str:
        return ref

    def remember(self, alias: str | None, node: str) -> None:
        pass

    def say(self, message: str) -> None:
        pass

    def __getattr__(self, name: str) -> Any:  # record_ops, record_placement, ...
        assert name == "record" or name.startswith("record_"), name
        return lambda *args: None


@pytest.mark.parametrize("action", sorted(ACTIONS), ids=str)
def test_apply_calls_the_declared_driver_method(action: str) -> None:
    cls = ACTIONS[action]
    stage = FakeStage()
    _sample(cls).apply(stage)  # type: ignore[arg-type]
    assert cls.driver_method in stage.driver.calls, stage.driver.calls


def test_the_runner_offers_every_stage_member() -> None:
    from scenarios.runner import _Player
    from scenarios.steps import Stage

    members = {n for n in vars(Stage) if not n.startswith("_")} | set(Stage.__annotations__)
    assert members - set(dir(_Player)) == set()
    assert isinstance(vars(_Player)["driver"], property)


def test_every_action_class_is_registered() -> None:
    from scenarios.steps import actions, admin, measures, rollout, swarm, tasks

    defined = {
        cls
        for module in (actions, admin, measures, rollout, swarm, tasks)
        for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, Action) and "action" in vars(cls)
    }
    assert defined == set(ACTIONS.values())
