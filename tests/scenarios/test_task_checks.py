"""The task checks on hand-made samples: each passes on the evidence its
scenario shows, and fails on the evidence that would contradict it."""

from __future__ import annotations

from typing import Any

import pytest

from scenarios.checks import CheckResult, Run, StepRecord, evaluate
from scenarios.steps import expects_tasks as et
from scenarios.steps import parse
from scenarios.steps.tasks import is_quorum_refusal, settled

NODES = ("manager1", "manager2", "manager3", "worker1")


def task(tid: str, node: str, service: str = "web", desired: str = "running",
         state: str = "running", current: bool = True) -> dict[str, Any]:  # fmt: skip
    return {"id": tid, "service": service, "label": f"{service}.{tid}", "node": node,
            "desired": desired, "state": state, "current": current}  # fmt: skip


def sample(name: str, t: float, tasks: list[dict[str, Any]], *, replicas: int | None = 4,
           nodes: dict[str, tuple[str, str]] | None = None,
           agents: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:  # fmt: skip
    """A snapshot; agents default to what the store says of running tasks."""
    states = nodes or {}
    if agents is None:
        agents = {}
        for tk in tasks:
            if tk["desired"] == "running":
                agents.setdefault(tk["node"], {})[tk["id"]] = tk["state"]
    return {
        "name": name,
        "t": t,
        "nodes": {
            n: {
                "state": states.get(n, ("ready", "active"))[0],
                "availability": states.get(n, ("ready", "active"))[1],
                "role": "manager",
            }
            for n in NODES
        },
        "services": {"web": {"replicas": replicas}},
        "tasks": tasks,
        "agents": {n: {"tasks": a, "last_contact": None} for n, a in agents.items()},
    }


def run_with(records: dict[str, list[dict[str, Any]]], mode: str = "real") -> Run:
    scn = parse('name = "t"\n[[step]]\naction = "wait"\nseconds = 1\n')
    steps = [StepRecord(1, "wait", "wait seconds=1", status="ok")]
    run = Run(scenario=scn, mode=mode, seed=None, driver=None, steps=steps)  # type: ignore[arg-type]
    run.records = records
    return run


def check(run: Run, e: Any) -> CheckResult:
    return evaluate(run, e)


BEFORE = [task("a", "worker1"), task("b", "worker1"), task("c", "manager1"), task("d", "manager2")]


# ---------------------------------------------------------------- tasks_kept_running


def test_tasks_kept_running_passes_when_the_agents_still_run_them():
    later = sample("no-quorum", 12.0, BEFORE)
    run = run_with({"tasks": [sample("before", 10.0, BEFORE), later]})
    e = et.TasksKeptRunning(number=1, since="before", at="no-quorum", nodes=["worker1"])
    result = check(run, e)
    assert result.passed, result.detail
    assert "worker1 2 of 2" in result.detail
    assert run.metrics["tasks_fact"].startswith("2 of 2 tasks still running at 'no-quorum'")


def test_tasks_kept_running_fails_when_an_agent_dropped_one():
    agents = {"worker1": {"a": "running", "b": "shutdown"}}
    later = sample("no-quorum", 12.0, BEFORE, agents=agents)
    run = run_with({"tasks": [sample("before", 10.0, BEFORE), later]})
    e = et.TasksKeptRunning(number=1, since="before", at="no-quorum", nodes=["worker1"])
    result = check(run, e)
    assert not result.passed and "stopped: b@worker1" in result.detail


def test_tasks_kept_running_exactly_fails_on_a_new_task_there():
    after = [*BEFORE, task("e", "worker1")]
    run = run_with({"tasks": [sample("start", 1.0, BEFORE), sample("paused", 2.0, after)]})
    loose = et.TasksKeptRunning(number=1, since="start", at="paused", nodes=["worker1"])
    strict = et.TasksKeptRunning(number=2, since="start", at="paused", nodes=["worker1"],
                                 exactly=True)  # fmt: skip
    assert check(run, loose).passed
    result = check(run, strict)
    assert not result.passed and "new there: e@worker1" in result.detail


def test_a_missing_snapshot_or_no_task_at_all_fails():
    run = run_with({"tasks": [sample("before", 1.0, [])]})
    e = et.TasksKeptRunning(number=1, since="before", at="later")
    result = check(run, e)
    assert not result.passed and "no snapshot named 'later'" in result.detail
    run = run_with({"tasks": [sample("a", 1.0, []), sample("b", 2.0, [])]})
    assert not check(run, et.TasksKeptRunning(number=1, since="a", at="b")).passed


def test_task_checks_are_not_applicable_on_the_simulator():
    run = run_with({}, mode="simulated")
    result = check(run, et.TasksKeptRunning(number=1, since="a", at="b"))
    assert result.passed and result.skipped


# ---------------------------------------------------------------- management


def attempt(step: int, outcome: str, status: int | None, error: str | None) -> dict[str, Any]:
    return {"step": step, "command": "service_scale", "target": "web", "node": "manager3",
            "outcome": outcome, "status": status, "error": error}  # fmt: skip


NO_LEADER = "no leader: manager3 knows of no leader (election under way or no quorum)"
DEAD_LEADER = "the leader manager1 could not be reached from manager3 (no quorum?)"


@pytest.mark.parametrize(
    ("status", "error", "quorum"),
    [
        (503, NO_LEADER, True),
        (503, "the write did not commit within 1.5s: the leader cannot reach a majority", True),
        (503, DEAD_LEADER, False),  # a connection error to a dead node, not the quorum
        (409, "update out of sequence", False),
        (None, "connection refused", False),
    ],
)
def test_what_counts_as_the_quorum_refusal(status, error, quorum):
    assert is_quorum_refusal(status, error) is quorum


def test_management_refused_needs_every_attempt_refused_for_want_of_quorum():
    ok = run_with({"manage": [attempt(1, "refused", 503, NO_LEADER)] * 2})
    e = et.ManagementRefusedNoQuorum(number=1, steps=[1])
    assert check(ok, e).passed
    assert ok.metrics["refused_fact"].startswith("2 of 2 commands")
    dead = run_with({"manage": [attempt(1, "refused", 503, DEAD_LEADER)]})
    assert not check(dead, e).passed
    accepted = run_with({"manage": [attempt(1, "ok", 200, None)]})
    assert not check(accepted, e).passed
    assert not check(run_with({"manage": []}), e).passed


def test_management_accepted():
    e = et.ManagementAccepted(number=1, steps=[1])
    assert check(run_with({"manage": [attempt(1, "ok", 200, None)]}), e).passed
    assert not check(run_with({"manage": [attempt(1, "refused", 503, NO_LEADER)]}), e).passed


# ---------------------------------------------------------------- placement


def global_tasks(*nodes: str) -> list[dict[str, Any]]:
    return [task(f"g{n}", n, service="agent") for n in nodes]


def test_one_task_per_node_on_every_eligible_node_and_none_elsewhere():
    drained = {"manager3": ("ready", "drain")}
    good = sample("s", 1.0, global_tasks("manager1", "manager2", "worker1"), nodes=drained)
    run = run_with({"tasks": [good]})
    e = et.OneTaskPerNode(number=1, service="agent", at="s",
                          nodes=["manager1", "manager2", "worker1"])  # fmt: skip
    result = check(run, e)
    assert result.passed, result.detail
    assert "none on manager3 drain/ready" in result.detail
    # The drained node still runs its task: fails.
    bad = sample("s", 1.0, global_tasks("manager1", "manager2", "manager3", "worker1"),
                 nodes=drained)  # fmt: skip
    assert not check(run_with({"tasks": [bad]}), e).passed
    # The joined worker has none: fails.
    missing = sample("s", 1.0, global_tasks("manager1", "manager2"), nodes=drained)
    assert not check(run_with({"tasks": [missing]}), e).passed


def test_placement_unchanged_and_tasks_spread():
    lopsided = [task("a", "manager1"), task("b", "manager1"), task("c", "manager2")]
    moved = [task("a", "manager3"), task("b", "manager1"), task("c", "manager2")]
    run = run_with({"tasks": [sample("x", 1.0, lopsided), sample("y", 2.0, lopsided),
                              sample("z", 3.0, moved)]})  # fmt: skip
    assert check(run, et.PlacementUnchanged(number=1, since="x", at="y")).passed
    assert not check(run, et.PlacementUnchanged(number=1, since="y", at="z")).passed
    # Spread over the eligible nodes (worker1 is down here): 1/1/1 yes, 2/1/0 no.
    down = {"worker1": ("down", "active")}
    spread = run_with({"tasks": [sample("f", 1.0, moved, nodes=down)]})
    assert check(spread, et.TasksSpread(number=1, service="web", at="f")).passed
    lop = run_with({"tasks": [sample("f", 1.0, lopsided, nodes=down)]})
    assert not check(lop, et.TasksSpread(number=1, service="web", at="f")).passed


def test_tasks_rescheduled_needs_none_left_and_the_full_count():
    before = [task("a", "worker1"), task("b", "manager1")]
    after = [task("a", "worker1", desired="shutdown", state="orphaned"), task("b", "manager1"),
             task("c", "manager2")]  # fmt: skip
    down = {"worker1": ("down", "active")}
    samples = [sample("before", 10.0, before, replicas=2),
               sample("", 13.2, before, replicas=2, nodes=down),
               sample("after", 23.5, after, replicas=2, nodes=down)]  # fmt: skip
    e = et.TasksRescheduled(number=1, node="worker1", service="web", since="before", at="after")
    result = check(run_with({"tasks": samples}), e)
    assert result.passed, result.detail
    assert "worker1 seen down 3.2 s after 'before'" in result.detail
    still = [*samples[:2], sample("after", 23.5, before, replicas=2, nodes=down)]
    assert not check(run_with({"tasks": still}), e).passed


# ---------------------------------------------------------------- settling


def test_settled_waits_for_the_agents_and_for_global_tasks_on_every_node():
    tasks = [task("a", "worker1"), task("b", "manager1")]
    assert settled(sample("", 1.0, tasks, replicas=2))
    lagging = sample("", 1.0, tasks, replicas=2, agents={"worker1": {"a": "starting"}})
    assert not settled(lagging)
    stopping = [*tasks, task("c", "manager2", desired="shutdown")]
    assert not settled(sample("", 1.0, stopping, replicas=2))
    glob = sample("", 1.0, global_tasks("manager1", "manager2", "manager3"), replicas=None)
    glob["services"] = {"agent": {"replicas": None}}
    assert not settled(glob)  # worker1 is ready and active, and has none yet


def test_the_new_verbs_have_their_docker_equivalents():
    from cluster.local.verbs import equivalent

    assert equivalent("create_global_service", name="agent").docker == (
        "docker service create --name agent --mode global nginx:alpine"
    )
    assert equivalent("force_update", service="web").docker == "docker service update --force web"
    scale = equivalent("manage", command="service_scale", service="web", replicas=6)
    assert scale.docker == "docker service scale web=6"
    node = equivalent("manage", "worker1", command="node_update", availability="pause")
    assert node.docker == "docker node update --availability pause worker1"


def test_the_task_checks_correct_their_misconceptions_in_the_exam_card():
    from scenarios.report import _misconceptions
    from viz.notes import render

    run = run_with({})
    run.metrics.update(refused_fact="3 of 3 commands refused", tasks_fact="4 of 4 tasks running")
    checks = [
        CheckResult("management_refused_no_quorum (steps 15-17)", True, "503 x3"),
        CheckResult("tasks_kept_running on worker1", True, "worker1 2 of 2"),
        CheckResult("drained_manager_votes (step 23)", True, "manager3 availability drain"),
        CheckResult("placement_unchanged ('a' to 'b')", True, "0 moved"),
        CheckResult("tasks_spread web at 'f'", True, "manager1 1, manager2 2"),
        CheckResult("one_task_per_node agent at 'd'", True, "none on manager3 drain/ready"),
    ]
    beliefs = _misconceptions(run, checks)
    assert [b["kind"] for b in beliefs] == [
        "quorum_tasks", "drained_vote", "active_rebalance", "global_drain"
    ]  # fmt: skip
    failed = [CheckResult(c.name, False, c.detail) for c in checks]
    assert _misconceptions(run, failed) == []  # no evidence, no claim
    text = render("_misconceptions.md.j2", misconceptions=beliefs)
    assert '"when the managers lose their quorum, the services go down". Only management ' in text
    assert "3 of 3 commands refused, while 4 of 4 tasks running." in text
    assert "did spread them (manager1 1, manager2 2)" in text
