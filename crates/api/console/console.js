// stephook's delivery console. Dependency-free: it talks to the API under /v1 with fetch and
// builds the table with DOM calls (text only, never HTML from the API). Deliveries are read
// one server-side page at a time (keyset cursors), so it stays fast with any number of rows.
// The filters and the page live in the address bar, so a view can be shared and survives a
// reload.
"use strict";

const PAGE_SIZE = 50;
const REFRESH_MS = 3000;
const TOKEN_KEY = "stephook.apiToken"; // sessionStorage only: gone when the tab closes
const STATES = ["pending", "retrying", "delivered", "dead"];
/// How long the console follows a redelivery it queued before it stops reporting on it.
const FOLLOW_MS = 60000;
const STEP_MARKS = { success: "✓", failed: "✗", cancelled: "⊘", pending: "…" };

const view = {
  state: "",
  q: "",
  from: "",
  to: "",
  cursors: [null], // cursors[i] is the cursor of page i; the last one is the page shown
  nextCursor: null,
  expanded: new Set(),
  busy: false,
  again: false, // a refresh was asked for while one ran: run another when it ends
  currentEndpoint: null,
  followed: new Map(), // step id -> {notice, since, wasSent}
};

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

class Unauthorized extends Error {}

async function api(path, options) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.detail || response.status + " " + response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString();
}

/// "3 min ago" / "in 20 s", with the full time in the title.
function ago(iso) {
  if (!iso) return el("span", {}, "");
  const date = new Date(iso);
  if (isNaN(date)) return el("span", {}, iso);
  const seconds = Math.round((date - Date.now()) / 1000);
  const abs = Math.abs(seconds);
  const amount = abs < 60 ? abs + " s" : abs < 3600 ? Math.round(abs / 60) + " min"
    : abs < 86400 ? Math.round(abs / 3600) + " h" : Math.round(abs / 86400) + " d";
  const text = seconds > 0 ? "in " + amount : amount + " ago";
  return el("time", { dateTime: iso, title: date.toLocaleString() }, text);
}

/// The API stores a receiver's answer as an escaped excerpt (`\n`, `\t`, `\u001b`, `\\`): shown
/// readably, line breaks as line breaks, other escapes as they are. Text only, never HTML.
function readable(excerpt) {
  if (!excerpt) return "";
  return excerpt.replace(/\\(n|r|t|\\)/g, (_, c) => ({ n: "\n", r: "", t: "  ", "\\": "\\" })[c]);
}

