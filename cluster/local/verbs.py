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
    for drain, ``name``/``replicas``/``image`` for services, ``role`` for joins."""
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
            return Equivalent(("swarm", "unlock"), "docker swarm unlock")
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
            args = ("service", "create", "--name", name, "--replicas", str(replicas), image)
            return Equivalent(args, "docker " + shlex.join(args))
        case "scale":
            spec = f"{fields.get('service')}={fields.get('replicas')}"
            return Equivalent(("service", "scale", spec), f"docker service scale {spec}")
        case "create_secret" | "create_config":
            kind = verb.removeprefix("create_")
            name = str(fields.get("name"))
            return Equivalent((kind, "create", name, "-"), f"docker {kind} create {name} -")
        case "write":
            return Equivalent(
                ("config", "create", "NAME", "FILE"),
                "docker config create NAME FILE (a Raft write)",
            )
    return None
