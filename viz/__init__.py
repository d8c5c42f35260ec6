"""Figures and study notes from traces (``python -m viz DIR``).

`viz.model` turns trace lines into data and needs nothing beyond the
standard library; `viz.draw` and `viz.render` draw it with matplotlib.  No
node process imports this package.
"""

from viz.model import TraceError, TraceModel, build, load, read_model

__all__ = ["TraceError", "TraceModel", "build", "load", "read_model"]
