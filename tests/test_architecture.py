"""The layout is part of the design: which package may import which.

Read from the source, never run: every ``import`` of a project module, at
module level, inside a function or under ``TYPE_CHECKING``, is an edge.  The
rules below are the ones each package's docstring states; a new edge that
breaks one fails here with the file and line that made it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOPS = ("raft", "cluster", "scenarios", "viz")

# package -> the project packages it may import (besides itself).  A package is
# the first two levels of a module's name (``cluster.state``, ``raft.core``).
ALLOWED: dict[str, set[str]] = {
    "raft.core": set(),
    "raft.runtime": {"raft.core"},
    "raft.sim": {"raft.core"},
    "raft.kv": {"raft.core", "raft.runtime"},
    "cluster.security": {"raft.runtime"},
    "cluster.state": {"cluster.security", "raft.core"},
    "cluster.control": {"cluster.state"},
    "cluster.api": {
        "cluster.state",
        "cluster.control",
        "cluster.security",
        "raft.core",
        "raft.runtime",
    },
    "cluster.manager": {
        "cluster.state",
        "cluster.control",
        "cluster.security",
        "cluster.api",
        "raft.core",
        "raft.runtime",
    },
    "cluster.worker": {"cluster.control", "cluster.security", "cluster.client", "raft.runtime"},
    "cluster.client": set(),
    "cluster.local": {
        "cluster.client",
        "cluster.security",
        "cluster.state",
        "raft.core",
        "raft.runtime",
    },
    # The benchmark's latency figure is drawn by viz, from the samples it passes.
    "cluster.bench": {"cluster.client", "cluster.local", "viz.figures"},
    "cluster.cli": {
        "cluster.client",
        "cluster.local",
        "cluster.state",
        "cluster.bench",
        "cluster.web",
    },
    # The live web view: a page from viz, facts from the local cluster; its
    # buttons run the CLI as a command, never its code (no cli <-> web edge).
    "cluster.web": {"cluster.client", "cluster.local", "viz.web"},
    "cluster.__main__": {"cluster.cli"},
    # scenarios: the file format knows no cluster; the drivers implement the
    # steps' Driver protocol (so they import the steps, never the reverse);
    # the checks read what a run recorded and the traces, never drive a cluster.
    "scenarios.steps": set(),
    "scenarios.linearizability": set(),
    "scenarios.drivers": {
        "scenarios.steps",
        "cluster.local",
        "cluster.client",
        "raft.sim",
        "raft.core",
    },
    "scenarios.checks": {"scenarios.steps", "scenarios.linearizability", "viz"},
    "scenarios.runner": {
        "scenarios.steps",
        "scenarios.drivers",
        "scenarios.checks",
        "scenarios.report",
        "cluster.client",
        "cluster.local",
        "viz",
    },
    "scenarios.report": {
        "scenarios.steps",
        "scenarios.checks",
        "scenarios.report_ops",
        "raft.core",
        "viz",
    },
    # The note's share of what steps measured (rollouts, manager-count): a
    # module of its own so report.py stays one page of the note's shape.
    "scenarios.report_ops": {"scenarios.steps", "scenarios.checks", "viz"},
    "scenarios.figure8": {
        "scenarios.checks",
        "scenarios.drivers",
        "scenarios.runner",
        "raft.core",
        "raft.sim",
        "viz",
    },
    # The Jepsen test drives real managers and checks the history it recorded.
    "scenarios.jepsen": {
        "scenarios.steps",
        "scenarios.drivers",
        "scenarios.checks",
        "scenarios.linearizability",
        "raft.core",
        "viz",
        "cluster.client",
    },
    "scenarios.torture": {"cluster.client", "cluster.local", "raft.runtime"},
    # The endurance run drives a local cluster (reading status as the torture does)
    # and draws its samples with viz.
    "scenarios.endurance": {"cluster.client", "cluster.local", "scenarios.torture", "viz.figures"},
    "scenarios.bench_linearizability": {"scenarios.linearizability"},
    "scenarios.__main__": {
        "scenarios.steps",
        "scenarios.runner",
        "scenarios.report",
        "scenarios.jepsen",
        "cluster.local",
    },
}
# Pure packages: no event loop, no web framework, no clock, no threads, no processes.
PURE_PACKAGES = ("cluster.state", "cluster.control")
IMPURE_MODULES = {"asyncio", "aiohttp", "time", "threading", "socket", "subprocess", "ssl"}
CLOCK_CALLS = {"now", "utcnow", "today", "monotonic", "time", "perf_counter"}


def _modules() -> dict[str, Path]:
    found = {}
    for top in TOPS:
        for path in (ROOT / top).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, project module) for every import of a project module in the file."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
            names = [(ln, n if n in MODULES else node.module) for ln, n in names]
        else:
            continue
        for line, name in names:
            if name.split(".")[0] in TOPS and (target := _resolve(name)):
                out.append((line, target))
    return out


EDGES = {m: _imports(p) for m, p in MODULES.items()}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_project_modules() -> None:
    graph = {m: {t for _, t in edges if t != m} for m, edges in EDGES.items()}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_raft_knows_nothing_of_swarm() -> None:
    bad = [
        f"{m}:{line} imports {t}"
        for m, edges in EDGES.items()
        if m.startswith("raft")
        for line, t in edges
        if not t.startswith("raft")
    ]
    assert bad == []


def _may(target: str, allowed: set[str]) -> bool:
    """Is ``target`` in one of the ``allowed`` packages?  A top-level name
    (``viz``) allows all of it, however it is divided."""
    return _package(target) in allowed or target.split(".")[0] in allowed


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_its_rules_allow(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    bad = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {t}"
        for m, edges in EDGES.items()
        if _package(m) == package
        for line, t in edges
        if not _may(t, allowed)
    ]
    assert bad == []


def test_viz_imports_only_itself_and_raft_core() -> None:
    """viz reads traces and plain data its callers pass; it never reaches into
    the cluster or the scenario runner (they call it, not the other way)."""
    bad = [
        f"{MODULES[m].relative_to(ROOT)}:{line} imports {t}"
        for m, edges in EDGES.items()
        if m.split(".")[0] == "viz"
        for line, t in edges
        if t.split(".")[0] != "viz" and _package(t) != "raft.core"
    ]
    assert bad == []


def test_every_package_has_rules() -> None:
    """Every package of raft and cluster, and every sub-package (a folder) of scenarios."""
    packages = {_package(m) for m in MODULES if m.split(".")[0] in ("raft", "cluster")}
    packages |= {
        _package(m)
        for m, path in MODULES.items()
        if m.startswith("scenarios.") and path.name == "__init__.py"
    }
    packages -= {"raft", "cluster"}
    assert packages <= set(ALLOWED), f"no import rules for {sorted(packages - set(ALLOWED))}"


@pytest.mark.parametrize(
    "package", sorted(p for p in ALLOWED if (ROOT / p.replace(".", "/") / "__init__.py").exists())
)
def test_each_package_says_what_it_may_import(package: str) -> None:
    init = ROOT / package.replace(".", "/") / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert "May import" in doc, f"{init.relative_to(ROOT)}: the docstring names no import rule"


def _impurities(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots = [node.module.split(".")[0]]
        else:
            roots = []
        found += [f"line {node.lineno}: imports {r}" for r in roots if r in IMPURE_MODULES]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
        ):
            found.append(f"line {node.lineno}: reads a clock (.{node.func.attr}())")
    return found


@pytest.mark.parametrize(
    "module", sorted(m for m in MODULES if _package(m) in PURE_PACKAGES), ids=str
)
def test_state_and_control_are_pure(module: str) -> None:
    """The store applies commands and the control loops decide from what they are
    given (time included): nothing there may wait, serve or read the clock."""
    assert _impurities(MODULES[module]) == []


@pytest.mark.parametrize(
    "source",
    ["import asyncio", "from aiohttp import web", "import time", "x = datetime.now()"],
)
def test_the_purity_check_catches(source: str, tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text(source)
    assert _impurities(f) != []


def test_the_rules_keep_the_steps_ignorant_of_drivers() -> None:
    steps = ALLOWED["scenarios.steps"] | {"scenarios.steps"}
    assert not _may("scenarios.drivers.real", steps)
    assert _may("viz.model", ALLOWED["scenarios.checks"])
    assert not _may("cluster.local.supervisor", ALLOWED["scenarios.checks"])
