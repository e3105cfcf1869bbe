"""What the page asks of the database: records with filters, one record's evidence, a series of
scores, the units and their health. Rows become plain dicts that go out as JSON (docs/web.md).

The page groups records into events: records that share an `event.id` are one event (its start,
updates and end); any other record is an event of its own. `group` is that key.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from basestation import reviews
from basestation.store import Store

MAX_LIMIT = 1000
OVERLAP_S = 10.0  # `since` looks this far back: a worker that commits late must not be missed
STALE_S = 300.0  # an online unit not heard from for this long is shown as stale (heartbeats come every 60 s)
SERIES_WINDOW_S = 3600.0  # a lone detection's series: the same unit's records this long either side


@dataclass(frozen=True)
class Filters:
    unit: str | None = None
    label: str | None = None
    start: str | None = None  # capture time, ISO 8601 UTC: from
    end: str | None = None  # to
    alerts_only: bool = False
    since: float | None = None  # received after (unix time): the live list's polling cursor
    limit: int = 200


class BadRequest(ValueError):
    """A parameter that cannot be used; the message names it."""


def filters_from(args) -> Filters:
    """Filters from a request's query parameters (a mapping of str to str)."""
    try:
        since = float(args["since"]) if args.get("since") else None
        limit = int(args.get("limit") or 200)
    except ValueError:
        raise BadRequest("since is unix seconds and limit a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: from 1 to {MAX_LIMIT}")
    start, end = (_normal_time(args.get(key), key) for key in ("from", "to"))
    return Filters(unit=args.get("unit") or None, label=args.get("label") or None, start=start,
                   end=end, alerts_only=args.get("alerts") in ("1", "true", "on"), since=since,
                   limit=limit)


def _normal_time(value: str | None, key: str) -> str | None:
    """An ISO 8601 time as records write it (milliseconds, Z), so that text comparison is time order.
    A time without an offset is UTC."""
    if not value:
        return None
    try:
        return _iso(_unix(value))
    except ValueError:
        raise BadRequest(f"{key}: an ISO 8601 UTC time such as 2026-05-01T16:00:00Z") from None


def records(store: Store, f: Filters) -> dict:
    """Record summaries and the cursor to poll with next (`since`). The first page is the event list's
    (Store.events: newest capture time first); a poll gives what arrived since, newest received first."""
    now = time.time()
    if f.since is None:
        rows = store.events(device=f.unit, label=f.label, alert=True if f.alerts_only else None, since=f.start,
                            until=None if f.end is None else _iso(_unix(f.end) + 0.001),  # `to` is inclusive
                            limit=f.limit)
    else:
        rows = _arrived(store, f)
    items = _summaries(store, rows)
    cursor = max((row["received"] for row in rows), default=f.since if f.since is not None else now)
    return {"records": items, "cursor": cursor, "now": now}


def in_box(store: Store, west: float, south: float, east: float, north: float, limit: int,
           f: Filters = Filters()) -> dict:
    """The map's box query (Store.in_box): records inside the box with the list's filters, newest capture
    time first; `more` when there are more than `limit` of them (the page says it shows the newest)."""
    try:
        rows = store.in_box(west, south, east, north, limit=limit + 1, device=f.unit, label=f.label,
                            alert=True if f.alerts_only else None, since=f.start,
                            until=None if f.end is None else _iso(_unix(f.end) + 0.001))  # `to` is inclusive
    except ValueError as exc:
        raise BadRequest(f"box: {exc}") from None
    return {"records": _summaries(store, rows[:limit]), "more": len(rows) > limit, "now": time.time()}


def box_from(args) -> tuple[float, float, float, float, int]:
    """(west, south, east, north, limit) from `box=W,S,E,N` and `limit`."""
    try:
        west, south, east, north = (float(v) for v in args.get("box", "").split(","))
        limit = int(args.get("limit") or 500)
    except ValueError:
        raise BadRequest("box: WEST,SOUTH,EAST,NORTH in degrees, and limit a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit: from 1 to {MAX_LIMIT}")
    return west, south, east, north, limit


def _arrived(store: Store, f: Filters) -> list:
    """What was received after `f.since` (less OVERLAP_S), with the filters."""
    conditions = (("device = ?", f.unit), ("label = ?", f.label), ("time >= ?", f.start), ("time <= ?", f.end),
                  ("alert = ?", 1 if f.alerts_only else None), ("received > ?", f.since - OVERLAP_S))
    used = [(condition, value) for condition, value in conditions if value is not None]
    where = " AND ".join(condition for condition, _ in used)
    return store.query(f"SELECT * FROM detections WHERE {where} ORDER BY received DESC, time DESC, id DESC LIMIT ?",
                       (*(value for _, value in used), f.limit))


def _summaries(store: Store, rows: list) -> list[dict]:
    """Summaries with the newest verdict (of the record, else its event) and whether a thumbnail came."""
    items = [summary(row) for row in rows]
    verdicts = reviews.latest(store, sorted({i["group"] for i in items} | {i["id"] for i in items}))
    thumbs = _present(store, "thumbnails", [i["id"] for i in items])
    for item in items:
        review = verdicts.get(item["id"]) or verdicts.get(item["group"])
        item["verdict"] = review.verdict if review else None
        item["thumbnail"] = item["id"] in thumbs
    return items


def summary(row) -> dict:
    record = json.loads(row["record"])
    event = record.get("event") if isinstance(record.get("event"), dict) else None
    return {
        "id": row["id"], "group": event["id"] if event else row["id"], "device": row["device"], "time": row["time"],
        "received": row["received"], "kind": row["kind"], "source": row["source"], "label": row["label"],
        "score": row["score"], "alert": None if row["alert"] is None else bool(row["alert"]),
        "lat": row["lat"], "lon": row["lon"], "error": row["error"], "queued_s": row["queued_s"],
        "event": None if event is None else {k: event.get(k) for k in ("id", "phase", "start", "end", "duration_s",
                                                                        "peak_score", "windows")},
        "tiled": isinstance(record.get("tiles"), dict),
        "area": _area(record.get("area")),
    }