/// The URL without its scheme, for a narrow column (the title has it whole).
function shortUrl(url) {
  return url ? url.replace(/^https?:\/\//, "") : "";
}

function announce(text, kind) {
  const item = el("li", { class: kind || "" }, el("span", {}, text));
  const close = el("button", { type: "button", class: "dismiss", title: "Dismiss" }, "×");
  close.addEventListener("click", () => item.remove());
  item.append(close);
  $("notices").prepend(item);
  while ($("notices").children.length > 5) $("notices").lastChild.remove();
  return item;
}

function setNotice(item, text, kind) {
  item.className = kind || "";
  item.firstChild.textContent = text;
}

function askForToken() {
  $("token-form").hidden = false;
  $("token-input").focus();
}

// ---- the address bar ----

function readUrl() {
  const params = new URLSearchParams(location.search);
  view.state = STATES.includes(params.get("state")) ? params.get("state") : "";
  view.q = params.get("q") || "";
  view.from = params.get("from") || "";
  view.to = params.get("to") || "";
  view.cursors = [null, ...params.getAll("page").filter(Boolean)];
  $("state-filter").value = view.state;
  $("search").value = view.q;
  $("from").value = view.from;
  $("to").value = view.to;
}

function writeUrl() {
  const params = new URLSearchParams();
  if (view.state) params.set("state", view.state);
  if (view.q) params.set("q", view.q);
  if (view.from) params.set("from", view.from);
  if (view.to) params.set("to", view.to);
  for (const cursor of view.cursors.slice(1)) params.append("page", cursor);
  const search = params.toString();
  history.replaceState(null, "", search ? "?" + search : location.pathname);
}

function listQuery() {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (view.state) query.set("state", view.state);
  const q = view.q.trim();
  if (q.startsWith("step-")) query.set("step_id", q);
  else if (q) query.set("run_id", q);
  if (view.from) query.set("created_after", new Date(view.from).toISOString());
  if (view.to) query.set("created_before", new Date(view.to).toISOString());
  const cursor = view.cursors[view.cursors.length - 1];
  if (cursor) query.set("cursor", cursor);
  return query;
}

// ---- refresh ----

async function refresh() {
  if (view.busy) {
    view.again = true;
    return;
  }
  view.busy = true;
  try {
    const [counts, page] = await Promise.all([
      api("v1/deliveries/counts"),
      api("v1/deliveries?" + listQuery()),
    ]);
    $("token-form").hidden = true;
    showCounts(counts);
    view.nextCursor = page.next_cursor;
    await showRows(page.deliveries);
    $("page-older").disabled = !view.nextCursor;
    $("page-newer").disabled = view.cursors.length <= 1;
    $("page-newest").disabled = view.cursors.length <= 1;
    $("redeliver-dead").disabled = counts.dead === 0;
    $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    await follow();
  } catch (error) {
    if (error instanceof Unauthorized) askForToken();
    // The page's cursor row is gone (retention): start again from the newest on the next tick.
    else if (error.status === 404) {
      view.cursors = [null];
      writeUrl();
    } else $("updated").textContent = "cannot reach the API: " + error.message;
  } finally {
    view.busy = false;
    if (view.again) {
      view.again = false;
      refresh();
    }
  }
}

function showCounts(counts) {
  const capped = new Set(counts.capped || []);
  const shown = (state) => counts[state] + (capped.has(state) ? "+" : "");
  $("count-total").textContent = counts.total + (capped.size ? "+" : "");
  for (const state of STATES) $("count-" + state).textContent = shown(state);
  for (const button of document.querySelectorAll("button.count")) {
    button.classList.toggle("active", button.dataset.state === view.state);
  }
  view.currentEndpoint = counts.current_endpoint || null;
  const unserved = $("unserved");
  if (counts.waiting_unserved > 0) {
    const served = counts.served_endpoints.length
      ? "running dispatchers serve " + counts.served_endpoints.join(", ")
      : "no dispatcher is running (start a worker or `stephook serve` with STEP_COMPLETE_WEBHOOK)";
    unserved.textContent = counts.waiting_unserved + " waiting notification(s) are for an endpoint " +
      "no running dispatcher serves: " + served + ". Each is sent when a dispatcher of its " +
      "endpoint runs, or when you move it with \u201cSend here\u201d.";
    unserved.hidden = false;
  } else {
    unserved.hidden = true;
  }
}

async function showRows(deliveries) {
  const rows = $("rows");
  const fresh = document.createDocumentFragment();
  for (const d of deliveries) {
    fresh.append(row(d));
    if (view.expanded.has(d.step_id)) fresh.append(await detail(d.step_id));
  }
  rows.replaceChildren(fresh);
  $("empty").hidden = deliveries.length > 0;
}

function stateCell(d) {
  const state = d.in_flight ? "sending" : d.state;
  const cell = el("td", { class: "c-state" }, el("span", { class: "badge " + state }, state));
  if (d.endpoint_served === false) {
    cell.append(el("div", { class: "note" }, "waiting for its endpoint"));
  } else if ((d.state === "pending" || d.state === "retrying") && d.next_attempt_at && !d.in_flight) {
    cell.append(el("div", { class: "note" }, "next ", ago(d.next_attempt_at)));
  }
  return cell;
}

function row(d) {
  const actions = el("div", { class: "actions" });
  const redeliver = el("button", { class: "redeliver", type: "button",
    title: "Queue this notification again for its endpoint (same webhook-id)" }, "Redeliver");
  redeliver.addEventListener("click", (event) => {
    event.stopPropagation();
    redeliverOne(d.step_id, false);
  });
  actions.append(redeliver);
  if (view.currentEndpoint && d.endpoint !== view.currentEndpoint && d.state !== "delivered") {
    const move = el("button", { class: "move", type: "button",
      title: "Move it to this server's endpoint, " + view.currentEndpoint + ", and send it there" }, "Send here");
    move.addEventListener("click", (event) => {
      event.stopPropagation();
      redeliverOne(d.step_id, true);
    });
    actions.append(move);
  }
  const status = d.step_status;
  const tr = el(
    "tr",
    { class: "delivery", "data-step-id": d.step_id, "data-state": d.state, "data-step-status": status },
    el("td", { class: "c-step" },
      el("div", { class: "mono", title: d.step_id }, d.step_id),
      el("div", { class: "note" }, (d.run_id ? "run " + d.run_id : "no run") + (d.agent_id ? " · " + d.agent_id : ""))),
    el("td", { class: "c-status" }, el("span", { class: "mark " + status, title: "step " + status }, (STEP_MARKS[status] || "") + " " + status)),
    stateCell(d),
    el("td", { class: "c-attempts" }, String(d.attempts), d.last_http_status ? el("div", { class: "note" }, "HTTP " + d.last_http_status) : null),
    el("td", { class: "c-error" }, el("div", { class: "clamp", title: readable(d.last_error) }, readable(d.last_error))),
    el("td", { class: "c-endpoint" }, el("div", { class: "clamp", title: d.endpoint || "" }, d.endpoint ? shortUrl(d.endpoint) : "any endpoint")),
    el("td", { class: "c-time" }, d.delivered_at ? el("div", {}, "delivered ", ago(d.delivered_at)) : null,
      el("div", { class: "note" }, "created ", ago(d.created_at))),
    el("td", { class: "c-actions" }, actions),
  );
  tr.addEventListener("click", () => toggle(d.step_id));
  return tr;
}

async function detail(stepId) {
  const cell = el("td", { colSpan: 8 });
  const tr = el("tr", { class: "detail", "data-detail-for": stepId }, cell);
  try {
    const [delivery, step] = await Promise.all([
      api("v1/deliveries/" + encodeURIComponent(stepId)),
      api("v1/steps/" + encodeURIComponent(stepId)),
    ]);
    const attempts = el("tbody");
    for (const a of delivery.history) {
      attempts.append(el("tr", { class: a.fence === "lease_lost" ? "lost" : "" },
        el("td", { class: "time" }, when(a.attempted_at)), el("td", {}, a.path), el("td", {}, a.outcome),
        el("td", {}, a.http_status ?? ""), el("td", {}, a.duration_ms + " ms"),
        el("td", { class: "wrap" }, a.url || "—"),
        el("td", {}, a.fence === "lease_lost" ? "lease lost (not recorded on the row)" : "recorded"),
        el("td", { class: "wrap pre" }, readable(a.error))));
    }
    const fields = el("dl");
    for (const key of ["id", "agent_id", "run_id", "status", "model", "provider_name", "prompt_tokens",
      "completion_tokens", "total_tokens", "stop_reason", "error_type", "step_ms", "model_call_ms",
      "created_at", "completed_at"]) {
      fields.append(el("dt", {}, key), el("dd", {}, step[key] ?? "—"));
    }
    if (step.error_data) fields.append(el("dt", {}, "error_data"), el("dd", { class: "pre" }, JSON.stringify(step.error_data, null, 1)));
    fields.append(el("dt", {}, "endpoint"), el("dd", {}, delivery.endpoint || "any (none chosen yet)"));
    cell.append(
      el("h3", {}, "Attempts (" + delivery.history.length + ")"),
      delivery.history.length
        ? el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {},
            ...["At", "Path", "Outcome", "HTTP", "Took", "Sent to", "Result", "Error"].map((h) => el("th", {}, h)))), attempts))
        : el("p", {}, "No attempts yet."),
      el("h3", {}, "Step"),
      fields,
    );
  } catch (error) {
    if (error instanceof Unauthorized) askForToken();
    cell.append("Cannot load the details: " + error.message);
  }
  return tr;
}

