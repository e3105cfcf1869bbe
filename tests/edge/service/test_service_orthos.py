"""An orthomosaic dropped into the unit's watched folder is scanned as `nv-edge scan` does: one record per
mining area, with its polygon, through the outbox; a restart gives the same records (stored once)."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from pathlib import Path

import jsonschema
import pytest

pytest.importorskip("rasterio", reason="the survey extra (rasterio, pyproj, shapely) is not installed")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "survey"))
from orthos import UTM_21S, UTM_ORIGIN, north_up, write_ortho

from edge.config import load_config
from edge.delivery.outbox import Outbox
from edge.records.schemas import load_schema
from edge.service.context import ClockWatch, Context, Counters
from edge.service.image_pipeline import ImagePipeline
from edge.service.liveness import Liveness

VALIDATOR = jsonschema.Draft202012Validator(load_schema("detection"))


def pipeline(tmp_path: Path, model: Path) -> ImagePipeline:
    (tmp_path / "in").mkdir(exist_ok=True)
    config = tmp_path / "edge.toml"
    config.write_text(f"""
[device]
id = "drone-base"
state_dir = "{tmp_path / 'state'}"

[image]
model = "{model}"

[[image.sources]]
type = "folder"
path = "{tmp_path / 'in'}"
settle_s = 0
poll_s = 0.05
""")
    cfg = load_config(config)
    ctx = Context(cfg=cfg, outbox=Outbox(cfg.outbox.path), liveness=Liveness(60), counters=Counters(),
                  clock=ClockWatch(probe=lambda: {"synchronized": True}), stop=threading.Event())
    return ImagePipeline(ctx)


def detections(tmp_path: Path) -> list[dict]:
    with sqlite3.connect(tmp_path / "state" / "outbox.db") as con:
        return [json.loads(p) for (p,) in con.execute("SELECT payload FROM outbox WHERE leaf = 'detection' ORDER BY seq")]


def run_once(p: ImagePipeline) -> list:
    source = p.sources[0]
    time.sleep(0.1)
    items = source.poll()
    for item in items:
        p.process(source, item)
    return items


def test_an_ortho_in_the_folder_gives_one_record_per_mining_area(tiny_scaled, tmp_path):
    # 5 m/px: the tiny model's 160 m tiles are 32 px; two red tiles side by side are one area, one apart another
    (tmp_path / "in").mkdir()
    write_ortho(tmp_path / "in" / "flight7.tif", 6 * 32, 3 * 32, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 5.0, 5.0),
                red_boxes=[(32, 32, 96, 64), (160, 0, 192, 32)])
    p = pipeline(tmp_path, tiny_scaled)
    (item,) = run_once(p)
    records = detections(tmp_path)
    assert len(records) == 2 and all(r["alert"] and r["source"].endswith("flight7.tif") for r in records)
    for r in records:
        VALIDATOR.validate(r)
        assert r["device"] == "drone-base" and r["clock_synchronized"] is True
    by_tiles = sorted(r["area"]["tiles"] for r in records)
    assert by_tiles == [1, 2]
    big = next(r for r in records if r["area"]["tiles"] == 2)
    assert big["area"]["hectares"] == pytest.approx(2 * 160 * 160 / 10_000, rel=1e-3)  # two tiles of 160 m
    assert sorted((tmp_path / "state" / "scans").glob("flight7-*.geojson"))  # the GeoJSON is kept on the unit
    assert p.ctx.counters.frames == 1 and p.sources[0].poll() == []  # done, not offered again
    p.ctx.outbox.close()

    # the same item offered again after a crash before it was marked done (the ledger keeps its record id):
    # the scan's state under that id gives the same area records, which the outbox stores once
    again = pipeline(tmp_path, tiny_scaled)
    first_ids = sorted(r["id"] for r in records)
    again.process(again.sources[0], item)
    again.ctx.outbox.close()
    assert again.ctx.counters.frames == 1, "the ortho was offered and scanned again"
    assert sorted(r["id"] for r in detections(tmp_path)) == first_ids  # the same area records, stored once


def test_an_ortho_on_a_unit_without_a_scaled_model_is_an_error_record_naming_it(tiny_int8, tmp_path):
    (tmp_path / "in").mkdir()
    write_ortho(tmp_path / "in" / "flight8.tif", 64, 64, crs=UTM_21S, transform=north_up(*UTM_ORIGIN, 5.0, 5.0))
    p = pipeline(tmp_path, tiny_int8)  # a camera model: no ground resolution to scan at
    run_once(p)
    p.ctx.outbox.close()
    (record,) = detections(tmp_path)
    assert "flight8.tif: is an orthomosaic" in record["error"] and "learnt a ground resolution" in record["error"]


def test_a_torn_ortho_is_an_error_record_and_the_next_file_is_still_classified(tiny_scaled, tmp_path):
    (tmp_path / "in").mkdir()
    torn = write_ortho(tmp_path / "in" / "a_torn.tif", 6 * 32, 6 * 32, crs=UTM_21S,
                       transform=north_up(*UTM_ORIGIN, 5.0, 5.0), red_boxes=[(32, 32, 96, 64)], strip=32)
    data = torn.read_bytes()
    torn.write_bytes(data[: len(data) * 2 // 3])  # the card filled up while it was copied: the header stays
    whole = write_ortho(tmp_path / "in" / "b_whole.tif", 6 * 32, 3 * 32, crs=UTM_21S,
                        transform=north_up(*UTM_ORIGIN, 5.0, 5.0), red_boxes=[(32, 32, 96, 64)])
    p = pipeline(tmp_path, tiny_scaled)
    run_once(p)
    p.ctx.outbox.close()
    records = detections(tmp_path)
    errors = [r for r in records if "error" in r]
    assert len(errors) == 1 and errors[0]["source"].endswith("a_torn.tif") and "a_torn.tif" in errors[0]["error"]
    assert [r["area"]["tiles"] for r in records if r["source"].endswith(whole.name)] == [2]
