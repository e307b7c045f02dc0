// stephook's delivery console. Dependency-free: it talks to the API under /v1 with fetch and
// builds the table with DOM calls (text only, never HTML from the API). Deliveries are read
// one server-side page at a time (keyset cursors), so it stays fast with any number of rows.
"use strict";

const PAGE_SIZE = 50;
const REFRESH_MS = 3000;
const TOKEN_KEY = "stephook.apiToken"; // sessionStorage only: gone when the tab closes
const STATES = ["pending", "retrying", "delivered", "dead"];

const view = {
  state: "",
  cursors: [null], // cursors[i] is the cursor of page i; the last one is the page shown
  nextCursor: null,
  expanded: new Set(),
  busy: false,
  again: false, // a refresh was asked for while one ran: run another when it ends
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

function say(text) {
  $("status").textContent = text;
}

function askForToken() {
  $("token-form").hidden = false;
  say("This server needs its API token.");
  $("token-input").focus();
}

async function refresh() {
  if (view.busy) {
    view.again = true;
    return;
  }
  view.busy = true;
  try {
    const cursor = view.cursors[view.cursors.length - 1];
    const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (view.state) query.set("state", view.state);
    if (cursor) query.set("cursor", cursor);
    const [counts, page] = await Promise.all([
      api("v1/deliveries/counts"),
      api("v1/deliveries?" + query),
    ]);
    $("token-form").hidden = true;
    showCounts(counts);
    view.nextCursor = page.next_cursor;
    await showRows(page.deliveries);
    $("page-older").disabled = !view.nextCursor;
    $("page-newer").disabled = view.cursors.length <= 1;
    $("page-newest").disabled = view.cursors.length <= 1;
    $("redeliver-dead").disabled = counts.dead === 0;
    if ($("status").dataset.sticky !== "1") say("Updated " + new Date().toLocaleTimeString());
  } catch (error) {
    if (error instanceof Unauthorized) askForToken();
    // The page's cursor row is gone (retention): start again from the newest on the next tick.
    else if (error.status === 404) view.cursors = [null];
    else say("Cannot reach the API: " + error.message);
  } finally {
    view.busy = false;
    if (view.again) {
      view.again = false;
      refresh();
    }
  }
}

function showCounts(counts) {
  $("count-total").textContent = counts.total;
  for (const state of STATES) $("count-" + state).textContent = counts[state];
  for (const button of document.querySelectorAll("button.count")) {
    button.classList.toggle("active", button.dataset.state === view.state);
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

function row(d) {
  const redeliver = el("button", { class: "redeliver", type: "button", title: "Queue this notification again (same webhook-id)" }, "Redeliver");
  redeliver.addEventListener("click", (event) => {
    event.stopPropagation();
    redeliverOne(d.step_id, redeliver);
  });
  const tr = el(
    "tr",
    { class: "delivery", "data-step-id": d.step_id, "data-state": d.state },
    el("td", { class: "step" }, d.step_id),
    el("td", {}, d.step_status),
    el("td", { class: "state" }, el("span", { class: "badge " + d.state }, d.state)),
    el("td", {}, d.source),
    el("td", {}, d.attempts),
    el("td", {}, d.last_http_status ?? ""),
    el("td", { class: "error", title: d.last_error || "" }, d.last_error || ""),
    el("td", { class: "time" }, d.state === "pending" || d.state === "retrying" ? when(d.next_attempt_at) : ""),
    el("td", { class: "time" }, when(d.delivered_at)),
    el("td", { class: "time" }, when(d.created_at)),
    el("td", {}, redeliver),
  );
  tr.addEventListener("click", () => toggle(d.step_id));
  return tr;
}

async function detail(stepId) {
  const cell = el("td", { colSpan: 11 });
  const tr = el("tr", { class: "detail", "data-detail-for": stepId }, cell);
  try {
    const [delivery, step] = await Promise.all([
      api("v1/deliveries/" + encodeURIComponent(stepId)),
      api("v1/steps/" + encodeURIComponent(stepId)),
    ]);
    const attempts = el("tbody");
    for (const a of delivery.history) {
      attempts.append(el("tr", {},
        el("td", { class: "time" }, when(a.attempted_at)), el("td", {}, a.path), el("td", {}, a.outcome),
        el("td", {}, a.http_status ?? ""), el("td", {}, a.duration_ms + " ms"), el("td", { class: "error" }, a.error || "")));
    }
    const fields = el("dl");
    for (const key of ["id", "agent_id", "run_id", "status", "model", "provider_name", "prompt_tokens",
      "completion_tokens", "total_tokens", "stop_reason", "error_type", "step_ms", "model_call_ms",
      "created_at", "completed_at"]) {
      fields.append(el("dt", {}, key), el("dd", {}, step[key] ?? "—"));
    }
    if (step.error_data) fields.append(el("dt", {}, "error_data"), el("dd", {}, JSON.stringify(step.error_data)));
    cell.append(
      el("h3", {}, "Attempts (" + delivery.history.length + ")"),
      delivery.history.length
        ? el("table", {}, el("thead", {}, el("tr", {}, ...["At", "Path", "Outcome", "HTTP", "Took", "Error"].map((h) => el("th", {}, h)))), attempts)
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

async function redeliverOne(stepId, button) {
  button.disabled = true;
  try {
    await api("v1/deliveries/" + encodeURIComponent(stepId) + "/redeliver", { method: "POST" });
    say("Queued " + stepId + " again.");
  } catch (error) {
    if (error instanceof Unauthorized) askForToken();
    else say("Redeliver failed: " + error.message);
  }
  await refresh();
}

async function redeliverDead() {
  const dead = $("count-dead").textContent;
  if (!confirm("Queue all " + dead + " dead notifications again?")) return;
  try {
    const result = await api("v1/deliveries/redeliver?state=dead", { method: "POST" });
    say("Queued " + result.count + " dead notifications again.");
  } catch (error) {
    if (error instanceof Unauthorized) askForToken();
    else say("Redeliver failed: " + error.message);
  }
  await refresh();
}

function restart() {
  view.cursors = [null];
  view.nextCursor = null;
  refresh();
}

function filterBy(state) {
  view.state = state;
  $("state-filter").value = state;
  restart();
}

function init() {
  $("state-filter").addEventListener("change", (event) => filterBy(event.target.value));
  for (const button of document.querySelectorAll("button.count")) {
    button.addEventListener("click", () => filterBy(button.dataset.state));
  }
  $("redeliver-dead").addEventListener("click", redeliverDead);
  $("page-older").addEventListener("click", () => {
    if (!view.nextCursor) return;
    view.cursors.push(view.nextCursor);
    refresh();
  });
  $("page-newer").addEventListener("click", () => {
    if (view.cursors.length > 1) view.cursors.pop();
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
