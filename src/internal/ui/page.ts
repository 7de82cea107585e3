/**
 * The web page of `Ui.ts`: one HTML document with its style and script inline (no build step),
 * which polls the JSON endpoints and draws tables and SVG charts. Everything that comes from the
 * store reaches the document as text nodes or attribute values set through the DOM
 * (`textContent`, `setAttribute`), never as markup; and the page's Content-Security-Policy allows
 * only its own inline script and style (by their hashes), so markup that found its way in could
 * still run nothing.
 *
 * @internal
 */
import { createHash } from "node:crypto"

const style = `
:root { font: 14px/1.4 system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
body { margin: 0 auto; max-width: 1100px; padding: 12px 20px 40px; }
h1 { font-size: 20px; margin: 4px 0 2px; } h2 { font-size: 16px; margin: 22px 0 8px; }
.muted { color: #69707d; } .error { color: #b3261e; white-space: pre-wrap; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e3e5e8; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.selected { background: #e8f0fe; }
button.link { background: none; border: 0; padding: 0; color: #1a57c9; cursor: pointer; font: inherit; text-decoration: underline; }
pre { margin: 0; white-space: pre-wrap; word-break: break-all; font: 12px/1.35 ui-monospace, monospace; }
.charts { display: flex; gap: 16px; flex-wrap: wrap; }
.chart { background: #fff; border: 1px solid #e3e5e8; padding: 8px; flex: 1 1 480px; }
.chart svg { width: 100%; height: 170px; display: block; }
.axis { stroke: #c4c8cf; stroke-width: 1; } .label { font-size: 10px; fill: #69707d; }
.line { fill: none; stroke-width: 1.6; }
.s-pending { stroke: #1a57c9; color: #1a57c9; } .s-scheduled { stroke: #8e44ad; color: #8e44ad; }
.s-claimed { stroke: #e08a00; color: #e08a00; } .s-dead { stroke: #b3261e; color: #b3261e; }
.s-completed { stroke: #188038; color: #188038; } .s-enqueued { stroke: #1a57c9; color: #1a57c9; }
.s-deadLettered { stroke: #b3261e; color: #b3261e; }
.legend span { margin-right: 12px; font-size: 12px; } .legend span::before { content: "\\25A0 "; }
form { margin: 0 0 8px; } input { font: inherit; padding: 3px 6px; width: 320px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 10px; background: #fff; padding: 8px; }
dt { color: #69707d; } dd { margin: 0; word-break: break-all; }
`

