"""The one big rule (docs/architecture.md): the consensus core does no I/O of its own.

Checked by reading the source, not by running it: no import of a module that
touches sockets, files, clocks, threads or the event loop, and no use of the
module-level `random` functions (only a `random.Random` handed in).
"""

from __future__ import annotations

import ast

import pytest
from repo import ROOT

CORE = ROOT / "raft" / "core"
# Every module of the core, whatever its name: a new file is checked the day it lands.
PURE = sorted(p.name for p in CORE.glob("*.py"))
FORBIDDEN = {"asyncio", "socket", "time", "os", "threading", "subprocess", "ssl", "selectors"}


def impurities(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            root = (node.module or "").split(".")[0]
            if node.level == 0 and root in FORBIDDEN:
                found.append(f"line {node.lineno}: from {node.module} import ...")
            if node.level == 0 and root == "random":
                for alias in node.names:
                    if alias.name != "Random":
                        found.append(f"line {node.lineno}: from random import {alias.name}")
        elif isinstance(node, ast.Attribute):
            if (
                isinstance(node.value, ast.Name)
                and node.value.id == "random"
                and node.attr != "Random"
            ):
                found.append(f"line {node.lineno}: random.{node.attr}")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in ("__import__", "open"):
                found.append(f"line {node.lineno}: {func.id}()")
    return found


@pytest.mark.parametrize("name", PURE)
def test_core_module_does_no_io(name):
    assert impurities((CORE / name).read_text()) == []


def test_the_core_has_modules_to_check():
    assert "protocol.py" in PURE and len(PURE) > 10


@pytest.mark.parametrize(
    "source",
    [
        "import asyncio",
        "import os.path",
        "from time import monotonic",
        "from socket import socket",
        "import threading as th",
        "import random\nx = random.randrange(10)",
        "import random\nrandom.seed(1)",
        "from random import choice",
        "open('f')",
    ],
)
def test_the_checker_catches(source):
    assert impurities(source) != []


def test_the_checker_allows_an_injected_rng():
    source = "import random\ndef f(rng: random.Random):\n    return rng.randrange(3)\n"
    assert impurities(source) == []
