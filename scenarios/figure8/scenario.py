"""``python -m scenarios run figure-8``: both branches, checks, figures, the note."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from raft.core.quorum import majority
from scenarios.figure8.checks import safe_checks, unsafe_checks
from scenarios.figure8.schedule import PAPER, Story
from scenarios.figure8.traced import Facts, Traced, facts, traced_run

__all__ = ["run"]


_CAPTIONS = {
    "a": "(a) {S1} leads term {tx}: x at index {k} reaches {S2} only",
    "b": "(b) {S5} leads term {t5} (votes of {S3}, {S4}) and writes its own entry at {k}",
    "c": "(c) {L} leads term {tc}: x (term {tx}) is on a majority, NOT committed",
    "d": "(d) instead: {L} crashes, {S5} wins term {td} and overwrites x -- legal, x was "
    "never committed",
    "e": "(e) {L}'s term-{tc} entry reaches a majority: it commits, and x with it",
    "end": "after (e): {S5} was refused; everyone is back and holds x at index {k}",
}
_UNSAFE_CAPTIONS = {
    "e": "(c') PLANTED BUG: {L} counts x's old-term replicas and commits index {k}",
    "end": "(d) PLANTED BUG: {S5} wins term {td} and overwrites the committed x",
}


def caption(label: str, f: Facts, unsafe: bool, story: Story | None = None) -> str:
    st = story or f.story
    td = max((iv.term for iv in f.model.leaders()), default=0)
    text = (_UNSAFE_CAPTIONS if unsafe else {}).get(label, _CAPTIONS[label])
    return text.format(
        **{s: f.paper_name(s) for s in PAPER},
        L=f.paper_name(f.paper.get(f.names.get(st.leader_c, ""), "S1")),
        k=st.k,
        tx=st.term_x,
        t5=st.term_s5,
        tc=st.term_c,
        td=td,
    )


def _figures(out: Path, f: Facts, counter: Facts | None, unsafe: bool) -> list[Path]:
    from viz.figures.figure8 import LogInstant, render_figure8

    title = (
        "Figure 8 with the PLANTED unsafe commit rule (teaching demo)"
        if unsafe
        else "Figure 8 (§5.4.2): roles over virtual time; dotted lines are the instants (a)-(e)"
    )
    names = {"e": "log-c2", "end": "log-d"} if unsafe else {"end": "log-end"}
    logs = [
        LogInstant(t, names.get(label, f"log-{label}"), f"{caption(label, f, unsafe)}  [{t:.3f} s]")
        for label, t in f.marks.items()
    ]
    branch = None
    if counter is not None and "d" in counter.marks:
        t = counter.marks["d"]
        title_d = f"{caption('d', counter, False)}  [{t:.3f} s, branch (d)]"
        branch = (counter.model, counter.story.k, LogInstant(t, "log-d", title_d))
    return render_figure8(out, f.model, f.story.k, title, dict(f.marks), logs, branch)


# ---------------------------------------------------------------------------
# The study note


def _note(out: Path, scn: Any, seed: int, f: Facts, counter: Facts | None,
          checks: list[Any], passed: bool, unsafe: bool, main: Traced) -> None:  # fmt: skip
    """``report.md`` from ``viz/templates/figure8.md.j2``: the events and numbers
    of the run are computed here, the prose is the template's."""
    from viz.notes import render

    st, m = f.story, f.model
    events: list[tuple[float, str, str]] = []
    for label, t in f.marks.items():
        events.append((t, _figlink(label, unsafe), caption(label, f, unsafe)))
    for e in m.won():
        who = f"{e.node} ({f.paper.get(e.node, '?')})"
        events.append((e.decided if e.decided is not None else e.t, "",
                       f"{who} elected leader for term {e.term} "
                       f"({len(e.granted) + 1} of {len(m.nodes)} votes)"))  # fmt: skip
    c = f.first_cover
    if c is not None:
        why_x = (" -- x's own old term: the planted rule" if c["term"] == st.term_x
                 else f" -- x at {st.k} is committed with it")  # fmt: skip
        events.append((c["t"], "", f"**{c['node']} commits index {c['index']} (term "
                       f"{c['term']})**{why_x}"))  # fmt: skip
    for fl in m.faults:
        if fl.kind in ("kill", "restart"):
            events.append((fl.t, "", f"{fl.kind} {', '.join(fl.targets)}"))
    events += _refusals(m)
    for t, what in main.violations:
        events.append((t / 1000.0, "", f"**SafetyChecker: {what}**"))
    events.sort(key=lambda x: (x[0], x[1] == ""))
    if len(events) > 60:
        events = [*events[:59], (events[-1][0], "", "...")]
    branch_d = None
    if counter is not None and "d" in counter.marks:
        cs = counter.story
        branch_d = {
            "S1": counter.paper_name("S1"),
            "S5": counter.paper_name("S5"),
            "t_c": counter.marks["c"],
            "t_d": counter.marks["d"],
            "term_c": cs.term_c,
            "k": cs.k,
            "term_s5": cs.term_s5,
            "violations": _violations(counter),
        }
    why = None
    if not unsafe and c is not None:
        s5 = f.names.get(st.s5, "")
        asks = [v for v in m.votes if v.candidate == s5 and not v.granted and v.t >= c["t"]]
        behind = [v.reason for v in asks if v.reason and "behind" in v.reason]
        reasons = behind or sorted({v.reason for v in asks if v.reason})
        why = {
            "k": st.k,
            "k1": c["index"],
            "tc": st.term_c,
            "tx": st.term_x,
            "t5": st.term_s5,
            "first": c,
            "asks": len(asks),
            "reason": reasons[0] if reasons else "-",
        }
    order = ["timeline.png", "log-a.png", "log-b.png", "log-c.png", "log-c2.png", "log-d.png",
             "log-e.png", "log-end.png", "votes.png", "commit.png", "terms.png"]  # fmt: skip
    figures = sorted(
        (p.name for p in out.glob("*.png")),
        key=lambda n: (order.index(n) if n in order else len(order), n),
    )
    text = render(
        "figure8.md.j2",
        unsafe=unsafe,
        title=scn.title,
        name=scn.name,
        passed=passed,
        managers=scn.cluster.managers,
        quorum=majority(scn.cluster.managers),
        tolerance=(scn.cluster.managers - 1) // 2,
        committed_at=c["t"] if c is not None else None,
        seed=seed,
        election_timeout_ms=scn.cluster.election_timeout_ms,
        description=scn.description,
        paper=sorted(((p, n) for n, p in f.paper.items())),
        k=st.k,
        events=events,
        branch_d=branch_d,
        why=why,
        broke={"term_x": st.term_x, "term_c": st.term_c, "k": st.k, "term_s5": st.term_s5},
        S={s: f.paper_name(s) for s in PAPER},
        figures=figures,
        checks=[
            {"name": ch.name, "result": "pass" if ch.passed else "**FAIL**", "detail": ch.detail}
            for ch in checks
        ],
        traces_d=counter is not None,
    )
    (out / "report.md").write_text(text, encoding="utf-8")


