"""Reviews: history kept, the newest verdict counts, a record's own verdict overrides its event's; `nv-base reviews`;
on a SQLite file and on a real PostgreSQL."""

from __future__ import annotations

import csv
import json

import pytest
from test_cli import nv_base
from webfixtures import backend, fill  # noqa: F401  (fixtures)

from basestation import reviews
from basestation.store import Store


def test_labelled_rows_follow_the_newest_verdict_and_overrides(backend):
    data = fill(backend)
    db = Store(backend)
    start, update, end = data["phases"]
    event = end["event"]["id"]
    reviews.add_review(db, target_kind="event", target=event, verdict="confirmed", note="", reviewer="ana")  # found by search
    reviews.add_review(db, target_kind="detection", target=update["id"], verdict="unsure", note="rain", reviewer="rui")
    reviews.add_review(db, target_kind="detection", target=data["alert"]["id"], verdict="false_alarm", note="",
                       reviewer="ana")
    reviews.add_review(db, target_kind="detection", target=data["alert"]["id"], verdict="confirmed", note="looked again",
                       reviewer="ana")
    rows = {r["record_id"]: r for r in reviews.labelled_rows(db)}
    assert {k: (r["verdict"], r["verdict_on"]) for k, r in rows.items()} == {
        start["id"]: ("confirmed", "event"), update["id"]: ("unsure", "detection"), end["id"]: ("confirmed", "event"),
        data["alert"]["id"]: ("confirmed", "detection")}
    assert rows[data["alert"]["id"]]["note"] == "looked again"
    assert len(reviews.history(db, [data["alert"]["id"]])[data["alert"]["id"]]) == 2  # the history is kept
    with pytest.raises(reviews.ReviewError, match="none of its records is stored here"):
        reviews.add_review(db, target_kind="event", target="0190aaaa-0000-7000-8000-000000000000", verdict="unsure",
                           note="", reviewer="ana")


def test_nv_base_reviews_writes_csv_json_and_geojson(backend, tmp_path):
    data = fill(backend)
    db = Store(backend)
    reviews.add_review(db, target_kind="detection", target=data["alert"]["id"], verdict="false_alarm", note="shadow",
                       reviewer="ana")
    reviews.add_review(db, target_kind="detection", target=data["frames"][2]["id"], verdict="confirmed", note="",
                       reviewer="ana")  # frame 3 has no location
    for fmt in ("csv", "json", "geojson"):
        proc = nv_base("reviews", "--db", backend, "--format", fmt, "--out", tmp_path / f"r.{fmt}")
        assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert [(r["record_id"], r["verdict"]) for r in rows] == [(data["frames"][2]["id"], "confirmed"),
                                                             (data["alert"]["id"], "false_alarm")]
    assert json.loads((tmp_path / "r.json").read_text())["rows"][1]["scores"] == data["alert"]["scores"]
    geo = json.loads((tmp_path / "r.geojson").read_text())
    assert [f["id"] for f in geo["features"]] == [data["alert"]["id"]]
    assert geo["features"][0]["geometry"]["coordinates"] == [data["alert"]["geo"]["lon"], data["alert"]["geo"]["lat"]]
