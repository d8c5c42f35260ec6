"""Every figure swarmraft draws, one module per figure.

Each module holds, when the figure needs one, a small pure model built from
plain data (a frozen dataclass and the function that builds it, tested
without a figure), drawing functions that take a matplotlib ``ax`` and the
model and only draw (``draw_x(ax, model)``), and ``x_figure(model)``, which
makes a `matplotlib.figure.Figure` (no pyplot: nothing global to leak, Agg
or the vector backends at ``savefig``).  `save` writes PNG and SVG.

* `base`         -- styles shared by the trace figures, axis helpers, `new_figure`, `save`;
* `timeline`     -- role lanes per node over the quorum strip;
* `commit`       -- commit and applied indexes with client writes; terms;
* `logs`         -- the log matrix at an instant;
* `votes`        -- the vote grid of chosen elections;
* `placement`    -- task placement before and after a drain;
* `files_held`   -- which node holds which secret or config file;
* `quorum_table` -- quorum and tolerance by cluster size;
* `figure8`      -- the Figure-8 scenario's marked timeline and log matrices;
* `jepsen`       -- the Jepsen history: operations by client and their latency;
* `bench`        -- the benchmark's write latency over time;
* `render`       -- `render_all`: every figure a trace directory supports.
"""

from viz.figures.base import FAULT_STYLE, OUTCOME_STYLE, ROLE_STYLE, new_figure, save
from viz.figures.commit import commit_figure, draw_commit, draw_terms, terms_figure
from viz.figures.logs import draw_log, log_figure
from viz.figures.placement import draw_placement, placement_figure
from viz.figures.render import render_all
from viz.figures.timeline import draw_quorum, draw_timeline, timeline_figure
from viz.figures.votes import choose_elections, draw_votes, votes_figure

__all__ = [
    "FAULT_STYLE",
    "OUTCOME_STYLE",
    "ROLE_STYLE",
    "choose_elections",
    "commit_figure",
    "draw_commit",
    "draw_log",
    "draw_placement",
    "draw_quorum",
    "draw_terms",
    "draw_timeline",
    "draw_votes",
    "log_figure",
    "new_figure",
    "placement_figure",
    "render_all",
    "save",
    "terms_figure",
    "timeline_figure",
    "votes_figure",
]
