"""The page of the live web view and of every replay: one HTML file, nothing fetched.

`page_html` inlines the stylesheet and the script (``style.css``, ``app.js``)
and the page's data into ``page.html``, so a replay opens from ``file://``
and the live view's server sends one self-contained document.  The script
draws the same "frame" in both modes (see the top of ``app.js``): the live
view polls frames from ``python -m cluster web``; a replay computes them from
the trace model that `viz.replay` embeds.

The page contract (docs/web.md; tests and outside tools rely on it): each node
is an element with ``data-node``, ``data-role`` and ``data-term``; each control
is a button with ``data-action`` and, when it acts on one node,
``data-target``; a replay's time slider is ``input[data-control="time"]`` in
seconds from the start of the run.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from typing import Any

__all__ = ["page_html"]


def _asset(name: str) -> str:
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")


def page_html(mode: str, title: str, data: dict[str, Any]) -> str:
    """The whole page: ``mode`` is ``"live"`` or ``"replay"``; ``data`` is what the
    script starts from (a replay's model, or the live view's first facts)."""
    if mode not in ("live", "replay"):
        raise ValueError(f"mode must be live or replay, not {mode!r}")
    # JSON inside a <script> element: "</" would end the element early.
    blob = json.dumps({**data, "mode": mode}, separators=(",", ":")).replace("</", "<\\/")
    hidden = 'hidden=""'
    fills = {
        "{{TITLE}}": html.escape(title),
        "{{MODE}}": mode,
        "{{STYLE}}": _asset("style.css"),
        "{{SCRIPT}}": _asset("app.js"),
        "{{DATA}}": blob,
        "{{CAPTION_HIDDEN}}": "" if mode == "replay" else hidden,
        "{{CONTROLS_HIDDEN}}": hidden if mode == "replay" else "",
        "{{REPLAY_HIDDEN}}": "" if mode == "replay" else hidden,
    }
    page = _asset("page.html")
    for key, value in fills.items():
        page = page.replace(key, value)
    return page


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )
