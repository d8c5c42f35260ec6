"""Headless Chromium for the page tests, through Playwright with Debian's browser.

Playwright's own browser download is not used: the tests drive the
``chromium`` binary from Debian's package (``.ci/run`` installs it), found at
``$CHROMIUM`` or on the PATH.  Without it the browser tests are skipped with
a message that says how to install it -- except where ``REQUIRE_BROWSER=1``
(CI), where a missing browser is a failure.

Each test keeps screenshots under ``out/test-artifacts/`` (or
``$ARTIFACTS_DIR``) so a reader can see what the page showed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from repo import ROOT


def chromium_path() -> str | None:
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    return found if found and Path(found).exists() else None


def artifacts_dir() -> Path:
    path = Path(os.environ.get("ARTIFACTS_DIR") or ROOT / "out" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def open_page(width: int = 1280, height: int = 900) -> Iterator[tuple[Any, list[str]]]:
    """A new page and the list its console errors and page errors are collected in."""
    executable = chromium_path()
    if executable is None:
        message = "no chromium: apt-get install chromium (Debian's package)"
        if os.environ.get("REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, errors
        finally:
            browser.close()
