// swarmraft's page: one renderer for the live view and the replay.
//
// Both modes hand `render` the same "frame": the cluster at one instant
// (nodes with role, term, timer, log and tasks; partitions; quorum; Swarm
// services; recent messages; events).  The live view fetches frames from
// `python -m cluster web`; a replay computes them from the trace model that
// `python -m viz replay` embedded in the page.  Nothing is fetched from the
// network in a replay: it works from file://.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const W = 560, H = 540, CX = 280, CY = 250, RING = 180, R = 42;
const TERM_COLORS = ["#8ecae6", "#ffb703", "#90be6d", "#f28482", "#b8b8ff", "#f6bd60", "#84a59d", "#cdb4db"];
const LEG = 0.45; // seconds a message takes on screen, per leg (live)
// In a replay a leg is trace time: short, so a request is never drawn before
// the candidate asked (elections take a few hundred ms); slow the playback to see it.
const REPLAY_LEG = 0.12;

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, text) => {
  const e = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const fmt = (s) => (s == null ? "–" : s.toFixed(2) + " s");

// ---------------------------------------------------------------- layout

function positions(frame) {
  const managers = frame.nodes.filter((n) => n.kind !== "worker");
  const workers = frame.nodes.filter((n) => n.kind === "worker");
  const pos = {};
  managers.forEach((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, managers.length);
    pos[n.name] = [CX + RING * Math.cos(a), CY + RING * Math.sin(a)];
  });
  workers.forEach((n, i) => {
    pos[n.name] = [60 + (i * (W - 120)) / Math.max(1, workers.length - 1 || 1), H - 28];
  });
  return pos;
}

function sideOf(partition) {
  const side = {};
  (partition || []).forEach((g, i) => g.forEach((n) => (side[n] = i)));
  return side;
}

// ---------------------------------------------------------------- ring

