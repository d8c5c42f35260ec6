"""The ``secret`` and ``config`` verbs: create, ls, inspect, rm.

Secrets and configs are the same kind of object to the CLI -- a name,
labels and data -- so one set of verbs (``cmd_named_*``) serves both, and
``ctx.args.cmd`` says which.  The one difference the CLI shows: a config's
data can be read back (``inspect --pretty`` prints it), a secret's never
(the API does not send it, and `cmd_named_inspect` drops it all the same).
"""

from __future__ import annotations

import base64
import sys
import time
from pathlib import Path
from typing import Any

from cluster.cli.api import Api, remove_each
from cluster.cli.format import (
    NAMED_COLUMNS,
    filters_param,
    key_values,
    named_rows,
    pretty,
    print_json,
    print_table,
)
from cluster.local.layout import ClusterError

__all__ = ["cmd_named_create", "cmd_named_inspect", "cmd_named_ls", "cmd_named_rm"]


def _read_data(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(source).read_bytes()
    except OSError as e:
        raise ClusterError(f"cannot read {source}: {e.strerror}") from None


def cmd_named_create(ctx: Any) -> int:
    a = ctx.args
    data = _read_data(a.file)
    api = Api(ctx)
    body = {
        "Name": a.name,
        "Labels": key_values(a.label, "label"),
        "Data": base64.b64encode(data).decode("ascii"),
    }
    created = api.call("POST", f"/{a.cmd}s/create", body)
    print(created["ID"])
    return 0


def cmd_named_ls(ctx: Any) -> int:
    a = ctx.args
    found = Api(ctx).get(f"/{a.cmd}s", filters=filters_param(a.filter))
    if a.json:
        print_json(found)
    elif a.quiet:
        for x in found:
            print(x["ID"])
    else:
        print_table(NAMED_COLUMNS, named_rows(found, time.time()))
    return 0


def cmd_named_inspect(ctx: Any) -> int:
    a = ctx.args
    api = Api(ctx)
    found = [api.lookup(a.cmd, ref) for ref in a.refs]
    if a.cmd == "secret":
        for x in found:  # the API never sends it; make sure of it here too
            x.get("Spec", {}).pop("Data", None)
    if not a.pretty:
        print_json(found)
        return 0
    for n, x in enumerate(found):
        if n:
            print()
        pairs: list[tuple[str, Any]] = [("ID", x["ID"]), ("Name", x["Spec"]["Name"])]
        if x["Spec"].get("Labels"):
            pairs.append(("Labels", None))
            pairs += [(f" - {k}", v) for k, v in x["Spec"]["Labels"].items()]
        pairs += [("Created at", x.get("CreatedAt")), ("Updated at", x.get("UpdatedAt"))]
        pretty(pairs)
        if a.cmd == "config":
            print("Data:")
            raw = base64.b64decode(x["Spec"].get("Data", ""))
            print(raw.decode("utf-8", errors="replace"))
    return 0


def cmd_named_rm(ctx: Any) -> int:
    return remove_each(ctx, ctx.args.cmd, ctx.args.refs)
