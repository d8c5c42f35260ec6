"""`viz.figures` and `python -m viz`: tests that really render PNGs.

Each drawing function gets its own axes from pyplot (as a user would call
it), renders to a PNG in tmp_path, and the file is checked to be a real
image.  That check alone proves little -- blank axes with ticks and a title
pass any ink or size threshold -- so every test also asserts on what was
drawn: the artists on the axes against the model they were drawn from
(role bands against role intervals, step lines against the series, cells
against the log).  Figures are always closed.
"""

from __future__ import annotations

import struct
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex
from matplotlib.patches import Rectangle
from viz_sim_trace import leader_failover_trace

from viz import figures
from viz.__main__ import main
from viz.figures import render_all
from viz.figures.figure8 import LogInstant, mark_instants, name_x, render_figure8
from viz.model import LEARNER, OUTSIDE, build, read_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_good_png(path: Path) -> None:
    width, height = png_size(path)
    assert width >= 300 and height >= 150
    assert path.stat().st_size >= 3_000, f"{path} looks empty"
    # Something was drawn: a fair share of pixels is not white.
    pixels = mpimg.imread(path)[..., :3]
    inked = (pixels < 0.9).any(axis=-1).mean()
    assert inked > 0.015, f"{path} is {inked:.1%} ink"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return read_model(leader_failover_trace(tmp_path_factory.mktemp("trace")))


@pytest.fixture
def render(tmp_path):
    """Call ``fn(ax)`` on fresh axes, save the figure as PNG, close it."""

    def go(name, fn, size=(10, 4)):
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        try:
            fn(ax)
            path = tmp_path / f"{name}.png"
            fig.savefig(path, dpi=80)
        finally:
            plt.close(fig)
        assert_good_png(path)
        return path

    yield go
    assert plt.get_fignums() == []


def test_timeline(model, render):
    def drawn(ax):
        figures.draw_timeline(ax, model)
        lanes = dict(
            zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True)
        )
        bands: dict[str, list[float]] = {}  # node -> start, end, start, end...
        for p in ax.patches:
            if isinstance(p, Rectangle) and p.get_height() == pytest.approx(0.62):
                node = lanes[round(p.get_y() + 0.31)]
                bands.setdefault(node, []).extend((p.get_x(), p.get_x() + p.get_width()))
        for node in model.nodes:
            want = [x for iv in model.roles.get(node, ()) for x in (iv.start, iv.end)]
            assert bands.get(node, []) == pytest.approx(want) and want, node
        markers = [ln for ln in ax.lines if ln.get_marker() in ("*", "^")]
        assert len(markers) == len(model.elections) > 0

    render("timeline", drawn)


def test_timeline_title_is_derived_or_passed(model, render):
    titles = []

    def drawn(ax, **kw):
        figures.draw_timeline(ax, model, **kw)
        titles.append(ax.get_title(loc="left"))

    render("derived", drawn)
    render("given", lambda ax: drawn(ax, title="my title"))
    assert titles == [model.headline(), "my title"]
    assert "elected leader in term" in titles[0]


def line(t: float, node: str, type_: str, **fields):
    return {"t": 1_700_000_000.0 + t, "node": node, "type": type_, **fields}


def _legend_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _bands(ax, role):
    """The lane rectangles drawn in ``role``'s colour and hatch."""
    face, hatch, _text = figures.ROLE_STYLE[role]
    return [
        p
        for p in ax.patches
        if isinstance(p, Rectangle)
        and p.get_hatch() == (hatch or None)
        and to_hex(p.get_facecolor()) == face
    ]


def test_learner_and_not_a_member_have_their_own_band_and_legend_entry(render):
    m = build(
        [
            *(line(0.0, n, "start", term=0, commit_index=0) for n in ("n1", "n2", "n3")),
            line(0.5, "n1", "role", **{"from": "follower", "to": "leader", "term": 1}),
            line(1.0, "n4", "start", term=0, commit_index=0, last_log_index=0),
            line(2.0, "n1", "membership", voters=["n1", "n2", "n3"], learners=["n4"], term=1),
            line(3.0, "n1", "membership", voters=["n1", "n2", "n3", "n4"], learners=[], term=1),
            line(4.0, "n1", "commit", index=5),
        ]
    )
    seen = {}

    def drawn(ax):
        figures.draw_timeline(ax, m)
        seen["legend"] = _legend_labels(ax)
        seen["learner"] = [(p.get_x(), p.get_width()) for p in _bands(ax, LEARNER)]
        seen["outside"] = [(p.get_x(), p.get_width()) for p in _bands(ax, OUTSIDE)]

    render("learner", drawn)
    assert LEARNER in seen["legend"] and OUTSIDE in seen["legend"]
    # Distinct in grayscale too: neither shares a hatch with another state.
    hatches = [h for _f, h, _t in figures.ROLE_STYLE.values()]
    for state in (LEARNER, OUTSIDE):
        assert figures.ROLE_STYLE[state][1] and hatches.count(figures.ROLE_STYLE[state][1]) == 1
    assert seen["learner"] == [(pytest.approx(2.0), pytest.approx(1.0))]
    assert seen["outside"] == [(pytest.approx(1.0), pytest.approx(1.0))]


