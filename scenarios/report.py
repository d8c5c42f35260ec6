"""The products of a run: figures, ``result.json``, the study note ``report.md``.

The note has a fixed shape -- the exam card (the quorum arithmetic, the
Swarm fact it demonstrates, the run in a phrase), what was done, what
happened (from the trace model, with times), why Raft did it, the figures,
the checks -- but every number in it comes from the run.  The "why" and
"Swarm fact" paragraphs are chosen by the scenario's ``topic``, or, for a
file that names none, by what its checks and steps are about.  This module
computes; the wording is ``viz/templates/scenario.md.j2``'s.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from raft.core.quorum import majority
from scenarios import report_ops
from scenarios.checks import CheckResult, Run, StepRecord, conf_changes
from scenarios.steps import TOPIC_NAMES, Scenario
from viz.notes import topics as topics_prose

__all__ = [
    "collect_metrics",
    "draw_figures",
    "leader_headline",
    "new_leader",
    "write_glossary",
    "write_index",
    "write_note",
    "write_result",
]

#: topic -> (the Raft rule that made it happen, the Swarm / DCA fact): the
#: paragraphs live in ``viz/templates/topics.toml``, with the rest of the notes' prose.
TOPICS: dict[str, tuple[str, str]] = topics_prose()


assert set(TOPICS) == set(TOPIC_NAMES), "scenarios.steps.TOPIC_NAMES lists the topics"

#: What a step or a check is about, for a scenario that names no topic.
_ACTION_TOPICS = {
    "transfer_leadership": "transfer",
    "join": "join",
    "promote": "membership",
    "demote": "membership",
    "force_new_cluster": "recovery",
    "partition": "partition",
    "isolate": "partition",
    "pause": "pause",
    "kill": "election",
    "drain": "drain",
    "create_secret": "secrets",
    "lock": "autolock",
    "set_election_timeout": "stale",
}
_CHECK_TOPICS = {
    "votes_refused": "stale",
    "winner_most_up_to_date": "stale",
    "writes_fail_no_quorum": "quorum",
    "no_leader_while": "quorum",
    "uncommitted_overwritten": "partition",
    "voter_within": "join",
    "quorum_size": "join",
}


#: Faults after which the figures tell a story beyond the first election.
_LEADER_FAULTS = {"kill", "pause", "partition", "isolate"}

#: Topics where the quorum arithmetic is the point: their exam card has the cheat-sheet.
_QUORUM_TOPICS = {
    "election", "quorum", "partition", "split", "join", "membership", "recovery", "tasks",
    "availability", "removal", "autolock",
}  # fmt: skip


def topics(scn: Scenario) -> list[str]:
    """The scenario's ``topic``; without one, the topics its checks and steps
    touch (at most three, the checks' first: they say what the point is)."""
    if scn.topic:
        return [scn.topic]
    found: list[str] = []
    for name in [_CHECK_TOPICS.get(e.check) for e in scn.expects] + [
        _ACTION_TOPICS.get(s.action) for s in scn.steps
    ]:
        if name and name not in found:
            found.append(name)
    return found[:3]


def new_leader(run: Run) -> dict[str, Any] | None:
    """The run's one measure of "time to new leader", for every place a note or
    its figures print it: ``time_to_leader_s`` as the first ``leader_within``
    check measured it (from the start of the step it names -- a kill, or the
    restart that brought quorum back -- to the new leader's first moment as
    leader), with who won, the term and that step.  None without such a check."""
    dt = run.metrics.get("time_to_leader_s")
    if dt is None or run.model is None:
        return None
    # The first leader_within is the one whose measure is in the metrics (setdefault).
    e = next((e for e in run.scenario.expects if e.check == "leader_within"), None)
    if e is None or not getattr(e, "after_step", None):
        return None
    step = run.step(e.after_step)
    t = run.rel(step.start)
    later = [iv for iv in run.model.leaders() if iv.start > t - 1e-6]
    if not later:
        return None
    what = step.note if step.note and len(step.note) <= 40 else step.text
    return {"node": later[0].node, "term": later[0].term, "dt": dt, "step": step.number,
            "what": what}  # fmt: skip


def leader_headline(run: Run) -> str | None:
    """The headline of a note and of its timeline, from `new_leader`."""
    found = new_leader(run)
    if found is None:
        return None
    return (
        f"{found['node']} elected leader in term {found['term']} {found['dt']:.2f} s "
        f"after step {found['step']} ({found['what']})"
    )


def _elections(m: Any) -> str:
    """Who was elected, without a time: a scenario that measures no failover
    (no ``leader_within``) prints no "time to new leader" either."""
    won = m.won()
    if not won:
        return "No leader was elected"
    who = ", ".join(f"{e.node} in term {e.term}" for e in won)
    return f"{len(won)} {'leader' if len(won) == 1 else 'leaders'} elected ({who})"


def collect_metrics(run: Run) -> None:
    m = run.model
    ops = run.ops
    met = run.metrics
    met["writes_ok"] = sum(op.outcome == "ok" for op in ops)
    met["writes_failed"] = sum(op.outcome == "fail" for op in ops)
    met["writes_timeout"] = sum(op.outcome == "timeout" for op in ops)
    met["elections"] = len([e for e in m.elections if not e.pre_vote])
    met["leaders"] = len(m.leaders())
    met["max_term"] = max((s.last() or 0 for s in m.terms.values()), default=0)
    met["commit_index"] = m.top_commit()
    met["quorum_lost_s"] = round(sum(b - a for a, b in m.quorum.lost), 3)
    refused = [v for v in m.votes if not v.granted]
    met.setdefault("votes_refused", len(refused))
    if run.quorum_rows:
        met["quorum_table"] = run.quorum_rows
    report_ops.collect(run)
    answered = [a for a in run.answers.values() if "table" not in a and "held" not in a]
    if answered:
        met["commands_answered"] = len(answered)
        met["commands_refused"] = sum(not a["ok"] for a in answered)


def draw_figures(out: Path, run: Run) -> list[Path]:
    from viz.figures import placement_figure, render_all, save
    from viz.figures.quorum_table import QuorumRow, quorum_table_figure
    from viz.figures.render import KINDS

    # With one election and no leader lost, the votes, terms, commit and log
    # figures only repeat the start-up: the timeline says it all.
    m = run.model
    quiet = len(m.won()) <= 1 and not any(f.kind in _LEADER_FAULTS for f in m.faults)
    kinds = ("timeline",) if quiet else KINDS
    # The timeline's title states the lesson: the measured failover where the
    # scenario measures one, else the scenario's own title (not "manager1
    # elected leader in term 1", which every run would say).
    headline = leader_headline(run) or run.scenario.title
    paths = render_all(m, out, headline=headline, kinds=kinds)
    if run.quorum_rows:
        rows = [
            QuorumRow(r["managers"], r["quorum"], r["expected_tolerance"], r["measured_tolerance"])
            for r in run.quorum_rows
        ]
        paths += save(quorum_table_figure(rows), out / "quorum-table")
    paths += _files_held_figure(out, run)
    if len(run.placements) >= 2 and not run.records.get("tasks"):
        # (A run that took task snapshots draws its own figures from them, below.)
        # Which node runs which task, before the first drain and at the end.
        before, after = run.placements[0], run.placements[-1]
        moved = sum(1 for t in before if t in after and before[t] != after[t])
        title = f"Task placement before the drain and at the end ({moved} tasks moved)"
        paths += save(placement_figure(before, after, title), out / "placement")
    paths += _task_figures(out, run)
    paths += report_ops.figures(out, run)
    return paths


#: Steps worth a mark on the tasks-per-node figure, and how to label them.
_TASK_MARKS = ("kill", "restart", "drain", "join", "force_update", "scale", "manage")


def _mark(s: StepRecord) -> str:
    """A step's label on the tasks figure: short, naming the node it acted on."""
    if s.action == "join" and s.note:
        return f"{s.note.split()[0]} joins"
    if s.action == "manage":
        command = s.text.split("command=")[-1].split()[0].replace("_", " ")
        return f"{command}: {'ok' if s.note.startswith('accepted') else 'refused'}"
    if s.action == "scale":
        return s.text.replace("service=", "").replace(" replicas", "")
    if s.action == "drain" and s.note:
        return s.note.replace(" availability ", " ")
    text = s.note if s.action in ("kill", "restart") and s.note else s.text
    return text.replace("force_update service=", "update --force ")[:24]


def _task_figures(out: Path, run: Run) -> list[Path]:
    """From the task samples (`scenarios.steps.tasks`): running tasks per node over
    time, and which task ran where at the first and the last snapshot."""
    from viz.figures import placement_figure, save
    from viz.figures.tasks import tasks_per_node_figure

    samples = run.records.get("tasks", [])
    if len(samples) < 2:
        return []
    marks = [(s.start, _mark(s)) for s in run.steps if s.action in _TASK_MARKS and s.status == "ok"]
    title = "Running tasks per node, as the store said"
    if "tasks_fact" in run.metrics:
        title += f"\n{run.metrics['tasks_fact']}"
    t0 = run.model.t0
    lost = [(t0 + a, t0 + b, "no quorum") for a, b in run.model.quorum.lost if b - a > 0.05]
    figure = tasks_per_node_figure(samples, t0, marks, title, shade=lost)
    paths = save(figure, out / "tasks")
    # The grid compares the first and the last snapshot a check names (a snapshot
    # taken only as evidence of something else, e.g. a node's availability, is left out).
    cited = {getattr(e, f, None) for e in run.scenario.expects for f in ("since", "at")}
    named = [s for s in samples if s.get("name") and s["name"] in cited]
    if len(named) >= 2:
        first, last = named[0], named[-1]

        def where(sample: dict[str, Any]) -> dict[str, str]:
            return {t["label"]: t["node"] for t in sample["tasks"]
                    if t["desired"] == "running" and t["state"] == "running"}  # fmt: skip

        title = f"Tasks at '{first['name']}' (square) and at '{last['name']}' (dot)"
        paths += save(placement_figure(where(first), where(last), title), out / "task-moves")
    return paths


def _files_held_figure(out: Path, run: Run) -> list[Path]:
    """``files.png``: who held which secret and config at each ``files_held`` step,
    titled with what the first snapshot shows of the first secret."""
    from viz.figures import save
    from viz.figures.files_held import FilesSnapshot, files_held_figure

    def label(n: int) -> str:
        done = [s for s in run.steps[: n - 1] if s.cli and s.action not in ("wait", "files_held")]
        after = done[-1].cli.removeprefix("python -m cluster ") if done else "the start"
        return f"step {n}, after: {after}"

    snaps = [
        FilesSnapshot(label(n), a["held"], a["used"])
        for n, a in sorted(run.answers.items())
        if "held" in a
    ]
    if not snaps:
        return []
    first = snaps[0]
    secrets = sorted({f for h in first.held.values() for f in h["secrets"]})
    if secrets:
        holders = [n for n, h in first.held.items() if secrets[0] in h["secrets"]]
        title = (f"{secrets[0]} reached {len(holders)} of {len(first.held)} nodes: "
                 f"those running a task that uses it")  # fmt: skip
    else:
        title = "No node held a secret"
    return save(files_held_figure(snaps, title), out / "files")


#: How each network mode is named in the note's opening line.
_NETWORKS = {
    "transport": "real processes (partitions: the managers' transport drops messages)",
    "netns": "real processes, each in its own network namespace "
    "(partitions: the kernel drops packets, nftables)",
}


def write_result(out: Path, run: Run, checks: list[CheckResult], passed: bool) -> None:
    result = {
        "scenario": run.scenario.name,
        "passed": passed,
        "mode": run.mode,
        "seed": run.seed,
        "checks": [c.as_json() for c in checks],
        # Each step's status, so a run that skipped steps (not applicable in
        # this mode) cannot pass for one that did them.
        "steps": [{"number": s.number, "action": s.action, "status": s.status} for s in run.steps],
        "metrics": run.metrics,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    if run.records:
        # What the steps saw (task snapshots, management answers): the checks' evidence.
        (out / "records.json").write_text(json.dumps(run.records, indent=1) + "\n")


# ------------------------------------------------------------------ the note


def _t(run: Run, t: float) -> str:
    return f"{run.rel(t):.2f} s"


def _happened(run: Run) -> list[tuple[float, str]]:
    """What happened, in time order, from the trace model and the step records."""
    m = run.model
    events: list[tuple[float, str]] = []
    for s in run.steps:
        if s.status == "not run":
            continue
        events.append((run.rel(s.start), _step_event(s)))
    for e in m.won():
        yes = len(e.granted) + 1
        voters = len(m.voters_at(e.t))
        when = e.decided if e.decided is not None else e.t
        events.append(
            (when, f"**{e.node} elected leader for term {e.term}** ({yes} of {voters} votes)")
        )
    groups: dict[tuple[str, int, bool, str], list[Any]] = {}
    for v in m.votes:
        if v.granted or not v.reason:
            continue
        groups.setdefault((v.candidate, v.term, v.pre_vote, v.reason), []).append(v)
    for (cand, term, pre, reason), vs in groups.items():
        kind = "pre-vote" if pre else "vote"
        who = ", ".join(sorted({v.voter for v in vs}))
        events.append((vs[0].t, f"{who} refused {cand}'s {kind} for term {term}: _{reason}_"))
    for iv in m.leaders():
        if iv.end < m.end - 1e-6:
            nxt = m.role_at(iv.node, iv.end + 1e-6)
            if nxt == "leader":
                continue  # a term change while leading is not an end of leadership
            events.append((iv.end, f"{iv.node} stopped leading term {iv.term} (now {nxt})"))
    previous: tuple[Any, ...] | None = None
    for ct, voters, learners in conf_changes(run):
        if (voters, learners) == previous:
            continue
        previous = (voters, learners)
        n = len(voters)
        extra = f"; learners {', '.join(learners)}" if learners else ""
        events.append(
            (ct, f"configuration: {n} voters ({', '.join(voters)}), quorum {n // 2 + 1}{extra}")
        )
    for a, b in m.quorum.lost:
        events.append((a, "quorum lost"))
        if b < m.end - 1e-6:
            events.append((b, "quorum back"))
    end = run.end() + 0.05
    events = [x for x in events if x[0] <= end]
    events.sort(key=lambda x: x[0])
    if len(events) > 60:
        events = [*events[:58], (events[-1][0], "...")]
    return events


def _note(s: StepRecord) -> str:
    """A step's note, without a wait's own duration: how long the scenario
    polled is no measure of anything (a note's one "time to new leader" is
    `new_leader`'s), and printing it beside that measure told two stories."""
    if s.action == "wait":
        return _WAITED.sub("", s.note)
    return s.note


_WAITED = re.compile(r" after \d+\.\d+ s")


def _step_event(s: StepRecord) -> str:
    """A step's row in the event table: the command a reader would type (and its
    Docker equivalent) where there is one, else the scenario's own words."""
    note = f" -- {_note(s)}" if s.note else ""
    if not s.cli:
        return f"step {s.number}: `{s.text}`{note}"
    return f"step {s.number}: `{s.cli}` (Docker: {_docker(s.docker)}){note}"


def _docker(text: str) -> str:
    """A Docker command in backticks (a remark after it in parentheses stays
    outside); a sentence (no Docker verb) in italics."""
    if not text.startswith("docker "):
        return f"_{text}_"
    command, paren, remark = text.partition(" (")
    return f"`{command}`" + (f" ({remark}" if paren else "")


#: What a reader does by hand where the scenario waits: watch the status.
_WAIT = ("python -m cluster status", "`docker node ls` (MANAGER STATUS)")


def _steps(run: Run) -> list[dict[str, Any]]:
    return [
        {
            "number": s.number,
            "text": s.text,
            "status": s.status,
            "note": _note(s),
            "cli": s.cli or (_WAIT[0] if s.action == "wait" else ""),
            "docker": _docker(s.docker) if s.docker else (_WAIT[1] if s.action == "wait" else ""),
        }
        for s in run.steps
    ]


#: The gRPC wrapping the store's refusals carry, as Docker's do ("rpc error: code =
#: FailedPrecondition desc = ..."): the note quotes what comes after it.
_RPC = re.compile(r"rpc error: code = \w+ desc = ")


def _answers(run: Run) -> list[dict[str, Any]]:
    """What the swarm answered each operator's command (`scenarios.steps.admin`), in
    step order: a refusal word for word, a ``node ls`` table, who held which file."""
    out = []
    for number in sorted(run.answers):
        a, s = run.answers[number], run.step(number)
        held = None
        if "held" in a:
            held = []
            for n, h in sorted(a["held"].items()):
                u = a["used"].get(n, {"secrets": [], "configs": []})
                holds = ", ".join(h["secrets"] + h["configs"]) or "nothing"
                uses = ", ".join(u["secrets"] + u["configs"]) or "nothing"
                held.append({"node": n, "holds": holds, "uses": uses})
        said = f"{a['status']} {a['message']}" if a.get("status") else a.get("message", "")
        out.append({"number": number, "command": s.cli or s.text, "ok": a["ok"],
                    "said": _RPC.sub("", said),
                    "table": a.get("table"), "held": held})  # fmt: skip
    return out


def _misconceptions(run: Run, checks: list[CheckResult]) -> list[dict[str, Any]]:
    """The common beliefs this run corrects, each with the evidence that does:
    a belief without evidence in the run is not mentioned (the template words them)."""
    m = run.model
    proved = {c.name.split(" ")[0]: c for c in checks if c.passed and not c.skipped}
    found: list[dict[str, Any]] = []
    if m is not None:
        # "All managers must agree": an election won without every voter's vote.
        for e in m.won():
            yes, voters = len(e.granted) + 1, len(m.voters_at(e.t))
            if yes < voters:
                found.append({"kind": "majority", "node": e.node, "term": e.term,
                              "yes": yes, "voters": voters})  # fmt: skip
                break
        # "They vote for the latest committed entries": votes refused on the log.
        if "votes_refused" in proved or "winner_most_up_to_date" in proved:
            behind = [v for v in m.votes if not v.granted and "behind" in (v.reason or "")]
            if behind:
                v = behind[0]
                found.append({"kind": "up_to_date", "candidate": v.candidate, "voter": v.voter,
                              "reason": v.reason, "refused": len(behind)})  # fmt: skip
    if "secret_plaintext_absent" in proved:
        found.append({"kind": "secrets", "detail": proved["secret_plaintext_absent"].detail})
    if "cpu_per_write_grows" in proved:
        found += report_ops.misconceptions(run)
    found += _task_misconceptions(run, proved)
    return found


def _task_misconceptions(run: Run, proved: dict[str, CheckResult]) -> list[dict[str, Any]]:
    """The beliefs about tasks a run's task checks correct (`scenarios.checks.tasks`)."""
    found: list[dict[str, Any]] = []
    if "management_refused_no_quorum" in proved and "tasks_kept_running" in proved:
        found.append({"kind": "quorum_tasks", "refused": run.metrics.get("refused_fact", ""),
                      "kept": run.metrics.get("tasks_fact", "")})  # fmt: skip
    if "drained_manager_votes" in proved:
        found.append({"kind": "drained_vote", "detail": proved["drained_manager_votes"].detail})
    if "placement_unchanged" in proved:
        found.append({"kind": "active_rebalance", "detail": proved["placement_unchanged"].detail,
                      "spread": proved.get("tasks_spread")})  # fmt: skip
    drained = [c for n, c in proved.items() if n == "one_task_per_node" and "drain/" in c.detail]
    if drained:
        found.append({"kind": "global_drain", "detail": drained[0].detail})
    return found


def write_note(out: Path, run: Run, checks: list[CheckResult], passed: bool) -> None:
    """``report.md`` from ``viz/templates/scenario.md.j2``: the numbers are computed
    here, the prose is the template's."""
    from viz.notes import caption, differences, glossary_terms, render, study_order

    scn = run.scenario
    c = scn.cluster
    happened = None
    if run.model is not None:
        m = run.model
        headlines = [leader_headline(run) or _elections(m), m.quorum_headline(),
                     m.client_headline()]  # fmt: skip
        happened = {"headlines": headlines, "events": _happened(run)}
    chosen = [TOPICS[t] for t in topics(scn)]
    order = ["timeline.png", "votes.png", "terms.png", "commit.png", "quorum-table.png"]
    figures = [
        {"file": name, "caption": caption(name)}
        for name in sorted(
            (p.name for p in out.glob("*.png")),
            key=lambda n: (order.index(n) if n in order else len(order), n),
        )
    ]
    data = dict(
        title=scn.title,
        name=scn.name,
        passed=passed,
        simulated=run.mode == "simulated",
        network=_NETWORKS.get(run.metrics.get("network", ""), "real processes"),
        seed=run.seed,
        managers=c.managers,
        quorum=majority(c.managers),
        tolerance=(c.managers - 1) // 2,
        key_metric=key_metric(run.metrics),
        misconceptions=_misconceptions(run, checks),
        cheat_sheet=bool(set(topics(scn)) & _QUORUM_TOPICS),
        differs=[d for d in (differences().get(t) for t in topics(scn)) if d],
        election_timeout_ms=c.election_timeout_ms,
        heartbeat_ms=c.heartbeat_ms,
        overrides=c.election_timeout_overrides,
        description=scn.description,
        steps=_steps(run),
        answers=_answers(run),
        happened=happened,
        quorum_rows=run.quorum_rows,
        joins=_joins(run) if run.joined and run.model is not None else [],
        topics=chosen,
        figures=figures,
        checks=[
            {
                "name": ch.name,
                "result": "skipped" if ch.skipped else ("pass" if ch.passed else "**FAIL**"),
                "detail": ch.detail,
            }
            for ch in checks
        ],
        metrics={k: v for k, v in run.metrics.items() if not isinstance(v, list | dict)},
        real_only=scn.real_only,
        **report_ops.note_data(run),
    )
    # The glossary line lists the entries the note's own words use: render it
    # once without its links (whose names would count) to read them.
    terms = glossary_terms(render("scenario.md.j2", **data, glossary_links=[], related=[]))
    links = [{"id": e["id"], "term": e["term"]} for e in terms]
    related = study_order().get(scn.name, {}).get("related", [])
    text = render("scenario.md.j2", **data, glossary_links=links, related=related)
    (out / "report.md").write_text(text)


def _joins(run: Run) -> list[dict[str, Any]]:
    """The join in numbers: the learner phase, the quorum before and after, and
    what the new (possibly even) configuration tolerates, as the run showed it."""
    from scenarios.checks import _conf_at, join_phases

    m = run.model
    out = []
    for j in run.joined:
        name, step = j["name"], run.step(j["step"])
        t0 = run.rel(step.start)
        before, _ = _conf_at(run, t0)
        nb = len(before)
        row: dict[str, Any] = {"name": name, "role": j["role"], "t0": t0, "step": step.number,
                               "before": before, "quorum_before": nb // 2 + 1}  # fmt: skip
        out.append(row)
        if j["role"] != "manager":
            after, _ = _conf_at(run, run.end())
            row.update(after=after, quorum_after=len(after) // 2 + 1)
            continue
        learner, voter = join_phases(run, name, t0)
        row.update(learner=learner, voter=voter)
        if learner is None or voter is None:
            continue
        commits = [c for c in (s.at(learner) for s in m.commit.values()) if c is not None]
        during = [
            op
            for op in run.ops
            if op.outcome == "ok" and learner <= run.rel(op.end) and run.rel(op.start) < voter
        ]
        after, _ = _conf_at(run, voter + 1e-3)
        na = len(after)
        row.update(
            catch_up=max(commits, default=0),
            top=max((c for c in (s.at(voter) for s in m.commit.values()) if c), default=0),
            during=len(during),
            after=after,
            quorum_after=na // 2 + 1,
            even=na % 2 == 0,
            tolerance=(na - 1) // 2,
            two_at_once=None,
            writes_down=_writes_with_voters_down(run, voter, after),
        )
        if nb >= 2 and na == nb + 1:
            # Two majorities that need not overlap, had two servers joined at once.
            old_major = before[: nb // 2 + 1]
            rest = [n for n in after if n not in old_major]
            row["two_at_once"] = {
                "size": nb + 2,
                "old_majority": old_major,
                "new_majority": [*rest, "a fifth"][: (nb + 2) // 2 + 1],
            }
    return out


def _writes_with_voters_down(
    run: Run, since: float, voters: tuple[str, ...]
) -> list[dict[str, Any]]:
    """Each write step after ``since`` with voters down: how many, how writes fared."""
    m = run.model
    out = []
    for s in run.steps:
        if s.action != "write" or s.status != "ok" or run.rel(s.start) < since:
            continue
        t = run.rel(s.start)
        down = [n for n in voters if m.role_at(n, t) in (None, "down", "paused")]
        if not down:
            continue
        ops = [op for op in run.ops if op.step == s.number]
        out.append({
            "step": s.number,
            "down": down,
            "up": len(voters) - len(down),
            "voters": len(voters),
            "needed": len(voters) // 2 + 1,
            "ok": sum(op.outcome == "ok" for op in ops),
            "ops": len(ops),
        })  # fmt: skip
    return out


def write_index(out_root: Path, outcomes: list[Any]) -> Path:
    """``OUT/index.md``: the notes in study order (``viz/templates/study.toml``;
    a scenario it does not list follows, in run order), each with what it
    teaches and the notes to read with it (those of this run only)."""
    from viz.notes import render, study_order

    order = study_order()
    names = list(order)
    ran = {o.scenario for o in outcomes}
    ordered = sorted(
        enumerate(outcomes),
        key=lambda io: (
            names.index(io[1].scenario) if io[1].scenario in order else len(names),
            io[0],
        ),
    )
    rows = []
    for _, o in ordered:
        study = order.get(o.scenario, {"teaches": "", "related": []})
        rows.append({
            "scenario": o.scenario,
            "passed": o.passed,
            "duration_s": o.duration_s,
            "key_metric": key_metric(o.metrics),
            "teaches": study["teaches"],
            "related": [r for r in study["related"] if r in ran],
            "replay": (out_root / o.scenario / "replay.html").exists(),
        })  # fmt: skip
    path = out_root / "index.md"
    path.write_text(render("index.md.j2", rows=rows))
    return path


def write_glossary(out_root: Path) -> Path:
    """``OUT/glossary.md``: the jargon every note links to, defined once."""
    from viz.notes import glossary, render

    path = out_root / "glossary.md"
    out_root.mkdir(parents=True, exist_ok=True)
    path.write_text(render("glossary.md.j2", entries=glossary()))
    return path


def key_metric(met: dict[str, Any]) -> str:
    facts = [met[k] for k in ("refused_fact", "tasks_fact") if k in met]
    if facts:  # the task checks' own measurements (`scenarios.checks.tasks`)
        return "; ".join(str(f) for f in facts)
    found = report_ops.key_metric(met)
    if found is not None:
        return found
    if "voter_after_s" in met:
        learner = met.get("learner_phase_s")
        extra = f" ({learner:.2f} s as a learner)" if learner is not None else ""
        return f"voter after {met['voter_after_s']:.2f} s{extra}"
    if "time_to_leader_s" in met and "leaderless_window_s" in met:
        return (
            f"no leader for {met['leaderless_window_s']:.2f} s, then a new leader "
            f"{met['time_to_leader_s']:.2f} s after quorum could return"
        )
    if "time_to_leader_s" in met:
        return f"new leader after {met['time_to_leader_s']:.2f} s"
    if "quorum_table" in met:
        return "tolerance " + ", ".join(
            f"N={r['managers']}:{r['measured_tolerance']}" for r in met["quorum_table"]
        )
    if met.get("commands_refused"):
        return (f"{met['commands_refused']} of {met['commands_answered']} operator commands "
                "refused by the swarm")  # fmt: skip
    if met.get("votes_refused"):
        return f"{met['votes_refused']} votes refused"
    if "secret_hits" in met:
        return f"secret hits {met['secret_hits']}, config hits {met.get('config_hits', 0)}"
    if "leaderless_window_s" in met:
        return f"no leader for {met['leaderless_window_s']:.2f} s"
    return f"{met.get('writes_ok', 0)} writes ok, max term {met.get('max_term', 0)}"
