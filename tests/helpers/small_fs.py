"""A small file system of its own (tmpfs) for tests of a disk that fills up.

``mount -t tmpfs -o size=...`` needs root: without it, or if the mount
fails, the test is skipped with the reason.  The mount is always undone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_fs(where: Path, size: str = "8m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` on ``where`` (made if missing); unmount on exit."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs on {where}: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def fill(path: Path, chunk: int = 64 << 10) -> int:
    """Write zeros to ``path`` until its file system is full; the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        block = b"\0" * chunk
        while chunk:
            try:
                written += os.write(fd, block[:chunk])
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                chunk //= 2  # fill the last pages too
    finally:
        os.close(fd)
    return written


def free_space(path: Path) -> int:
    """Bytes free on the file system holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
