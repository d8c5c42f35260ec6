"""What each fault and operator verb is, as a swarmraft command and in Docker.

One table for every place that shows a user the command behind an action:
the web view's buttons, the replay pages' captions and the study notes.  A
verb that Docker has no command for (a crashed engine, a broken network)
says so and what would cause it on a real host, because a DCA candidate
should not go looking for ``docker kill-manager``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

__all__ = ["Equivalent", "equivalent"]


@dataclass(frozen=True, slots=True)
class Equivalent:
    """``cli``: the ``python -m cluster`` arguments; ``docker``: Docker's command,
    or a sentence saying why there is none."""

    cli: tuple[str, ...]
    docker: str

    @property
    def command(self) -> str:
        return "python -m cluster " + shlex.join(self.cli) if self.cli else ""


def equivalent(verb: str, node: str = "", **fields: object) -> Equivalent | None:
    """The equivalent of ``verb`` on ``node`` (None for verbs with no user command,
    such as waiting).  ``fields``: ``groups`` for a partition, ``availability``
    for drain, ``name``/``replicas``/``image`` for services, ``role`` for joins,
    ``service``/``image``/``parallelism``/``delay`` for a rolling update."""
    n = node
    match verb:
        case "kill":
            return Equivalent(("kill", n), f"no Docker verb: the engine on {n} crashes (kill -9)")
        case "restart":
            return Equivalent(("restart", n), f"systemctl start docker on {n}: back on its data")
        case "pause":
            return Equivalent(("pause", n), f"no Docker verb: the engine on {n} freezes (SIGSTOP)")
        case "unpause":
            return Equivalent(("unpause", n), f"the engine on {n} resumes (SIGCONT)")
        case "isolate":
            return Equivalent(("isolate", n), f"no Docker verb: {n}'s network fails")
        case "partition":
            groups = [",".join(g) for g in fields.get("groups", []) or []]  # type: ignore[union-attr]
            if fields.get("oneway"):
                return Equivalent(
                    ("partition", "--oneway", *groups),
                    "no Docker verb: one direction of the network fails",
                )
            return Equivalent(("partition", *groups), "no Docker verb: the network splits")
        case "heal":
            return Equivalent(("heal",), "no Docker verb: the network is repaired")
        case "drain" | "activate" | "availability":
            avail = str(fields.get("availability") or ("active" if verb == "activate" else "drain"))
            args = ("node", "update", "--availability", avail, n)
            return Equivalent(args, f"docker node update --availability {avail} {n}")
        case "transfer_leadership" | "transfer":
            return Equivalent(
                ("transfer-leadership", *([n] if n else [])),
                "no Docker verb: docker node demote on the leader makes it hand over (§3.10)",
            )
        case "promote" | "demote":
            return Equivalent(("node", verb, n), f"docker node {verb} {n}")
        case "force_new_cluster":
            return Equivalent(
                ("swarm", "init", "--force-new-cluster", "--node", n),
                f"docker swarm init --force-new-cluster (on {n})",
            )
        case "lock":
            return Equivalent(
                ("swarm", "update", "--autolock"), "docker swarm update --autolock=true"
            )
        case "unlock":
            key = str(fields.get("key") or "current")
            if key == "current":
                return Equivalent(("swarm", "unlock"), "docker swarm unlock")
            return Equivalent(
                ("swarm", "unlock", "--key", f"<{key} key>"),
                f"docker swarm unlock (typing the {key} key)",
            )
        case "join":
            role = str(fields.get("role") or "worker")
            token = f'"$(python -m cluster swarm join-token -q {role})"'
            return Equivalent(
                ("swarm", "join", "--token", token),
                f"docker swarm join --token $(docker swarm join-token -q {role}) MANAGER:2377",
            )
        case "create_service":
            name, replicas = str(fields.get("name")), int(fields.get("replicas", 1))  # type: ignore[call-overload]
            image = str(fields.get("image") or "nginx:alpine")
            files = [
                f
                for kind in ("secret", "config")
                for ref in fields.get(f"{kind}s") or []  # type: ignore[attr-defined]
                for f in (f"--{kind}", str(ref))
            ]
            args = ("service", "create", "--name", name, "--replicas", str(replicas), *files, image)
            return Equivalent(args, "docker " + shlex.join(args))
        case "scale":
            spec = f"{fields.get('service')}={fields.get('replicas')}"
            return Equivalent(("service", "scale", spec), f"docker service scale {spec}")
        case "create_secret" | "create_config":
            kind = verb.removeprefix("create_")
            name = str(fields.get("name"))
            return Equivalent((kind, "create", name, "-"), f"docker {kind} create {name} -")
        case "create_global_service":
            name, image = str(fields.get("name")), str(fields.get("image") or "nginx:alpine")
            args = ("service", "create", "--name", name, "--mode", "global", image)
            return Equivalent(args, "docker " + shlex.join(args))
        case "force_update":
            args = ("service", "update", "--force", str(fields.get("service")))
            return Equivalent(args, "docker " + shlex.join(args))
        case "manage":
            return _manage(n, fields)
        case "snapshot" | "watch_tasks":
            # Where every task runs: Docker lists them per service (or per node).
            return Equivalent(("service", "ps", "SERVICE"), "docker service ps SERVICE")
        case "update_service":
            name, image = str(fields.get("service")), str(fields.get("image"))
            flags = ("--update-parallelism", str(fields.get("parallelism", 1)))
            delay = float(fields.get("delay") or 0)  # type: ignore[arg-type]
            if delay:
                flags += ("--update-delay", f"{delay:g}s")
            args = ("service", "update", "--image", image, *flags, name)
            return Equivalent(args, "docker " + shlex.join(args))
        case "rollback_service":
            name = str(fields.get("service"))
            return Equivalent(
                ("service", "rollback", name),
                f"docker service rollback {name} (or docker service update --rollback {name})",
            )
        case "manager_count":
            return Equivalent(
                (), "no Docker verb: build a swarm of each size, time writes and failovers"
            )
        case _ if verb in _ADMIN:
            return _ADMIN[verb](n, fields)
        case "write":
            return Equivalent(
                ("config", "create", "NAME", "FILE"),
                "docker config create NAME FILE (a Raft write)",
            )
    return None


def _manage(node: str, fields: dict[str, object]) -> Equivalent | None:
    """A ``manage`` step's one attempt of an operator command, by its ``command``."""
    command = fields.get("command")
    if command == "service_create":
        args = ("service", "create", "--name", str(fields.get("service")),
                "--replicas", str(fields.get("replicas", 1)), "nginx:alpine")  # fmt: skip
        return Equivalent(args, "docker " + shlex.join(args))
    if command == "service_scale":
        spec = f"{fields.get('service')}={fields.get('replicas')}"
        return Equivalent(("service", "scale", spec), f"docker service scale {spec}")
    if command == "node_update":
        return equivalent("availability", node, availability=fields.get("availability"))
    return None


