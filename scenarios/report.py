"""The products of a run: figures, ``result.json``, the study note ``report.md``.

The note has a fixed shape -- what was done, what happened (from the trace
model, with times), why Raft did it, the Swarm fact it demonstrates, the
figures, the checks -- but every number in it comes from the run.  The
"why" and "Swarm fact" paragraphs are chosen by the scenario's ``topic``, or,
for a file that names none, by what its checks and steps are about.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scenarios.checks import CheckResult, Run, conf_changes
from scenarios.schema import TOPIC_NAMES, Scenario

__all__ = ["collect_metrics", "draw_figures", "write_index", "write_note", "write_result"]

#: topic -> (the Raft rule that made it happen, the Swarm / DCA fact)
TOPICS: dict[str, tuple[str, str]] = {
    "election": (
        "**§5.2 Leader election.** Followers that stop hearing heartbeats wait a randomized "
        "election timeout (drawn from [T, 2T)), become candidates in a new term and ask for "
        "votes; a majority makes a leader. With pre-vote (dissertation §9.6) a candidate first "
        "checks it *could* win, so a node that cannot does not inflate terms. **§5.4.1**: a "
        "voter refuses a candidate whose log is behind its own, so the winner holds every "
        "committed entry (Leader Completeness).",
        "A Swarm keeps working while a majority of managers -- (N/2)+1 -- is reachable: losing "
        "the leader costs one election timeout or so, and no acknowledged write. Run an odd "
        "number of managers (3, 5, 7): N managers tolerate (N-1)/2 failures.",
    ),
    "quorum": (
        "**§5.3 / §5.4.2 Commitment needs a majority.** An entry is committed only once a "
        "majority of servers store it; without a majority nothing commits and no leader can be "
        "elected (a candidate needs a majority of votes). **§6.2 of the dissertation "
        "(check-quorum)**: a leader that has not heard from a majority for an election timeout "
        "steps down, so clients get a prompt error instead of waiting on it.",
        "Quorum is (N/2)+1 managers; fault tolerance is (N-1)/2. Without quorum the swarm "
        "cannot be managed -- `docker service create`, `docker node update`, secret and config "
        "changes are refused -- but running tasks keep running. Bringing managers back "
        "restores quorum; `docker swarm init --force-new-cluster` is the last resort.",
    ),
    "partition": (
        "**§5.4.2 / §6.2.** A leader cut off with a minority keeps its role for at most an "
        "election timeout (check-quorum), and nothing it appends can commit: it cannot reach "
        "a majority. The majority side elects a leader in a higher term. On heal the old "
        "leader sees the higher term and steps down (**§5.1**: a server that sees a newer term "
        "becomes a follower), and the new leader's AppendEntries consistency check (**§5.3**) "
        "makes it delete its uncommitted entries and take the leader's.",
        "Split managers across failure domains so that any one failure leaves a majority on "
        "one side: with 5 managers, a 2/3 split keeps the swarm manageable on the side of 3. "
        "Clients talking to the minority side get errors, never a silently lost write.",
    ),
    "stale": (
        "**§5.4.1 Election restriction.** A voter grants its vote only if the candidate's log "
        "is at least as up to date as its own: compare the last entries' terms, then the "
        "lengths. A node that missed committed entries can time out first and campaign as "
        "often as it likes; every up-to-date voter refuses it, and an up-to-date node wins. "
        "This is why a new leader always holds every committed entry (Leader Completeness).",
        "Raft elects on the most up-to-date log, not on who is fastest: a manager that was "
        "down or partitioned cannot become leader until it has caught up, so a restart of a "
        "stale manager never rolls back the swarm's state.",
    ),
    "split": (
        "**§5.2 / majorities.** With an even number of voters split in half, neither side "
        "has a majority (N/2+1), so neither can elect a leader, however often it tries. "
        "Pre-vote (dissertation §9.6) keeps the failed attempts from raising terms.",
        "Why Swarm recommends an odd number of managers: 4 managers tolerate one failure, "
        "exactly like 3, and a 2/2 partition stops both halves. Adding a fourth manager only "
        "adds one more machine that can fail.",
    ),
    "pause": (
        "**§5.1 Terms as a logical clock.** A paused leader does not know time passed. The "
        "others elect a new leader in a higher term (§5.2); when the old one resumes, its "
        "first message or the next heartbeat it receives carries the newer term and it steps "
        "down at once.",
        "A frozen manager (a VM pause, a long GC) is treated like a failed one: the swarm "
        "moves on, and the manager rejoins as a follower when it wakes up.",
    ),
    "rolling": (
        "**§5.4 Safety across restarts.** Terms, votes and log entries are on disk before a "
        "server answers (persist before send), so a restarted manager rejoins with everything "
        "it acknowledged; as long as a majority stays up, every restart is just a short "
        "absence (§5.5: followers and candidates that crash are simply retried).",
        "Upgrade or reboot managers one at a time, waiting for each to be Reachable again: "
        "a majority stays up throughout and the swarm stays manageable.",
    ),
    "drain": (
        "Not a Raft rule: node availability is replicated state like any other write (§5.3), "
        "and the orchestrator on the leader reacts to it.",
        "`docker node update --availability drain` stops the node's tasks and reschedules them "
        "elsewhere; `pause` keeps existing tasks but the scheduler places no new ones there; "
        "`active` makes it eligible again. Draining a manager does not change its Raft role.",
    ),
    "secrets": (
        "Not a Raft rule: the Raft log and snapshots replicate whatever they are given, so the "
        "manager encrypts a secret *before* it is proposed; only ciphertext reaches the log.",
        "Secrets are encrypted at rest in the Raft log (and can be locked with autolock); "
        "configs are stored in the clear. Secrets are only decrypted in memory on the nodes "
        "whose tasks use them.",
    ),
    "transfer": (
        "**Leadership transfer (dissertation §3.10).** The leader brings the target's log up "
        "to date, then sends it TimeoutNow; the target campaigns at once in a new term and "
        "wins, usually faster than any election timeout.",
        "A planned handover (before demoting or rebooting the leader) avoids a full election "
        "timeout of unavailability.",
    ),
    "figure8": (
        "**§5.4.2 Committing entries from previous terms (Figure 8).** A leader never commits an "
        "entry of an earlier term by counting replicas; it commits entries of its own term, and "
        "earlier ones follow by the Log Matching property. Otherwise an entry stored on a "
        "majority could still be overwritten by a leader elected without it.",
        'What "committed" means in Swarm: acknowledged writes survive any later election.',
    ),
    "membership": (
        "**Membership changes (§6, dissertation §4).** One server at a time: a new server joins "
        "as a learner, catches up, and is promoted to voter; any two majorities of consecutive "
        "configurations overlap.",
        "`docker node promote` / `demote` change the manager set; keep it odd.",
    ),
    "recovery": (
        "**Forced recovery.** When a majority is lost for good, a survivor rewrites its "
        "configuration to contain only itself, keeping every entry it had committed.",
        "`docker swarm init --force-new-cluster` on a surviving manager: it keeps the state, "
        "becomes a single-manager swarm, and other managers are re-added afterwards.",
    ),
    "join": (
        "**Adding a server (dissertation §4.2.1, §4.2.3, §4.1).** A newcomer starts with an "
        "empty log. Were it a voter at once, the quorum would grow before it could help: the "
        "leader would need it to commit while it still lacks most of the log, and one more "
        "failure would stop the cluster. So it joins as a **learner** (a non-voting member): "
        "the leader replicates the log to it, but it neither votes nor counts towards the "
        "quorum. Once it has caught up with the commit index the leader promotes it to voter, "
        "with a second configuration entry. Servers are added **one at a time**, each change "
        "committed before the next: any majority of the old configuration and any majority "
        "of the new one then share a server, so two leaders can never be elected for one term.",
        "`docker swarm join --token SWMTKN-1-...` adds a node, and the token decides its role: "
        "the worker token makes a worker, the manager token a manager (`docker swarm "
        "join-token manager|worker` shows them; `--rotate` replaces one). Workers take no part "
        "in Raft, so they never change the quorum. Keep the number of managers **odd**: 4 "
        "managers need 3 for a quorum and tolerate 1 failure -- no more than 3 managers do -- "
        "while 5 tolerate 2. A classic DCA exam question.",
    ),
    "autolock": (
        "Not a Raft rule: the key that unwraps the data key is kept out of the data directory.",
        "With autolock, a restarted manager cannot decrypt the Raft log until `docker swarm "
        "unlock` is given the unlock key.",
    ),
}


assert set(TOPICS) == set(TOPIC_NAMES), "scenarios.schema.TOPIC_NAMES lists the topics"

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
    met["commit_index"] = max((s.last() or 0 for s in m.commit.values()), default=0)
    met["quorum_lost_s"] = round(sum(b - a for a, b in m.quorum.lost), 3)
    refused = [v for v in m.votes if not v.granted]
    met.setdefault("votes_refused", len(refused))
    if run.quorum_rows:
        met["quorum_table"] = run.quorum_rows


def draw_figures(out: Path, run: Run) -> list[Path]:
    from viz.figures import placement_figure, render_all, save
    from viz.figures.quorum_table import QuorumRow, quorum_table_figure

    paths = render_all(run.model, out)
    if run.quorum_rows:
        rows = [
            QuorumRow(r["managers"], r["quorum"], r["expected_tolerance"], r["measured_tolerance"])
            for r in run.quorum_rows
        ]
        paths += save(quorum_table_figure(rows), out / "quorum-table")
    if len(run.placements) >= 2:
        # Which node runs which task, before the first drain and at the end.
        before, after = run.placements[0], run.placements[-1]
        moved = sum(1 for t in before if t in after and before[t] != after[t])
        title = f"Task placement before the drain and at the end ({moved} tasks moved)"
        paths += save(placement_figure(before, after, title), out / "placement")
    return paths


def write_result(out: Path, run: Run, checks: list[CheckResult], passed: bool) -> None:
    result = {
        "scenario": run.scenario.name,
        "passed": passed,
        "mode": run.mode,
        "seed": run.seed,
        "checks": [c.as_json() for c in checks],
        "metrics": run.metrics,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")


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
        note = f" -- {s.note}" if s.note else ""
        events.append((run.rel(s.start), f"step {s.number}: `{s.text}`{note}"))
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


def write_note(out: Path, run: Run, checks: list[CheckResult], passed: bool) -> None:
    """``report.md`` from ``viz/templates/scenario.md.j2``: the numbers are computed
    here, the prose is the template's."""
    from viz.notes import render

    scn = run.scenario
    c = scn.cluster
    happened = None
    if run.model is not None:
        m = run.model
        headlines = [m.headline(), m.quorum_headline(), m.client_headline()]
        happened = {"headlines": headlines, "events": _happened(run)}
    chosen = [TOPICS[t] for t in topics(scn)]
    order = ["timeline.png", "votes.png", "terms.png", "commit.png", "quorum-table.png"]
    figures = sorted(
        (p.name for p in out.glob("*.png")),
        key=lambda n: (order.index(n) if n in order else len(order), n),
    )
    text = render(
        "scenario.md.j2",
        title=scn.title,
        name=scn.name,
        passed=passed,
        simulated=run.mode == "simulated",
        seed=run.seed,
        managers=c.managers,
        election_timeout_ms=c.election_timeout_ms,
        heartbeat_ms=c.heartbeat_ms,
        overrides=c.election_timeout_overrides,
        description=scn.description,
        steps=run.steps,
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
    )
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
    from viz.notes import render

    rows = [
        {
            "scenario": o.scenario,
            "passed": o.passed,
            "duration_s": o.duration_s,
            "key_metric": key_metric(o.metrics),
        }
        for o in outcomes
    ]
    path = out_root / "index.md"
    path.write_text(render("index.md.j2", rows=rows))
    return path


def key_metric(met: dict[str, Any]) -> str:
    if "voter_after_s" in met:
        learner = met.get("learner_phase_s")
        extra = f" ({learner:.2f} s as a learner)" if learner is not None else ""
        return f"voter after {met['voter_after_s']:.2f} s{extra}"
    if "time_to_leader_s" in met:
        return f"new leader after {met['time_to_leader_s']:.2f} s"
    if "quorum_table" in met:
        return "tolerance " + ", ".join(
            f"N={r['managers']}:{r['measured_tolerance']}" for r in met["quorum_table"]
        )
    if met.get("votes_refused"):
        return f"{met['votes_refused']} votes refused"
    if "secret_hits" in met:
        return f"secret hits {met['secret_hits']}, config hits {met.get('config_hits', 0)}"
    if "leaderless_window_s" in met:
        return f"no leader for {met['leaderless_window_s']:.2f} s"
    return f"{met.get('writes_ok', 0)} writes ok, max term {met.get('max_term', 0)}"
