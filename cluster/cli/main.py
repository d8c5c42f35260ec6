"""``python -m cluster``: start a cluster, break it, look at it.

Lifecycle (``up``, ``down``), the status table (``status``, ``node ls``) and
the fault verbs (``kill``, ``restart``, ``pause``, ``unpause``,
``partition``, ``isolate``, ``heal``) live here; the docker verbs
(``service``, ``secret``, ``config``, ``node update`` ...) are registered by
`cluster.cli.docker` and the live view by `cluster.cli.watch`.

A user mistake (unknown node, no cluster in DIR, no quorum) is one line on
stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from cluster.cli.durations import parse_duration
from cluster.cli.nodes import cmd_status
from cluster.client.http import ApiError, Unreachable
from cluster.client.wait import attempts
from cluster.local.layout import ClusterDir, ClusterError, Timing, resolve_dir
from cluster.local.supervisor import Supervisor

__all__ = ["Context", "main"]


class Context:
    """What every command needs: the cluster directory and its supervisor."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cdir = ClusterDir(resolve_dir(args.dir))
        self.sup = Supervisor(self.cdir)

    def say(self, msg: str) -> None:
        """Progress for humans, on stderr so stdout stays clean for --json."""
        print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- lifecycle


def cmd_up(ctx: Context) -> int:
    a = ctx.args
    timing = Timing()
    if a.election_timeout is not None:
        timing.election_ticks = max(2, round(a.election_timeout / 1000 / timing.tick_interval))
    if a.heartbeat is not None:
        timing.tick_interval = a.heartbeat / 1000
        if a.election_timeout is not None:
            timing.election_ticks = max(2, round(a.election_timeout / a.heartbeat))
    if a.no_fsync:
        timing.fsync = False
    overrides: dict[str, int] = {}
    for item in a.node_election_timeout or []:
        name, _, ms = item.partition("=")
        if not ms.isdigit():
            raise ClusterError(f"--node-election-timeout wants NAME=MS, got {item!r}")
        overrides[name] = max(2, round(int(ms) / 1000 / timing.tick_interval))
    desc = ctx.sup.up(
        a.managers,
        a.base_port,
        timing,
        overrides,
        progress=ctx.say,
        workers=a.workers,
        autolock=a.autolock,
        netns=a.netns,
    )
    if ctx.sup.unlock_key:
        _show_unlock_key(ctx.sup.unlock_key)
    if a.detach:
        n_managers = sum(1 for m in desc.members if m.role == "manager")
        n_workers = len(desc.members) - n_managers
        extra = f" and {n_workers} workers" if n_workers else ""
        ctx.say(f"cluster is up: {n_managers} managers{extra} in {ctx.cdir.path}")
        return 0
    from cluster.cli.watch import watch
    from cluster.web.process import start_web, stop_web

    # In the foreground the cluster lives as long as this view: Ctrl-C, or a
    # SIGTERM (`timeout`, a script, a service manager), stops every process.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        url = start_web(ctx.cdir.path, a.web_port or 0)
        print(f"web view: {url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            watch(ctx.sup, ctx.cdir, interval=0.3)
    finally:
        # A second Ctrl-C must not cut `down` short and leave managers behind
        # (`down` is bounded on its own: SIGTERM, then SIGKILL).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        ctx.say("stopping the cluster...")
        stop_web(ctx.cdir.path)
        ctx.sup.down(progress=ctx.say)
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def cmd_down(ctx: Context) -> int:
    from cluster.web.process import stop_web

    if stop_web(ctx.cdir.path):
        ctx.say("stopped the web view")
    n = ctx.sup.down(purge=ctx.args.purge, progress=ctx.say)
    ctx.say(f"stopped {n} process(es)" + (" and deleted the data" if ctx.args.purge else ""))
    return 0


def cmd_web(ctx: Context) -> int:
    """``web [--port P]``: the live web view, in the foreground until Ctrl-C."""
    from cluster.web.process import run_foreground

    return run_foreground(ctx.cdir.path, ctx.args.port or 0)


def cmd_watch(ctx: Context) -> int:
    from cluster.cli.watch import watch

    ctx.cdir.load()  # a clear error if there is no cluster
    with contextlib.suppress(KeyboardInterrupt):
        watch(ctx.sup, ctx.cdir, interval=0.3, count=ctx.args.count)
    return 0


# ---------------------------------------------------------------- faults


def cmd_fault(ctx: Context) -> int:
    a = ctx.args
    sup = ctx.sup
    if a.cmd == "kill":
        m = sup.kill(a.node)
        ctx.say(f"killed {m.name} (SIGKILL)")
    elif a.cmd == "restart":
        m = sup.restart(a.node)
        ctx.say(f"restarted {m.name} (pid {m.pid}) on its data")
    elif a.cmd == "pause":
        m = sup.pause(a.node)
        ctx.say(f"paused {m.name} (SIGSTOP)")
    elif a.cmd == "unpause":
        m = sup.unpause(a.node)
        ctx.say(f"resumed {m.name} (SIGCONT)")
    elif a.cmd == "partition" and a.oneway:
        src, dst = sup.partition([g.split(",") for g in a.groups], oneway=True)
        ctx.say(f"cut one way: {','.join(src)} -> {','.join(dst)} (the other way still flows)")
    elif a.cmd == "partition":
        groups = sup.partition([g.split(",") for g in a.groups])
        ctx.say("partitioned: " + " | ".join(",".join(g) for g in groups))
    elif a.cmd == "isolate":
        groups = sup.isolate(a.node)
        ctx.say(f"isolated {groups[0][0]}")
    elif a.cmd == "heal":
        sup.heal()
        ctx.say("healed: every network cut removed")
    return 0


def cmd_net(ctx: Context) -> int:
    """``net loss|delay|clear``: packet loss and delay (netns), or Raft message loss
    and delay in the managers' transports (default mode)."""
    a = ctx.args
    if a.net_cmd == "loss":
        m = ctx.sup.net_loss(a.node, a.percent)
        if ctx.sup.cdir.load().netns is not None:
            what = "packets to and from other nodes dropped (nftables)"
        else:
            what = "Raft messages to and from other managers dropped (by the transports)"
        ctx.say(f"{m.name}: {a.percent}% of its {what}")
    elif a.net_cmd == "delay":
        m, via = ctx.sup.net_delay(a.node, a.ms)
        how = (
            "its outgoing packets, by netem"
            if via == "netem"
            else "its outgoing Raft messages, by its transport"
        )
        ctx.say(f"{m.name}: {a.ms} ms delay on {how}")
    else:
        ctx.sup.net_clear()
        ctx.say("cleared: no loss, no delay (cuts stay until heal)")
    return 0


def cmd_transfer(ctx: Context) -> int:
    """Hand leadership over (dissertation §3.10) and say who leads now."""
    from cluster.client.http import request

    desc = ctx.cdir.load()
    leader = ctx.sup.resolve(desc, "leader")
    target = ctx.sup.resolve(desc, ctx.args.node).name if ctx.args.node else None
    out = request(
        "POST",
        f"{leader.api_url}/raft/transfer-leadership",
        {"target": target},
        timeout=desc.timing.election_timeout * 4 + 2,
    )
    ctx.say(f"leadership moved from {leader.name} to {out.get('target', target)}")
    return 0


def cmd_swarm_init(ctx: Context) -> int:
    if not ctx.args.force_new_cluster:
        raise ClusterError("this cluster is initialised by `up`; only --force-new-cluster applies")
    if not ctx.args.node:
        raise ClusterError("name the surviving manager: swarm init --force-new-cluster --node NAME")
    m = ctx.sup.force_new_cluster(ctx.args.node, progress=ctx.say)
    ctx.say(
        f"{m.name} now runs a one-manager swarm with all committed state; "
        "restart other managers to add them back"
    )
    return 0


# ---------------------------------------------------------------- autolock


def _show_unlock_key(key: str) -> None:
    print(
        "Swarm autolock is on. To unlock a swarm manager after it restarts, run\n"
        "`python -m cluster swarm unlock` and give it this key:\n\n"
        f"    {key}\n\n"
        "Remember to store this key in a password manager: no manager keeps it on disk,\n"
        "and without it a restarted manager cannot rejoin the swarm.",
        flush=True,
    )


def _leader_url(ctx: Context) -> str:
    return ctx.sup.resolve(ctx.cdir.load(), "leader").api_url


def cmd_swarm_unlock(ctx: Context) -> int:
    """Give the unlock key to one locked manager (--node) or to every locked one."""
    from cluster.client.http import request

    desc = ctx.cdir.load()
    if ctx.args.node:
        targets = [ctx.sup.resolve(desc, ctx.args.node)]
    else:
        targets = []
        for m in desc.members:
            if m.role != "manager" or ctx.sup.process_state(m) != "running":
                continue
            # A manager just (re)started may take a moment to answer.
            for _ in attempts(within=3.0):
                try:
                    if request("GET", f"{m.api_url}/raft/status", timeout=1.0).get("locked"):
                        targets.append(m)
                    break
                except (Unreachable, ApiError):
                    continue
        if not targets:
            raise ClusterError("no manager is locked")
    key = ctx.args.key
    if key is None:
        if sys.stdin.isatty():
            import getpass

            key = getpass.getpass("Enter unlock key: ")
        else:
            key = sys.stdin.readline()
    key = key.strip()
    if not key:
        raise ClusterError("no unlock key given (--key, or on stdin)")
    for m in targets:
        for _ in attempts(within=3.0):
            try:
                request("POST", f"{m.api_url}/swarm/unlock", {"UnlockKey": key}, timeout=10.0)
                break
            except Unreachable as e:
                not_listening = e  # just restarted: not listening yet
        else:
            raise not_listening
        ctx.say(f"{m.name} unlocked")
    return 0


def cmd_swarm_unlock_key(ctx: Context) -> int:
    from cluster.client.http import request

    url = _leader_url(ctx)
    if ctx.args.rotate:
        swarm = request("GET", f"{url}/swarm")
        version = swarm["Version"]["Index"]
        out = request(
            "POST",
            f"{url}/swarm/update?version={version}&rotateManagerUnlockKey=true",
            swarm["Spec"],
            timeout=10.0,
        )
        key = out["UnlockKey"]
        if not ctx.args.quiet:
            ctx.say("Successfully rotated manager unlock key.")
    else:
        key = request("GET", f"{url}/swarm/unlockkey")["UnlockKey"]
    if ctx.args.quiet:
        print(key)
    else:
        _show_unlock_key(key)
    return 0


def cmd_swarm_update(ctx: Context) -> int:
    from cluster.client.http import request

    a = ctx.args
    if a.autolock is None and a.cert_expiry is None and a.task_history_limit is None:
        raise ClusterError(
            "swarm update: nothing to change"
            " (try --autolock=true, --cert-expiry 90d, --task-history-limit 5)"
        )
    expiry_ns = None
    if a.cert_expiry is not None:
        try:
            expiry_ns = int(parse_duration(a.cert_expiry).total_seconds() * 1_000_000_000)
        except ValueError as e:
            raise ClusterError(f"swarm update: {e}") from None
    url = _leader_url(ctx)
    swarm = request("GET", f"{url}/swarm")
    spec = swarm["Spec"]
    if a.autolock is not None:
        spec["EncryptionConfig"] = {"AutoLockManagers": a.autolock == "true"}
    if expiry_ns is not None:
        # Certificates signed from now on (renewals included) live this long.
        spec["CAConfig"] = {**spec.get("CAConfig", {}), "NodeCertExpiry": expiry_ns}
    if a.task_history_limit is not None:
        # Ended tasks kept per slot; the leader's reaper removes older ones
        # (`cluster.control.reaper`); a negative limit keeps them all.
        limit = {"TaskHistoryRetentionLimit": a.task_history_limit}
        spec["Orchestration"] = {**spec.get("Orchestration", {}), **limit}
    out = request(
        "POST", f"{url}/swarm/update?version={swarm['Version']['Index']}", spec, timeout=10.0
    )
    ctx.say("Swarm updated.")
    if out.get("UnlockKey"):
        _show_unlock_key(out["UnlockKey"])
    return 0


def cmd_swarm_ca(ctx: Context) -> int:
    """``docker swarm ca [--rotate]``: show the root certificate, or replace it.

    Rotating raises ``CAConfig.ForceRotate`` (as Docker's CLI does); the leader
    then runs the rotation (`cluster.manager.rotation`) while this command
    shows its progress until every node is on the new root.
    """
    import time

    from cluster.client.http import request

    url = _leader_url(ctx)
    swarm = request("GET", f"{url}/swarm")
    if not ctx.args.rotate:
        print(swarm.get("TLSInfo", {}).get("TrustRoot", "").rstrip())
        return 0
    if swarm.get("RootRotationInProgress"):
        raise ClusterError("swarm ca: a root CA rotation is already in progress")
    spec = swarm["Spec"]
    force = int((spec.get("CAConfig") or {}).get("ForceRotate", 0)) + 1
    spec["CAConfig"] = {**spec.get("CAConfig", {}), "ForceRotate": force}
    version = swarm["Version"]["Index"]
    request("POST", f"{url}/swarm/update?version={version}", spec, timeout=10.0)
    deadline = time.monotonic() + ctx.args.timeout
    shown = None
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiError, Unreachable):
            url = _leader_url(ctx)
            swarm = request("GET", f"{url}/swarm")
            rotation = swarm.get("RootRotation")
            if not rotation:
                ctx.say(
                    "Root CA rotation complete: every node holds a certificate of the new root."
                )
                print(swarm.get("TLSInfo", {}).get("TrustRoot", "").rstrip())
                return 0
            nodes = request("GET", f"{url}/nodes")
            done = sum(
                1
                for n in nodes
                if (n["Description"].get("TLSInfo") or {}).get("CertIssuerDigest")
                == rotation["Digest"]
            )
            line = f"rotation in progress: {done}/{len(nodes)} nodes"
            if line != shown:
                ctx.say(line)
                shown = line
        time.sleep(0.5)
    raise ClusterError(
        f"swarm ca: the rotation is still in progress after {ctx.args.timeout:g}s "
        "(a node that is down holds it open: bring it back or `node rm` it); "
        "it goes on without this command"
    )


