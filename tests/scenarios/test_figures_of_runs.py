"""Figures drawn from a simulated run of a built-in: what each must show."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from scenario_runs import builtin, failed_checks

from scenarios.runner import run_scenario
from viz.figures.votes import choose_elections, votes_figure
from viz.model import read_model


def test_split_vote_draws_the_pre_votes_that_found_no_majority(tmp_path):
    outcome = run_scenario(builtin("split-vote"), tmp_path, seed=3, simulated=True)
    assert outcome.passed, failed_checks(tmp_path, "split-vote")
    model = read_model(tmp_path / "split-vote" / "traces")
    chosen = choose_elections(model)
    # The point of the scenario: pre-votes that no majority answered.
    failed = [e for e in chosen if e.pre_vote and e.outcome == "lost" and not e.refused]
    assert failed, [(e.node, e.term, e.pre_vote, e.outcome) for e in chosen]
    # Every label of the figure inside it (titles and footnotes are wrapped, not cut).
    fig = votes_figure(model)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    for text in [ax._left_title, *ax.texts]:
        box = text.get_window_extent(renderer)
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 + 1, text.get_text()
