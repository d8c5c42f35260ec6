"""The randomized soak: many seeds of a five-node cluster under every fault.

Each seed is one run of `soak_one`: partitions, one-way cuts, isolation,
crashes between events and *inside* a batch (between the steps of the
persistence order, `raft.core.persist`, losing every write not yet synced),
same-term crash-restarts, membership changes, leadership transfers, loss,
duplication and reordering, with the safety checker watching every batch.
At the end everything heals and the cluster must elect, commit and converge.

Command line (``python -m raft.sim``)::

    python -m raft.sim soak --seeds 2000          # many seeds, all faults
    python -m raft.sim soak --seeds 100000 --start 5000
    python -m raft.sim replay --seed 1234 -v      # one seed, with its events

A failing seed prints the command that replays it (`replay_command`).
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field

from raft.core.persist import Step
from raft.core.protocol import ConfChangeOp
from raft.sim.checker import SafetyViolation
from raft.sim.simulator import NetConfig, SimConfig, Simulator

__all__ = ["SoakResult", "main", "replay_command", "soak_one"]


def replay_command(seed: int, nodes: int = 5) -> str:
    """The shell command that runs soak seed ``seed`` again."""
    return f"python -m raft.sim replay --seed {seed} --nodes {nodes}"


# ---------------------------------------------------------------------------
# The randomized soak


FAULTS = (
    "partition",
    "cut",
    "isolate",
    "crash",
    "crash-leader",
    "bounce",
    "crash-mid",
    "crash-voter",
    "restart",
    "restart",
    "heal",
    "member",
    "transfer",
    "none",
)
SOAK_NET = NetConfig(min_delay=1, max_delay=15, drop=0.05, duplicate=0.03, long=0.02)
SPARES = ("n6", "n7")
#: Where a crash inside a batch may fall: before each step that follows a write.
MID_BATCH = (Step.SEND_EARLY, Step.SYNC, Step.SEND, Step.APPLY, Step.ADVANCE)


@dataclass(slots=True)
class SoakResult:
    seed: int
    proposed: int
    committed: int
    reads: int
    events: int
    messages: int
    virtual_ms: float
    #: What happened (elections, faults, membership), for ``replay -v``.
    log: list[str] = field(default_factory=list)


def soak_one(seed: int, nodes: int = 5, rounds: int = 20) -> SoakResult:
    """One randomized run with every fault; raises SafetyViolation on a bug.

    Each round picks a fault (partition, asymmetric cut, isolation, crash,
    restart, heal, a membership change, a leadership transfer), proposes a
    few commands, starts a few reads and runs a while; snapshots are taken
    and installed as the seed's thresholds dictate.  At the end everything
    heals and restarts, and the cluster must elect a leader, commit a final
    command and converge: safety *and* liveness once the faults are gone.
    """
    rng = random.Random(seed ^ 0x5EED)
    # Small messages and windows on some seeds, so that entries of different
    # terms travel separately: that is where Figure 8's trap lies.  Frequent
    # snapshots on others, so that InstallSnapshot runs under every fault.
    config = SimConfig(
        nodes=nodes,
        net=SOAK_NET,
        max_entries_per_message=rng.choice((1, 2, 64)),
        max_inflight=rng.choice((1, 4, 16)),
        snapshot_entries=rng.choice((4, 16, 10_000)),
        trailing_entries=rng.choice((0, 2, 50)),
        snapshot_chunk_bytes=rng.choice((16, 256, 1 << 20)),
        commit_write_every=rng.choice((1, 3, 16)),
    )
    sim = Simulator(config, seed, replay_command(seed, nodes))
    proposals: list[tuple[int, int]] = []
    for r in range(rounds):
        fault = rng.choice(FAULTS)
        leader = sim.leader()
        ids = sim.ids
        if fault == "partition":
            shuffled = rng.sample(ids, len(ids))
            k = rng.randrange(1, len(ids))
            sim.partition(shuffled[:k], shuffled[k:])
        elif fault == "cut":
            a, b = rng.sample(ids, 2)
            sim.cut_link(a, b)
        elif fault == "isolate":
            sim.isolate(leader or rng.choice(ids))
        elif fault == "crash":
            sim.crash(rng.choice(ids))
        elif fault == "crash-leader" and leader:
            sim.crash(leader)
        elif fault == "bounce":
            # Crash and come straight back, still in the same term: the case
            # where a vote that was not persisted would be cast twice.
            victim = rng.choice(ids)
            sim.crash(victim)
            sim.run_for(rng.uniform(0, 30))
            sim.restart(victim)
        elif fault == "crash-mid":
            # Inside the victim's next batch, between two steps of the order;
            # back soon, often in the same term.
            sim.crash(rng.choice(ids), rng.choice(MID_BATCH), restart_after=rng.uniform(0, 40))
        elif fault == "crash-voter" and leader:
            # The leader dies; a follower crashes around the fsync of what it
            # does next -- usually the vote it grants -- and comes back at once.
            sim.crash(leader)
            voter = rng.choice([i for i in ids if i != leader])
            step = rng.choice((Step.SYNC, Step.SEND))
            sim.crash(voter, step, restart_after=rng.uniform(0, 20))
        elif fault == "restart":
            sim.restart(rng.choice(ids))
        elif fault == "heal":
            sim.heal()
        elif fault == "member" and leader:
            _change_membership(sim, rng)
        elif fault == "transfer":
            sim.transfer()
        for k in range(rng.randrange(0, 6)):
            p = sim.propose(f"{seed}:{r}:{k}".encode())
            if p:
                proposals.append(p)
        for _ in range(rng.randrange(0, 3)):
            sim.read(rng.choice([i for i in sim.ids if sim.nodes[i].up] or [None]))
        sim.run_for(rng.uniform(20, 300))
    sim.heal()
    for i in sim.ids:
        sim.restart(i)
    if sim.wait_leader(10_000) is None:
        raise SafetyViolation(f"no leader 10 s after healing\n{sim.describe()}")
    # A client retries until its command commits (§8): a proposal made to a
    # leader that is deposed right after may be overwritten, and that is fine.
    deadline = sim.now + 10_000
    done = False
    while not done and sim.now < deadline:
        final = sim.propose(b"final")
        if final is None:
            sim.run_for(50)
        else:
            done = sim.wait_committed(*final, timeout_ms=1000)
    if not done:
        raise SafetyViolation(f"nothing commits after healing\n{sim.describe()}")
    if not sim.run_until(sim.converged, 10_000):
        raise SafetyViolation(f"live nodes did not converge\n{sim.describe()}")
    committed = sum(1 for p in proposals if sim.is_committed(*p))
    return SoakResult(
        seed,
        len(proposals),
        committed,
        sim.reads_done,
        sim.events,
        sim.messages_sent,
        sim.now,
        sim.log,
    )


def _change_membership(sim: Simulator, rng: random.Random) -> None:
    """Grow or shrink the cluster by one server, never below three voters."""
    leader = sim.leader()
    assert leader is not None
    conf = sim.nodes[leader].core.conf  # type: ignore[union-attr]
    if conf.learners:
        sim.change(ConfChangeOp.PROMOTE, rng.choice(conf.learners))
    elif len(conf.voters) > 3 and rng.random() < 0.6:
        op = rng.choice((ConfChangeOp.REMOVE, ConfChangeOp.DEMOTE))
        sim.change(op, rng.choice(conf.voters))
    else:
        outside = [i for i in (*sim.ids, *SPARES) if i not in conf.members]
        if outside:
            sim.add_node(rng.choice(outside))


def main(argv: list[str] | None = None) -> int:
    import time  # the command line only; the simulator itself has no clock

    ap = argparse.ArgumentParser(prog="python -m raft.sim", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("soak", help="run many seeds with every fault")
    s.add_argument("--seeds", type=int, default=2000)
    s.add_argument("--start", type=int, default=0)
    s.add_argument("--nodes", type=int, default=5)
    r = sub.add_parser("replay", help="run one seed again")
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--nodes", type=int, default=5)
    r.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    if args.cmd == "replay":
        try:
            res = soak_one(args.seed, args.nodes)
        except SafetyViolation as e:
            print(f"FAILED: {e}", file=sys.stderr)
            return 1
        if args.verbose:
            print("\n".join(res.log))
        print(
            f"seed {res.seed}: ok, {res.committed}/{res.proposed} proposals committed, "
            f"{res.reads} reads checked, {res.events} events, {res.messages} messages, "
            f"{res.virtual_ms / 1000:.1f} s virtual"
        )
        return 0

    t0 = time.perf_counter()
    events = 0
    failed: list[int] = []
    tty = sys.stdout.isatty()
    for k, seed in enumerate(range(args.start, args.start + args.seeds), 1):
        try:
            events += soak_one(seed, args.nodes).events
        except SafetyViolation as e:
            failed.append(seed)
            print(f"\nseed {seed} FAILED: {e}", file=sys.stderr)
        if k % (100 if tty else 1000) == 0 or k == args.seeds:
            elapsed = time.perf_counter() - t0
            line = (
                f"{k}/{args.seeds} seeds, {len(failed)} failed, "
                f"{events / elapsed:,.0f} events/s, {elapsed:.0f} s"
            )
            print(f"\r{line}" if tty else line, end="" if tty else "\n", flush=True)
    if tty:
        print()
    for seed in failed:
        print(f"replay: {replay_command(seed, args.nodes)} -v")
    return 1 if failed else 0