def _violations(f: Facts) -> str:
    return "; ".join(f.violations)


def _refusals(m: Any) -> list[tuple[float, str, str]]:
    """Refused votes, one row per run of refusals by the same voters for the same reason."""
    rows: list[tuple[float, str, str]] = []
    groups: dict[tuple[str, int], list[Any]] = {}
    for v in m.votes:
        if not v.granted and v.reason:
            groups.setdefault((v.candidate, v.term), []).append(v)
    runs: list[dict[str, Any]] = []
    for (cand, term), vs in sorted(groups.items(), key=lambda kv: kv[1][0].t):
        voters = ", ".join(sorted({v.voter for v in vs}))
        reason = vs[0].reason
        generic = re.sub(r"\d+", "#", reason)
        last = runs[-1] if runs else None
        if last and (last["cand"], last["voters"], last["generic"]) == (cand, voters, generic):
            last["terms"].append(term)
            continue
        runs.append({"t": vs[0].t, "cand": cand, "voters": voters, "generic": generic,
                     "reason": reason, "terms": [term]})  # fmt: skip
    for r in runs:
        terms = r["terms"]
        which = (f"term {terms[0]}" if len(terms) == 1
                 else f"terms {terms[0]}-{terms[-1]} ({len(terms)} campaigns)")  # fmt: skip
        rows.append((r["t"], "", f"{r['voters']} refused {r['cand']}'s vote for {which}: "
                     f"_{r['reason']}_"))  # fmt: skip
    return rows


