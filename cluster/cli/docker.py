"""The docker verbs: ``service``, ``secret``, ``config`` and ``node``.

Each verb is a thin client of one manager's HTTP API (docs/http-api.md),
with docker's flags and table columns where docker has them.
Any running manager will do: writes are forwarded to the leader by the API,
which also resolves every reference (a name, an ID prefix, or for nodes the
word ``leader``), so the CLI passes what the user typed.  Updates are
compare-and-set: the CLI reads the object, changes its spec and sends it
back with the ``Version.Index`` it read; if someone else wrote in between,
the API refuses with 409 and the user sees that one line.

The verbs are in several modules, read in this order:

* `cluster.cli.api` -- the client (`Api`): which manager to talk to, and
  one request to it;
* `cluster.cli.format` -- pure helpers that turn arguments into specs and
  objects into table rows (tested without a cluster);
* `cluster.cli.services`, `cluster.cli.secrets` (secrets and configs) and
  `cluster.cli.nodes` -- the commands;
* this module -- their parser (`register`), and the names of all of the
  above, so ``from cluster import cli_docker`` reaches every one.
"""

from __future__ import annotations

import argparse
from typing import Any

from cluster.cli.api import FAST_FAILURE, PROBE_TIMEOUT, Api
from cluster.cli.format import (
    NAMED_COLUMNS,
    SERVICE_COLUMNS,
    TASK_COLUMNS,
    Obj,
    Resolver,
    format_duration,
    human_duration,
    named_rows,
    parse_duration,
    parse_publish,
    parse_reference,
    service_rows,
    service_spec,
    task_rows,
    updated_spec,
)
from cluster.cli.nodes import (
    cmd_node_inspect,
    cmd_node_ls,
    cmd_node_rm,
    cmd_node_role,
    cmd_node_update,
)
from cluster.cli.secrets import cmd_named_create, cmd_named_inspect, cmd_named_ls, cmd_named_rm
from cluster.cli.services import (
    cmd_service_create,
    cmd_service_inspect,
    cmd_service_ls,
    cmd_service_ps,
    cmd_service_rm,
    cmd_service_scale,
    cmd_service_update,
)

__all__ = [
    "FAST_FAILURE",
    "NAMED_COLUMNS",
    "PROBE_TIMEOUT",
    "SERVICE_COLUMNS",
    "TASK_COLUMNS",
    "Api",
    "Obj",
    "Resolver",
    "cmd_named_create",
    "cmd_named_inspect",
    "cmd_named_ls",
    "cmd_named_rm",
    "cmd_node_inspect",
    "cmd_node_ls",
    "cmd_node_role",
    "cmd_node_update",
    "cmd_service_create",
    "cmd_service_inspect",
    "cmd_service_ls",
    "cmd_service_ps",
    "cmd_service_rm",
    "cmd_service_scale",
    "cmd_service_update",
    "format_duration",
    "human_duration",
    "named_rows",
    "parse_duration",
    "parse_publish",
    "parse_reference",
    "register",
    "service_rows",
    "service_spec",
    "task_rows",
    "updated_spec",
]


def _common(sub: argparse._SubParsersAction, name: str, help: str, **kw: Any) -> Any:
    p = sub.add_parser(name, help=help, **kw)
    p.add_argument(
        "--node",
        dest="via",
        metavar="NAME",
        help="the manager to talk to (default: the first one that answers)",
    )
    return p


def _listing(p: argparse.ArgumentParser, filters: bool = True) -> None:
    p.add_argument("--json", action="store_true", help="one JSON array, the API's objects")
    p.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    if filters:
        p.add_argument("-f", "--filter", action="append", metavar="KEY=VALUE")


def _update_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--update-parallelism", type=int, metavar="N")
    p.add_argument("--update-delay", metavar="DURATION", help="e.g. 10s")
    p.add_argument("--update-failure-action", choices=("pause", "continue", "rollback"))
    p.add_argument("--update-order", choices=("stop-first", "start-first"))
    p.add_argument("--update-monitor", metavar="DURATION")


