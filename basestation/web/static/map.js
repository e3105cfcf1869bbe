// The map: Leaflet with an offline basemap (Natural Earth borders and coastlines, shipped), the
// operator's own XYZ tiles or overview picture when the config names them, the detections in view (a
// drone scan's area as its polygon) and units.
// What is drawn is what /api/map gives for the part of the world in view, with the page's filters:
// asked again after every move or zoom (once it settles), the newest LIMIT of them, and the page says
// so when there are more. New records of the live list are added while they are in view.
// Without Leaflet, or while nothing has a location, the page works without it.
import { api } from "./dom.js";

const COLOURS = { confirmed: "#8b0000", false_alarm: "#6b7280", unsure: "#b45309" };
const LIMIT = 500;
const SETTLE_MS = 300;  // a drag or a wheel zoom fires many moves: ask once it has settled
const WORLD = [-180, -90, 180, 90];

export async function createMap(config, onSelect) {
  const L = window.L;
  const box = document.getElementById("map");
  if (!L) throw new Error("Leaflet did not load");
  const map = L.map(box, { worldCopyJump: true, preferCanvas: true, minZoom: 1 }).setView([0, -40], 2);
  map.attributionControl.setPrefix(false);
  const layers = {};
  // The borders get a pane of their own under the tiles (200): Leaflet puts canvases at z-index 100 in
  // their pane, which in the overlay pane would hide an overview picture.
  map.createPane("basemap").style.zIndex = 150;
  if (window.topojson) {
    const topo = await fetch(config.basemap, { credentials: "same-origin" }).then((r) => r.json());
    layers["Borders and coastlines"] = L.geoJSON(window.topojson.feature(topo, topo.objects.countries), {
      style: { color: "#5b6b5b", weight: 0.8, fillColor: "#eef0e6", fillOpacity: 1 }, interactive: false,
      attribution: "Natural Earth", pane: "basemap", renderer: L.canvas({ pane: "basemap" }),
    }).addTo(map);
  }
  if (config.tiles) {
    layers["Operator tiles"] = L.tileLayer(config.tiles.url, { maxZoom: config.tiles.max_zoom, attribution: "operator tiles" }).addTo(map);
  }
  if (config.overlay) {
    const [s, w, n, e] = config.overlay.bounds;
    layers["Overview picture"] = L.imageOverlay(config.overlay.url, [[s, w], [n, e]], { opacity: 0.9, alt: "overview picture" }).addTo(map);
  }
  const detections = L.layerGroup().addTo(map);
  // At most LIMIT of them, clickable: SVG paths (class detection-marker, area-polygon) over the canvas
  const vector = L.svg({ padding: 0.5 });
  const units = L.layerGroup().addTo(map);
  L.control.layers(layers, { Detections: detections, Units: units }, { collapsed: true }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  let moved = false;  // once the person has moved the map, it stays where they put it
  for (const kind of ["mousedown", "wheel", "keydown", "touchstart"]) box.addEventListener(kind, () => { moved = true; });
  const note = document.getElementById("map-note");
  const cap = document.getElementById("map-cap");
  const shown = new Map();  // id → record summary drawn now
  let filters = {};
  let unitPoints = [];
  let asked = 0;  // answers to an older view are dropped
  let worldPending = false;
  let fitted = false;
  let timer = null;

  function reveal() {
    if (!box.hidden) return;
    box.hidden = false;
    note.hidden = true;
    map.invalidateSize();
  }

  function fit(points) {
    if (moved || fitted || points.length === 0) return;
    fitted = true;
    map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 12 });
  }

  // The view as boxes /api/map takes: west ≤ east within ±180°, so a view across the antimeridian is two.
  function viewBoxes() {
    if (box.hidden) return [WORLD];
    const b = map.getBounds();
    const south = Math.max(-90, b.getSouth()), north = Math.min(90, b.getNorth());
    let west = b.getWest(), east = b.getEast();
    if (east - west >= 360) return [[-180, south, 180, north]];
    const turns = Math.floor((west + 180) / 360);
    west -= 360 * turns;
    east -= 360 * turns;
    if (east <= 180) return [[west, south, east, north]];
    return [[west, south, 180, north], [-180, south, east - 360, north]];
  }

  async function load(world) {
    const ask = ++asked;
    if (world) worldPending = true;
    const boxes = world ? [WORLD] : viewBoxes();
    let answers;
    try {
      answers = await Promise.all(boxes.map((b) => api(`/api/map?${new URLSearchParams({ ...filters, box: b.map((v) => v.toFixed(6)).join(","), limit: String(LIMIT) })}`)));
    } catch (error) {
      cap.textContent = `The map could not be updated (${error.message}); it tries again when you move it.`;
      cap.hidden = false;
      return;
    } finally {
      if (world) worldPending = false;
    }
    if (ask !== asked) return;
    const byId = new Map();
    for (const answer of answers) for (const r of answer.records) byId.set(r.id, r);
    const records = [...byId.values()].sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
    const more = answers.some((a) => a.more) || records.length > LIMIT;
    shown.clear();
    for (const r of records.slice(0, LIMIT)) shown.set(r.id, r);
    cap.textContent = more ? `Showing the newest ${Math.min(records.length, LIMIT)} of more detections in view: zoom in or filter to see the rest.` : "";
    cap.hidden = !more;
    draw();
    if (world && shown.size + unitPoints.length > 0) {
      reveal();
      fit([...points(shown.values()), ...unitPoints]);
      settle();  // the view, once the fit has moved the map
    }
  }

  function settle() {
    if (box.hidden || worldPending) return;  // the world's answer shows the map and asks for the view
    clearTimeout(timer);
    timer = setTimeout(() => load(false), SETTLE_MS);
  }
  map.on("moveend", settle);

  function points(records) {
    const found = [];
    for (const r of records) {
      found.push([r.lat, r.lon]);
      if (r.area && Array.isArray(r.area.polygon)) found.push(...r.area.polygon.map(([lon, lat]) => [lat, lon]));
    }
    return found;
  }

  function inView(r) {
    const view = map.getBounds();
    if (r.area && Array.isArray(r.area.polygon)) return view.intersects(L.latLngBounds(r.area.polygon.map(([lon, lat]) => [lat, lon])));
    return view.contains([r.lat, r.lon]);
  }

  function draw() {
    detections.clearLayers();
    for (const r of shown.values()) {
      const colour = COLOURS[r.verdict] || (r.alert ? "#dc2626" : "#2563eb");
      if (r.area && Array.isArray(r.area.polygon)) {
        // a drone scan's mining area: its polygon ([lon, lat] pairs), the point at its centroid
        const ring = r.area.polygon.map(([lon, lat]) => [lat, lon]);
        L.polygon(ring, { color: colour, weight: 2, fillColor: colour, fillOpacity: r.verdict === "false_alarm" ? 0.05 : 0.25,
          renderer: vector, className: "area-polygon" })
          .bindTooltip(`${r.label || "error"} area, ${r.area.hectares} ha · ${r.device}`)
          .on("click", () => onSelect(r.id)).addTo(detections);
      }
      L.circleMarker([r.lat, r.lon], { radius: r.alert ? 8 : 5, color: colour, weight: 2, fillColor: colour,
        fillOpacity: r.verdict === "false_alarm" ? 0.1 : 0.6, renderer: vector, className: `detection-marker d-${r.id}` })
        .bindTooltip(`${r.label || "error"} ${typeof r.score === "number" ? r.score.toFixed(2) : ""} · ${r.device}`)
        .on("click", () => onSelect(r.id)).addTo(detections);
    }
  }

  box.hidden = true;  // until something has a location
  note.hidden = false;
  return {
    // The page's filters changed: ask again for the view (for the world while the map is not shown yet).
    setFilters(next) {
      filters = next;
      load(box.hidden);
    },
    // Records the live list just received (with the same filters): drawn when they are in view.
    addLive(records) {
      const located = records.filter((r) => typeof r.lat === "number" && typeof r.lon === "number");
      if (located.length === 0) return;
      if (box.hidden) {
        load(true);
        return;
      }
      let changed = false;
      for (const r of located) {
        if (shown.has(r.id) || inView(r)) {
          shown.set(r.id, r);
          changed = true;
        }
      }
      if (changed) draw();
    },
    // A verdict was given: recolour what it covers (a record, or every record of its event).
    reviewed(review) {
      for (const r of shown.values()) if (r.id === review.target || r.group === review.target) r.verdict = review.verdict;
      draw();
    },
    showUnits(list) {
      units.clearLayers();
      const found = [];
      for (const u of list) {
        if (!u.position) continue;
        found.push([u.position.lat, u.position.lon]);
        const icon = L.divIcon({ className: `unit-icon ${u.stale ? "stale" : u.state || "unknown"}`, iconSize: [14, 14] });
        L.marker([u.position.lat, u.position.lon], { icon, keyboard: true, title: `unit ${u.device}`, alt: `unit ${u.device}` })
          .bindTooltip(`unit ${u.device}: ${u.state || "?"} (position of its latest located record)`).addTo(units);
      }
      unitPoints = found;
      if (found.length === 0) return;
      if (worldPending) return;  // the world's answer shows the map and fits detections and units together
      const hidden = box.hidden;
      reveal();
      fit(found);
      if (hidden) settle();
    },
    focus(detail) {
      if (typeof detail.lat !== "number" || box.hidden) return;
      moved = true;  // the map follows the person's choice from now on, not the next refit
      map.setView([detail.lat, detail.lon], Math.max(map.getZoom(), 9));
    },
  };
}
