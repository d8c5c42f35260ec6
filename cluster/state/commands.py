"""Building the commands a manager proposes to Raft.

The state machine (`cluster.state.store`) may not read a clock or draw a random
number, or replicas would disagree.  So whatever is chosen, is chosen *here*,
on the proposing side, and written into the command: object IDs (`new_id`),
timestamps (``now``), join tokens, and a secret's encryption (the proposer
seals the data with the DEK so the log only ever holds ciphertext).

A command is msgpack of ``{"op": <name>, "args": {...}}``; `encode` makes
one and `decode` reads one back (for tests and trace lines).  The builders
also run the store's static checks on a spec first, so a user's typo fails
before it costs a log entry; the store checks again, because only it knows
the state (names taken, versions, references).
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
from datetime import UTC, datetime
from typing import Any

import msgpack

from cluster.security import crypto
from cluster.state import objects as o
from cluster.state.store import decode_command

Time = str | float | datetime

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
_UNSET: Any = object()


# -- IDs, tokens and time ----------------------------------------------------


def _base36(n: int, width: int) -> str:
    digits = []
    while n:
        n, r = divmod(n, 36)
        digits.append(_ALPHABET[r])
    return "".join(reversed(digits)).rjust(width, "0")


def new_id(rng: random.Random | None = None) -> str:
    """A Docker-style object ID: 128 random bits as 25 lowercase base36 digits.

    Pass a seeded ``random.Random`` for reproducible runs (the simulator);
    by default the bits come from `secrets`.
    """
    bits = rng.getrandbits(128) if rng is not None else secrets.randbits(128)
    return _base36(bits, 25)


def new_join_token(rng: random.Random | None = None, root_digest: str | None = None) -> str:
    """A token shaped like Docker's ``SWMTKN-1-<50 chars>-<25 chars>``.

    The first field is the root certificate's digest (`cluster.security.pki.root_digest`),
    which lets a newcomer check the CA it is given; the second is the secret.
    Without a digest (a swarm without certificates) the first field is random.
    """
    draw = rng.getrandbits if rng is not None else secrets.randbits
    digest = root_digest if root_digest is not None else _base36(draw(256), 50)
    return f"SWMTKN-1-{digest}-{_base36(draw(128), 25)}"


def format_time(t: Time) -> str:
    """RFC 3339 in UTC with up to nanoseconds, trailing zeros trimmed, as Docker prints.

    A string is taken as already formatted.  The result goes into the
    command, so every replica stores the very same text.
    """
    if isinstance(t, str):
        return t
    if isinstance(t, datetime):
        dt = t.astimezone(UTC) if t.tzinfo else t.replace(tzinfo=UTC)
        whole, frac_ns = dt.replace(microsecond=0), dt.microsecond * 1000
    else:
        seconds = math.floor(t)
        frac_ns = round((t - seconds) * 1e9)
        if frac_ns >= 1_000_000_000:
            seconds, frac_ns = seconds + 1, 0
        whole = datetime.fromtimestamp(seconds, UTC)
    text = whole.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{frac_ns:09d}".rstrip("0")
    return f"{text}.{frac}Z" if frac else f"{text}Z"


def parse_time(text: str) -> float:
    """Unix seconds from a timestamp `format_time` wrote (the inverse, to the nanosecond).

    The control loops read times back out of the store (when a task failed,
    when a node went down) to compare them with the ``now`` they are given.
    """
    whole, _, frac = text.rstrip("Z").partition(".")
    dt = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return dt.timestamp() + (int(frac.ljust(9, "0")[:9]) / 1e9 if frac else 0.0)


def derived_id(*parts: object) -> str:
    """A Docker-style ID that is a function of ``parts`` (SHA-256, base36).

    The orchestrator names the task it creates after what it saw, so two
    leaders that see the same slot in the same state propose the same ID and
    the store keeps only the first (`AlreadyExists` for the second).
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return _base36(int.from_bytes(digest[:16], "big"), 25)


# -- the envelope ------------------------------------------------------------


def encode(op: str, **args: Any) -> bytes:
    """One command's bytes.  Arguments that are ``None`` are left out."""
    body = {k: v for k, v in args.items() if v is not None}
    return msgpack.packb({"op": op, "args": body}, use_bin_type=True)


def decode(command: bytes) -> tuple[str, dict[str, Any]]:
    """(op, args) of a command, or `InvalidArgument` if it is not one."""
    return decode_command(command)