const script = `
"use strict";
const $ = (id) => document.getElementById(id);
// Every value from the store goes in as a text node or an attribute set through the DOM.
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children) node.append(c === undefined || c === null ? "" : typeof c === "object" ? c : String(c));
  return node;
};
const svg = (tag, attrs) => {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
};
const time = (ms) => (ms === undefined || ms === null ? "" : new Date(ms).toISOString().replace("T", " ").slice(0, 19));
const state = { queue: undefined, tick: 0, busy: false, wantDead: true };

const getJson = async (path) => {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw body;
  return body;
};
const problem = (e) => (e && typeof e.message === "string" ? e.message : String(e));

const selectQueue = (queue) => {
  state.queue = queue;
  $("selected").textContent = queue === undefined ? "all queues" : queue;
  $("dead-queue").textContent = queue === undefined ? "" : queue;
  for (const row of $("queues-body").children) row.classList.toggle("selected", row.dataset.queue === queue);
  state.wantDead = true;
  refresh();
};

const renderQueues = (body) => {
  const rows = body.queues.map((q) => {
    const name = el("button", { class: "link", type: "button" }, q.queue);
    name.addEventListener("click", () => selectQueue(q.queue));
    const row = el("tr", { "data-queue": q.queue },
      el("td", { class: "name" }, name),
      el("td", { class: "paused" }, q.paused ? "paused" : ""),
      ...["pending", "scheduled", "claimed", "done", "dead"].map((k) => el("td", { class: "n " + k }, q[k])));
    if (q.queue === state.queue) row.classList.add("selected");
    return row;
  });
  $("queues-body").replaceChildren(...rows);
  $("no-queues").hidden = rows.length > 0;
  $("updated").textContent = "updated " + time(body.at) + " UTC" +
    (body.snapshotAt === null ? "" : " \\u00b7 store read at " + time(body.snapshotAt) + " UTC");
};

const chart = (target, points, keys, title) => {
  const width = 600, height = 170, left = 40, right = 8, top = 8, bottom = 18;
  const root = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": title });
  const values = points.flatMap((p) => keys.map((k) => p[k])).filter((v) => typeof v === "number");
  const max = Math.max(1, ...values);
  const t0 = points.length > 0 ? points[0].at : 0, t1 = points.length > 0 ? points[points.length - 1].at : 1;
  const x = (t) => left + (t1 === t0 ? 0 : ((t - t0) / (t1 - t0)) * (width - left - right));
  const y = (v) => top + (1 - v / max) * (height - top - bottom);
  root.append(svg("line", { class: "axis", x1: left, y1: y(0), x2: width - right, y2: y(0) }));
  root.append(svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: y(0) }));
  const label = (text, attrs) => { const t = svg("text", { class: "label", ...attrs }); t.textContent = text; root.append(t); };
  label(max >= 10 ? String(Math.round(max)) : String(Math.round(max * 100) / 100), { x: left - 4, y: top + 8, "text-anchor": "end" });
  label("0", { x: left - 4, y: y(0), "text-anchor": "end" });
  if (points.length > 1) {
    const span = (t1 - t0) / 1000;
    label(span < 120 ? "-" + Math.round(span) + " s" : "-" + Math.round(span / 60) + " min", { x: left, y: height - 4 });
    label("now", { x: width - right, y: height - 4, "text-anchor": "end" });
  }
  for (const k of keys) {
    const xy = points.filter((p) => typeof p[k] === "number").map((p) => x(p.at).toFixed(1) + "," + y(p[k]).toFixed(1));
    if (xy.length > 0) root.append(svg("polyline", { class: "line s-" + k, "data-series": k, points: xy.join(" ") }));
  }
  const last = points.length > 0 ? points[points.length - 1] : {};
  const legend = el("div", { class: "legend" }, ...keys.map((k) =>
    el("span", { class: "s-" + k }, k + " " + (typeof last[k] === "number" ? Math.round(last[k] * 100) / 100 : "-"))));
  target.replaceChildren(root, legend);
};

const renderSeries = (body) => {
  chart($("depth-chart"), body.points, ["pending", "scheduled", "claimed", "dead"], "depth by state");
  chart($("rate-chart"), body.points, ["completed", "enqueued", "deadLettered"], "jobs per second");
};

const showJob = async (id) => {
  $("job-id").value = id;
  const out = $("job");
  try {
    const { job, history } = await getJson("/api/job?id=" + encodeURIComponent(id));
    const fields = ["id", "queue", "status", "attempts", "maxAttempts", "priority", "enqueuedAt", "runAt", "claimedAt",
      "completedAt", "failedAt", "lastError", "dedupKey", "payloadError"];
    const dl = el("dl", { id: "job-fields" });
    for (const f of fields) {
      if (job[f] === undefined) continue;
      dl.append(el("dt", {}, f), el("dd", { "data-field": f }, f.endsWith("At") ? time(job[f]) + " UTC" : job[f]));
    }
    const rows = history.map((a) => el("tr", {}, el("td", {}, time(a.claimedAt)), el("td", {}, time(a.endedAt)),
      el("td", { class: "outcome" }, a.outcome), el("td", { class: "error" }, el("pre", {}, a.error))));
    out.replaceChildren(dl,
      el("h3", {}, "payload"), el("pre", { id: "job-payload" }, job.payload === undefined ? "(not readable)" : job.payload),
      ...(job.result === undefined ? [] : [el("h3", {}, "result"), el("pre", { id: "job-result" }, job.result)]),
      el("h3", {}, "history"),
      history.length === 0 ? el("p", { class: "muted" }, "no ended attempts") :
        el("table", { id: "job-history" }, el("thead", {}, el("tr", {}, el("th", {}, "claimed (UTC)"), el("th", {}, "ended (UTC)"),
          el("th", {}, "outcome"), el("th", {}, "error"))), el("tbody", {}, ...rows)));
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", id: "job-error" }, problem(e)));
  }
};

const renderDead = (body) => {
  const rows = body.jobs.map((j) => {
    const id = el("button", { class: "link", type: "button" }, j.id);
    id.addEventListener("click", () => showJob(j.id));
    return el("tr", { "data-id": j.id }, el("td", {}, id), el("td", { class: "n" }, j.attempts),
      el("td", {}, time(j.failedAt)), el("td", { class: "error" }, el("pre", {}, j.lastError)));
  });
  $("dead-body").replaceChildren(...rows);
  $("dead-note").textContent = rows.length === 0 ? "no dead jobs" : body.next !== null ? "the first " + rows.length + " dead jobs" : "";
};

const refresh = async () => {
  if (state.busy) return;
  state.busy = true;
  const deadToo = state.wantDead;
  state.wantDead = false;
  try {
    const q = state.queue === undefined ? "" : "?queue=" + encodeURIComponent(state.queue);
    const [queues, series] = await Promise.all([getJson("/api/queues"), getJson("/api/series" + q)]);
    renderQueues(queues);
    renderSeries(series);
    if (state.queue === undefined) {
      $("dead-body").replaceChildren();
      $("dead-note").textContent = "select a queue to see its dead jobs";
    } else if (deadToo) {
      renderDead(await getJson("/api/dead" + q));
    }
    $("problem").textContent = "";
  } catch (e) {
    state.wantDead = state.wantDead || deadToo;
    $("problem").textContent = problem(e);
  } finally {
    state.busy = false;
  }
};

$("all-queues").addEventListener("click", () => selectQueue(undefined));
$("job-form").addEventListener("submit", (event) => { event.preventDefault(); showJob($("job-id").value.trim()); });
refresh();
setInterval(() => { state.tick += 1; if (state.tick % 5 === 0) state.wantDead = true; refresh(); }, 1000);
`

