// The evidence panel: one record (or event) with its best-tile thumbnail, the score grid as a heat
// map, the alert's audio when there is one, the scores over time, and the review form with history.
import { api, el, score, VERDICTS, when } from "./dom.js";

let onReview = () => {};

export async function openEvidence(id, me, reviewed) {
  onReview = reviewed;
  const panel = document.getElementById("evidence");
  const body = document.getElementById("evidence-body");
  let d;
  try {
    d = await api(`/api/detections/${encodeURIComponent(id)}`);
  } catch (error) {
    body.replaceChildren(el("p", { class: "error", text: error.message }));
    panel.hidden = false;
    return null;
  }
  const r = d.record;
  const title = d.error ? `error at ${d.device}` : `${d.label} ${score(d.score)} at ${d.device}`;
  document.getElementById("evidence-title").textContent = title;
  body.replaceChildren(...[
    facts(d, r),
    d.thumbnail ? el("figure", {}, el("img", { src: `/api/detections/${d.id}/thumbnail`, class: "thumb", id: "thumbnail",
      alt: `best tile of ${r.source}, as the unit sent it` }), el("figcaption", { text: "best tile (sent by the unit)" })) : null,
    r.tiles && r.tiles.grid ? heatmaps(r.tiles) : null,
    d.audio ? el("figure", {}, el("audio", { controls: true, preload: "none", src: `/api/detections/${d.id}/audio`, id: "audio" }),
      el("figcaption", { text: "alert audio segment" })) : null,
    el("div", { id: "series" }, el("p", { class: "note", text: "loading the scores over time…" })),
    reviewBox(d, me),
  ].flat().filter(Boolean));
  panel.hidden = false;
  panel.focus({ preventScroll: true });
  panel.scrollTop = 0;
  api(`/api/detections/${d.id}/series`).then((s) => document.getElementById("series").replaceWith(chart(s, r.threshold)))
    .catch(() => document.getElementById("series").replaceChildren());
  return d;
}

function facts(d, r) {
  const rows = [
    ["captured", `${when(d.time)} (${r.time_source || "?"})`], ["unit", d.device], ["source", d.source],
    ["kind", d.kind], ["model", r.model ? `${r.model.name} ${r.model.version}` : "?"],
    ["threshold", r.threshold ?? "–"], ["alert", d.alert === null ? "–" : d.alert ? "yes" : "no"],
    ["location", typeof d.lat === "number" ? `${d.lat.toFixed(5)}, ${d.lon.toFixed(5)}` : "none"],
  ];
  if (d.queued_s) rows.push(["waited in outbox", `${Math.round(d.queued_s)} s`]);
  if (d.error) rows.push(["error", d.error]);
  if (r.event) rows.push(["event", `${r.event.phase}: ${when(r.event.start)} – ${r.event.end ? when(r.event.end) : "…"}, peak ${score(r.event.peak_score)}, ${r.event.windows} windows`]);
  if (r.scores) rows.push(["scores", Object.entries(r.scores).map(([k, v]) => `${k} ${score(v)}`).join(", ")]);
  rows.push(["record id", d.id]);
  return el("dl", { class: "facts" }, rows.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
}

// A label's rows × cols scores as coloured cells; the best tile outlined.
function heatmaps(tiles) {
  return Object.entries(tiles.grid).map(([label, grid]) => {
    const rows = grid.length;
    const cols = rows ? grid[0].length : 0;
    const cell = Math.max(4, Math.min(24, Math.floor(240 / Math.max(rows, cols, 1))));
    const canvas = el("canvas", { width: cols * cell, height: rows * cell, class: "heatmap", id: `heatmap-${label}`,
      role: "img", "aria-label": `score grid of ${label}: ${rows} × ${cols} tiles, highest ${score(Math.max(...grid.flat()))}` });
    const ctx = canvas.getContext("2d");
    grid.forEach((row, y) => row.forEach((v, x) => { ctx.fillStyle = ramp(v); ctx.fillRect(x * cell, y * cell, cell, cell); }));
    if (tiles.best) {
      ctx.strokeStyle = "#000";
      ctx.lineWidth = 2;
      ctx.strokeRect(tiles.best.col * cell + 1, tiles.best.row * cell + 1, cell - 2, cell - 2);
    }
    return el("figure", {}, canvas, el("figcaption", { text: `${label}: score per tile (${tiles.size} px tiles), 0 ` },
      el("span", { class: "legend" }), " 1; outlined: the best tile"));
  });
}

function ramp(v) {  // pale yellow → orange → dark red
  const t = Math.max(0, Math.min(1, v));
  return `hsl(${Math.round(55 - 55 * t)}, 90%, ${Math.round(92 - 62 * t)}%)`;
}

function chart(s, threshold) {
  const points = s.points.filter((p) => typeof p.score === "number");
  const W = 320, H = 120, pad = 24;
  const times = points.map((p) => Date.parse(p.time));
  const t0 = Math.min(...times), t1 = Math.max(...times);
  const x = (t) => pad + (t1 > t0 ? (t - t0) / (t1 - t0) : 0.5) * (W - 2 * pad);
  const y = (v) => H - pad + -v * (H - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  const what = s.what === "event" ? "this event's records" : "this unit's records within an hour";
  svg.setAttribute("aria-label", `${s.label} score over time, ${points.length} points (${what})`);
  const add = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); svg.append(n); return n; };
  add("line", { x1: pad, y1: y(0), x2: W - pad, y2: y(0), class: "axis" });
  add("line", { x1: pad, y1: y(1), x2: pad, y2: y(0), class: "axis" });
  if (typeof threshold === "number") add("line", { x1: pad, y1: y(threshold), x2: W - pad, y2: y(threshold), class: "threshold" });
  if (points.length > 1) add("polyline", { points: points.map((p, i) => `${x(times[i])},${y(p.score)}`).join(" "), class: "line" });
  points.forEach((p, i) => add("circle", { cx: x(times[i]), cy: y(p.score), r: 3, class: p.alert || p.phase ? "dot hot" : "dot" }));
  add("text", { x: 2, y: y(1) + 4, class: "tick" }).textContent = "1";
  add("text", { x: 2, y: y(0), class: "tick" }).textContent = "0";
  return el("figure", { id: "series" }, svg, el("figcaption", { text: `${s.label} score over time: ${what}${typeof threshold === "number" ? "; dashed: threshold" : ""}` }));
}

