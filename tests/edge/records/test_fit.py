"""Records a base station would refuse (over 1 MiB) are shrunk by their score grid before they are queued."""

from __future__ import annotations

import json
import sqlite3

import pytest

from edge.delivery.outbox import Outbox
from edge.records.fit import MAX_RECORD_BYTES, fit_record


def tiled(rows: int, cols: int, labels=("mining",)) -> dict:
    grid = {label: [[round(0.123456 + (r * cols + c) % 7 / 10, 4) for c in range(cols)] for r in range(rows)]
            for label in labels}
    return {"id": "0190a1b2-0000-7000-8000-000000000001", "source": "big.jpg", "label": "mining", "score": 0.97,
            "scores": {"mining": 0.97, "not_mining": 0.03}, "alert": True,
            "tiles": {"size": 48, "overlap": 0.25, "rows": rows, "cols": cols, "grid": grid,
                      "best": {"row": 3, "col": 4, "box": [144, 108, 192, 156]}}}


def test_a_small_record_goes_as_it_is():
    record = tiled(16, 16)
    fitted, payload = fit_record(record)
    assert fitted is record and json.loads(payload) == record


def test_a_big_grid_is_rounded_then_left_out_keeping_the_decision():
    rounded, payload = fit_record(tiled(300, 300))  # 90,000 tiles of one label: ~630 KB, sent whole
    assert len(payload) <= MAX_RECORD_BYTES
    two_labels = tiled(300, 300, labels=("mining", "road"))
    assert len(json.dumps(two_labels, separators=(",", ":"))) > MAX_RECORD_BYTES
    fitted, payload = fit_record(two_labels)
    assert len(payload) <= MAX_RECORD_BYTES and fitted["tiles"]["grid"]["road"][0][:3] == [0.12, 0.22, 0.32]
    huge = tiled(500, 500, labels=("mining", "road"))
    fitted, payload = fit_record(huge)
    assert fitted["tiles"]["grid"] == {} and len(payload) <= MAX_RECORD_BYTES
    for key in ("label", "score", "scores", "alert"):
        assert fitted[key] == huge[key]
    assert {k: v for k, v in fitted["tiles"].items() if k != "grid"} == {k: v for k, v in huge["tiles"].items() if k != "grid"}


def test_a_record_too_big_without_a_grid_is_refused_naming_it():
    record = {"id": "x", "source": "odd.jpg", "label": "a" * (MAX_RECORD_BYTES + 10)}
    with pytest.raises(ValueError, match="odd.jpg.*over the 1,048,576 a base station accepts"):
        fit_record(record)


def test_the_outbox_stores_the_fitted_record(tmp_path):
    box = Outbox(tmp_path / "outbox.db")
    box.put(tiled(500, 500, labels=("mining", "road")))
    box.flush()
    box.close()
    payload = sqlite3.connect(tmp_path / "outbox.db").execute("SELECT payload FROM outbox").fetchone()[0]
    assert len(payload) <= MAX_RECORD_BYTES and json.loads(payload)["tiles"]["grid"] == {}


def test_the_base_station_takes_what_the_unit_may_send():
    from basestation.payloads import MAX_BYTES
    from edge.delivery import topics

    assert MAX_BYTES[topics.DETECTION] == MAX_RECORD_BYTES
