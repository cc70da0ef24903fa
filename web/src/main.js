// The page: a window picker, the view's controls, the drawing and its
// details. Everything a view depends on lives in the address bar, so a
// copied URL opens the same view.
import { obtain, remake, VIEW_PARAMS, viewQuery } from "./api.js";
import { GraphView } from "./draw.js";
import { edgeDetails, el, nodeDetails } from "./panel.js";

const $ = (id) => document.getElementById(id);
const root = document.documentElement;

const DEFAULT_GROUP = "cidr:24";
const URL_PARAMS = ["start", "stop", ...VIEW_PARAMS, "node", "edge", "q"];
const FILTERS = VIEW_PARAMS.filter((p) => p !== "group");
// NETWORKS are the groupings from finest to coarsest, for the over-cap offer.
const NETWORKS = ["addr", "cidr:28", "cidr:24", "cidr:20", "cidr:16", "cidr:8"];

let state = readURL();
let view = null;
let loading = null;

function readURL() {
  const q = new URLSearchParams(location.search);
  const s = {};
  for (const k of URL_PARAMS) if (q.get(k)) s[k] = q.get(k);
  s.group ||= DEFAULT_GROUP;
  return s;
}

function writeURL() {
  const q = new URLSearchParams();
  for (const k of URL_PARAMS) if (state[k]) q.set(k, state[k]);
  const query = q.toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
}

function setState(name, message) {
  root.dataset.state = name;
  $("message").textContent = message;
}

function setActions(buttons) {
  $("actions").replaceChildren(...buttons);
}

const button = (text, onclick) => el("button", { type: "button", onclick }, text);

// The window: datetime-local inputs read and written as UTC, never local time.
const toInput = (rfc3339) => {
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(0, 16);
};
const fromInput = (value) => (value ? value.slice(0, 16) + ":00Z" : "");

function quickWindow(kind) {
  const minute = 60e3;
  const hour = 60 * minute;
  const now = Date.now();
  const stop = kind === "previous-hour" ? now - (now % hour) : now - (now % minute);
  const start = stop - (kind === "last-day" ? 24 * hour : hour);
  return [start, stop].map((t) => new Date(t).toISOString().replace(".000Z", "Z"));
}

function syncControls() {
  // With no window yet, offer the previous hour.
  const [start, stop] = state.start && state.stop ? [state.start, state.stop] : quickWindow("previous-hour");
  $("start").value = toInput(start);
  $("stop").value = toInput(stop);
  for (const p of VIEW_PARAMS) $(p).value = state[p] || "";
  $("q").value = state.q || "";
}

function readControls() {
  for (const p of VIEW_PARAMS) {
    const v = $(p).value.trim();
    if (v) state[p] = v;
    else delete state[p];
  }
  state.group ||= DEFAULT_GROUP;
}

function updateDownloads() {
  for (const a of document.querySelectorAll("#downloads a")) {
    if (!state.start || !state.stop) {
      a.removeAttribute("href");
      continue;
    }
    a.href = "/?" + viewQuery(state, a.dataset.format);
    a.download = `graph-${state.start}-${state.group.replace(":", "")}.${a.dataset.format}`.replace(/:/g, "");
  }
}

function describe(attrs) {
  const a = attrs || {};
  const groups = { addr: "address" };
  const g = groups[state.group] || state.group.replace(/^cidr:/, "/");
  const filtered = FILTERS.filter((p) => state[p]).map((p) => `${p}=${state[p]}`).join(", ");
  let s = `${a.nodes ?? view.graph.order} nodes, ${a.edges ?? view.graph.size} edges, by ${g}`;
  if (filtered) s += `, ${filtered}`;
  if (a.records_read !== undefined) s += ` — ${a.records_used} of ${a.records_read} flow records`;
  return `${s}. ${state.start} to ${state.stop}.`;
}

// overCapActions offers coarser groupings and top-N views. When the
// service's message names its node limit, the first top-N view is one that
// fits (N edges touch at most 2N nodes).
function overCapActions(message) {
  const i = NETWORKS.indexOf(state.group);
  const coarser = i < 0 ? ["cidr:24", "cidr:16"] : NETWORKS.slice(i + 1, i + 3);
  const limit = /(\d+) nodes, more than the limit of (\d+)/.exec(message);
  const fits = limit ? Math.max(1, Math.floor(Number(limit[2]) / 2)) : 500;
  const change = (p, v) => () => {
    state[p] = v;
    syncControls();
    load();
  };
  return [
    ...coarser.map((g) => button(`Group by ${g.replace("cidr:", "/")}`, change("group", g))),
    ...[...new Set([fits, Math.min(fits, 100)])].map((n) => button(`Top ${n} edges`, change("top", String(n)))),
  ];
}

