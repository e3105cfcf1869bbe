// The map: Leaflet with an offline basemap (Natural Earth borders and coastlines, shipped), the
// operator's own XYZ tiles or overview picture when the config names them, detections (a drone scan's
// area as its polygon) and units.
// Without Leaflet, or while nothing has a location, the page works without it.

const COLOURS = { confirmed: "#8b0000", false_alarm: "#6b7280", unsure: "#b45309" };

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
  const areas = L.svg({ padding: 0.5 });  // few, and clickable: SVG paths (class area-polygon) over the canvas
  const units = L.layerGroup().addTo(map);
  L.control.layers(layers, { Detections: detections, Units: units }, { collapsed: true }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);

  let moved = false;  // once the person has moved the map, it stays where they put it
  for (const kind of ["mousedown", "wheel", "keydown", "touchstart"]) box.addEventListener(kind, () => { moved = true; });
  const located = { detections: [], units: [] };
  const note = document.getElementById("map-note");

  function visible() {
    const any = located.detections.length + located.units.length > 0;
    box.hidden = !any;
    note.hidden = any;
    if (any) map.invalidateSize();
    return any;
  }

  function fit() {
    const points = [...located.detections, ...located.units];
    if (moved || points.length === 0) return;
    map.fitBounds(L.latLngBounds(points).pad(0.3), { maxZoom: 12 });
  }

  visible();
  return {
    showDetections(records) {
      detections.clearLayers();
      const points = [];
      for (const r of records) {
        if (typeof r.lat !== "number" || typeof r.lon !== "number") continue;
        points.push([r.lat, r.lon]);
        const colour = COLOURS[r.verdict] || (r.alert ? "#dc2626" : "#2563eb");
        if (r.area && Array.isArray(r.area.polygon)) {
          // a drone scan's mining area: its polygon ([lon, lat] pairs), the point at its centroid
          const ring = r.area.polygon.map(([lon, lat]) => [lat, lon]);
          points.push(...ring);
          L.polygon(ring, { color: colour, weight: 2, fillColor: colour, fillOpacity: r.verdict === "false_alarm" ? 0.05 : 0.25,
            renderer: areas, className: "area-polygon" })
            .bindTooltip(`${r.label || "error"} area, ${r.area.hectares} ha · ${r.device}`)
            .on("click", () => onSelect(r.id)).addTo(detections);
        }
        L.circleMarker([r.lat, r.lon], { radius: r.alert ? 8 : 5, color: colour, weight: 2, fillColor: colour,
          fillOpacity: r.verdict === "false_alarm" ? 0.1 : 0.6 })
          .bindTooltip(`${r.label || "error"} ${typeof r.score === "number" ? r.score.toFixed(2) : ""} · ${r.device}`)
          .on("click", () => onSelect(r.id)).addTo(detections);
      }
      located.detections = points;
      if (visible()) fit();
    },
    showUnits(list) {
      units.clearLayers();
      const points = [];
      for (const u of list) {
        if (!u.position) continue;
        points.push([u.position.lat, u.position.lon]);
        const icon = L.divIcon({ className: `unit-icon ${u.stale ? "stale" : u.state || "unknown"}`, iconSize: [14, 14] });
        L.marker([u.position.lat, u.position.lon], { icon, keyboard: true, title: `unit ${u.device}`, alt: `unit ${u.device}` })
          .bindTooltip(`unit ${u.device}: ${u.state || "?"} (position of its latest located record)`).addTo(units);
      }
      located.units = points;
      if (visible()) fit();
    },
    focus(detail) {
      if (typeof detail.lat !== "number" || box.hidden) return;
      moved = true;  // the map follows the person's choice from now on, not the next refit
      map.setView([detail.lat, detail.lon], Math.max(map.getZoom(), 9));
    },
  };
}
