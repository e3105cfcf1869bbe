// The page: filters, the live list of events (polling /api/detections with `since`), unit health.
// The map (map.js) asks for what is in its view itself; it gets the filters, the live records and the
// verdicts from here, as the evidence panel (evidence.js) gets the record to show.
import { api, ago, el, score, setCsrf, VERDICTS, when } from "./dom.js";
import { openEvidence } from "./evidence.js";
import { createMap } from "./map.js";

const MAX_GROUPS = 300;
const state = { me: null, config: null, cursor: null, groups: new Map(), filters: {}, map: null, timer: null };

async function start() {
  state.me = await api("/api/me");
  setCsrf(state.me.csrf);
  state.config = await api("/api/config");
  state.map = await createMap(state.config, (id) => show(id)).catch((error) => {
    document.getElementById("map").hidden = true;  // the list, the evidence and the units work without it
    const note = document.getElementById("map-note");
    note.textContent = `The map is not available (${error.message}); the events and their evidence are.`;
    note.hidden = false;
    return null;
  });
  await loadFacets();
  document.getElementById("filters").addEventListener("submit", (event) => { event.preventDefault(); applyFilters(); });
  document.getElementById("filters").addEventListener("reset", () => setTimeout(applyFilters, 0));
  window.addEventListener("hashchange", fromHash);
  applyFilters();
  refreshUnits();
  setInterval(refreshUnits, 10000);
  fromHash();
}

function fromHash() {
  const match = window.location.hash.match(/detection=([0-9a-f-]{36})/);
  if (match) show(match[1]);
}

async function loadFacets() {
  const facets = await api("/api/facets");
  for (const [id, values] of [["f-unit", facets.units], ["f-label", facets.labels]]) {
    const select = document.getElementById(id);
    const known = new Set([...select.options].map((o) => o.value));
    for (const value of values) if (!known.has(value)) select.append(el("option", { value, text: value }));
  }
}

function applyFilters() {
  const form = new FormData(document.getElementById("filters"));
  const filters = {};
  for (const key of ["unit", "label"]) if (form.get(key)) filters[key] = form.get(key);
  for (const key of ["from", "to"]) if (form.get(key)) filters[key] = new Date(form.get(key)).toISOString();
  if (form.get("alerts")) filters.alerts = "1";
  state.filters = filters;
  state.cursor = null;
  state.groups.clear();
  clearTimeout(state.timer);
  render();
  if (state.map) state.map.setFilters(filters);
  poll();
}

async function poll() {
  const params = new URLSearchParams({ ...state.filters, limit: state.cursor === null ? "500" : "1000" });
  if (state.cursor !== null) params.set("since", String(state.cursor));
  const status = document.getElementById("live");
  try {
    const answer = await api(`/api/detections?${params}`);
    const live = state.cursor !== null;  // a poll: what arrived since the first page
    const fresh = merge(answer.records, live);
    state.cursor = answer.cursor;
    status.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    status.className = "";
    if (fresh) {
      render();
      loadFacets();
    }
    if (live && state.map) state.map.addLive(answer.records);
  } catch (error) {
    status.textContent = `connection lost (${error.message}); retrying`;
    status.className = "error";
  }
  state.timer = setTimeout(poll, (state.config.poll_s || 2) * 1000);
}

// Records into groups (an event's phases are one group). True when something changed.
function merge(records, live) {
  let changed = false;
  for (const record of records) {
    let group = state.groups.get(record.group);
    if (!group) {
      group = { key: record.group, records: new Map(), isNew: live };
      state.groups.set(record.group, group);
    }
    const old = group.records.get(record.id);
    if (old && old.verdict === record.verdict) continue;
    group.records.set(record.id, record);
    changed = true;
  }
  return changed;
}

function latest(group) {
  let best = null;
  for (const r of group.records.values()) if (!best || r.received > best.received || (r.received === best.received && r.id > best.id)) best = r;
  return best;
}

function render() {
  const groups = [...state.groups.values()].map((g) => ({ group: g, head: latest(g) }))
    .sort((a, b) => b.head.received - a.head.received || b.head.time.localeCompare(a.head.time) || b.head.id.localeCompare(a.head.id))
    .slice(0, MAX_GROUPS);
  const list = document.getElementById("events");
  list.replaceChildren(...groups.map(({ group, head }) => item(group, head)));
  document.getElementById("count").textContent = `(${groups.length}${state.groups.size > MAX_GROUPS ? "+" : ""})`;
}

function item(group, head) {
  const verdict = [...group.records.values()].map((r) => r.verdict).find(Boolean);
  const what = head.error ? "error" : head.label;
  const phase = head.event ? ` · event ${head.event.phase}` : "";
  const button = el("button", { type: "button", class: "event-button", "data-id": head.id, "data-group": group.key,
    "aria-label": `${what} ${score(head.score)} at ${head.device}, ${when(head.time)}${phase}${verdict ? `, reviewed ${VERDICTS[verdict]}` : ""}`,
    onclick: () => show(head.id) },
  el("span", { class: "label", text: what }),
  el("span", { class: "score", text: score(head.score) }),
  head.alert ? el("span", { class: "badge alert", text: "alert" }) : null,
  verdict ? el("span", { class: `badge verdict ${verdict}`, text: VERDICTS[verdict] }) : null,
  head.thumbnail ? el("span", { class: "badge", text: "tile" }) : null,
  el("span", { class: "meta", text: `${head.device} · ${when(head.time)}${phase}` }));
  const li = el("li", { class: `${head.alert ? "is-alert" : ""} ${group.isNew ? "new" : ""}` }, button);
  group.isNew = false;
  return li;
}

async function show(id) {
  document.querySelectorAll(".event-button.selected").forEach((b) => b.classList.remove("selected"));
  document.querySelector(`.event-button[data-id="${id}"]`)?.classList.add("selected");
  const detail = await openEvidence(id, state.me, (review) => {
    for (const group of state.groups.values()) {
      for (const record of group.records.values()) {
        if (record.id === review.target || record.group === review.target) record.verdict = review.verdict;
      }
    }
    render();
    if (state.map) state.map.reviewed(review);
  });
  if (detail && state.map) state.map.focus(detail);
}

async function refreshUnits() {
  try {
    const { units, now } = await api("/api/units");
    const rows = units.map((u) => el("tr", {},
      el("th", { scope: "row", text: u.device }),
      el("td", { class: `state ${u.stale ? "stale" : u.state || "unknown"}`, text: u.stale ? `${u.state} (stale)` : u.state || "?" }),
      el("td", { text: ago(now - u.last_seen) }),
      el("td", { text: u.outbox_depth ?? "–" }),
      el("td", { class: u.clock_synchronized === false ? "warn" : "", text: u.clock_synchronized === true ? "synced" : u.clock_synchronized === false ? "NOT synced" : "?" }),
      el("td", { text: typeof u.disk_free_bytes === "number" ? `${(u.disk_free_bytes / 1e9).toFixed(1)} GB` : "–" }),
      el("td", { text: u.cpu_temp_c ?? "–" })));
    document.querySelector("#units tbody").replaceChildren(...rows);
    if (state.map) state.map.showUnits(units);
  } catch (error) {
    console.warn("units:", error);
  }
}

start().catch((error) => {
  document.getElementById("live").textContent = `the page could not start: ${error.message}`;
});