def cmd_swarm_join_token(ctx: Context) -> int:
    from cluster.client.http import request

    url = _leader_url(ctx)
    swarm = request("GET", f"{url}/swarm")
    role = "Worker" if ctx.args.role == "worker" else "Manager"
    if ctx.args.rotate:
        version = swarm["Version"]["Index"]
        answer = request("POST", f"{url}/swarm/update?version={version}&rotate{role}Token=true", {})
        swarm = answer["Cluster"]
        ctx.say(f"Successfully rotated {ctx.args.role} join token.")
    token = swarm["JoinTokens"][role]
    if ctx.args.quiet:
        print(token)
    else:
        dir_flag = f" --dir {ctx.cdir.path}" if ctx.args.dir else ""
        print(f"To add a {ctx.args.role} to this swarm, run the following command:\n")
        print(f"    python -m cluster{dir_flag} swarm join --token {token}\n")
    return 0


def cmd_swarm_join(ctx: Context) -> int:
    """``docker swarm join --token TOKEN``: one more node; the token decides its role."""
    token = ctx.args.token
    if token == "-":
        token = sys.stdin.readline().strip()
    m = ctx.sup.join(token, progress=ctx.say)
    print(f"This node joined a swarm as a {m.role} ({m.name}).")
    if m.role == "manager" and ctx.sup.starts_locked(m):
        ctx.say(f"{m.name} is locked (autolock): unlock it with `swarm unlock --node {m.name}`")
    elif m.role == "manager":
        _follow_promotion(ctx, m.name)
    return 0


