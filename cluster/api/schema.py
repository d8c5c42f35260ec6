"""Strict checks of request bodies and Docker-style ``filters``, before any command.

The store validates what it stores (`cluster.state.objects`), but it keeps fields
it does not know and says nothing about them.  An API user who misspells
``Replicas`` as ``Replica`` deserves a 400 naming the field, not a service
with one replica.  So each body is checked here against the Engine API's
field list for its spec: an unknown field, or a value of the wrong JSON type,
is refused with its path (``Spec.TaskTemplate.ContainerSpec.Imag``).
Values are then left to the store's own rules.

JSON ``null`` counts as "absent" everywhere, as Go's decoder treats it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from cluster.api.common import ApiError, json_type
from cluster.state import objects as o

#: A field is a JSON type name or, for a nested object, its own schema.
Field = str | Mapping[str, Any]
Schema = Mapping[str, Field]

_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "integer": (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    "number": (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    "boolean": (lambda v: isinstance(v, bool), "a boolean"),
    "array": (lambda v: isinstance(v, list), "an array"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "labels": (
        lambda v: isinstance(v, dict) and all(isinstance(x, str) for x in v.values()),
        "an object of strings",
    ),
    "strings": (
        lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "an array of strings",
    ),
}

_UPDATE_CONFIG: Schema = {
    "Parallelism": "integer",
    "Delay": "integer",
    "FailureAction": "string",
    "Monitor": "integer",
    "MaxFailureRatio": "number",
    "Order": "string",
}

#: Docker's ContainerSpec fields: specs written for Docker pass unchanged.
_CONTAINER_SPEC: Schema = {
    "Image": "string",
    "Labels": "labels",
    "Command": "strings",
    "Args": "strings",
    "Hostname": "string",
    "Env": "strings",
    "Dir": "string",
    "User": "string",
    "Groups": "strings",
    "Privileges": "object",
    "Init": "boolean",
    "TTY": "boolean",
    "OpenStdin": "boolean",
    "ReadOnly": "boolean",
    "Mounts": "array",
    "StopSignal": "string",
    "StopGracePeriod": "integer",
    "HealthCheck": "object",
    "Hosts": "strings",
    "DNSConfig": "object",
    "Secrets": "array",
    "Configs": "array",
    "Isolation": "string",
    "Sysctls": "labels",
    "CapabilityAdd": "strings",
    "CapabilityDrop": "strings",
    "Ulimits": "array",
}

SERVICE_SPEC: Schema = {
    "Name": "string",
    "Labels": "labels",
    "TaskTemplate": {
        "ContainerSpec": _CONTAINER_SPEC,
        "Resources": "object",
        "RestartPolicy": "object",
        "Placement": "object",
        "Networks": "array",
        "LogDriver": "object",
        "ForceUpdate": "integer",
        "Runtime": "string",
    },
    "Mode": {"Replicated": {"Replicas": "integer"}, "Global": {}},
    "UpdateConfig": _UPDATE_CONFIG,
    "RollbackConfig": _UPDATE_CONFIG,
    "Networks": "array",
    "EndpointSpec": {"Mode": "string", "Ports": "array"},
}

NODE_SPEC: Schema = {
    "Name": "string",
    "Labels": "labels",
    "Role": "string",
    "Availability": "string",
}

#: Secrets and configs: no Driver or Templating here (nothing would use them).
NAMED_SPEC: Schema = {"Name": "string", "Labels": "labels", "Data": "string"}

TRANSFER_BODY: Schema = {"target": "string"}


def check_object(value: Any, schema: Schema, where: str) -> None:
    """Refuse unknown fields and wrongly typed values, naming the path."""
    if not isinstance(value, dict):
        raise ApiError(400, f"invalid type for {where}: expected an object, got {json_type(value)}")
    for key, item in value.items():
        if key not in schema:
            raise ApiError(400, f"unknown field {str(key)[:60]!r} in {where}")
        _check_value(item, schema[key], f"{where}.{key}")


def _check_value(value: Any, field: Field, where: str) -> None:
    if value is None:
        return
    if not isinstance(field, str):
        check_object(value, field, where)
        return
    ok, expected = _TYPES[field]
    if not ok(value):
        got = json_type(value)
        raise ApiError(400, f"invalid type for {where}: expected {expected}, got {got}")


def _present(body: dict[str, Any]) -> dict[str, Any]:
    """The fields that are not null."""
    return {k: v for k, v in body.items() if v is not None}


def service_spec(body: dict[str, Any]) -> dict[str, Any]:
    """A ServiceSpec, the body of ``POST /services/create`` and ``.../update``."""
    check_object(body, SERVICE_SPEC, "Spec")
    return _present(body)


def node_spec(body: dict[str, Any]) -> dict[str, Any]:
    """The NodeSpec fields sent; the route keeps the current value of the others."""
    check_object(body, NODE_SPEC, "Spec")
    return _present(body)


def named_spec(body: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    """A SecretSpec or ConfigSpec: (name and labels, decoded ``Data`` or ``None``).

    ``Data`` is base64 as in the Engine API.  The error for bad base64 names
    the field, never its content.
    """
    check_object(body, NAMED_SPEC, "Spec")
    spec = _present(body)
    data = spec.pop("Data", None)
    if data is None:
        return spec, None
    try:
        return spec, base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, "invalid Spec.Data: not valid base64") from None


def transfer_target(body: dict[str, Any] | None) -> str | None:
    """``{"target": name | null}``; an empty body means "any follower"."""
    if body is None:
        return None
    check_object(body, TRANSFER_BODY, "body")
    target = body.get("target")
    if target == "":
        raise ApiError(400, "invalid target: empty name")
    return target


# -- filters -------------------------------------------------------------------


def parse_filters(request: web.Request, allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """Docker's ``filters`` query: JSON ``{"name": ["web"]}`` (or ``{"web": true}``).

    Values under one key are alternatives (any may match); different keys
    must all match.  An unknown key is refused, as Docker does.
    """
    raw = request.query.get("filters")
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise ApiError(400, "invalid filters: not a JSON object") from None
    if not isinstance(doc, dict):
        raise ApiError(400, "invalid filters: not a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in doc.items():
        if key not in allowed:
            raise ApiError(
                400, f"invalid filter {str(key)[:40]!r} (known: {', '.join(sorted(allowed))})"
            )
        strings = isinstance(value, list) and all(isinstance(v, str) for v in value)
        flags = isinstance(value, dict) and all(v is True for v in value.values())
        if isinstance(value, str):
            values = [value]
        elif strings or flags:
            values = list(value)
        else:
            raise ApiError(400, f"invalid filters: values of {key!r} must be strings")
        if values:
            out[key] = values
    return out


def names_of(kind: str, obj: o.Obj) -> tuple[str, ...]:
    """What a ``name`` filter matches: a node's hostname, else ``Spec.Name``."""
    names = [obj.get("Spec", {}).get("Name")]
    if kind == o.NODE:
        names.insert(0, obj.get("Description", {}).get("Hostname"))
    return tuple(n for n in names if isinstance(n, str) and n)


def label_matches(labels: Mapping[str, str], wanted: str) -> bool:
    """``key`` (the label is set) or ``key=value``."""
    key, eq, value = wanted.partition("=")
    if key not in labels:
        return False
    return not eq or labels[key] == value


def common_match(kind: str, obj: o.Obj, filters: Mapping[str, list[str]]) -> bool:
    """The filters every listing shares: ``id`` and ``name`` (prefixes), ``label``."""
    if "id" in filters and not any(obj["ID"].startswith(v) for v in filters["id"]):
        return False
    if "name" in filters:
        names = names_of(kind, obj)
        if not any(n.startswith(v) for v in filters["name"] for n in names):
            return False
    if "label" in filters:
        labels = obj.get("Spec", {}).get("Labels") or obj.get("Labels") or {}
        if not all(label_matches(labels, v) for v in filters["label"]):
            return False
    return True