function drawRing(svg, frame, pos) {
  svg.replaceChildren();
  const managers = frame.nodes.filter((n) => n.kind !== "worker");
  const side = sideOf(frame.partition);
  const rate = {};
  for (const l of frame.links || []) rate[l.from + ">" + l.to] = l.rate;
  const linkLayer = el("svg:g", { class: "links" });
  for (let i = 0; i < managers.length; i++) {
    for (let j = i + 1; j < managers.length; j++) {
      const a = managers[i].name, b = managers[j].name;
      const [x1, y1] = pos[a], [x2, y2] = pos[b];
      const cut = frame.partition && frame.partition.length > 0 && (side[a] ?? -1) !== (side[b] ?? -1);
      const r = (rate[a + ">" + b] || 0) + (rate[b + ">" + a] || 0);
      const line = el("svg:line", { x1, y1, x2, y2, class: "link" + (cut ? " cut" : r > 0 ? " active" : ""), "data-link": a + "|" + b });
      if (r > 0 && !cut) line.setAttribute("stroke-width", String(Math.min(6, 1.5 + Math.log10(1 + r))));
      linkLayer.append(line);
      if (cut) linkLayer.append(el("svg:text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2, class: "cutmark" }, "✕"));
      else if (r > 0) linkLayer.append(el("svg:text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "rate" }, Math.round(r) + "/s"));
    }
  }
  svg.append(linkLayer);
  const nodeLayer = el("svg:g", { class: "nodes" });
  for (const n of frame.nodes) {
    const [x, y] = pos[n.name];
    const r = n.kind === "worker" ? 24 : R;
    const g = el("svg:g", { class: "node", "data-node": n.name, "data-role": n.role, "data-term": n.term ?? 0, transform: `translate(${x},${y})` });
    const title = el("svg:title", {}, nodeTitle(n));
    g.append(title, el("svg:circle", { class: "body", r }));
    if (n.timer && n.timer.timeout > 0 && !["down", "paused", "locked"].includes(n.role)) {
      const left = Math.max(0, 1 - n.timer.elapsed / n.timer.timeout);
      if (n.role !== "leader") g.append(arc(r + 6, left));
    }
    if (n.role === "down") g.append(el("svg:line", { class: "cross", x1: -r * 0.6, y1: -r * 0.6, x2: r * 0.6, y2: r * 0.6 }), el("svg:line", { class: "cross", x1: r * 0.6, y1: -r * 0.6, x2: -r * 0.6, y2: r * 0.6 }));
    g.append(el("svg:text", { class: "name", y: n.kind === "worker" ? 0 : -10 }, n.name.replace("manager", "m").replace("worker", "w")));
    if (n.kind !== "worker") {
      g.append(el("svg:text", { class: "role", y: 6 }, n.role));
      g.append(el("svg:text", { class: "term", y: 20 }, "term " + (n.term ?? 0)));
    }
    nodeLayer.append(g);
  }
  svg.append(nodeLayer);
  svg.append(el("svg:g", { id: "messages" })); // above the nodes: a message leaving one is seen
}

function nodeTitle(n) {
  const bits = [`${n.name}: ${n.role}, term ${n.term ?? 0}`];
  if (n.commit != null) bits.push(`commit ${n.commit}, applied ${n.applied ?? "–"}, last log index ${n.last_index ?? "–"}`);
  if (n.timer && n.role !== "leader") bits.push(`election timer: ${fmt(n.timer.timeout - n.timer.elapsed)} left of ${fmt(n.timer.timeout)}`);
  if (n.availability) bits.push(`availability ${n.availability}`);
  return bits.join("\n");
}

function arc(radius, fraction) {
  // The election timer running down: a full circle when just reset (§5.2).
  if (fraction >= 0.999) return el("svg:circle", { class: "timer", r: radius });
  const a = 2 * Math.PI * fraction;
  const x = radius * Math.sin(a), y = -radius * Math.cos(a);
  return el("svg:path", { class: "timer", d: `M 0 ${-radius} A ${radius} ${radius} 0 ${a > Math.PI ? 1 : 0} 1 ${x} ${y}` });
}

// Messages travel along the chord between two nodes; `clock` is the frame's
// time, so a replay scrubbed back and forth shows them where they were.
function drawMessages(frame, pos, clock) {
  const layer = $("#messages");
  if (!layer) return;
  layer.replaceChildren();
  const leg = frame.mode === "replay" ? REPLAY_LEG : LEG;
  for (const m of frame.messages || []) {
    const p = (clock - m.t) / leg;
    if (p < 0 || p > 1 || !pos[m.from] || !pos[m.to]) continue;
    const [x1, y1] = pos[m.from], [x2, y2] = pos[m.to];
    const x = x1 + (x2 - x1) * p, y = y1 + (y2 - y1) * p;
    const g = el("svg:g", { class: "msg " + m.kind, transform: `translate(${x},${y})`, "data-kind": m.kind });
    g.append(el("svg:title", {}, msgTitle(m)));
    g.append(el("svg:circle", { r: m.kind === "heartbeat" ? 4 : 9 }));
    const label = { vote: "V", "pre-vote": "P", grant: "✓", refuse: "✗", append: "A", heartbeat: "" }[m.kind] || "";
    g.append(el("svg:text", {}, label));
    layer.append(g);
  }
}

function msgTitle(m) {
  const what = { vote: "RequestVote", "pre-vote": "RequestVote (pre-vote)", grant: "vote granted", refuse: "vote refused", append: "AppendEntries with entries", heartbeat: "heartbeat (empty AppendEntries)" }[m.kind] || m.kind;
  return `${what} ${m.from} → ${m.to}, term ${m.term}` + (m.reason ? `\nwhy refused: ${m.reason}` : "");
}

// ---------------------------------------------------------------- panels

function drawHeader(frame) {
  $("#leader").textContent = frame.leader ? `leader: ${frame.leader}` : "no leader";
  $("#term").textContent = `term ${frame.term ?? 0}`;
  const q = frame.quorum || { managers: 0, needed: 0, reachable: 0 };
  const box = $("#quorum");
  box.replaceChildren(el("span", {}, "quorum"));
  for (let i = 0; i < q.managers; i++) box.append(el("span", { class: "seg" + (i < q.reachable ? " on" : "") }));
  const ok = q.reachable >= q.needed;
  box.append(el("span", {}, `${q.reachable} of ${q.managers} reachable, ${q.needed} needed${ok ? "" : " — LOST"}`));
  box.className = ok ? "" : "lost";
  box.setAttribute("data-reachable", q.reachable);
  box.setAttribute("data-needed", q.needed);
}

function drawCards(frame, live) {
  const box = $("#cards");
  box.replaceChildren();
  for (const n of frame.nodes) {
    const card = el("div", { class: "card", "data-card": n.name });
    const title = el("div", { class: "title" });
    title.append(el("span", {}, n.name), el("span", { class: "muted" }, n.kind === "worker" ? n.role : `${n.role} · t${n.term ?? 0}`));
    card.append(title);
    const facts = [];
    if (n.kind !== "worker" && n.commit != null) facts.push(`commit ${n.commit} · applied ${n.applied ?? "–"}`);
    if (n.availability) facts.push(`availability ${n.availability}`);
    card.append(el("div", { class: "facts" }, facts.join(" · ")));
    const tasks = el("div", { class: "tasks" });
    for (const t of n.tasks || []) tasks.append(el("span", { class: "chip " + (t.state || "") }, `${t.service}.${t.slot ?? ""}`));
    card.append(tasks);
    if (live) {
      const acts = n.kind === "worker" ? ["kill", "restart", "pause", "unpause", "drain", "activate"] : ["kill", "restart", "pause", "unpause", "isolate", "transfer", "drain", "activate"];
      for (const a of acts) {
        const b = el("button", { "data-action": a, "data-target": n.name, title: describe(a, n.name) }, a);
        b.disabled = !enabled(a, n);
        card.append(b);
      }
    }
    box.append(card);
  }
}

function enabled(action, n) {
  const up = !["down"].includes(n.role);
  switch (action) {
    case "kill": case "pause": case "isolate": return up && n.role !== "paused";
    case "restart": return true;
    case "unpause": return n.role === "paused";
    case "transfer": return up && n.role !== "leader" && n.role !== "paused" && n.kind !== "worker";
    case "drain": return n.availability !== "drain";
    case "activate": return n.availability && n.availability !== "active";
  }
  return true;
}

function describe(action, target) {
  const text = {
    kill: "SIGKILL the process (a crash)", restart: "start it again on its data", pause: "SIGSTOP the process (frozen, not crashed)",
    unpause: "SIGCONT", isolate: "cut it off from every other node", transfer: "hand leadership to it (§3.10)",
    drain: "node availability drain: its tasks move elsewhere", activate: "node availability active",
  }[action];
  return `${action} ${target}: ${text}`;
}

function drawServices(frame) {
  const body = $("#services tbody");
  body.replaceChildren();
  for (const s of frame.services || []) {
    const tr = el("tr");
    tr.append(el("td", {}, s.name), el("td", {}, s.mode), el("td", {}, `${s.running}/${s.desired ?? "–"}`));
    body.append(tr);
  }
  if (!(frame.services || []).length) {
    const tr = el("tr");
    tr.append(el("td", { colspan: 3, class: "muted" }, frame.mode === "replay" ? "not in traces" : "no services"));
    body.append(tr);
  }
}

function drawEvents(frame) {
  const list = $("#events ol");
  list.replaceChildren();
  for (const e of (frame.events || []).slice(-40).reverse()) {
    const li = el("li");
    li.append(el("span", { class: "t" }, frame.mode === "replay" ? e.t.toFixed(2) + " s" : new Date(e.t * 1000).toLocaleTimeString()), document.createTextNode(e.text));
    list.append(li);
  }
}

function drawLogs(frame) {
  const box = $("#loggrid");
  box.replaceChildren();
  for (const n of frame.nodes) {
    if (n.kind === "worker") continue;
    const row = el("div", { class: "logrow", "data-log": n.name });
    row.append(el("span", { class: "who" }, n.name));
    const log = n.log || [];
    if (log.length && log[0][0] > 1) row.append(el("span", { class: "entry gap" }, `… ${log[0][0] - 1}`));
    for (const [index, term] of log) {
      const commitIndex = n.log_commit ?? n.commit ?? 0; // a replay's row: its own report's
      const committed = index <= commitIndex;
      const cls = "entry" + (committed ? "" : " uncommitted") + (index === commitIndex ? " commitmark" : "");
      const cell = el("span", { class: cls, title: `index ${index}, term ${term}${committed ? ", committed" : ", not committed yet"}`, "data-index": index, "data-term": term }, String(term));
      cell.style.background = committed ? TERM_COLORS[term % TERM_COLORS.length] : "";
      row.append(cell);
    }
    if (!log.length) row.append(el("span", { class: "muted" }, n.role === "down" ? "down" : "empty"));
    if (n.log_age != null) row.append(el("span", { class: "age" }, `as the node reported it ${n.log_age.toFixed(2)} s earlier`));
    box.append(row);
  }
}

function render(frame, clock, live) {
  const pos = positions(frame);
  drawRing($("#ring"), frame, pos);
  drawMessages(frame, pos, clock);
  drawHeader(frame);
  drawCards(frame, live);
  drawServices(frame);
  drawEvents(frame);
  drawLogs(frame);
  return pos;
}

// ---------------------------------------------------------------- live

function startLive() {
  let frame = null, pos = null, receivedAt = 0, busy = false;
  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const r = await fetch("frame", { cache: "no-store" });
      if (r.ok) {
        frame = await r.json();
        receivedAt = performance.now();
        pos = render(frame, frame.t, true);
        setupPartitionChooser(frame.nodes.filter((n) => n.kind !== "worker").map((n) => n.name));
        $("#status").textContent = "live";
      } else $("#status").textContent = `web view: ${r.status}`;
    } catch (e) {
      $("#status").textContent = "web view server not answering";
    } finally {
      busy = false;
    }
  }
  setInterval(poll, 150);
  poll();
  (function animate() {
    if (frame && pos) drawMessages(frame, pos, frame.t + (performance.now() - receivedAt) / 1000);
    requestAnimationFrame(animate);
  })();
  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const body = { action: b.dataset.action, target: b.dataset.target || null };
    if (body.action === "partition") body.groups = chosenGroups();
    b.disabled = true;
    showCommand(body, { pending: true });
    try {
      const r = await fetch("action", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      showCommand(body, await r.json());
    } catch (e) {
      showCommand(body, { ok: false, message: String(e) });
    } finally {
      b.disabled = false;
    }
  });
}

function chosenGroups() {
  const picked = [...document.querySelectorAll("#partition input:checked")].map((i) => i.value);
  const rest = frame_names().filter((n) => !picked.includes(n));
  return [picked, rest];
}
function frame_names() {
  return [...document.querySelectorAll("#partition input")].map((i) => i.value);
}

function showCommand(body, answer) {
  const box = $("#command");
  box.replaceChildren(el("h2", {}, "what that was"));
  if (answer.cli) box.append(el("div", {}, "swarmraft:"), el("code", {}, answer.cli));
  if (answer.docker) box.append(el("div", {}, "Docker:"), el("code", {}, answer.docker));
  const cls = "result" + (answer.ok === false ? " error" : "");
  box.append(el("div", { class: cls, "data-result": answer.pending ? "pending" : answer.ok ? "ok" : "error" }, answer.pending ? `${body.action} ${body.target || ""}…` : answer.message || ""));
}

function setupPartitionChooser(names) {
  const box = $("#partition");
  if (!box || box.dataset.ready === names.join(",")) return;
  box.dataset.ready = names.join(",");
  box.replaceChildren(el("h2", {}, "partition"));
  for (const n of names) {
    const label = el("label");
    label.append(el("input", { type: "checkbox", value: n }), document.createTextNode(" " + n));
    box.append(label);
  }
  box.append(el("br"), el("button", { "data-action": "partition", title: "cut the checked nodes off from the rest" }, "partition: checked | rest"));
}

// ---------------------------------------------------------------- replay

function stepsAt(series, t) {
  // series: [[t, value], ...] sorted; the last value at or before t.
  let lo = 0, hi = series.length - 1, best = null;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (series[mid][0] <= t) { best = series[mid]; lo = mid + 1; } else hi = mid - 1;
  }
  return best;
}

