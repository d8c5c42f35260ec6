"""A simulated correct register, for tests and the benchmark."""

from __future__ import annotations

import random
from typing import Any

from scenarios.linearizability.history import Operation, Status

__all__ = ["random_register_history"]


def random_register_history(
    rng: random.Random,
    n_ops: int = 5000,
    n_keys: int = 10,
    n_clients: int = 20,
    p_info: float = 0.02,
    p_fail: float = 0.02,
) -> list[Operation]:
    """A linearizable history from an ideal register under random concurrency.

    Each client runs operations back to back (random think and service
    times); each operation takes effect at a random instant inside its
    interval, and answers are computed by replaying those instants in order,
    so the history is correct by construction.  A timed-out operation takes
    effect (or not) somewhere after its invocation, and its client continues
    under a fresh process id, as a real client would after losing a reply.
    """
    planned: list[dict[str, Any]] = []
    next_process = n_clients
    next_value = 1
    per_client = max(1, n_ops // n_clients)
    for client in range(n_clients):
        process, now = client, rng.uniform(0.0, 1.0)
        for _ in range(per_client):
            invoke = now + rng.expovariate(5.0)
            complete = invoke + rng.expovariate(2.0) + 0.001
            kind = rng.choices(("read", "write", "cas"), (0.5, 0.35, 0.15))[0]
            key = f"k{rng.randrange(n_keys)}"
            status = Status.OK
            roll = rng.random()
            if roll < p_info:
                status = Status.INFO
            elif roll < p_info + p_fail and kind != "read":
                status = Status.FAIL
            point: float | None = rng.uniform(invoke, complete)
            if status is Status.FAIL or (status is Status.INFO and rng.random() < 0.5):
                point = None  # never takes effect
            elif status is Status.INFO:
                point = invoke + rng.uniform(0.0, 3.0) * (complete - invoke)
            value: Any = None
            if kind == "write":
                value, next_value = next_value, next_value + 1
            elif kind == "cas":
                expected = rng.choice((None, *range(max(1, next_value - 6), next_value)))
                value, next_value = (expected, next_value), next_value + 1
            planned.append(
                dict(
                    process=process,
                    kind=kind,
                    key=key,
                    input=value,
                    invoke=invoke,
                    complete=complete,
                    status=status,
                    point=point,
                )
            )
            now = complete
            if status is Status.INFO:
                process, next_process = next_process, next_process + 1
    registers: dict[str, Any] = {}
    for p in sorted((p for p in planned if p["point"] is not None), key=lambda p: p["point"]):
        current = registers.get(p["key"])
        if p["kind"] == "read":
            p["output"] = current
        elif p["kind"] == "write":
            registers[p["key"]] = p["input"]
        else:
            expected, new = p["input"]
            p["output"] = current == expected
            if current == expected:
                registers[p["key"]] = new
    planned.sort(key=lambda p: p["invoke"])
    return [
        Operation(
            id=n,
            process=p["process"],
            kind=p["kind"],
            key=p["key"],
            input=p["input"],
            output=p.get("output") if p["status"] is Status.OK else None,
            invoke=p["invoke"],
            complete=p["complete"],
            status=p["status"],
        )
        for n, p in enumerate(planned)
    ]
