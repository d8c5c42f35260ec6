"""The docker verbs: ``service``, ``secret``, ``config``, ``node``, ``swarm``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the docker verbs to the top-level parser."""
    from cluster.cli import cmd_status

    node = sub.add_parser("node", help="manage nodes")
    nsub = node.add_subparsers(dest="node_cmd", metavar="COMMAND", required=True)
    ls = nsub.add_parser("ls", help="list nodes")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_status)
