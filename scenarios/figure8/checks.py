"""What a Figure-8 run must show, from the facts of its traces (§5.4.2)."""

from __future__ import annotations

from typing import Any

from scenarios.figure8.traced import Facts, Traced

__all__ = ["safe_checks", "unsafe_checks"]


def _check(name: str, passed: bool, detail: str) -> Any:
    from scenarios.checks import CheckResult

    return CheckResult(name, passed, detail)


def safe_checks(f: Facts, main: Traced, counter: Traced | None) -> list[Any]:
    st, m = f.story, f.model
    out = []
    if main.error:
        out.append(_check("the directed schedule", False, main.error))
    if counter is not None and counter.error:
        out.append(_check("the directed schedule, branch (d)", False, counter.error))
    if main.error:
        return out
    # 1. x is first covered by a commit of a newer term's entry.
    c = f.first_cover
    tc = f.marks.get("c")
    row_c = m.log_matrix(tc) if tc is not None else None
    holders = [r.node for r in row_c.rows if r.entries.get(st.k) == st.term_x] if row_c else []
    top_c = max((r.commit for r in row_c.rows), default=0) if row_c else 0
    if c is None:
        out.append(_check("x never counted as committed while only old-term replicas existed",
                          False, "no commit line ever covered x's index"))  # fmt: skip
    else:
        ok = c["term"] > st.term_x and top_c < st.k
        out.append(_check(
            "x never counted as committed while only old-term replicas existed",
            ok,
            f"at {tc:.3f} s x (index {st.k}, term {st.term_x}) was on {len(holders)} of "
            f"{len(m.nodes)} ({', '.join(holders)}), the highest commit index was {top_c}; "
            f"the first commit covering index {st.k} was {c['node']}'s commit of index "
            f"{c['index']} (term {c['term']}) at {c['t']:.3f} s",
        ))  # fmt: skip
    # 2. S5 never led after x committed.
    s5 = f.names[st.s5]
    t_commit = c["t"] if c else m.end
    later = [iv for iv in m.leaders() if iv.node == s5 and iv.end > t_commit + 1e-9]
    earlier = [iv for iv in m.leaders() if iv.node == s5 and iv.end <= t_commit + 1e-9]
    refused = [v for v in m.votes if v.candidate == s5 and not v.granted and v.t >= t_commit]
    behind = [v.reason for v in refused if v.reason and "behind" in v.reason]
    detail = (
        f"{s5} led term {earlier[0].term} at {earlier[0].start:.3f} s, before x committed at "
        f"{t_commit:.3f} s; "
        if earlier
        else ""
    )
    if later:
        detail += f"but it led term {later[0].term} from {later[0].start:.3f} s"
    else:
        # Each reason counted apart: a vote already given to another candidate
        # in that term is no comparison of logs (§5.4.1 is the "behind" one).
        counts: dict[str, int] = {}
        for v in refused:
            kind = "log behind" if v.reason and "behind" in v.reason else "already voted"
            if v.reason and kind == "already voted" and "already voted" not in v.reason:
                kind = v.reason
            counts[kind] = counts.get(kind, 0) + 1
        parts = [f"{n} {kind}" for kind, n in counts.items()]
        detail += f"after it, {len(refused)} of its vote requests were refused" + (
            f" ({', '.join(parts)}: {behind[0]})" if behind else f" ({', '.join(parts)})"
        )
    out.append(_check("S5 never led after x committed", not later and c is not None, detail))
    # 3. Every node ends with x at index k (the final log lines, and the data itself).
    end = m.log_matrix(m.end)
    sim = main.tracer.sim
    missing = [
        r.node
        for r in (end.rows if end else [])
        if r.entries.get(st.k) != st.term_x or r.commit < st.k
    ]
    wrong_data = [
        f.names[n]
        for n in sim.ids
        if sim.nodes[n].core is None or sim.nodes[n].core.log.entry(st.k).data != b"x"
    ]
    out.append(_check(
        "every node ends with x at index k",
        end is not None and not missing and not wrong_data,
        f"index k = {st.k}: term {st.term_x}, committed, on "
        f"{len(m.nodes) - len(missing)} of {len(m.nodes)} nodes"
        + (f"; missing on {', '.join(missing)}" if missing else "")
        + (f"; other data on {', '.join(wrong_data)}" if wrong_data else ""),
    ))  # fmt: skip
    # 4. The simulator's own checker.
    runs = [("main", main)] + ([("branch (d)", counter)] if counter else [])
    found = [(name, v) for name, r in runs for v in r.violations]
    batches = sum(r.tracer.sim.checker.checks for _, r in runs)
    out.append(_check(
        "the simulator's SafetyChecker found nothing",
        not found,
        f"{batches} batches checked against Raft's Figure 3 properties in both branches"
        + (f"; {found[0][0]}: {found[0][1][1]}" if found else ""),
    ))  # fmt: skip
    # 5. The counterfactual: overwriting an uncommitted x is legal.
    if counter is not None and not counter.error:
        cs = counter.story
        cnames = {n: counter.tracer.name(n) for n in counter.tracer.sim.ids}
        out.append(_check(
            "(d) x, never committed, may be overwritten",
            not counter.violations and cs.at("d") is not None,
            f"replaying seed {counter.tracer.sim.seed} to (c) and crashing "
            f"{cnames[cs.leader_c]} instead: "
            f"{cnames[cs.s5]} led again and replaced x at index {cs.k} with its term-"
            f"{cs.term_s5} entry on every live node; the checker found nothing",
        ))  # fmt: skip
    return out


def unsafe_checks(f: Facts, main: Traced) -> list[Any]:
    st, m = f.story, f.model
    if main.error and not st.at("c"):
        return [_check("the directed schedule", False, main.error)]
    out = []
    c = f.first_cover
    out.append(_check(
        "planted rule: x counted committed with only old-term replicas",
        c is not None and c["index"] == st.k and c["term"] == st.term_x,
        (f"{c['node']} committed index {c['index']} (term {c['term']}) at {c['t']:.3f} s, "
         f"while leading term {st.term_c}") if c else "x was never counted committed",
    ))  # fmt: skip
    s5 = f.names.get(st.s5, "?")
    t_commit = c["t"] if c else m.end
    later = [iv for iv in m.leaders() if iv.node == s5 and iv.start > t_commit]
    out.append(_check(
        "S5 led after x was counted committed",
        bool(later),
        f"{s5} led term {later[0].term} from {later[0].start:.3f} s" if later
        else f"{s5} did not lead again",
    ))  # fmt: skip
    end = m.log_matrix(m.end)
    lost = [r.node for r in (end.rows if end else [])
            if r.state != "down" and r.entries.get(st.k) not in (None, st.term_x)]  # fmt: skip
    out.append(_check(
        "x, counted committed, was overwritten",
        bool(lost),
        f"at the end index {st.k} holds term {st.term_s5}, not x's term {st.term_x}, on "
        f"{', '.join(lost) or 'no node'}",
    ))  # fmt: skip
    v = main.violations
    out.append(_check(
        "the SafetyChecker reported the violation",
        bool(v),
        (f"{len(v)} violations; first at {v[0][0] / 1000:.3f} s: {v[0][1]}") if v
        else "nothing reported",
    ))  # fmt: skip
    return out