async function toggle(stepId) {
  if (view.expanded.has(stepId)) view.expanded.delete(stepId);
  else view.expanded.add(stepId);
  await refresh();
}

// ---- redelivery, and what became of it ----

async function redeliverOne(stepId, here) {
  const notice = announce("Redelivering " + stepId + "…", "busy");
  try {
    const query = here ? "?to_current_endpoint=true" : "";
    const result = await api("v1/deliveries/" + encodeURIComponent(stepId) + "/redeliver" + query, { method: "POST" });
    if (result.count > 0) {
      setNotice(notice, "Queued " + stepId + (result.endpoint ? " for " + result.endpoint : "") +
        ": waiting for a dispatcher to send it…", "busy");
      view.followed.set(stepId, { notice, since: Date.now(), wasSent: false });
    } else {
      const reason = result.unchanged[0] ? result.unchanged[0].reason : "";
      setNotice(notice, reason === "in_flight"
        ? stepId + " is being sent right now: nothing changed; its result shows here when it is in."
        : stepId + " already waits to be sent now: nothing changed.", "info");
      view.followed.set(stepId, { notice, since: Date.now(), wasSent: false });
    }
  } catch (error) {
    if (error instanceof Unauthorized) askForToken();
    setNotice(notice, "Redeliver " + stepId + " failed: " + error.message, "bad");
  }
  await refresh();
}

