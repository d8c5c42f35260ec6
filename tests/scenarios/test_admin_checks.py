"""The operator's answers and the plaintext searches: each check can fail.

A `Run` is built by hand with the answers its steps would have recorded; no
cluster is started.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scenarios.checks import CHECKS, Run, StepRecord
from scenarios.steps import expects as ex
from scenarios.steps import parse
from scenarios.steps.admin import files_used

SCENARIO = """
name = "t"
[[step]]
action = "node_ls"
[[step]]
action = "node_rm"
node = "manager3"
[[step]]
action = "files_held"
"""


def _run(answers: dict[int, dict[str, Any]], **kw: Any) -> Run:
    scn = parse(SCENARIO)
    steps = [StepRecord(s.number, s.action, s.describe()) for s in scn.steps]
    return Run(scenario=scn, mode="real", seed=None, driver=None, steps=steps,  # type: ignore[arg-type]
               answers=answers, **kw)  # fmt: skip


def check(run: Run, e: ex.Expectation) -> Any:
    return CHECKS[type(e)](run, e)


REFUSED = {"ok": False, "status": 400, "message": "node x must be demoted to worker before removal"}


def test_refused_passes_on_the_expected_refusal_and_fails_otherwise() -> None:
    e = ex.Refused(number=1, step=2, status=400, contains="demoted")
    assert check(_run({2: REFUSED}), e).passed
    assert not check(_run({2: {"ok": True, "status": None, "message": ""}}), e).passed
    assert not check(_run({2: {**REFUSED, "status": 503}}), e).passed
    assert not check(_run({2: {**REFUSED, "message": "no quorum"}}), e).passed
    assert not check(_run({}), e).passed  # the step never ran


def test_accepted_fails_on_a_refusal_or_no_answer() -> None:
    e = ex.Accepted(number=1, step=2)
    assert check(_run({2: {"ok": True, "status": None, "message": ""}}), e).passed
    assert not check(_run({2: REFUSED}), e).passed
    assert not check(_run({}), e).passed


def _row(name: str, status: str, role: str = "follower") -> dict[str, str]:
    return {"name": name, "status": "Ready", "availability": "Active",
            "manager_status": status, "role": role}  # fmt: skip


def test_manager_status_reads_the_recorded_node_ls() -> None:
    table = [_row("manager1", "Leader", "leader"), _row("manager2", "Unreachable", "down"),
             _row("worker1", "", "worker")]  # fmt: skip
    run = _run({1: {"ok": True, "status": None, "message": "", "table": table}})

    def ms(node: str, status: str, role: str | None = None) -> bool:
        e = ex.ManagerStatus(number=1, node=node, at_step=1, status=status, role=role)
        return check(run, e).passed

    assert ms("manager2", "Unreachable") and not ms("manager2", "Reachable")
    assert ms("manager1", "Leader", "leader") and not ms("manager1", "Leader", "locked")
    assert ms("worker1", "none") and ms("manager3", "absent") and not ms("manager2", "absent")


def _task(tid: str, node: str, secret: str | None) -> dict[str, Any]:
    refs = [{"SecretID": "s", "SecretName": secret, "File": {"Name": secret}}] if secret else []
    return {"ID": tid, "NodeID": node, "DesiredState": "running", "Status": {"State": "running"},
            "Spec": {"ContainerSpec": {"Secrets": refs}}}  # fmt: skip


NODES = [
    {"ID": i, "Description": {"Hostname": n}} for i, n in (("1", "m1"), ("2", "w1"), ("3", "w2"))
]


def test_files_only_where_used_fails_on_a_node_holding_what_it_does_not_use() -> None:
    used = files_used([_task("a", "2", "pw"), _task("b", "3", None)], NODES)
    assert used["w1"]["secrets"] == ["pw"] and used["w2"]["secrets"] == []
    none: dict[str, list[str]] = {"secrets": [], "configs": []}
    good = {"m1": none, "w1": {"secrets": ["pw"], "configs": []}, "w2": none}
    leak = {**good, "w2": {"secrets": ["pw"], "configs": []}}
    missing = {**good, "w1": none}
    e = ex.FilesOnlyWhereUsed(number=1, at_step=3, secrets=["pw"])

    def held(h: dict[str, Any]) -> bool:
        return check(_run({3: {"ok": True, "held": h, "used": used}}), e).passed

    assert held(good)
    assert not held(leak) and not held(missing)
    everywhere = {n: {"secrets": ["pw"], "configs": []} for n in good}
    used_everywhere = {n: {"secrets": ["pw"], "configs": []} for n in good}
    # Every node holds it and uses it: nothing shows the rule, so it cannot pass.
    assert not check(_run({3: {"ok": True, "held": everywhere, "used": used_everywhere}}), e).passed


def test_secret_absent_everywhere_finds_plaintext_in_any_file_of_the_cluster(
    tmp_path: Path,
) -> None:
    for node in ("manager1", "worker1"):
        (tmp_path / node).mkdir()
        (tmp_path / node / "trace.jsonl").write_text("{}\n")
    dirs = {"manager1": tmp_path / "manager1"}
    e = ex.SecretAbsentEverywhere(number=1, secrets=["pw"])
    run = _run({}, named_data={"pw": "hunter2"}, data_dirs=dirs)
    assert check(run, e).passed
    (tmp_path / "worker1" / "worker.log").write_text("oops aHVudGVyMg== logged\n")  # base64
    result = check(run, e)
    assert not result.passed and "worker1/worker.log" in result.detail


def test_a_secrets_plaintext_is_not_in_the_words_of_its_steps() -> None:
    scn = parse(
        'name = "t"\n[[step]]\naction = "create_secret"\nname = "pw"\ndata = "hunter2"\n'
        '[[step]]\naction = "update_secret"\nname = "pw"\ndata = "hunter3"\n'
    )
    for step in scn.steps:
        assert "hunter" not in step.describe() and "pw" in step.describe()