def _follow_promotion(ctx: Context, name: str, timeout: float = 30.0) -> None:
    """Show a new manager going from learner to voter (§4.2.1), for at most ``timeout`` s.

    The leader replicates the log to it as a learner -- not counted in any
    majority -- and promotes it only once it has caught up, so a slow
    newcomer never stalls commits.
    """
    said = ""
    for _ in attempts(within=timeout, every=0.2):
        found = ctx.sup.find_leader(ctx.cdir.load())
        if found is not None:
            leader, st = found
            voters = st.get("voters", [])
            if name in voters:
                n = len(voters)
                q = n // 2 + 1
                ctx.say(
                    f"{name} is a voter: {n} managers, quorum {q}, "
                    f"tolerates {n - q} failure{'s' if n - q != 1 else ''}"
                )
                return
            peer = st.get("peers", {}).get(name)
            if name in st.get("learners", []) and peer:
                line = (
                    f"{name} is a learner, catching up: "
                    f"{peer['match']} of {st['last_log_index']} entries"
                )
            else:
                line = f"waiting for {leader.name} (the leader) to add {name}"
            if line != said:
                ctx.say(line)
                said = line
    ctx.say(f"{name} is not a voter yet after {timeout:g}s; see `status` and {name}/node.log")


# ---------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's error style: one line on stderr, exit status 2.

    Sub-commands' parsers are made by ``add_subparsers`` with the parent's
    class, so every verb (the docker ones and ``bench`` too) answers alike.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def _count(least: int) -> Callable[[str], int]:
    """An argparse type: an integer of at least ``least``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is below {least}")
        return value

    return parse


def _port(text: str) -> int:
    value = _count(1)(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m cluster",
        description="Run a local Swarm-like cluster of Raft managers, drive it, break it.",
    )
    p.add_argument("--dir", help="cluster directory (default: $CLUSTER_DIR or ./.cluster)")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="start a cluster (or restart one on its data)")
    up.add_argument(
        "--managers", type=_count(1), help="number of managers (new cluster; default 3)"
    )
    up.add_argument("--workers", type=_count(0), help="number of worker agents (new cluster)")
    up.add_argument("-d", "--detach", action="store_true", help="return once a leader is elected")
    up.add_argument(
        "--base-port", type=_port, help="first of 3 x managers + workers consecutive ports"
    )
    up.add_argument("--election-timeout", type=_count(1), metavar="MS", help="election timeout T")
    up.add_argument(
        "--heartbeat", type=_count(1), metavar="MS", help="heartbeat interval (one tick)"
    )
    up.add_argument(
        "--node-election-timeout",
        action="append",
        metavar="NAME=MS",
        help="per-node election timeout override (repeatable)",
    )
    up.add_argument("--no-fsync", action="store_true", help="unsafe: skip fsync (demos only)")
    up.add_argument(
        "--autolock",
        action="store_true",
        help="new cluster: lock managers on restart until given the unlock key (shown once)",
    )
    up.add_argument(
        "--web-port", type=_port, help="port of the live web view (foreground; default: any free)"
    )
    up.add_argument(
        "--netns",
        action="store_true",
        help="new cluster, root only: each node in its own network namespace; "
        "faults drop packets in the kernel (docs/cli.md)",
    )
    up.set_defaults(func=cmd_up)

    down = sub.add_parser("down", help="stop every process of the cluster")
    down.add_argument("--purge", action="store_true", help="also delete the cluster's data")
    down.set_defaults(func=cmd_down)

    status = sub.add_parser("status", help="the managers, their Raft state and the quorum")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)

    watch = sub.add_parser("watch", help="the live status view")
    watch.add_argument("--count", type=_count(1), help="stop after this many refreshes")
    watch.set_defaults(func=cmd_watch)

    webv = sub.add_parser("web", help="the live web view, on 127.0.0.1 (Ctrl-C stops it)")
    webv.add_argument("--port", type=_port, help="port to serve on (default: any free port)")
    webv.set_defaults(func=cmd_web)

    for verb, what in (
        ("kill", "SIGKILL a node"),
        ("restart", "start a node again on its data"),
        ("pause", "SIGSTOP a node"),
        ("unpause", "SIGCONT a node"),
        ("isolate", "cut a node off from all others"),
    ):
        f = sub.add_parser(verb, help=what)
        f.add_argument("node", help="name, ID prefix, or 'leader'")
        f.set_defaults(func=cmd_fault)
    part = sub.add_parser("partition", help="cut the network between groups")
    part.add_argument("groups", nargs="+", metavar="GROUP", help="comma-separated node names")
    part.add_argument(
        "--oneway",
        action="store_true",
        help="two groups FROM TO: cut only FROM's traffic to TO (TO still reaches FROM)",
    )
    part.set_defaults(func=cmd_fault)
    heal = sub.add_parser("heal", help="remove every network cut")
    heal.set_defaults(func=cmd_fault)

    net = sub.add_parser("net", help="packet (netns) or Raft message loss and delay")
    nsub = net.add_subparsers(dest="net_cmd", metavar="COMMAND", required=True)
    loss = nsub.add_parser(
        "loss", help="drop PCT%% of a node's packets (netns) or messages, at random"
    )
    loss.add_argument("node", help="name, ID prefix, or 'leader'")
    loss.add_argument("percent", type=_count(0), metavar="PCT", help="0-100 (0 removes it)")
    delay = nsub.add_parser("delay", help="delay a node's outgoing packets (netem or transport)")
    delay.add_argument("node", help="name, ID prefix, or 'leader'")
    delay.add_argument("ms", type=_count(0), metavar="MS", help="milliseconds (0 removes it)")
    nsub.add_parser("clear", help="remove every loss and delay")
    net.set_defaults(func=cmd_net)

    tl = sub.add_parser("transfer-leadership", help="hand leadership to another manager")
    tl.add_argument("node", nargs="?", help="target (default: the most up-to-date follower)")
    tl.set_defaults(func=cmd_transfer)

    swarm = sub.add_parser("swarm", help="swarm-wide operations")
    ssub = swarm.add_subparsers(dest="swarm_cmd", metavar="COMMAND", required=True)
    init = ssub.add_parser("init", help="recover a swarm that lost its majority for good")
    init.add_argument("--force-new-cluster", action="store_true")
    init.add_argument("--node", help="the surviving manager to keep")
    init.set_defaults(func=cmd_swarm_init)
    unlock = ssub.add_parser("unlock", help="unlock a manager locked by autolock")
    unlock.add_argument("--node", help="the locked manager (default: every locked one)")
    unlock.add_argument("--key", help="the unlock key (default: read from stdin)")
    unlock.set_defaults(func=cmd_swarm_unlock)
    ukey = ssub.add_parser("unlock-key", help="show (or --rotate) the unlock key")
    ukey.add_argument("--rotate", action="store_true", help="make a new unlock key")
    ukey.add_argument("-q", "--quiet", action="store_true", help="print the key only")
    ukey.set_defaults(func=cmd_swarm_unlock_key)
    update = ssub.add_parser("update", help="change swarm settings")
    update.add_argument("--autolock", choices=("true", "false"), help="lock managers on restart")
    update.add_argument(
        "--cert-expiry", metavar="DURATION", help="node certificates' lifetime (90d; at least 1h)"
    )
    update.add_argument(
        "--task-history-limit", type=int, metavar="N", help="tasks kept per slot (5, as Docker)"
    )
    update.set_defaults(func=cmd_swarm_update)
    ca = ssub.add_parser("ca", help="show the root CA certificate, or --rotate it")
    ca.add_argument("--rotate", action="store_true", help="replace the root CA (cross-signed)")
    ca.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for every node (120)"
    )
    ca.set_defaults(func=cmd_swarm_ca)
    jt = ssub.add_parser("join-token", help="print a join token")
    jt.add_argument("role", choices=("worker", "manager"))
    jt.add_argument("--rotate", action="store_true", help="replace the token (old one refused)")
    jt.add_argument("-q", "--quiet", action="store_true", help="print the token only")
    jt.set_defaults(func=cmd_swarm_join_token)
    join = ssub.add_parser(
        "join", help="add a node to the swarm: a worker or a manager, as the token says"
    )
    join.add_argument("--token", required=True, help="a join token (SWMTKN-1-...), or - for stdin")
    join.set_defaults(func=cmd_swarm_join)

    from cluster.bench import run as bench
    from cluster.cli import docker as cli_docker

    cli_docker.register(sub)
    bench.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[Context], int] = args.func
    try:
        return func(Context(args))
    except ClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ApiError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 1
    except Unreachable as e:
        print(f"error: no manager answered ({e})", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # stdout was closed early (`status --json | head -1`): stop quietly, as
        # Unix tools do, and keep Python from complaining again at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        # E.g. --dir names a file, or a directory we may not write.
        where = f": {e.filename}" if e.filename else ""
        print(f"error: {e.strerror or e}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
