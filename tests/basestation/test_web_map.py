"""The page's map and live list through Flask's test client, on a SQLite file and a real PostgreSQL: the
box query (/api/map), a drone scan's area record (a polygon, no `geo`) on it, and polling with `since`."""

from __future__ import annotations

from detections import area_detection, detection
from webfixtures import backend, client, log_in, web  # noqa: F401  (fixtures)

from basestation.payloads import Accepted
from basestation.places import area_centre
from basestation.store import Store


def save(db: str, records: list[dict]) -> None:
    store = Store(db)
    store.save([Accepted("detection", r["device"], r, r["id"]) for r in records])
    store.close()


def test_the_map_box_gives_located_records_newest_first(client, web):
    log_in(client, "rui")
    frames = web[2]["frames"]
    located = sorted((r for r in frames if "geo" in r), key=lambda r: r["time"], reverse=True)
    answer = client.get("/api/map?box=-61,-5,-59,-2").get_json()
    assert [r["id"] for r in answer["records"]] == [r["id"] for r in located]
    assert all(r["area"] is None for r in answer["records"])
    one = located[0]["geo"]
    tight = client.get(f"/api/map?box={one['lon']},{one['lat']},{one['lon']},{one['lat']}").get_json()["records"]
    assert located[0]["id"] in [r["id"] for r in tight] and len(tight) < len(located)
    capped = client.get("/api/map?box=-61,-5,-59,-2&limit=2").get_json()
    assert len(capped["records"]) == 2 and capped["more"] is True and answer["more"] is False
    alerts = client.get("/api/map?box=-61,-5,-59,-2&alerts=1&unit=unit-1").get_json()["records"]
    assert [r["id"] for r in alerts] == [r["id"] for r in located if r["alert"] and r["device"] == "unit-1"]
    window = client.get("/api/map?box=-61,-5,-59,-2&from=2026-05-01T00:00:04Z&to=2026-05-01T00:00:07Z").get_json()
    assert [r["id"] for r in window["records"]] == [r["id"] for r in located if "00:00:04" <= r["time"][11:19] <= "00:00:07"]
    assert client.get("/api/map?box=-59,-5,-61,-2").status_code == 400  # west > east
    assert client.get("/api/map?box=1,2,3").status_code == 400
    assert client.get("/api/map?box=-61,-5,-59,-2&limit=0").status_code == 400


def test_an_area_record_is_on_the_map_with_its_polygon(client, web):
    area = area_detection("drone-1", 50, west=-59.70, south=-3.60, size=0.02)
    save(web[1], [area])
    log_in(client, "rui")
    found = client.get("/api/map?box=-59.70,-3.60,-59.68,-3.58").get_json()["records"]
    assert [r["id"] for r in found] == [area["id"]]
    (shown,) = found
    centre = area_centre(area["area"])
    assert abs(shown["lat"] - centre["lat"]) < 1e-9 and abs(shown["lon"] - centre["lon"]) < 1e-9
    assert abs(shown["lat"] - -3.59) < 1e-9 and abs(shown["lon"] - -59.69) < 1e-9  # the square's middle
    assert shown["area"]["polygon"] == area["area"]["polygon"] and shown["area"]["hectares"] == 49.3
    assert client.get("/api/map?box=-59.66,-3.60,-59.60,-3.50").get_json()["records"] == []  # beside it
    straddling = client.get("/api/map?box=-59.685,-3.65,-59.60,-3.55").get_json()["records"]  # not its centroid
    assert [r["id"] for r in straddling] == [area["id"]]
    listed = {r["id"]: r for r in client.get("/api/detections?unit=drone-1").get_json()["records"]}
    assert listed[area["id"]]["area"]["tiles"] == 3 and listed[area["id"]]["lat"] == shown["lat"]  # the list's map too


def test_polling_gives_what_arrived_since_with_the_filters(client, web):
    log_in(client, "rui")
    first = client.get("/api/detections?unit=unit-1").get_json()
    assert len(first["records"]) == 10
    late = [detection("unit-1", 11, alert=True), detection("unit-1", 12, alert=False), detection("unit-3", 13, alert=True)]
    save(web[1], late)
    since = first["cursor"]
    polled = client.get(f"/api/detections?unit=unit-1&since={since}").get_json()
    assert {r["id"] for r in polled["records"]} >= {late[0]["id"], late[1]["id"]}
    assert {r["device"] for r in polled["records"]} == {"unit-1"} and polled["cursor"] >= since
    alerts = client.get(f"/api/detections?alerts=1&since={since}").get_json()["records"]
    assert {late[0]["id"], late[2]["id"]} <= {r["id"] for r in alerts} and all(r["alert"] for r in alerts)
    window = client.get(f"/api/detections?from=2026-05-01T00:00:12Z&to=2026-05-01T00:00:12Z&since={since}")
    assert [r["id"] for r in window.get_json()["records"]] == [late[1]["id"]]