def batch(*commands: bytes) -> bytes:
    """Several commands applied atomically in one entry: all of them or none.

    The orchestrator uses it to create a service's tasks in one log entry.
    """
    parts = []
    for command in commands:
        op, args = decode(command)
        parts.append({"op": op, "args": args})
    return encode("batch", commands=parts)


# -- cluster -----------------------------------------------------------------


def init_cluster(
    cluster_id: str,
    now: Time,
    worker_token: str,
    manager_token: str,
    spec: dict[str, Any] | None = None,
) -> bytes:
    """``docker swarm init``: the cluster object with its settings and join tokens."""
    tokens = {"Worker": worker_token, "Manager": manager_token}
    return encode("cluster.init", id=cluster_id, at=format_time(now), spec=spec, join_tokens=tokens)


def update_cluster(
    version: int,
    now: Time,
    spec: dict[str, Any] | None = None,
    join_tokens: dict[str, str] | None = None,
) -> bytes:
    """``docker swarm update`` / ``join-token --rotate`` (compare-and-set)."""
    return encode(
        "cluster.update", version=version, at=format_time(now), spec=spec, join_tokens=join_tokens
    )


def put_root_ca(cert_pem: str, sealed_key: dict[str, Any], now: Time) -> bytes:
    """Replicate the root CA: its certificate (public) and its key sealed by the DEK."""
    return encode("cluster.root_ca", cert=cert_pem, sealed=sealed_key, at=format_time(now))


def start_root_rotation(
    cert_pem: str, cross_pem: str, digest: str, sealed_key: dict[str, Any], now: Time
) -> bytes:
    """``swarm ca --rotate``: the next root, its cross-signed bridge, its key sealed."""
    return encode(
        "cluster.root_rotation",
        cert=cert_pem,
        cross=cross_pem,
        digest=digest,
        sealed=sealed_key,
        at=format_time(now),
    )


def node_certificate(node_id: str, issuer_digest: str, now: Time) -> bytes:
    """Record which root issued a node's newest certificate."""
    return encode("node.certificate", id=node_id, issuer=issuer_digest, at=format_time(now))


def put_data_key(wrapped: bytes, now: Time) -> bytes:
    """Replicate the DEK wrapped under the KEK (at init, or after a rewrap)."""
    key_id, _ = crypto.wrapped_key_ids(wrapped)
    return encode("keyring.put", key_id=key_id, wrapped=wrapped, at=format_time(now))


# -- nodes -------------------------------------------------------------------


def create_node(
    node_id: str,
    now: Time,
    hostname: str,
    role: str = "worker",
    addr: str = "127.0.0.1",
    manager_addr: str | None = None,
    availability: str = "active",
    labels: dict[str, str] | None = None,
    description: dict[str, Any] | None = None,
    state: str = "ready",
) -> bytes:
    """A node joining the swarm (a manager also gets a ManagerStatus).

    ``description`` adds to ``Description`` (e.g. ``TLSInfo``, ``Endpoints``);
    ``state`` is ``unknown`` for a node that has a certificate but has not
    yet checked in.
    """
    spec = o.normalize_node_spec({"Role": role, "Availability": availability, "Labels": labels})
    return encode(
        "node.create",
        id=node_id,
        at=format_time(now),
        hostname=hostname,
        spec=spec,
        addr=addr,
        manager_addr=manager_addr,
        description=description or {},
        state=state,
    )


def update_node(node_id: str, version: int, spec: dict[str, Any], now: Time) -> bytes:
    """``docker node update/promote/demote``: the whole NodeSpec, at ``version``."""
    spec = o.normalize_node_spec(spec)
    return encode("node.update", id=node_id, version=version, spec=spec, at=format_time(now))


def set_node_status(
    node_id: str,
    now: Time,
    state: str | None = None,
    addr: str | None = None,
    message: str | None = None,
    manager: dict[str, Any] | None = _UNSET,
) -> bytes:
    """Observed status; ``manager=None`` drops ManagerStatus, leaving it out keeps it."""
    args: dict[str, Any] = {"state": state, "addr": addr, "message": message}
    body = {k: v for k, v in args.items() if v is not None}
    body.update(id=node_id, at=format_time(now))
    if manager is not _UNSET:
        body["manager"] = manager
    return msgpack.packb({"op": "node.status", "args": body}, use_bin_type=True)