def _area(area) -> dict | None:
    """A drone scan's mining area (records schema 1.4): its polygon ([lon, lat] pairs) and figures."""
    if not isinstance(area, dict) or not isinstance(area.get("polygon"), list):
        return None
    return {k: area.get(k) for k in ("polygon", "hectares", "tiles", "peak_score")}


def detail(store: Store, detection_id: str) -> dict | None:
    """One record in full, with what the evidence panel shows and the verdicts given on it."""
    rows = store.query("SELECT * FROM detections WHERE id = ?", (detection_id,))
    if not rows:
        return None
    item = summary(rows[0])
    item["record"] = json.loads(rows[0]["record"])
    item["thumbnail"] = bool(_present(store, "thumbnails", [detection_id]))
    item["audio"] = bool(_present(store, "audio_segments", [detection_id]))
    targets = [detection_id] + ([item["group"]] if item["group"] != detection_id else [])
    item["reviews"] = [r.as_json() for t, rs in reviews.history(store, targets).items() for r in rs]
    item["reviews"].sort(key=lambda r: r["id"])
    return item


def series(store: Store, detection_id: str) -> dict | None:
    """Scores over time: an event's records, or, for a lone detection, the same unit's records of the
    same model within an hour either side."""
    event_rows = reviews.event_records(store, detection_id)
    if not event_rows:
        return None
    anchor = next(r for r in event_rows if r["id"] == detection_id)
    if len(event_rows) > 1 or reviews.event_id(json.loads(anchor["record"])):
        points = []
        for row in event_rows:
            event = json.loads(row["record"])["event"]
            points.append({"id": row["id"], "time": event.get("end") or row["time"], "score": row["score"],
                           "mean": event.get("mean_score"), "phase": event.get("phase")})
        return {"what": "event", "label": anchor["label"], "points": points}
    centre = _unix(anchor["time"])
    rows = store.query("SELECT * FROM detections WHERE device = ? AND time >= ? AND time <= ? AND score IS NOT NULL "
                     "ORDER BY time, id LIMIT 2000",
                 (anchor["device"], _iso(centre - SERIES_WINDOW_S), _iso(centre + SERIES_WINDOW_S)))
    model = (json.loads(anchor["record"]).get("model") or {}).get("sha256")
    points = []
    for row in rows:
        record = json.loads(row["record"])
        if (record.get("model") or {}).get("sha256") != model:
            continue
        score = (record.get("scores") or {}).get(anchor["label"], row["score"] if row["label"] == anchor["label"] else None)
        points.append({"id": row["id"], "time": row["time"], "score": score, "alert": bool(row["alert"])})
    return {"what": "unit", "label": anchor["label"], "points": points}


def units(store: Store) -> list[dict]:
    """Every unit the base station has heard of: its state, the health it last sent, where its latest
    located record was."""
    now = time.time()
    found = []
    for d in store.query("SELECT * FROM devices ORDER BY device", ()):
        h = json.loads(d["health"]) if d["health"] else {}
        box = h.get("outbox") or {}
        clock = h.get("clock") or {}
        found.append({
            "device": d["device"], "state": d["state"], "state_time": d["state_time"], "last_seen": d["last_seen"],
            "stale": d["state"] == "online" and now - d["last_seen"] > STALE_S,
            "outbox_depth": box.get("depth"), "outbox_oldest_s": box.get("oldest_age_s"),
            "clock_synchronized": clock.get("synchronized"), "disk_free_bytes": h.get("disk_free_bytes"),
            "cpu_temp_c": h.get("cpu_temp_c"), "software": h.get("software"), "health_time": d["health_time"],
            "position": _position(store, d["device"]),
        })
    return found


def facets(store: Store) -> dict:
    """The values the filters offer: units and labels seen."""
    return {"units": [r[0] for r in store.execute("SELECT DISTINCT device FROM detections ORDER BY device")],
            "labels": [r[0] for r in store.execute("SELECT DISTINCT label FROM detections WHERE label IS NOT NULL "
                                                   "ORDER BY label")]}


def blob(store: Store, table: str, detection_id: str) -> tuple[bytes, str] | None:
    if table == "thumbnails":
        row = store.execute("SELECT jpeg, 'image/jpeg' FROM thumbnails WHERE id = ?", (detection_id,)).fetchone()
    else:
        row = store.execute("SELECT data, mime FROM audio_segments WHERE id = ?", (detection_id,)).fetchone()
    return None if row is None else (bytes(row[0]), row[1])


def _position(store: Store, device: str) -> dict | None:
    row = store.execute("SELECT lat, lon, time FROM detections WHERE device = ? AND lat IS NOT NULL AND lon IS NOT NULL "
                        "ORDER BY received DESC LIMIT 1", (device,)).fetchone()
    return None if row is None else {"lat": row[0], "lon": row[1], "time": row[2]}


def _present(store: Store, table: str, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        if chunk:
            found |= {r[0] for r in store.execute(f"SELECT id FROM {table} WHERE id IN ({','.join('?' * len(chunk))})", chunk)}
    return found


def _unix(iso: str) -> float:
    moment = datetime.fromisoformat(iso)  # Python 3.11 reads "Z"
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _iso(unix: float) -> str:
    """ISO 8601 UTC to the millisecond, as records write it (rounded: 7.001 s is not 7.000999… s)."""
    ms = round(unix * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"