def _figlink(label: str, unsafe: bool) -> str:
    base = ({"e": "log-c2", "end": "log-d"} if unsafe else {"end": "log-end"}).get(
        label, f"log-{label}"
    )
    shown = {"e": "(c')", "end": "(d)"} if unsafe else {"end": "end"}
    return f"[{shown.get(label, f'({label})')}]({base}.png)"


# ---------------------------------------------------------------------------
# Entry point for the runner


def _replays(out: Path, scn: Any, f: Any, cf: Any, unsafe: bool) -> None:
    """The run played back (``replay.html``), and its other branch (``replay-d.html``),
    each instant (a)-(e) of the figure a caption."""
    from viz.replay import Caption, write_replay

    def captions(facts: Any) -> list[Caption]:
        return [Caption(t, caption(label, facts, unsafe)) for label, t in facts.marks.items()]

    write_replay(out / "traces", out / "replay.html", scn.title, captions(f))
    if cf is not None:
        write_replay(
            out / "traces-d", out / "replay-d.html", f"{scn.title}: branch (d)", captions(cf)
        )


def run(
    scn: Any,
    out_root: Path,
    *,
    seed: int = 1,
    progress: Callable[[str], None] = lambda _: None,
    unsafe_commit_rule: bool = False,
) -> Any:
    """Run the figure-8 scenario; write figures, ``report.md``, ``result.json``."""
    from scenarios.runner import Outcome

    unsafe = unsafe_commit_rule
    name = scn.name + ("-unsafe-commit-rule" if unsafe else "")
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    wall0 = time.monotonic()
    what = "TEACHING DEMO with a planted unsafe commit rule, " if unsafe else ""
    progress(f"[{name}] {what}{scn.cluster.managers} simulated managers, seed {seed}")
    main = traced_run(scn.cluster, seed, "commit", unsafe)
    main.tracer.write_dir(out / "traces")
    f = facts(main, out / "traces")
    counter = cf = None
    if not unsafe:
        counter = traced_run(scn.cluster, seed, "overwrite", False)
        counter.tracer.write_dir(out / "traces-d")
        cf = facts(counter, out / "traces-d")
    for label, t in f.marks.items():
        progress(f"[{name}] +{t:6.3f}s  {caption(label, f, unsafe)}")
    if cf is not None and "d" in cf.marks:
        progress(f"[{name}] +{cf.marks['d']:6.3f}s  {caption('d', cf, False)} (branch)")
    checks = unsafe_checks(f, main) if unsafe else safe_checks(f, main, counter)
    passed = bool(checks) and all(c.passed for c in checks)
    _figures(out, f, cf, unsafe)
    _replays(out, scn, f, cf, unsafe)
    st = f.story
    metrics: dict[str, Any] = {
        "k": st.k,
        "term_x": st.term_x,
        "term_s5": st.term_s5,
        "term_c": st.term_c,
        "instants_s": {lab: round(t, 3) for lab, t in f.marks.items()},
        "x_committed_s": round(f.first_cover["t"], 3) if f.first_cover else None,
        "votes_refused": sum(not v.granted for v in f.model.votes),
        "elections": len([e for e in f.model.elections if not e.pre_vote]),
        "max_term": max((iv.term for iv in f.model.leaders()), default=0),
        "safety_violations": len(main.violations),
        "checker_batches": main.tracer.sim.checker.checks,
        "scenario_time_s": round(f.model.end, 3),
    }
    if cf is not None:
        metrics["branch_d_s"] = round(cf.marks["d"], 3) if "d" in cf.marks else None
    _note(out, scn, seed, f, cf, checks, passed, unsafe, main)
    duration = time.monotonic() - wall0
    metrics["duration_s"] = round(duration, 2)
    result = {
        "scenario": name,
        "passed": passed,
        "mode": "simulated",
        "seed": seed,
        "variant": "unsafe-commit-rule (teaching demo, planted bug)" if unsafe else "default",
        "checks": [c.as_json() for c in checks],
        "metrics": metrics,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    verdict = "PASSED" if passed else "FAILED"
    progress(f"[{name}] {verdict} in {duration:.1f} s: {out / 'report.md'}")
    return Outcome(name, passed, out, duration, metrics, checks)
