"""Durations as people type them (``90d``, ``2h``, ``1h30m``), for ``swarm update``.

Docker takes Go durations (``2160h0m0s``) and adds nothing for days; days are
accepted here too, since "90d" is how a certificate's lifetime is said.
The API itself speaks nanoseconds, Docker's unit.
"""

from __future__ import annotations

import datetime
import re

__all__ = ["format_duration", "parse_duration"]

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")


def parse_duration(text: str) -> datetime.timedelta:
    """``90d``, ``2h``, ``1h30m``, ``2160h0m0s`` -> a timedelta; ValueError if not one."""
    text = text.strip()
    pos, total = 0, 0.0
    for m in _PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, e.g. 90d, 2h, 30m")
    return datetime.timedelta(seconds=total)


def format_duration(delta: datetime.timedelta) -> str:
    """The way Docker prints one: ``2160h0m0s``."""
    seconds = int(delta.total_seconds())
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s"