function reviewBox(d, me) {
  const isEvent = Boolean(d.event);
  const target = isEvent ? d.event.id : d.id;
  const history = el("ol", { class: "history", id: "review-history" }, d.reviews.map(historyItem));
  const box = el("section", { class: "review", "aria-labelledby": "review-title" },
    el("h3", { id: "review-title", text: isEvent ? "Review this event" : "Review this detection" }), history);
  if (!me.may_review) {
    box.append(el("p", { class: "note", text: `Your role (${me.role}) may look but not review.` }));
    return box;
  }
  const status = el("p", { role: "status", class: "note", id: "review-status" });
  const form = el("form", { id: "review-form" },
    el("fieldset", {}, el("legend", { text: "Verdict" }),
      Object.entries(VERDICTS).map(([value, text]) => el("label", { class: "radio" },
        el("input", { type: "radio", name: "verdict", value, id: `verdict-${value}`, required: true }), ` ${text}`))),
    el("label", { for: "review-note", text: "Note" }),
    el("textarea", { id: "review-note", name: "note", rows: 2, maxlength: 2000 }),
    el("button", { type: "submit", id: "review-save", text: "Save verdict" }), status);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    try {
      const review = await api("/api/reviews", { method: "POST", body: {
        target_kind: isEvent ? "event" : "detection", target, anchor: d.id, verdict: data.get("verdict"), note: data.get("note") } });
      history.append(historyItem(review));
      status.textContent = `Saved: ${VERDICTS[review.verdict]}.`;
      form.reset();
      onReview(review);
    } catch (error) {
      status.textContent = `Not saved: ${error.message}`;
    }
  });
  box.append(form);
  return box;
}

function historyItem(r) {
  return el("li", {}, el("span", { class: `badge verdict ${r.verdict}`, text: VERDICTS[r.verdict] || r.verdict }),
    ` ${r.reviewer}, ${when(r.time)}${r.target_kind === "event" ? " (the event)" : ""}`, r.note ? el("q", { text: r.note }) : null);
}
