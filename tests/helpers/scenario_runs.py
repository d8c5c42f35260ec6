"""Helpers for the scenario tests: run a built-in, and always clean up; and
scenario files written the way an outsider writes them from docs/scenarios.md
(`TOUR`, `NO_QUORUM`, `STALE`), run simulated in tests/scenarios/test_scenario_contract.py
and on real processes in tests/scenarios/test_builtins_real.py."""

from __future__ import annotations

import json
from pathlib import Path

from scenarios.steps import builtins, load


def builtin(name: str):
    return load(builtins()[name])


def failed_checks(out: Path, name: str) -> list[dict]:
    result = json.loads((out / name / "result.json").read_text())
    return [c for c in result["checks"] if not c["passed"]]


#: Every action the scenario docs name, once, the way an outsider spells them.
TOUR = """
name = "tour"
title = "Every documented action once"
[cluster]
managers = 5
election_timeout_ms = 500
heartbeat_ms = 50
request_timeout_ms = 1000

[[steps]]
action = "wait"
for = "leader"
[[steps]]
action = "write"
count = 3
[[steps]]
action = "pause"
node = "leader"
as = "frozen"
[[steps]]
action = "wait"
for = "leader"
timeout = 10
[[steps]]
action = "unpause"
node = "frozen"
[[steps]]
action = "partition"
groups = [["manager1", "manager2"], ["manager3", "manager4", "manager5"]]
[[steps]]
action = "wait"
seconds = 2
[[steps]]
action = "heal"
[[steps]]
action = "isolate"
node = "manager2"
[[steps]]
action = "write"
count = 2
[[steps]]
action = "heal"
[[steps]]
action = "kill"
node = "manager4"
[[steps]]
action = "restart"
node = "manager4"
[[steps]]
action = "demote"
node = "manager5"
[[steps]]
action = "write"
count = 2
[[steps]]
action = "promote"
node = "manager5"
[[steps]]
action = "drain"
node = "manager3"
[[steps]]
action = "transfer-leadership"
to = "manager1"
[[steps]]
action = "write"
count = 2
[[steps]]
action = "wait"
for = "converged"

[[expectations]]
check = "leader-within"
seconds = 5
after_step = 3
[[expectations]]
check = "writes-succeed"
steps = [10, 19]
[[expectations]]
check = "leader-is"
node = "manager1"
after_step = 18
[[expectations]]
check = "no-committed-write-lost"
[[expectations]]
check = "linearizable"
"""

#: Nobody can reach anybody: no leader, writes refused; heal brings one back.
NO_QUORUM = """
name = "no-quorum"
[cluster]
managers = 3
election_timeout_ms = 300
heartbeat_ms = 30
request_timeout_ms = 800

[[step]]
action = "wait"
for = "leader"
[[step]]
action = "write"
count = 2
[[step]]
action = "partition"
groups = [["manager1"], ["manager2"], ["manager3"]]
[[step]]
action = "wait"
for = "no-leader"
timeout = 5
[[step]]
action = "write"
count = 3
[[step]]
action = "write"
via = "manager2"
[[step]]
action = "heal"
[[step]]
action = "wait"
for = "leader"
[[step]]
action = "write"
count = 2

[[expect]]
check = "no-leader-while"
steps = [5, 6]
[[expect]]
check = "writes-fail-with-no-quorum"
steps = [5, 6]
[[expect]]
check = "leader_within"
seconds = 3
after_step = 7
[[expect]]
check = "leader_within"
seconds = 5
[[expect]]
check = "writes_succeed"
steps = [9]
[[expect]]
check = "history-is-linearizable"
"""

#: A node misses writes, then campaigns first (short timeout) with a stale log
#: against a restarted voter (no leader heard, so only the log decides).
STALE = """
name = "stale"
[cluster]
managers = 3
election_timeout_ms = 500
heartbeat_ms = 50
[cluster.election_timeout_overrides]
manager1 = 150

[[step]]
action = "wait"
for = "leader_in"
nodes = ["manager1"]
[[step]]
action = "kill"
node = "manager3"
[[step]]
action = "write"
count = 5
[[step]]
action = "kill"
node = "manager1"
[[step]]
action = "kill"
node = "manager2"
[[step]]
action = "set_election_timeout"
node = "manager3"
ms = 100
[[step]]
action = "restart"
node = "manager2"
[[step]]
action = "wait"
for = "leader"
timeout = 10
[[step]]
action = "write"
count = 2
[[step]]
action = "restart"
node = "manager1"
[[step]]
action = "wait"
for = "converged"

[[expect]]
check = "stale-votes-refused"
node = "manager3"
reason = "behind"
by = ["manager2"]
[[expect]]
check = "winner-has-the-most-up-to-date-log"
after_step = 6
[[expect]]
check = "never_leader"
node = "manager3"
[[expect]]
check = "leader-is"
node = "manager2"
after_step = 8
[[expect]]
check = "no_acknowledged_write_lost"
"""