/// Reports what became of each redelivery the console queued: sent, and with what answer.
async function follow() {
  for (const [stepId, followed] of view.followed) {
    if (Date.now() - followed.since > FOLLOW_MS) {
      setNotice(followed.notice, stepId + ": no result after a minute; is a dispatcher for its endpoint running?", "info");
      view.followed.delete(stepId);
      continue;
    }
    let d;
    try {
      d = await api("v1/deliveries/" + encodeURIComponent(stepId));
    } catch (_) {
      continue;
    }
    if (d.in_flight) {
      setNotice(followed.notice, "Sending " + stepId + " to " + (d.endpoint || "its endpoint") + "…", "busy");
      continue;
    }
    if (d.state === "delivered") {
      setNotice(followed.notice, stepId + " delivered" + (d.last_http_status ? " (HTTP " + d.last_http_status + ")" : "") + ".", "good");
      view.followed.delete(stepId);
    } else if (d.state === "dead") {
      setNotice(followed.notice, stepId + " is dead again: " + readable(d.last_error).split("\n")[0], "bad");
      view.followed.delete(stepId);
    } else if (d.state === "retrying") {
      setNotice(followed.notice, stepId + " was sent and failed (" + readable(d.last_error).split("\n")[0] + "); next attempt " + when(d.next_attempt_at) + ".", "bad");
      view.followed.delete(stepId);
    } else if (d.endpoint_served === false) {
      setNotice(followed.notice, stepId + " is queued, but no running dispatcher serves " + (d.endpoint || "an endpoint") + ".", "info");
    }
  }
}

async function redeliverDead() {
  const dead = $("count-dead").textContent;
  if (!confirm("Queue all " + dead + " dead notifications again?")) return;
  const notice = announce("Redelivering every dead notification…", "busy");
  try {
    const result = await api("v1/deliveries/redeliver?state=dead", { method: "POST" });
    setNotice(notice, "Queued " + result.count + " dead notification(s) again; they show as pending until a dispatcher sends them.", "good");
  } catch (error) {
    if (error instanceof Unauthorized) askForToken();
    setNotice(notice, "Redeliver failed: " + error.message, "bad");
  }
  await refresh();
}

// ---- filters and paging ----

function restart() {
  view.cursors = [null];
  view.nextCursor = null;
  writeUrl();
  refresh();
}

function filterBy(state) {
  view.state = state;
  $("state-filter").value = state;
  restart();
}

function init() {
  readUrl();
  $("state-filter").addEventListener("change", (event) => filterBy(event.target.value));
  for (const button of document.querySelectorAll("button.count")) {
    button.addEventListener("click", () => filterBy(button.dataset.state));
  }
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    view.q = $("search").value.trim();
    view.from = $("from").value;
    view.to = $("to").value;
    restart();
  });
  $("clear-filters").addEventListener("click", () => {
    view.state = view.q = view.from = view.to = "";
    $("state-filter").value = $("search").value = $("from").value = $("to").value = "";
    restart();
  });
  $("redeliver-dead").addEventListener("click", redeliverDead);
  $("page-older").addEventListener("click", () => {
    if (!view.nextCursor) return;
    view.cursors.push(view.nextCursor);
    writeUrl();
    refresh();
  });
  $("page-newer").addEventListener("click", () => {
    if (view.cursors.length > 1) view.cursors.pop();
    writeUrl();
    refresh();
  });
  $("page-newest").addEventListener("click", restart);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
    $("token-input").value = "";
    refresh();
  });
  refresh();
  setInterval(refresh, REFRESH_MS);
}

init();