def _admin_node_rm(n: str, fields: dict[str, object]) -> Equivalent:
    force = ("--force",) if fields.get("force") else ()
    args = ("node", "rm", *force, n)
    return Equivalent(args, "docker " + shlex.join(args))


def _admin_rotate_token(n: str, fields: dict[str, object]) -> Equivalent:
    role = str(fields.get("role") or "worker")
    args = ("swarm", "join-token", "--rotate", role)
    return Equivalent(args, "docker " + shlex.join(args))


def _admin_join_old(n: str, fields: dict[str, object]) -> Equivalent:
    return Equivalent(
        ("swarm", "join", "--token", "<the token before the rotation>"),
        "docker swarm join --token <the old token> MANAGER:2377",
    )


def _admin_probe(n: str, fields: dict[str, object]) -> Equivalent:
    path = str(fields.get("path") or "/nodes")
    return Equivalent(
        (), f"curl --unix-socket /var/run/docker.sock http://localhost{path} (on {n})"
    )


def _admin_update_secret(n: str, fields: dict[str, object]) -> Equivalent:
    return Equivalent(
        (), "no Docker verb changes a secret's data (the Engine API's secret update refuses it)"
    )


def _admin_service_update(n: str, fields: dict[str, object]) -> Equivalent:
    flags = [
        f
        for key, flag in (("secret_rm", "--secret-rm"), ("secret_add", "--secret-add"))
        for ref in fields.get(key) or []  # type: ignore[attr-defined]
        for f in (flag, str(ref))
    ]
    args = ("service", "update", *flags, str(fields.get("service")))
    return Equivalent(args, "docker " + shlex.join(args))


def _admin_files_held(n: str, fields: dict[str, object]) -> Equivalent:
    return Equivalent(
        ("service", "ps", "--no-trunc"),
        "docker service ps (then on each node: ls /run/secrets, a tmpfs, and the config files)",
    )


#: The operator's admin verbs of `scenarios.steps.admin`: verb -> its equivalent.
_ADMIN = {
    "node_rm": _admin_node_rm,
    "node_ls": lambda n, f: Equivalent(("node", "ls"), "docker node ls"),
    "rotate_join_token": _admin_rotate_token,
    "join_old_token": _admin_join_old,
    "rotate_unlock_key": lambda n, f: Equivalent(
        ("swarm", "unlock-key", "--rotate"), "docker swarm unlock-key --rotate"
    ),
    "probe_api": _admin_probe,
    "update_secret": _admin_update_secret,
    "service_update": _admin_service_update,
    "files_held": _admin_files_held,
}
