"""Fixtures several test folders share (plain helpers live in tests/helpers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from netns_env import kernel_clean


@pytest.fixture
def netns_clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Netns mode required (else skipped, or failed under REQUIRE_NETNS=1); yields
    the prefixes of the clusters the test makes, then fails if any of their
    namespaces, links or tables is left in the kernel."""
    yield from kernel_clean(monkeypatch)
