"""Figures and study notes from traces and plain data (``python -m viz DIR``).

* `viz.model` (with `model_data`, `model_build`, `model_membership`,
  `model_quorum`) -- trace lines into a `TraceModel`: pure data, the standard
  library only;
* `viz.figures` -- every figure swarmraft draws, one module per figure: a pure
  model where the figure needs one, ``draw_x(ax, model)`` functions that only
  draw, ``x_figure(model)`` that makes a `matplotlib.figure.Figure`, and
  `render_all` for a trace directory;
* `viz.notes` -- the study notes: jinja2 templates (``viz/templates/*.md.j2``,
  shipped as package data) filled with the numbers the caller computed;
* `viz.web` and `viz.replay` -- the live web view's page and the replay pages
  (one self-contained HTML file per trace directory).

May import: itself, matplotlib and jinja2 (and `raft.core`'s pure pieces,
should a figure need them).  Never `cluster` or `scenarios`: they call `viz`
and pass plain data (the small dataclasses defined here, or trace files).
Checked by ``tests/test_architecture.py``.  No node process imports `viz`.
"""

from viz.model import TraceError, TraceModel, build, load, read_model

__all__ = ["TraceError", "TraceModel", "build", "load", "read_model"]