def test_a_trace_without_learners_keeps_its_legend(model, render):
    labels = []
    render(
        "plain", lambda ax: (figures.draw_timeline(ax, model), labels.extend(_legend_labels(ax)))
    )
    assert "follower" in labels and LEARNER not in labels and OUTSIDE not in labels


def _line(ax, label):
    lines = [ln for ln in ax.lines if ln.get_label() == label]
    assert len(lines) == 1, f"no line labelled {label!r}"
    return lines[0]


def test_quorum_strip(model, render):
    def drawn(ax):
        figures.draw_quorum(ax, model)
        reach = _line(ax, "reachable managers").get_ydata()
        assert set(reach) == set(model.quorum.reachable) and len(reach) > 1

    render("quorum", drawn, size=(10, 2.5))


def test_commit_and_clients(model, render):
    def drawn(ax):
        figures.draw_commit(ax, model)
        # A marker at each client write's end (the bar from its start is a line too).
        ends = sorted(ln.get_xdata()[0] for ln in ax.lines if ln.get_linestyle() == "None")
        assert ends == pytest.approx(sorted(c.end for c in model.clients)) and ends
        # The commit steps (solid, thick) reach each node's last commit index.
        tops = sorted(round(max(ln.get_ydata())) for ln in ax.lines if ln.get_linewidth() == 1.6)
        assert tops == sorted(s.last() for s in model.commit.values() if len(s)) and tops

    render("commit", drawn)


def test_terms(model, render):
    def drawn(ax):
        figures.draw_terms(ax, model)
        for node in model.nodes:
            series = model.terms.get(node)
            if series is not None and len(series):
                assert round(max(_line(ax, node).get_ydata())) == series.last(), node

    render("terms", drawn, size=(10, 3))


def test_log_matrix(model, render):
    t, _caption = model.log_instants()[0]
    matrix = model.log_matrix(t)
    assert matrix is not None

    def drawn(ax):
        figures.draw_log(ax, matrix)
        # One cell per entry, at its index, labelled with its term.
        cells = sorted((round(x.get_position()[0]), x.get_text()) for x in ax.texts)
        want = sorted((i, str(term)) for r in matrix.rows for i, term in r.entries.items())
        assert cells == want and cells

    render("log", drawn, size=(10, 3))


def _vote_marks(ax) -> list[str]:
    return sorted(t.get_text() for t in ax.texts)


def test_vote_grid_one_and_many_elections(model, render):
    chosen = figures.choose_elections(model)
    assert any(not e.pre_vote for e in chosen)

    def expected(elections) -> dict[str, int]:
        """Cells by hand: the candidate asks, every other node says yes, no or nothing."""
        counts = {"asked": 0, "yes": 0, "no": 0, "-": 0}
        for e in elections:
            answers = {v.voter: v.granted for v in e.votes}
            for node in model.nodes:
                if node == e.node:
                    counts["asked"] += 1
                elif node not in answers:
                    counts["-"] += 1
                else:
                    counts["yes" if answers[node] else "no"] += 1
        return counts

    def drawn(elections):
        def draw(ax):
            figures.draw_votes(ax, model, elections)
            marks = [t.get_text().split(" ")[0] for t in ax.texts]
            assert {k: marks.count(k) for k in ("asked", "yes", "no", "-")} == expected(elections)

        return draw

    render("votes", drawn(chosen), size=(10, 5))
    one = [e for e in chosen if e.refused][:1]
    assert one
    render("vote", drawn(one), size=(5, 5))
    assert expected(one)["no"] > 0