def remove_node(node_id: str, force: bool = False) -> bytes:
    return encode("node.remove", id=node_id, force=force)


# -- services and tasks --------------------------------------------------------


def create_service(spec: dict[str, Any], id: str, now: Time) -> bytes:
    """``docker service create`` with an ID chosen by the proposer (see `new_id`)."""
    o.normalize_service_spec(spec)
    return encode("service.create", id=id, spec=spec, at=format_time(now))


def update_service(service_id: str, version: int, spec: dict[str, Any], now: Time) -> bytes:
    """``docker service update/scale/rollback``: the new spec, at ``version``."""
    o.normalize_service_spec(spec)
    return encode("service.update", id=service_id, version=version, spec=spec, at=format_time(now))


def set_service_update_status(
    service_id: str,
    now: Time,
    state: str,
    message: str,
    started_at: Time | None = None,
    completed_at: Time | None = None,
    version: int | None = None,
) -> bytes:
    """The updater records a rolling update's progress in ``UpdateStatus``."""
    status = {"State": state, "Message": message}
    if started_at is not None:
        status["StartedAt"] = format_time(started_at)
    if completed_at is not None:
        status["CompletedAt"] = format_time(completed_at)
    return encode(
        "service.status",
        id=service_id,
        at=format_time(now),
        update_status=status,
        version=version,
    )


def remove_service(service_id: str) -> bytes:
    return encode("service.remove", id=service_id)


def create_task(
    task_id: str,
    now: Time,
    service_id: str,
    slot: int | None = None,
    node_id: str | None = None,
    spec: dict[str, Any] | None = None,
    desired_state: str = "running",
) -> bytes:
    """A task for a slot (replicated) or a node (global); spec defaults to the service's."""
    return encode(
        "task.create",
        id=task_id,
        at=format_time(now),
        service_id=service_id,
        slot=slot,
        node_id=node_id,
        spec=spec,
        desired_state=desired_state,
    )


def update_task(
    task_id: str,
    now: Time,
    state: str | None = None,
    message: str | None = None,
    err: str | None = None,
    desired_state: str | None = None,
    node_id: str | None = None,
    version: int | None = None,
) -> bytes:
    """Assignment, a status report or a desired-state change (states move forward only)."""
    return encode(
        "task.update",
        id=task_id,
        at=format_time(now),
        state=state,
        message=message,
        err=err,
        desired_state=desired_state,
        node_id=node_id,
        version=version,
    )


def remove_task(task_id: str) -> bytes:
    return encode("task.remove", id=task_id)


# -- secrets and configs -------------------------------------------------------


def create_secret(
    spec: dict[str, Any], data: bytes, id: str, now: Time, dek: crypto.DataKey
) -> bytes:
    """``docker secret create``: seal ``data`` with the DEK; only ciphertext goes out.

    The plaintext is checked (size) and encrypted here and appears in no
    byte of the returned command.
    """
    if not isinstance(data, bytes):
        raise TypeError("secret data must be bytes")
    clean = o.normalize_secret_spec(spec)
    o.check_payload(o.SECRET, len(data))
    sealed = crypto.encrypt_secret(dek, id, data)
    return encode("secret.create", id=id, spec=clean, sealed=sealed, at=format_time(now))


def update_secret(secret_id: str, version: int, spec: dict[str, Any], now: Time) -> bytes:
    """Only the labels of a secret can change; the store refuses anything else."""
    clean = {k: v for k, v in spec.items() if k != "Data"}
    return encode("secret.update", id=secret_id, version=version, spec=clean, at=format_time(now))


def remove_secret(secret_id: str) -> bytes:
    return encode("secret.remove", id=secret_id)


def create_config(spec: dict[str, Any], data: bytes, id: str, now: Time) -> bytes:
    """``docker config create``: the data travels and is stored in plain."""
    if not isinstance(data, bytes):
        raise TypeError("config data must be bytes")
    clean = o.normalize_secret_spec(spec, o.CONFIG)
    o.check_payload(o.CONFIG, len(data))
    return encode("config.create", id=id, spec={**clean, "Data": data}, at=format_time(now))


def update_config(config_id: str, version: int, spec: dict[str, Any], now: Time) -> bytes:
    """Only the labels of a config can change (the same Data may be sent back)."""
    return encode("config.update", id=config_id, version=version, spec=spec, at=format_time(now))


def remove_config(config_id: str) -> bytes:
    return encode("config.remove", id=config_id)