const body = `
<h1>bucketq</h1>
<div class="muted"><span id="updated">loading</span></div>
<div id="problem" class="error"></div>
<h2>Queues</h2>
<table id="queues"><thead><tr><th>queue</th><th></th><th class="n">pending</th><th class="n">scheduled</th>
<th class="n">claimed</th><th class="n">done</th><th class="n">dead</th></tr></thead><tbody id="queues-body"></tbody></table>
<p id="no-queues" class="muted" hidden>no queues yet</p>
<h2>Last minutes: <span id="selected">all queues</span> <button id="all-queues" class="link" type="button">(all queues)</button></h2>
<div class="charts">
<div class="chart"><div class="muted">depth by state</div><div id="depth-chart"></div></div>
<div class="chart"><div class="muted">jobs per second</div><div id="rate-chart"></div></div>
</div>
<h2>Dead jobs <span id="dead-queue"></span></h2>
<table id="dead"><thead><tr><th>job</th><th class="n">attempts</th><th>failed (UTC)</th><th>error</th></tr></thead>
<tbody id="dead-body"></tbody></table>
<p id="dead-note" class="muted"></p>
<h2>Job</h2>
<form id="job-form"><input id="job-id" placeholder="job id" autocomplete="off"> <button type="submit">show</button></form>
<div id="job"></div>
`

const hash = (text: string): string => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`

/** The page's document. */
export const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>bucketq</title><style>${style}</style></head>
<body>${body}<script>${script}</script></body></html>
`

/** The page's Content-Security-Policy: nothing but its own inline script and style, and requests to its own origin. */
export const contentSecurityPolicy = [
  "default-src 'none'",
  `script-src ${hash(script)}`,
  `style-src ${hash(style)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")
