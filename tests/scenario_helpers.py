"""Helpers for the scenario tests: run a built-in, and always clean up."""

from __future__ import annotations

import json
from pathlib import Path

from scenarios.schema import builtins, load


def builtin(name: str):
    return load(builtins()[name])


def failed_checks(out: Path, name: str) -> list[dict]:
    result = json.loads((out / name / "result.json").read_text())
    return [c for c in result["checks"] if not c["passed"]]
