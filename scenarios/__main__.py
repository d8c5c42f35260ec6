"""``python -m scenarios``: list the built-in scenarios, run one, a file, or all.

    python -m scenarios list
    python -m scenarios run leader-kill [--out DIR] [--simulated [--seed N]] [--keep]
    python -m scenarios run my-scenario.toml
    python -m scenarios run all --out notes/
    python -m scenarios run jepsen [--duration S] [--seed N] [--clients K]

``jepsen`` is not a TOML file: it dispatches to `scenarios.jepsen`.  ``run
all`` runs the TOML built-ins only; run ``jepsen`` by name.

Every run also writes ``OUT/glossary.md`` (the notes link their jargon to
it); ``run all`` and runs of several files write ``OUT/index.md``, the notes
in study order.

Exit status 0 only when every expectation of every scenario run held.
Progress goes to stderr, one line per step; errors are one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cluster.local.layout import ClusterError
from scenarios.steps import Scenario, ScenarioError, builtins, load


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _resolve(target: str) -> list[Scenario]:
    known = builtins()
    if target == "all":
        return [load(p) for p in known.values()]
    if target in known:
        return [load(known[target])]
    path = Path(target)
    if path.suffix == ".toml" or path.exists():
        if not path.exists():
            raise ScenarioError(f"no scenario file {path}")
        return [load(path)]
    raise ScenarioError(f"no built-in scenario {target!r} (see: python -m scenarios list)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m scenarios",
        description="Break a cluster on purpose, check what Raft promises, draw what happened.",
    )
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    sub.add_parser("list", help="the built-in scenarios")
    r = sub.add_parser("run", help="run a scenario (a built-in name, a .toml file, or 'all')")
    r.add_argument("target", metavar="NAME|FILE.toml|all")
    r.add_argument("--out", type=Path, default=Path("out"), help="output directory (./out)")
    r.add_argument("--seed", type=int, default=None, help="seed of a simulated run (1)")
    r.add_argument("--simulated", action="store_true", help="run on the deterministic simulator")
    r.add_argument(
        "--keep", action="store_true", help="keep the cluster's data in OUT/NAME/cluster"
    )
    r.add_argument(
        "--unsafe-commit-rule",
        action="store_true",
        help="figure-8 only: TEACHING DEMO with a planted bug "
        "(commit by counting old-term replicas)",
    )
    r.add_argument(
        "--netns",
        action="store_true",
        help="root: real processes in netns mode (partitions drop packets in the kernel)",
    )
    r.add_argument("--duration", type=float, default=30.0, help="jepsen: seconds of load")
    r.add_argument("--clients", type=int, default=5, help="jepsen: concurrent clients")
    args = p.parse_args(argv)
    try:
        if args.cmd == "list":
            for name, path in builtins().items():
                scn = load(path)
                print(f"{name:22} {scn.title}")
            from scenarios.jepsen import TITLE

            print(f"{'jepsen':22} {TITLE}")
            return 0
        if args.target == "jepsen":
            return _run_jepsen(args)
        if args.netns and args.simulated:
            raise ScenarioError("--netns runs real processes; it does not go with --simulated")
        scenarios = _resolve(args.target)
        if args.simulated and args.target == "all":
            for s in [s for s in scenarios if s.real_only]:
                _say(f"note: {s.name} is left out: it runs on real processes only ({s.real_only})")
            scenarios = [s for s in scenarios if not s.real_only]
        real = [s.name for s in scenarios if not (args.simulated or s.simulated_only)]
        if args.seed is not None and real:
            _say(
                f"note: --seed applies to simulated runs only; {', '.join(real[:3])}"
                f"{' ...' if len(real) > 3 else ''} will run on real processes "
                "(add --simulated for a replayable run)"
            )
        args.seed = 1 if args.seed is None else args.seed
        from scenarios.report import write_glossary, write_index
        from scenarios.runner import run_scenario

        outcomes = []
        for scn in scenarios:
            outcomes.append(
                run_scenario(
                    scn,
                    args.out,
                    seed=args.seed,
                    simulated=args.simulated,
                    keep=args.keep,
                    progress=_say,
                    unsafe_commit_rule=args.unsafe_commit_rule,
                    netns=args.netns,
                )
            )
        if args.target == "all":
            _say("(jepsen is not part of `run all`: run it by name)")
        # Every note links its jargon to OUT/glossary.md: write it with any run.
        write_glossary(args.out)
        if args.target == "all" or len(outcomes) > 1:
            index = write_index(args.out, outcomes)
            _say(f"index: {index}")
        failed = [o.scenario for o in outcomes if not o.passed]
        if failed:
            _say(f"failed: {', '.join(failed)}")
        return 1 if failed else 0
    except ScenarioError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ClusterError, OSError) as e:  # the cluster would not start, a disk error
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run_jepsen(args: argparse.Namespace) -> int:
    from scenarios.jepsen import Settings, run_jepsen

    if args.duration <= 0 or args.clients < 1:
        raise ScenarioError("jepsen needs --duration > 0 and --clients >= 1")
    seed = 1 if args.seed is None else args.seed
    settings = Settings(
        duration=args.duration, clients=args.clients, seed=seed, keep=args.keep, netns=args.netns
    )
    return 0 if run_jepsen(settings, args.out, progress=_say).passed else 1


if __name__ == "__main__":
    sys.exit(main())