def test_placement_grid_before_and_after(render):
    before = {f"web.{i}": f"worker{1 + i % 3}" for i in range(1, 7)}
    after = {t: ("worker1" if n == "worker2" else n) for t, n in before.items()}
    titles = []

    def drawn(ax):
        figures.draw_placement(ax, before, after)
        titles.append(ax.get_title(loc="left"))
        # Each task's dot sits in the row of the node it runs on afterwards.
        tasks = [t.get_text() for t in ax.get_xticklabels()]
        rows = dict(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True))
        dots = [ln for ln in ax.lines if ln.get_marker() == "o"]
        placed = {tasks[round(d.get_xdata()[0])]: rows[round(d.get_ydata()[0])] for d in dots}
        assert placed == after

    render("placement", drawn, size=(7, 3))
    assert titles == ["2 of 6 tasks moved off worker2"]
    # node -> [tasks] works too, without an "after".
    by_node = {"worker1": ["a.1", "a.2"], "worker2": ["a.3"]}
    render("placement1", lambda ax: figures.draw_placement(ax, by_node), size=(5, 3))


def test_placement_a_task_placed_only_after_did_not_move(render):
    before = {"web.1": "m1", "web.2": "m3"}
    after = {"web.1": "m1", "web.2": "m2", "web.3": "m1"}  # web.3: a scale-up
    bold = []

    def drawn(ax):
        figures.draw_placement(ax, before, after)
        bold.extend(t.get_text() for t in ax.get_xticklabels() if t.get_fontweight() == "bold")
        assert ax.get_title(loc="left") == "1 of 3 tasks moved off m3"

    render("placement-new", drawn, size=(5, 3))
    assert bold == ["web.2"]


def test_render_all_writes_png_and_svg(model, tmp_path):
    paths = render_all(model, tmp_path / "figs")
    names = {p.name for p in paths}
    for stem in ("timeline", "commit", "terms", "votes", "log-1"):
        assert {f"{stem}.png", f"{stem}.svg"} <= names
    for p in paths:
        if p.suffix == ".png":
            assert_good_png(p)
        else:
            assert p.read_text().lstrip().startswith("<?xml")
    assert plt.get_fignums() == []  # render uses no pyplot state