function report(r) {
  setState(r.state === "drawing" ? "making" : r.state, r.state === "drawing" ? "Drawing." : r.message);
  if (r.overCap) setActions(overCapActions(r.message));
  else if (r.state === "failed") setActions([button("Try again", retry)]);
  else if (r.state === "notfound") setActions([button("Make this graph", retry)]);
  else if (r.state === "error") setActions([button("Try again", load)]);
  else setActions([]);
}

async function retry() {
  try {
    await remake(state, new AbortController().signal);
  } catch (e) {
    setState("error", e.message);
    return;
  }
  load();
}

// load asks for the view in the state and draws it; a newer load cancels
// an older one, polling included.
async function load() {
  loading?.abort();
  const controller = new AbortController();
  loading = controller;
  writeURL();
  updateDownloads();
  closeDetails(false);
  view.clear();
  $("matches").textContent = "";
  $("layout").disabled = true;
  setActions([]);
  if (!state.start || !state.stop) {
    setState("idle", "Pick a window to see its graph.");
    return;
  }
  setState("making", `Asking for the graph of ${state.start} to ${state.stop}.`);
  let since = performance.now();
  let data;
  try {
    data = await obtain(state, (r) => {
      if (r.since) since = r.since;
      report(r);
    }, controller.signal);
  } catch (e) {
    if (controller.signal.aborted) return;
    report({ state: "error", message: `Could not reach the service: ${e.message}` });
    return;
  }
  if (!data || controller.signal.aborted) return;
  try {
    view.show(data, since);
  } catch (e) {
    report({ state: "error", message: `Could not draw the graph: ${e.message}` });
    return;
  }
  setState("ready", data.nodes.length ? describe(data.attributes) : `No flows match this view. ${state.start} to ${state.stop}.`);
  $("layout").disabled = false;
  if (state.node || state.edge) select(state.node ? { kind: "node", key: state.node } : { kind: "edge", key: state.edge });
  if (state.q) search(state.q);
}

function closeDetails(update = true) {
  $("details").hidden = true;
  if (!update) return;
  delete state.node;
  delete state.edge;
  view.select(null);
  writeURL();
}

function act(what, key) {
  if (what === "select") select({ kind: "node", key });
  if (what === "drill") {
    state.group = "addr";
    state.addr = key;
    delete state.node;
    syncControls();
    load();
  }
}

function select(sel) {
  delete state.node;
  delete state.edge;
  if (!sel || !view.select(sel)) {
    closeDetails();
    return;
  }
  state[sel.kind] = sel.key;
  writeURL();
  const d = sel.kind === "node" ? nodeDetails(view.graph, sel.key, act) : edgeDetails(view.graph, sel.key, act);
  $("details-title").textContent = d.title;
  $("details-body").replaceChildren(...d.body.filter(Boolean));
  $("details").hidden = false;
}

async function search(q) {
  state.q = q.trim();
  if (!state.q) delete state.q;
  writeURL();
  const keys = await view.search(q);
  const out = $("matches");
  if (!state.q) out.textContent = "";
  else if (!keys.length) out.textContent = `Nothing matches ${state.q}.`;
  else {
    out.replaceChildren(`${keys.length} ${keys.length === 1 ? "match" : "matches"}: `,
      ...keys.slice(0, 12).map((k) => button(String(view.graph.getNodeAttribute(k, "label") ?? k), () => select({ kind: "node", key: k }))),
      keys.length > 12 ? "…" : "");
  }
}

function bind() {
  $("window").addEventListener("submit", (e) => {
    e.preventDefault();
    state.start = fromInput($("start").value);
    state.stop = fromInput($("stop").value);
    load();
  });
  for (const b of document.querySelectorAll("[data-quick]")) {
    b.addEventListener("click", () => {
      [state.start, state.stop] = quickWindow(b.dataset.quick);
      syncControls();
      load();
    });
  }
  $("view").addEventListener("submit", (e) => {
    e.preventDefault();
    readControls();
    load();
  });
  for (const s of $("view").querySelectorAll("select")) {
    s.addEventListener("change", () => {
      readControls();
      load();
    });
  }
  $("reset").addEventListener("click", () => {
    for (const p of FILTERS) delete state[p];
    syncControls();
    load();
  });
  $("search").addEventListener("submit", (e) => {
    e.preventDefault();
    search($("q").value);
  });
  $("close").addEventListener("click", () => closeDetails());
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("details").hidden) closeDetails();
  });
  $("layout").addEventListener("click", () => (view.layoutRunning() ? view.stopLayout() : view.startLayout()));
  $("graph").addEventListener("layoutchange", () => {
    const running = view.layoutRunning();
    $("layout").textContent = running ? "Stop layout" : "Run layout";
    $("layout").setAttribute("aria-pressed", String(running));
  });
}

syncControls();
try {
  view = new GraphView($("graph"), { onSelect: select });
} catch (e) {
  setState("error", `This browser cannot draw the graph (WebGL): ${e.message}`);
}
if (view) {
  bind();
  load();
}