function replayFrame(d, t) {
  const nodes = d.nodes.map((name) => {
    const iv = (d.roles[name] || []).find((r) => r.start <= t && t < r.end) || lastBefore(d.roles[name] || [], t);
    const c = stepsAt(d.commit[name] || [], t);
    const ap = stepsAt(d.applied[name] || [], t);
    const lg = stepsAt(d.logs[name] || [], t);
    const role = iv ? iv.role : "down";
    const shown = role === "not a member" || role === "outside" ? "follower" : role;
    // Commit and apply lines are sampled (every ~100 ms): a node never applies
    // past its commit index, so an applied index ahead of the sampled commit
    // index proves the commit index got at least that far.
    const known = [c && c[1], ap && ap[1]].filter((x) => x != null);
    const commit = known.length ? Math.max(...known) : null; // unknown while down
    return {
      name, kind: "manager", role: shown, term: iv ? iv.term : 0,
      commit, applied: ap && ap[1] != null ? ap[1] : null, log: lg ? lg[1] : [],
      log_commit: lg ? lg[2] : null, // the commit index the same report gave
      log_age: lg ? t - lg[0] : null, timer: null, tasks: [],
    };
  });
  const side = faultsAt(d, t);
  const leaders = nodes.filter((n) => n.role === "leader").sort((a, b) => b.term - a.term);
  const q = stepsAt(d.quorum, t);
  const messages = [];
  for (const v of d.votes) {
    if (v.t < t - 2 * REPLAY_LEG || v.t - REPLAY_LEG > t) continue;
    messages.push({ kind: v.pre_vote ? "pre-vote" : "vote", from: v.candidate, to: v.voter, term: v.term, t: v.t - REPLAY_LEG });
    messages.push({ kind: v.granted ? "grant" : "refuse", from: v.voter, to: v.candidate, term: v.term, t: v.t, reason: v.reason });
  }
  const events = d.events.filter((e) => e.t <= t);
  const rates = {};
  const silent = new Set(nodes.filter((n) => n.role === "down" || n.role === "paused").map((n) => n.name));
  for (const [lt, from, to, kind, count, window] of d.links || []) {
    if (lt > t || lt < t - 0.5 || kind === "append_reply" || silent.has(from)) continue;
    (rates[from + ">" + to] = rates[from + ">" + to] || []).push(count / window);
    if (lt >= t - REPLAY_LEG) messages.push({ kind, from, to, t: lt });
  }
  const links = Object.entries(rates).map(([k, r]) => {
    const [from, to] = k.split(">");
    return { from, to, rate: r.reduce((a, b) => a + b, 0) / r.length };
  });
  return {
    mode: "replay", t, nodes, partition: side, leader: leaders.length ? leaders[0].name : null,
    term: Math.max(0, ...nodes.map((n) => n.term || 0)),
    quorum: q ? { managers: q[1][0], needed: q[1][1], reachable: q[1][2] } : { managers: nodes.length, needed: Math.floor(nodes.length / 2) + 1, reachable: 0 },
    messages, events, services: [], links,
  };
}

