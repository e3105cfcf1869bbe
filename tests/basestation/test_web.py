"""The page's server side through Flask's test client: login, sessions, CSRF, roles, the JSON API; each
test on a SQLite file and on a real PostgreSQL (webfixtures.backend)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from webfixtures import HTTPS, PASSWORDS, backend, client, csrf, https_client, jpeg, log_in, web  # noqa: F401  (fixtures)

from basestation import accounts, evidence
from basestation.store import Store
from basestation.web.app import HERE


def rows(db: str, sql: str) -> list[tuple]:
    """What the database holds, read apart from the page."""
    store = Store(db)
    try:
        return [tuple(row) for row in store.execute(sql).fetchall()]
    finally:
        store.close()


def test_pages_and_api_need_a_session(client):
    assert client.get("/").status_code == 302
    assert client.get("/api/detections").status_code == 401
    assert client.get("/api/export/reviews.csv").status_code == 401
    assert client.get("/login").status_code == 200
    assert client.get("/static/app.js").status_code == 200  # the page's own files are no secret


def test_login_sets_a_hardened_cookie_and_logout_ends_the_session(client, web):
    answer = log_in(client, "ada")
    assert answer.status_code == 302 and answer.headers["Location"] == "/"
    cookie = next(h for h in answer.headers.getlist("Set-Cookie") if h.startswith("nv_session="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    me = client.get("/api/me").get_json()
    assert me["name"] == "ada" and me["role"] == "reviewer" and me["may_review"]
    token = re.search(r"nv_session=([^;]+)", cookie).group(1)
    stored = rows(web[1], "SELECT token_hash FROM sessions")
    assert stored and all(token not in row[0] for row in stored)  # only a hash of the token is kept
    assert client.post("/logout", data={"csrf": me["csrf"]}).status_code == 302
    assert client.get("/api/me").status_code == 401
    assert rows(web[1], "SELECT count(*) FROM sessions") == [(0,)]


def test_passwords_are_scrypt_hashes(web):
    for name, stored in rows(web[1], "SELECT name, password FROM users"):
        assert stored.startswith("scrypt$32768$8$1$") and PASSWORDS[name] not in stored
        assert accounts.check_password(PASSWORDS[name], stored) and not accounts.check_password("nope", stored)


def test_wrong_password_refused_then_rate_limited(client):
    for _ in range(accounts.MAX_FAILURES_PER_NAME):
        answer = log_in(client, "ada", "wrong-password")
        assert answer.status_code == 401 and "Wrong name or password" in answer.get_data(as_text=True)
    limited = log_in(client, "ada")  # even the right password, now
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0 and "Too many failed logins" in limited.get_data(as_text=True)
    assert log_in(client, "rui").status_code == 302  # another account from the same address still may


def test_an_unknown_name_fails_like_a_wrong_password(client):
    assert log_in(client, "nobody", "whatever-1234").status_code == 401


def test_login_without_its_form_token_is_refused(client):
    client.get("/login")
    assert client.post("/login", data={"name": "ada", "password": PASSWORDS["ada"], "csrf": "forged"}).status_code == 403
    assert client.get("/api/me").status_code == 401


def test_state_changing_requests_need_the_csrf_token(client, web):
    log_in(client, "ada")
    alert = web[2]["alert"]
    body = {"target_kind": "detection", "target": alert["id"], "verdict": "false_alarm", "note": "cloud shadow"}
    assert client.post("/api/reviews", json=body).status_code == 403
    assert client.post("/api/reviews", json=body, headers={"X-CSRF-Token": "not-it"}).status_code == 403
    evil = client.post("/api/reviews", json=body, headers={"X-CSRF-Token": csrf(client), "Origin": "https://evil.example"})
    assert evil.status_code == 403
    assert client.post("/logout").status_code == 403  # logout too: no forced log-outs from other sites
    ok = client.post("/api/reviews", json=body, headers={"X-CSRF-Token": csrf(client), "Origin": HTTPS})
    assert ok.status_code == 201 and ok.get_json()["reviewer"] == "ada"


def test_read_only_role_cannot_review(client, web):
    log_in(client, "rui")
    body = {"target_kind": "detection", "target": web[2]["alert"]["id"], "verdict": "confirmed", "note": ""}
    answer = client.post("/api/reviews", json=body, headers={"X-CSRF-Token": csrf(client)})
    assert answer.status_code == 403 and "read-only" in answer.get_json()["error"]
    assert client.get("/api/detections").status_code == 200
    assert client.get("/api/users").status_code == 403


def test_admin_sees_the_accounts(client):
    log_in(client, "root")
    assert [u["name"] for u in client.get("/api/users").get_json()["users"]] == ["ada", "root", "rui"]


def test_detections_filters_and_live_cursor(client, web):
    log_in(client, "rui")
    everything = client.get("/api/detections").get_json()
    assert len(everything["records"]) == 13
    groups = {r["group"] for r in everything["records"]}
    assert len(groups) == 11  # the event's three phases are one group
    alerts = client.get("/api/detections?alerts=1").get_json()["records"]
    assert {r["label"] for r in alerts} == {"mining", "excavator"}
    unit = client.get("/api/detections?unit=unit-2").get_json()["records"]
    assert {r["device"] for r in unit} == {"unit-2"} and all(r["event"] for r in unit)
    window = client.get("/api/detections?from=2026-05-01T00:00:05Z&to=2026-05-01T00:00:07").get_json()["records"]
    assert sorted(r["time"] for r in window) == ["2026-05-01T00:00:05.000Z", "2026-05-01T00:00:06.000Z",
                                                 "2026-05-01T00:00:07.000Z"]
    later = client.get(f"/api/detections?since={everything['cursor'] + 60}").get_json()
    assert later["records"] == []
    assert client.get("/api/detections?from=yesterday").status_code == 400
    assert client.get("/api/detections?limit=0").status_code == 400


def test_evidence_thumbnail_series_and_audio_only_when_present(client, web):
    log_in(client, "rui")
    alert = web[2]["alert"]
    detail = client.get(f"/api/detections/{alert['id']}").get_json()
    assert detail["thumbnail"] and not detail["audio"] and detail["record"]["tiles"]["rows"] == 16
    image = client.get(f"/api/detections/{alert['id']}/thumbnail")
    assert image.status_code == 200 and image.mimetype == "image/jpeg" and image.data.startswith(b"\xff\xd8\xff")
    assert client.get(f"/api/detections/{alert['id']}/audio").status_code == 404
    series = client.get(f"/api/detections/{alert['id']}/series").get_json()
    assert series["what"] == "unit" and len(series["points"]) == 10
    end = web[2]["phases"][-1]
    event_series = client.get(f"/api/detections/{end['id']}/series").get_json()
    assert event_series["what"] == "event" and [p["phase"] for p in event_series["points"]] == ["start", "update", "end"]
    store = Store(web[1])
    evidence.save_audio(store, end["id"], "unit-2", "audio/wav", b"RIFF....WAVE")
    store.close()
    assert client.get(f"/api/detections/{end['id']}").get_json()["audio"]
    assert client.get(f"/api/detections/{end['id']}/audio").mimetype == "audio/wav"
    assert client.get("/api/detections/nope").status_code == 404


def test_units_show_health(client):
    log_in(client, "rui")
    units = {u["device"]: u for u in client.get("/api/units").get_json()["units"]}
    u = units["unit-1"]
    assert (u["state"], u["outbox_depth"], u["clock_synchronized"], u["cpu_temp_c"]) == ("online", 3, False, 51.2)
    assert u["position"] is not None  # from its latest located record


def test_event_review_history_and_labelled_export(client, web):
    log_in(client, "ada")
    token = csrf(client)
    start, update, end = web[2]["phases"]
    post = lambda body: client.post("/api/reviews", json=body, headers={"X-CSRF-Token": token})  # noqa: E731
    assert post({"target_kind": "event", "target": end["event"]["id"], "anchor": end["id"], "verdict": "unsure",
                 "note": "rain?"}).status_code == 201
    assert post({"target_kind": "event", "target": end["event"]["id"], "anchor": end["id"], "verdict": "confirmed",
                 "note": "excavator heard by the ranger"}).status_code == 201
    assert post({"target_kind": "event", "target": end["event"]["id"], "anchor": web[2]["alert"]["id"],
                 "verdict": "confirmed"}).status_code == 404  # the anchor is not a record of that event
    assert post({"target_kind": "detection", "target": "x", "verdict": "maybe"}).status_code == 400
    history = client.get(f"/api/detections/{update['id']}").get_json()["reviews"]
    assert [(r["verdict"], r["reviewer"]) for r in history] == [("unsure", "ada"), ("confirmed", "ada")]
    listed = {r["id"]: r["verdict"] for r in client.get("/api/detections").get_json()["records"]}
    assert listed[start["id"]] == listed[end["id"]] == "confirmed"
    rows = list(csv.DictReader(io.StringIO(client.get("/api/export/reviews.csv").get_data(as_text=True))))
    assert [r["record_id"] for r in rows] == [start["id"], update["id"], end["id"]]  # every phase, labelled
    assert {r["verdict"] for r in rows} == {"confirmed"} and rows[0]["note"] == "excavator heard by the ranger"
    assert json.loads(rows[0]["scores"]) == start["scores"]
    data = client.get("/api/export/reviews.json").get_json()
    assert data["format"] == "naturevision-labelled" and len(data["rows"]) == 3


def test_exports_download_as_files(client, web):
    log_in(client, "rui")
    answer = client.get("/api/export/reviews.geojson")
    assert answer.headers["Content-Disposition"].startswith("attachment;")
    assert answer.get_json()["type"] == "FeatureCollection"
    detections = client.get("/api/export/detections.csv?alerts=1").get_data(as_text=True)
    assert detections.count("\n") == 1 + 4  # header, the mining alert, three event phases
    assert client.get("/api/export/reviews.xml").status_code == 404


def test_security_headers_and_nothing_fetched_from_outside(client):
    log_in(client, "rui")
    page = client.get("/")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    for path in sorted(Path(HERE / "static").glob("*.js")):
        text = path.read_text()
        assert not re.search(r"""["'`]https?://""", text.replace("http://www.w3.org/2000/svg", "")), path


def test_tiles_and_overlay_from_the_operators_folders(tmp_path, web):
    from dataclasses import replace

    from basestation.baseconfig import ServeConfig
    from basestation.web.app import create_app

    tiles = tmp_path / "tiles"
    (tiles / "3" / "2").mkdir(parents=True)
    (tiles / "3" / "2" / "4.jpg").write_bytes(jpeg())
    overview = tmp_path / "overview.jpg"
    overview.write_bytes(jpeg((10, 120, 10)))
    config = replace(ServeConfig(), tiles=tiles, overlay=overview, overlay_bounds=(-4.0, -61.0, -3.0, -60.0))
    c = https_client(create_app(web[1], config))
    log_in(c, "rui")
    settings = c.get("/api/config").get_json()
    assert settings["tiles"]["url"] == "/tiles/{z}/{x}/{y}.jpg" and settings["overlay"]["bounds"] == [-4.0, -61.0, -3.0, -60.0]
    assert c.get("/tiles/3/2/4.jpg").data.startswith(b"\xff\xd8")
    assert c.get("/tiles/3/2/5.jpg").status_code == 404
    assert c.get("/tiles/3/2/4.png").status_code == 404
    assert c.get("/overlay").status_code == 200