def test_cli_renders_and_prints_paths(model, tmp_path, capsys):
    trace = leader_failover_trace(tmp_path / "trace")
    assert main([str(trace), "--out", str(tmp_path / "out"), "--format", "png"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed and all(Path(p).exists() and p.endswith(".png") for p in printed)


def test_cli_missing_directory_is_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("viz: ") and "Traceback" not in err


def test_cli_warns_about_a_torn_line(tmp_path, capsys):
    trace = leader_failover_trace(tmp_path / "trace")
    with (trace / "n1" / "trace.jsonl").open("a") as f:
        f.write('{"t": 17')
    assert main([str(trace), "--out", str(tmp_path / "out"), "--format", "png"]) == 0
    assert "torn last line" in capsys.readouterr().err


def test_figure8_marks_each_instant_and_names_x(model, tmp_path):
    t = model.end / 2
    marks = {"a": t / 2, "c": t}
    logs = [LogInstant(t, "log-c", "(c) the logs")]
    paths = render_figure8(tmp_path, model, 2, "marked", marks, logs)
    assert {p.name for p in paths} >= {"timeline.png", "log-c.png", "log-c.svg"}
    assert_good_png(tmp_path / "log-c.png")

    fig = figures.timeline_figure(model, "marked")
    mark_instants(fig, model, marks)
    labels = [a.get_text() for a in fig.axes[0].texts]
    assert "(a)" in labels and "(c)" in labels
    fig = name_x(figures.log_figure(model, t, "(c)"), 2)
    assert "k = 2 (x)" in [lbl.get_text() for lbl in fig.axes[0].get_xticklabels()]


def _crowded_model(managers: int):
    """Three kills 50 ms apart, a partition of all the managers soon after, and a
    kill near the right edge: the labels would collide if stacked naively."""
    names = [f"manager{i}" for i in range(1, managers + 1)]
    half = managers // 2 + 1
    records = [line(0.0, n, "start", term=0, commit_index=0) for n in names]
    records += [
        line(0.5, "manager1", "role", **{"from": "follower", "to": "leader", "term": 1}),
        *(line(0.86 + 0.05 * i, "supervisor", "fault", kind="kill", target=n)
          for i, n in enumerate(names[:3])),
        line(1.0, "supervisor", "fault", kind="partition",
             groups=[names[:half], names[half:]]),
        line(1.6, "supervisor", "fault", kind="heal"),
        line(2.75, "supervisor", "fault", kind="kill", target=names[-1]),
        line(2.8, "manager4", "commit", index=3),
    ]  # fmt: skip
    return build(records)


@pytest.mark.parametrize("managers", [5, 7])
def test_fault_labels_overlap_neither_each_other_nor_the_title(managers):
    from viz.figures.timeline import timeline_figure

    m = _crowded_model(managers)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = timeline_figure(m, "A long headline that states the lesson of the run, as notes do")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    top = fig.axes[0]
    labels = [t for t in top.texts if t.get_text().endswith("killed") or "|" in t.get_text()]
    assert len(labels) == 5
    boxes = [t.get_window_extent(renderer) for t in labels]
    # (A title set with loc="left" is the axes' left title, not ax.title.)
    assert top._left_title.get_text().startswith("A long headline")
    title = top._left_title.get_window_extent(renderer)
    page = fig.bbox
    for i, a in enumerate(boxes):
        assert not a.overlaps(title), labels[i].get_text()
        assert page.x0 <= a.x0 and a.x1 <= page.x1 and a.y1 <= page.y1, labels[i].get_text()
        for j in range(i):
            assert not a.overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())
    assert title.y1 <= page.y1


def test_kills_in_a_row_share_one_log_panel_and_changed_logs_make_their_own():
    names = ["manager1", "manager2", "manager3", "manager4", "manager5"]
    entries = [[1, 1], [2, 1], [3, 1]]
    records = [line(0.0, n, "start", term=0, commit_index=0) for n in names]
    records += [line(0.9, n, "log", entries=entries, commit=3) for n in names]
    records += [line(1.0 + 0.05 * i, "supervisor", "fault", kind="kill", target=n)
                for i, n in enumerate(names[:3])]  # fmt: skip
    more = [*entries, [4, 1]]  # a write committed by the two left: a new panel
    records += [line(3.0, n, "log", entries=more, commit=4) for n in names[3:]]
    records += [line(3.1, "supervisor", "fault", kind="kill", target="manager4")]
    records += [line(4.0, "manager5", "commit", index=3)]
    captions = [c for _t, c in build(records).log_instants()]
    assert captions[0] == "just before manager1, manager2, manager3 were killed"
    assert captions[1] == "just before manager4 was killed"


def test_commit_text_and_figure_count_an_acknowledged_write_beyond_the_traced_commit():
    """Commit lines are sampled: the last one may trail the last acknowledged write,
    whose index is then the commit index the text and the figure's axis reach."""
    t0 = 1_700_000_000.0
    m = build(
        [
            *(line(0.0, n, "start", term=0, commit_index=0) for n in ("n1", "n2", "n3")),
            line(0.5, "n1", "role", **{"from": "follower", "to": "leader", "term": 1}),
            line(1.0, "n1", "commit", index=7),
            line(1.2, "client", "client", op="write", start=t0 + 1.1, end=t0 + 1.2,
                 outcome="ok", index=9),
        ]
    )  # fmt: skip
    assert m.top_commit() == 9
    assert m.client_headline().startswith("Commit index reached 9;")
    fig = figures.commit_figure(m)
    assert fig.axes[0].get_ylim()[1] >= 9


def test_a_term_has_one_colour_in_every_log_panel(render):
    """Figure 8's panels hold different sets of terms: colouring by rank in the
    panel swapped them from one panel to the next."""
    from matplotlib.colors import to_hex

    from viz.figures.logs import style_of_term
    from viz.model_data import LogMatrix, LogRow

    def faces(matrix):
        seen = {}

        def drawn(ax):
            figures.draw_log(ax, matrix)
            seen["faces"] = {to_hex(p.get_facecolor()) for p in ax.patches}

        render(f"terms-{len(matrix.rows)}", drawn)
        return seen["faces"]

    only_3 = LogMatrix(1.0, (LogRow("n1", {1: 3}, 1, 0, "leader", 1.0),))
    with_2 = LogMatrix(1.0, (LogRow("n1", {1: 2}, 1, 0, "leader", 1.0),
                             LogRow("n2", {1: 2, 2: 3}, 1, 0, "follower", 1.0)))  # fmt: skip
    assert style_of_term(3)[0] in faces(only_3) and style_of_term(3)[0] in faces(with_2)
    assert style_of_term(2) != style_of_term(3)
