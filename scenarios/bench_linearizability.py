"""How fast the linearizability checker is: ``python -m scenarios.bench_linearizability``.

Times the checker on the same kind of history the cost test uses (a simulated
correct register, ~5,000 operations over 10 keys), at a few concurrency levels,
and once with a planted stale read so the diagnosis (first failing cut and
1-minimal core) is timed too.  The test bounds explored states, not seconds;
this script is where the seconds are reported.
"""

from __future__ import annotations

import argparse
import random
import time

from scenarios.linearizability import Operation, Status, check, random_register_history


def _bench(n_ops: int, n_keys: int, n_clients: int, seed: int, plant: bool) -> str:
    ops = random_register_history(random.Random(seed), n_ops, n_keys, n_clients)
    if plant:
        victim = next(op for op in ops if op.kind == "write" and op.status is Status.OK)
        end = max(op.complete for op in ops if op.status is not Status.INFO)
        ops.append(
            Operation(len(ops), "planted", "read", victim.key, None, victim.input, end + 1, end + 2)
        )
    start = time.perf_counter()
    verdict = check(ops)
    elapsed = time.perf_counter() - start
    core = f", core {len(verdict.violations[0].core)} ops" if verdict.violations else ""
    return (
        f"{len(ops):6d} ops  {n_keys:3d} keys  {n_clients:4d} clients  ok={verdict.ok!s:5}  "
        f"states={verdict.states:9d}  {elapsed:7.3f} s  "
        f"({len(ops) / elapsed:,.0f} ops/s{core})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=10)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    for clients in (20, 50, 100, 200):
        print(_bench(args.ops, args.keys, clients, args.seed, plant=False))
    print("with a planted stale read at the end (includes diagnosis):")
    for clients in (20, 50, 100):
        print(_bench(args.ops, args.keys, clients, args.seed, plant=True))


if __name__ == "__main__":
    main()
