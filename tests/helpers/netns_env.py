"""Netns mode in tests: skip (or, on CI, fail) without root and tools; prove cleanup.

`require_netns` skips a test with the reason when this machine cannot run
netns mode (not root, ``ip`` or ``nft`` missing) -- unless the environment
says ``REQUIRE_NETNS=1`` (CI), where that is a failure, so a CI machine that
lost its tools cannot pass by skipping.

`kernel_clean` is the fixture body that checks the cleanup guarantee: the
namespaces, links and nftables tables with a cluster prefix (``sr`` and five
hex digits, `cluster.local.netns`) after the test are exactly those before it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from cluster.client.wait import attempts

#: Every name netns mode makes starts so (`cluster.local.netns.new_config`).
PREFIXED = re.compile(r"^(table bridge |netns |link )?sr[0-9a-f]{5}")


def netns_missing() -> str | None:
    """Why netns mode cannot run here, or None."""
    if os.geteuid() != 0:
        return "netns mode needs root"
    missing = [t for t in ("ip", "nft") if shutil.which(t) is None]
    return f"netns mode needs {', '.join(missing)}" if missing else None


def require_netns() -> None:
    """Skip with the reason, or fail under ``REQUIRE_NETNS=1``."""
    why = netns_missing()
    if why is None:
        return
    if os.environ.get("REQUIRE_NETNS") == "1":
        pytest.fail(f"REQUIRE_NETNS=1 but {why}")
    pytest.skip(why)


def kernel_names() -> set[str]:
    """Namespaces, links and nftables tables that carry a cluster prefix."""

    def lines(*cmd: str) -> list[str]:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
        return [line for line in out.splitlines() if line.strip()]

    names = {f"netns {line.split()[0]}" for line in lines("ip", "netns", "list")}
    names |= {
        "link " + line.split(": ")[1].split("@")[0]
        for line in lines("ip", "-o", "link", "show")
        if ": " in line
    }
    names |= {line.strip() for line in lines("nft", "list", "tables")}
    return {n for n in names if PREFIXED.match(n.split(" ", 1)[-1]) or PREFIXED.match(n)}


def kernel_clean() -> Iterator[None]:
    """Yield once; then assert nothing prefixed was left (a removed namespace's
    veth end is freed by the kernel a moment later: waited for, bounded)."""
    require_netns()
    before = kernel_names()
    yield
    left: set[str] = set()
    for _ in attempts(5.0, every=0.1):
        left = kernel_names() - before
        if not left:
            return
    raise AssertionError(f"left behind in the kernel: {sorted(left)}")