function lastBefore(ivs, t) {
  let best = null;
  for (const iv of ivs) if (iv.start <= t) best = iv;
  return best;
}

function faultsAt(d, t) {
  for (const f of d.partitions) if (f.start <= t && t < f.end) return f.groups;
  return [];
}

function startReplay(d) {
  const slider = $('input[data-control="time"]');
  slider.max = d.end.toFixed(3);
  slider.step = "any";
  let t = 0, playing = false, last = 0;
  const speedSel = $("#speed");
  function show() {
    slider.value = t.toFixed(3);
    $("#clock").textContent = `${t.toFixed(2)} s / ${d.end.toFixed(2)} s`;
    render(replayFrame(d, t), t, false);
    // The latest step, and any that ran at the same instant (a simulated run
    // takes several steps without time passing).
    const latest = lastBefore(d.steps.map((s) => ({ ...s, start: s.t })), t);
    const cap = $("#caption");
    cap.replaceChildren();
    if (latest) {
      for (const step of d.steps.filter((s) => s.t === latest.t)) {
        const line = el("div");
        line.append(el("b", {}, `${step.t.toFixed(2)} s — ${step.text}`));
        if (step.cli) line.append(document.createTextNode("  "), el("code", {}, step.cli));
        if (step.docker) line.append(document.createTextNode("  Docker: "), el("code", {}, step.docker));
        cap.append(line);
      }
    } else cap.append(el("span", { class: "muted" }, "before the first step"));
  }
  slider.addEventListener("input", () => { t = parseFloat(slider.value); show(); });
  $("#play").addEventListener("click", () => {
    playing = !playing;
    if (playing && t >= d.end) t = 0;
    $("#play").textContent = playing ? "pause" : "play";
    last = performance.now();
  });
  (function tick(now) {
    if (playing) {
      t = Math.min(d.end, t + ((now - last) / 1000) * parseFloat(speedSel.value));
      if (t >= d.end) { playing = false; $("#play").textContent = "play"; }
      show();
    }
    last = now;
    requestAnimationFrame(tick);
  })(performance.now());
  t = d.start_at ?? 0;
  show();
}

// ---------------------------------------------------------------- boot

window.addEventListener("DOMContentLoaded", () => {
  const data = JSON.parse($("#data").textContent);
  if (data.mode === "replay") startReplay(data);
  else startLive();
});
