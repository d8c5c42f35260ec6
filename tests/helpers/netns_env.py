"""Netns mode in tests: skip (or, on CI, fail) without root and tools; prove cleanup.

`require_netns` skips a test with the reason when this machine cannot run
netns mode (not root, ``ip`` or ``nft`` missing) -- unless the environment
says ``REQUIRE_NETNS=1`` (CI), where that is a failure, so a CI machine that
lost its tools cannot pass by skipping.

`kernel_clean` is the fixture body that checks the cleanup guarantee: every
cluster the test made in netns mode (its prefix is recorded as the
supervisor makes it, with `cluster.local.netns.new_config`) has left no namespace, link or nftables
table in the kernel.  Only those prefixes are compared: other clusters may
come and go on a shared machine while the test runs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from cluster.client.wait import attempts
from cluster.local import netns, supervisor

#: Every name netns mode makes starts so (`cluster.local.netns.new_config`).
PREFIXED = re.compile(r"^(table (bridge|inet) |netns |link )?sr[0-9a-f]{5}")


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
    return {n for n in names if PREFIXED.match(n)}


def kernel_clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Yield the list of prefixes made during the test; then assert that none of
    them is left in the kernel (a removed namespace's veth end is freed by the
    kernel a moment later: waited for, bounded)."""
    require_netns()
    made: list[str] = []
    real = netns.new_config

    def recording(cluster_id: str) -> netns.NetnsConfig:
        cfg = real(cluster_id)
        made.append(cfg.prefix)
        return cfg

    # The supervisor is the one caller: a cluster the test makes in-process
    # (directly, or through the scenario runner) is recorded.
    monkeypatch.setattr(supervisor, "new_config", recording)
    before = kernel_names()
    yield made
    # Had the recording missed the clusters, the check below would prove nothing.
    assert made, "the test made no netns cluster through the supervisor"
    left: set[str] = set()
    for _ in attempts(5.0, every=0.1):
        left = {n for n in kernel_names() - before if any(p in n for p in made)}
        if not left:
            return
    raise AssertionError(f"left behind in the kernel: {sorted(left)}")