def _register_service(sub: argparse._SubParsersAction) -> None:
    service = sub.add_parser("service", help="manage services")
    ss = service.add_subparsers(dest="service_cmd", metavar="COMMAND", required=True)

    p = _common(ss, "create", "create a service")
    p.add_argument("--name")
    p.add_argument("--replicas", type=int, metavar="N")
    p.add_argument("--mode", choices=("replicated", "global"), default="replicated")
    p.add_argument("-p", "--publish", action="append", metavar="PUBLISHED:TARGET[/PROTO]")
    p.add_argument("--secret", action="append", metavar="NAME[,target=T]")
    p.add_argument("--config", action="append", metavar="NAME[,target=T]")
    p.add_argument("-e", "--env", action="append", metavar="K=V")
    p.add_argument("-l", "--label", action="append", metavar="K=V")
    p.add_argument("-d", "--detach", action="store_true", help="accepted for docker compatibility")
    _update_flags(p)
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    p.set_defaults(func=cmd_service_create)

    p = _common(ss, "ls", "list services")
    _listing(p)
    p.set_defaults(func=cmd_service_ls)

    p = _common(ss, "ps", "list the tasks of services")
    _listing(p)
    p.add_argument("--no-trunc", dest="trunc", action="store_false")
    p.add_argument("services", nargs="+", metavar="SERVICE")
    p.set_defaults(func=cmd_service_ps)

    p = _common(ss, "inspect", "show services in detail")
    p.add_argument("--pretty", action="store_true")
    p.add_argument("services", nargs="+", metavar="SERVICE")
    p.set_defaults(func=cmd_service_inspect)

    p = _common(ss, "scale", "set the replicas of services")
    p.add_argument("-d", "--detach", action="store_true", help="accepted for docker compatibility")
    p.add_argument("scales", nargs="+", metavar="SERVICE=REPLICAS")
    p.set_defaults(func=cmd_service_scale)

    p = _common(ss, "update", "update a service (compare-and-set on its version)")
    p.add_argument("--image")
    p.add_argument("--replicas", type=int, metavar="N")
    p.add_argument("--args", metavar="'COMMAND ARGS'")
    for flag in ("env", "label", "publish", "secret", "config"):
        p.add_argument(f"--{flag}-add", action="append", metavar="VALUE")
        p.add_argument(f"--{flag}-rm", action="append", metavar="VALUE")
    p.add_argument("--force", action="store_true", help="redeploy even without a change")
    p.add_argument("--rollback", action="store_true", help="go back to the previous spec")
    p.add_argument("-d", "--detach", action="store_true", help="accepted for docker compatibility")
    _update_flags(p)
    p.add_argument("service", metavar="SERVICE")
    p.set_defaults(func=cmd_service_update)

    p = _common(ss, "rollback", "go back to the service's previous spec")
    p.add_argument("-d", "--detach", action="store_true", help="accepted for docker compatibility")
    p.add_argument("service", metavar="SERVICE")
    p.set_defaults(func=cmd_service_update, rollback=True)

    p = _common(ss, "rm", "remove services")
    p.add_argument("services", nargs="+", metavar="SERVICE")
    p.set_defaults(func=cmd_service_rm)


def _register_named(sub: argparse._SubParsersAction, kind: str) -> None:
    top = sub.add_parser(kind, help=f"manage {kind}s")
    ks = top.add_subparsers(dest=f"{kind}_cmd", metavar="COMMAND", required=True)
    p = _common(ks, "create", f"create a {kind} from a file or stdin (-)")
    p.add_argument("-l", "--label", action="append", metavar="K=V")
    p.add_argument("name", metavar="NAME")
    p.add_argument("file", metavar="FILE|-")
    p.set_defaults(func=cmd_named_create)

    p = _common(ks, "ls", f"list {kind}s")
    _listing(p)
    p.set_defaults(func=cmd_named_ls)

    what = "never its data" if kind == "secret" else "data in base64"
    p = _common(ks, "inspect", f"show {kind}s in detail ({what})")
    p.add_argument("--pretty", action="store_true")
    p.add_argument("refs", nargs="+", metavar=kind.upper())
    p.set_defaults(func=cmd_named_inspect)

    p = _common(ks, "rm", f"remove {kind}s")
    p.add_argument("refs", nargs="+", metavar=kind.upper())
    p.set_defaults(func=cmd_named_rm)


def _register_node(sub: argparse._SubParsersAction) -> None:
    node = sub.add_parser("node", help="manage nodes")
    ns = node.add_subparsers(dest="node_cmd", metavar="COMMAND", required=True)
    p = _common(ns, "ls", "list nodes (the status table)")
    _listing(p, filters=False)
    p.set_defaults(func=cmd_node_ls)

    p = _common(ns, "inspect", "show nodes in detail")
    p.add_argument("--pretty", action="store_true")
    p.add_argument("refs", nargs="+", metavar="NODE", help="name, ID prefix, or 'leader'")
    p.set_defaults(func=cmd_node_inspect)

    p = _common(ns, "update", "change a node's availability, role or labels")
    p.add_argument("--availability", choices=("active", "pause", "drain"))
    p.add_argument("--role", choices=("manager", "worker"))
    p.add_argument("--label-add", action="append", metavar="K=V")
    p.add_argument("--label-rm", action="append", default=[], metavar="K")
    p.add_argument("ref", metavar="NODE", help="name, ID prefix, or 'leader'")
    p.set_defaults(func=cmd_node_update)

    for verb, what in (("promote", "make nodes managers"), ("demote", "make managers workers")):
        p = _common(ns, verb, what)
        p.add_argument("refs", nargs="+", metavar="NODE")
        p.set_defaults(func=cmd_node_role)

    p = _common(ns, "rm", "remove nodes from the swarm (a worker must be down, or --force)")
    p.add_argument("-f", "--force", action="store_true", help="remove a node that is still up")
    p.add_argument("refs", nargs="+", metavar="NODE")
    p.set_defaults(func=cmd_node_rm)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the docker verbs to the top-level parser."""
    _register_service(sub)
    _register_named(sub, "secret")
    _register_named(sub, "config")
    _register_node(sub)
